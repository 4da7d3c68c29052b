//! Answers several operations share, generated rather than written out in
//! each `#[utoipa::path]`: the guards' `401`/`403`, the `422` of a
//! malformed body, the `503 SERVICE_BUSY` of the operations that hash a
//! password, on every operation `413` and `503`, and on every `POST` under
//! `/auth/` the per-address limit's `429`.

use std::collections::BTreeMap;

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr};
use utoipa::{IntoResponses, Modify};

use super::schemas::fixed_detail;

fn json_ref(description: &str, schema: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(schema)))
            .build(),
    )
}

fn unauthorized() -> Response {
    json_ref(
        "No usable token, or an inactive or deleted user.",
        "Unauthorized",
    )
    .header(
        "WWW-Authenticate",
        HeaderBuilder::new()
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .description(Some("`Bearer`"))
            .build(),
    )
    .build()
}

fn responses(entries: Vec<(&str, Response)>) -> BTreeMap<String, RefOr<Response>> {
    entries
        .into_iter()
        .map(|(status, response)| (status.to_owned(), response.into()))
        .collect()
}

/// Any active user's token: `401` without one.
pub(crate) struct Authenticated;

impl IntoResponses for Authenticated {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(vec![("401", unauthorized())])
    }
}

/// A superuser's token: `401` without a usable one, then `403`.
pub(crate) struct SuperuserOnly;

impl IntoResponses for SuperuserOnly {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(vec![
            ("401", unauthorized()),
            ("403", json_ref("Not a superuser.", "Forbidden").build()),
        ])
    }
}

/// The `400` of both logins (bearer and cookie): bad credentials, or an
/// unverified user where verification is required.
pub(crate) struct LoginRefused;

impl IntoResponses for LoginRefused {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let example = |summary: &str, code: &str| {
            utoipa::openapi::example::ExampleBuilder::new()
                .summary(summary)
                .value(Some(serde_json::json!({ "detail": code })))
                .build()
        };
        let content = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorModel")))
            .examples_from_iter([
                (
                    "LOGIN_BAD_CREDENTIALS",
                    example(
                        "Unknown e-mail address, wrong password, or inactive user.",
                        "LOGIN_BAD_CREDENTIALS",
                    ),
                ),
                (
                    "LOGIN_USER_NOT_VERIFIED",
                    example(
                        "The user is not verified (when the server requires it).",
                        "LOGIN_USER_NOT_VERIFIED",
                    ),
                ),
            ])
            .build();
        let refused = ResponseBuilder::new()
            .description("Bad credentials, or an unverified user where verification is required.")
            .content("application/json", content)
            .build();
        responses(vec![("400", refused)])
    }
}

/// A body that does not parse: `422`, one entry per problem.
pub(crate) struct Malformed;

impl IntoResponses for Malformed {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(vec![(
            "422",
            json_ref(
                "Malformed body: one entry per problem.",
                "HTTPValidationError",
            )
            .build(),
        )])
    }
}

/// `Retry-After`, in whole seconds.
fn retry_after() -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        ))
        .description(Some("Seconds to wait before trying again."))
        .build()
}

/// The `503` of an operation that hashes a password: the store is down
/// (`Service Unavailable`), or every hashing slot is busy and
/// `HASH_QUEUE_MAX` requests wait already, or the wait outlasted
/// `HASH_QUEUE_TIMEOUT_MS` (`SERVICE_BUSY`, `Retry-After: 1`). List it in
/// the `responses` of every handler that hashes; [`InfrastructureAnswers`]
/// keeps it.
pub(crate) struct Busy;

impl IntoResponses for Busy {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let busy = ResponseBuilder::new()
            .description(
                "The store cannot be reached (`Service Unavailable`), or every password-hashing \
                 slot is busy and the queue is full (`SERVICE_BUSY`, `Retry-After: 1`); try again later.",
            )
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(fixed_detail(&["Service Unavailable", "SERVICE_BUSY"])))
                    .build(),
            )
            .header("Retry-After", retry_after())
            .build();
        responses(vec![("503", busy)])
    }
}

/// Answers any operation may give whatever the route: `503` while the store
/// is unreachable, and `413` for a body larger than any request needs (on
/// the operations that read a body).
pub(crate) struct InfrastructureAnswers;

impl Modify for InfrastructureAnswers {
    fn modify(&self, doc: &mut Document) {
        let json = |schema: Schema| ContentBuilder::new().schema(Some(schema)).build();
        let too_large = ResponseBuilder::new()
            .description(format!(
                "The body is larger than any request needs ({} KiB).",
                crate::MAX_BODY_BYTES / 1024
            ))
            .content(
                "application/json",
                json(fixed_detail(&["Request Entity Too Large"])),
            )
            .build();
        let unavailable = ResponseBuilder::new()
            .description("The store cannot be reached; try again later.")
            .content(
                "application/json",
                json(fixed_detail(&["Service Unavailable"])),
            )
            .header("Retry-After", retry_after())
            .build();
        for item in doc.paths.paths.values_mut() {
            for operation in operations(item) {
                if operation.request_body.is_some() {
                    operation
                        .responses
                        .responses
                        .insert("413".into(), too_large.clone().into());
                }
                // An operation's own 503 (`Busy`) says more; keep it.
                operation
                    .responses
                    .responses
                    .entry("503".into())
                    .or_insert_with(|| unavailable.clone().into());
            }
        }
    }
}

pub(crate) fn operations(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.post.as_mut(),
        item.patch.as_mut(),
        item.delete.as_mut(),
        item.put.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// `Retry-After: <seconds>`, a whole number of at least 1.
fn retry_after_at_least_1() -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1)),
        ))
        .description(Some("Seconds to wait before trying again."))
        .build()
}

/// The `429` of every `POST` under `/auth/` (paths relative to the
/// prefix): `TOO_MANY_REQUESTS` from the per-client-address limit, and on
/// the logins (`…/login`) also `LOGIN_TOO_MANY_ATTEMPTS` from the
/// failed-login lockout; both with `Retry-After`.
pub(crate) struct TooManyRequestsAnswers;

impl Modify for TooManyRequestsAnswers {
    fn modify(&self, doc: &mut Document) {
        let answer = |description: &str, details: &[&str]| -> Response {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(fixed_detail(details)))
                        .build(),
                )
                .header("Retry-After", retry_after_at_least_1())
                .build()
        };
        let limited = answer(
            "Too many requests from this client address (`RATE_LIMIT_AUTH_PER_MINUTE`).",
            &["TOO_MANY_REQUESTS"],
        );
        let login = answer(
            "Too many requests from this client address (`TOO_MANY_REQUESTS`), or too many \
             failed logins for this e-mail address (`LOGIN_TOO_MANY_ATTEMPTS`).",
            &["TOO_MANY_REQUESTS", "LOGIN_TOO_MANY_ATTEMPTS"],
        );
        for (path, item) in doc.paths.paths.iter_mut() {
            if !crate::rate_limit::is_limited(path) {
                continue;
            }
            let answer = if path.ends_with("/login") {
                &login
            } else {
                &limited
            };
            if let Some(operation) = item.post.as_mut() {
                operation
                    .responses
                    .responses
                    .insert("429".into(), answer.clone().into());
            }
        }
    }
}

/// The cookie transport on every protected operation: the session cookie
/// as an alternative to the bearer token (`security`), and on the unsafe
/// ones (`POST`, `PATCH`, `DELETE`) the `403` of a cookie-authenticated
/// request from a foreign page (its `Origin` neither the API's own, nor
/// `FRONTEND_URL`'s, nor in `CORS_ORIGINS`).
pub(crate) struct CookieSessionAnswers;

impl Modify for CookieSessionAnswers {
    fn modify(&self, doc: &mut Document) {
        for item in doc.paths.paths.values_mut() {
            let unsafe_ones = [
                item.post.as_mut(),
                item.patch.as_mut(),
                item.delete.as_mut(),
                item.put.as_mut(),
            ];
            for operation in unsafe_ones.into_iter().flatten() {
                if operation.security.is_none() {
                    continue;
                }
                operation
                    .responses
                    .responses
                    .entry("403".into())
                    .or_insert_with(|| {
                        json_ref(
                            "A cookie-authenticated request from a page of a foreign origin \
                             (`Origin` neither the API's own, nor `FRONTEND_URL`'s, nor in \
                             `CORS_ORIGINS`).",
                            "Forbidden",
                        )
                        .build()
                        .into()
                    });
            }
            for operation in operations(item) {
                if let Some(security) = operation.security.as_mut() {
                    super::with_cookie_alternative(security);
                }
            }
        }
    }
}

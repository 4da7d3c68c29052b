//! The login form: `application/x-www-form-urlencoded` (serde_urlencoded)
//! or `multipart/form-data` (actix-multipart), as FastAPI reads forms. An
//! empty value counts as absent; a repeated key keeps its last value;
//! anything else (JSON included) reads as a form with no fields.

use std::future::Future;
use std::pin::Pin;

use actix_multipart::Multipart;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest, dev};
use futures_util::StreamExt;
use secrecy::SecretString;
use serde_json::{Value, json};

use super::payload::{media_type, read_bytes};
use crate::error::ApiError;
use crate::pydantic::ValidationError;

/// A value a form field can hold; `value` is `None` when the field is
/// absent or empty.
pub trait FromFormField: Sized {
    /// The field `name` with its last non-empty value.
    fn from_form(name: &str, value: Option<String>) -> Result<Self, ValidationError>;
}

impl FromFormField for String {
    fn from_form(name: &str, value: Option<String>) -> Result<Self, ValidationError> {
        value.ok_or_else(|| ValidationError::missing(name, Value::Null))
    }
}

impl FromFormField for SecretString {
    fn from_form(name: &str, value: Option<String>) -> Result<Self, ValidationError> {
        String::from_form(name, value).map(SecretString::from)
    }
}

impl<T: FromFormField> FromFormField for Option<T> {
    fn from_form(name: &str, value: Option<String>) -> Result<Self, ValidationError> {
        value.map(|v| T::from_form(name, Some(v))).transpose()
    }
}

/// OAuth2's `grant_type`, which must be `password` when given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantType;

impl FromFormField for GrantType {
    fn from_form(name: &str, value: Option<String>) -> Result<Self, ValidationError> {
        let value = String::from_form(name, value)?;
        if value == "password" {
            return Ok(GrantType);
        }
        let pattern = "^password$";
        Err(ValidationError::at(
            name,
            "string_pattern_mismatch",
            format!("String should match pattern '{pattern}'"),
            json!(value),
        )
        .with_ctx(json!({ "pattern": pattern })))
    }
}

/// A form request body: a type declared with [`form_body!`].
pub trait FormBody: Sized {
    /// The body from the form's `(name, value)` pairs, in order, or one
    /// error per problem.
    fn from_pairs(pairs: &[(String, String)]) -> Result<Self, Vec<ValidationError>>;
}

/// The last non-empty value of `name`.
fn last_value(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .rev()
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v.clone())
}

/// Reads one form field with its type's check; used by [`form_body!`].
#[doc(hidden)]
pub fn read_form_field<T: FromFormField>(
    pairs: &[(String, String)],
    name: &str,
    problems: &mut Vec<ValidationError>,
) -> Option<T> {
    T::from_form(name, last_value(pairs, name))
        .map_err(|e| problems.push(e))
        .ok()
}

/// The text fields of the body, in order.
async fn form_pairs(req: &HttpRequest, bytes: Bytes) -> Vec<(String, String)> {
    match media_type(req).as_deref() {
        Some("application/x-www-form-urlencoded") => {
            serde_urlencoded::from_bytes(&bytes).unwrap_or_default()
        }
        // What a browser's `FormData` sends; FastAPI reads it too.
        Some("multipart/form-data") => multipart_pairs(req, bytes).await,
        _ => Vec::new(),
    }
}

/// The text fields of a `multipart/form-data` body; file parts are left
/// out, and a malformed body reads as no fields at all.
async fn multipart_pairs(req: &HttpRequest, bytes: Bytes) -> Vec<(String, String)> {
    let stream = futures_util::stream::once(async move { Ok(bytes) });
    let mut multipart = Multipart::new(req.headers(), stream);
    let mut pairs = Vec::new();
    while let Some(part) = multipart.next().await {
        let Ok(mut part) = part else {
            return Vec::new();
        };
        let disposition = part.content_disposition();
        let name = disposition.and_then(|d| d.get_name()).map(str::to_owned);
        let is_file = disposition.is_some_and(|d| d.get_filename().is_some());
        let mut content = Vec::new();
        while let Some(chunk) = part.next().await {
            match chunk {
                Ok(chunk) => content.extend_from_slice(&chunk),
                Err(_) => return Vec::new(),
            }
        }
        if let (Some(name), false) = (name, is_file) {
            pairs.push((name, String::from_utf8_lossy(&content).into_owned()));
        }
    }
    pairs
}

/// A form body of type `T`, read and judged (413, then 422 listing every
/// problem).
#[derive(Debug)]
pub struct Form<T>(pub T);

impl<T: FormBody + 'static> FromRequest for Form<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut dev::Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let bytes = read_bytes(&req, &mut payload).await?;
            let pairs = form_pairs(&req, bytes).await;
            T::from_pairs(&pairs)
                .map(Form)
                .map_err(ApiError::Validation)
        })
    }
}

/// Declares a form request body: the struct (derive `utoipa::ToSchema`)
/// and its [`FormBody`] parser, each field read by its type's
/// [`FromFormField`] check.
macro_rules! form_body {
    (
        $(#[$attr:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$fattr:meta])* $fvis:vis $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$attr])*
        $vis struct $name {
            $( $(#[$fattr])* $fvis $field : $ty ),*
        }

        impl $crate::request::FormBody for $name {
            fn from_pairs(
                pairs: &[(::std::string::String, ::std::string::String)],
            ) -> ::std::result::Result<Self, ::std::vec::Vec<$crate::pydantic::ValidationError>> {
                let mut problems = ::std::vec::Vec::new();
                $(
                    let $field = $crate::request::read_form_field::<$ty>(
                        pairs, stringify!($field), &mut problems,
                    );
                )*
                match ($($field,)*) {
                    ($(::std::option::Option::Some($field),)*) if problems.is_empty() => {
                        ::std::result::Result::Ok(Self { $($field),* })
                    }
                    _ => ::std::result::Result::Err(problems),
                }
            }
        }
    };
}
pub(crate) use form_body;

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[actix_web::test]
    async fn multipart_text_fields_are_read_and_files_left_out() {
        let body = "preamble\r\n--XyZ\r\n\
            Content-Disposition: form-data; name=\"username\"\r\n\r\n\
            ann@example.com\r\n--XyZ\r\n\
            content-disposition: form-data; name=password\r\n\
            Content-Type: text/plain; charset=utf-8\r\n\r\n\
            p\u{e4}ss\r\nw\u{f6}rd--\r\n--XyZ\r\n\
            Content-Disposition: form-data; name=\"scope\"; filename=\"a.txt\"\r\n\r\n\
            file\r\n--XyZ--\r\nepilogue";
        let req = TestRequest::default()
            .insert_header(("content-type", "multipart/form-data; boundary=XyZ"))
            .to_http_request();
        assert_eq!(
            form_pairs(&req, Bytes::from(body)).await,
            [
                ("username".to_owned(), "ann@example.com".to_owned()),
                ("password".to_owned(), "p\u{e4}ss\r\nw\u{f6}rd--".to_owned()),
            ]
        );
        assert!(
            form_pairs(&req, Bytes::from("--XyZ\r\nno end"))
                .await
                .is_empty()
        );
    }

    #[test]
    fn an_empty_value_is_absent_and_the_last_value_wins() {
        let pairs = [("a", "1"), ("a", "2"), ("a", ""), ("b", "")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(last_value(&pairs, "a").as_deref(), Some("2"));
        assert_eq!(last_value(&pairs, "b"), None);
    }
}

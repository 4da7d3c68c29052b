//! Schemas shared by several operations: the e-mail address, pydantic's lax
//! boolean, the role, the error bodies, and the fixed-`detail` answers.

use utoipa::openapi::schema::{
    AnyOfBuilder, ArrayBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

/// The special-use and reserved domains no public address lives under
/// (the domain's `EmailAddress` refuses them; RFC 6761, 6762, 7686).
pub(crate) const SPECIAL_USE_DOMAINS: [&str; 6] =
    ["arpa", "invalid", "local", "localhost", "onion", "test"];

/// `word` as a regular expression matching it in any (ASCII) case: JSON
/// Schema's regular expressions have no case-insensitive flag.
fn any_case(word: &str) -> String {
    word.chars()
        .map(|c| {
            if c.is_ascii_alphabetic() {
                format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase())
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn email_object() -> ObjectBuilder {
    let special = SPECIAL_USE_DOMAINS
        .iter()
        .map(|d| any_case(d))
        .collect::<Vec<_>>()
        .join("|");
    ObjectBuilder::new()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
        .max_length(Some(254))
        // Deliverable on the public internet: no special-use domain.
        .pattern(Some(format!(r"^(?![\s\S]*\.(?:{special})\s*$)")))
        .description(Some(
            "An address deliverable on the public internet: not under a \
             special-use domain (`.test`, `.localhost`, `.local`, `.invalid`, \
             `.onion`, `.arpa`) nor a single-label one. Matched \
             case-insensitively; stored with the domain lowercased.",
        ))
        .examples(["ann@example.com"])
}

/// A required e-mail address.
pub(crate) fn email() -> Schema {
    email_object().schema_type(Type::String).into()
}

/// An e-mail address or `null`.
pub(crate) fn optional_email() -> Schema {
    email_object()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .into()
}

/// The words pydantic's lax mode reads as a boolean, in any case, as a
/// regular expression matching the whole string.
pub(crate) fn lax_bool_words() -> String {
    let words = [
        "0", "1", "t", "f", "y", "n", "true", "false", "yes", "no", "on", "off",
    ];
    let pattern = words
        .iter()
        .map(|word| any_case(word))
        .collect::<Vec<_>>()
        .join("|");
    format!("^(?:{pattern})$")
}

/// A flag as pydantic's lax mode reads one: a boolean, `0`/`1`, or one of
/// the words of [`lax_bool_words`]; `null` leaves the flag as it is.
pub(crate) fn lax_bool() -> Schema {
    Schema::AnyOf(
        AnyOfBuilder::new()
            .description(Some(
                "A boolean; as in pydantic's lax mode also `0`/`1` and `t`/`f`, \
                 `y`/`n`, `true`/`false`, `yes`/`no`, `on`/`off` in any case. \
                 `null` leaves the flag as it is.",
            ))
            .item(ObjectBuilder::new().schema_type(Type::Boolean))
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .item(
                ObjectBuilder::new()
                    .schema_type(SchemaType::AnyValue)
                    .enum_values(Some([0, 1])),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(lax_bool_words())),
            )
            .build(),
    )
}

/// A role, lowest first; a guard for a role admits that role and those
/// above it. The names are the domain's own ([`portcullis_domain::Role`]).
pub(crate) struct Role;

impl PartialSchema for Role {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "A role, lowest first; a guard for a role admits that role and those above it.",
            ))
            .enum_values(Some(portcullis_domain::Role::ALL.map(|r| r.as_str())))
            .into()
    }
}

impl ToSchema for Role {}

/// The detail of a business error: a code, or a code with a reason.
pub(crate) fn error_detail() -> Schema {
    Schema::AnyOf(
        AnyOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::String))
            .item(Ref::from_schema_name("ErrorCodeReasonModel"))
            .build(),
    )
}

/// Where a problem is: `"body"`, then a field name or a character offset.
pub(crate) fn validation_loc() -> Schema {
    Schema::Array(
        ArrayBuilder::new()
            .items(RefOr::T(Schema::AnyOf(
                AnyOfBuilder::new()
                    .item(ObjectBuilder::new().schema_type(Type::String))
                    .item(ObjectBuilder::new().schema_type(Type::Integer))
                    .build(),
            )))
            .build(),
    )
}

/// The `422` entry's `input` and `ctx` are free-form JSON.
pub(crate) fn any_json() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::AnyValue)
        .into()
}

/// The bodies of the answers with a fixed `detail`.
pub(crate) fn fixed_detail(details: &[&str]) -> Schema {
    ObjectBuilder::new()
        .property(
            "detail",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(details.iter().copied())),
        )
        .required("detail")
        .into()
}

/// Declares a schema component that is an object whose only key, `detail`,
/// holds one of the given strings.
macro_rules! fixed_detail_schema {
    ($(#[$doc:meta])* $name:ident, [$($detail:expr),+ $(,)?]) => {
        $(#[$doc])*
        pub(crate) struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                fixed_detail(&[$($detail),+]).into()
            }
        }

        impl ToSchema for $name {}
    };
}

fixed_detail_schema!(
    /// `401`, with its `WWW-Authenticate: Bearer` header.
    Unauthorized,
    ["Unauthorized"]
);
fixed_detail_schema!(
    /// `403`.
    Forbidden,
    ["Forbidden"]
);
fixed_detail_schema!(
    /// `403` of `DELETE /users/{id}`: also for deleting oneself.
    DeleteForbidden,
    ["Forbidden", "Admins cannot delete their own account"]
);
fixed_detail_schema!(
    /// `404`.
    NotFound,
    ["Not Found"]
);

/// The JSON `null`.
pub(crate) struct JsonNull;

impl PartialSchema for JsonNull {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new().schema_type(Type::Null).into()
    }
}

impl ToSchema for JsonNull {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_special_use_domains_are_those_the_domain_refuses() {
        use portcullis_domain::EmailAddress;
        for domain in SPECIAL_USE_DOMAINS {
            assert!(EmailAddress::parse(&format!("ann@site.{domain}")).is_err());
            assert!(EmailAddress::parse(&format!("ann@site.{}", domain.to_uppercase())).is_err());
            assert!(EmailAddress::parse(&format!("ann@{domain}.example.com")).is_ok());
        }
    }
}

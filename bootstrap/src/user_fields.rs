//! Declaring a deployment's extra user fields: from `USER_FIELDS` (JSON,
//! for deployers of the standalone server) or from a Rust type a host owns
//! (its `utoipa` schema gives the columns, `serde` the values).

use portcullis_domain::{
    FieldSpec, FieldType, FieldValue, FieldWriter, InvalidUserField, User, UserFields,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{Schema, SchemaType, Type};

/// Parses `USER_FIELDS`: a JSON object, field name →
/// `{"type": "string"|"integer"|"boolean", "max_length": N (strings),
/// "nullable": true|false (default false), "default": value (required
/// unless nullable; null by default when nullable), "writable_by":
/// "user"|"admin" (default "admin": a field a user may set is said so)}`.
///
/// ```
/// use portcullis::parse_user_fields;
/// let fields = parse_user_fields(
///     r#"{"first_name": {"type": "string", "max_length": 50, "nullable": true, "writable_by": "user"}}"#,
/// ).unwrap();
/// assert!(fields.get("first_name").is_some());
/// assert!(parse_user_fields(r#"{"email": {"type": "string", "nullable": true}}"#).is_err());
/// ```
pub fn parse_user_fields(json: &str) -> Result<UserFields, InvalidUserField> {
    let invalid = |field: &str, reason: String| InvalidUserField {
        field: field.to_owned(),
        reason,
    };
    let object: Map<String, Value> = serde_json::from_str(json).map_err(|e| {
        invalid(
            "USER_FIELDS",
            format!("not a JSON object of field name to its declaration: {e}"),
        )
    })?;
    let mut specs = Vec::new();
    for (name, declaration) in &object {
        let Value::Object(declaration) = declaration else {
            return Err(invalid(name, "its declaration is not a JSON object".into()));
        };
        for key in declaration.keys() {
            if !["type", "max_length", "nullable", "default", "writable_by"].contains(&key.as_str())
            {
                return Err(invalid(
                    name,
                    format!(
                        "unknown key {key:?} (expected type, max_length, nullable, default, \
                         writable_by)"
                    ),
                ));
            }
        }
        let max_length =
            match declaration.get("max_length") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(
                    || invalid(name, "max_length must be a positive integer".into()),
                )?),
            };
        let ty = match declaration.get("type").and_then(Value::as_str) {
            Some("string") => FieldType::String { max_length },
            Some(other @ ("integer" | "boolean")) => {
                if max_length.is_some() {
                    return Err(invalid(name, "max_length is for string fields only".into()));
                }
                if other == "integer" {
                    FieldType::Integer
                } else {
                    FieldType::Boolean
                }
            }
            Some(other) => {
                return Err(invalid(
                    name,
                    format!("unsupported type {other:?} (expected string, integer or boolean)"),
                ));
            }
            None => {
                return Err(invalid(
                    name,
                    "\"type\" is required: string, integer or boolean".into(),
                ));
            }
        };
        let nullable = match declaration.get("nullable") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(invalid(name, "nullable must be true or false".into())),
        };
        let writable_by = match declaration.get("writable_by").and_then(Value::as_str) {
            None if declaration.get("writable_by").is_none() => FieldWriter::Admin,
            Some("user") => FieldWriter::User,
            Some("admin") => FieldWriter::Admin,
            _ => {
                return Err(invalid(
                    name,
                    "writable_by must be \"user\" or \"admin\"".into(),
                ));
            }
        };
        let default = match declaration.get("default") {
            None => FieldValue::Null,
            Some(v) => json_value(v).ok_or_else(|| {
                invalid(
                    name,
                    format!("the default {v} is no string, integer or boolean"),
                )
            })?,
        };
        specs.push(FieldSpec {
            name: name.clone(),
            ty,
            nullable,
            default,
            writable_by,
        });
    }
    UserFields::new(specs)
}

/// A JSON value as a field value, if it can be one.
fn json_value(value: &Value) -> Option<FieldValue> {
    match value {
        Value::Null => Some(FieldValue::Null),
        Value::String(s) => Some(FieldValue::String(s.clone())),
        Value::Bool(b) => Some(FieldValue::Boolean(*b)),
        Value::Number(n) => n.as_i64().map(FieldValue::Integer),
        _ => None,
    }
}

/// The extra user fields a host declares with a type of its own: each
/// property of `T`'s `utoipa` schema is a field (`String`/`&str` → string
/// with its `max_length`, integers → integer, `bool` → boolean; an `Option`
/// is nullable), `T::default()` gives the defaults, and a property marked
/// `#[schema(read_only)]` is written by superusers only.
///
/// ```
/// use portcullis::user_fields_of;
///
/// #[derive(Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
/// struct Profile {
///     #[schema(max_length = 50)]
///     first_name: Option<String>,
///     #[schema(read_only)]
///     credits: i32,
/// }
///
/// let fields = user_fields_of::<Profile>().unwrap();
/// assert!(fields.get("first_name").unwrap().nullable);
/// assert_eq!(fields.get("credits").unwrap().writable_by, portcullis::domain::FieldWriter::Admin);
/// ```
pub fn user_fields_of<T>() -> Result<UserFields, InvalidUserField>
where
    T: utoipa::ToSchema + Serialize + Default,
{
    let invalid = |field: &str, reason: &str| InvalidUserField {
        field: field.to_owned(),
        reason: reason.to_owned(),
    };
    let type_name = std::any::type_name::<T>();
    let RefOr::T(Schema::Object(object)) = T::schema() else {
        return Err(invalid(type_name, "its schema is not an inline object"));
    };
    let defaults = match serde_json::to_value(T::default()) {
        Ok(Value::Object(map)) => map,
        _ => {
            return Err(invalid(
                type_name,
                "its Default does not serialise to an object",
            ));
        }
    };
    let mut specs = Vec::new();
    for (name, property) in &object.properties {
        let RefOr::T(Schema::Object(property)) = property else {
            return Err(invalid(
                name,
                "unsupported type (expected a string, an integer or a bool, or an Option of one)",
            ));
        };
        let (ty, nullable) = match &property.schema_type {
            SchemaType::Type(t) => (t.clone(), false),
            SchemaType::Array(types) => {
                let nullable = types.contains(&Type::Null);
                match types.iter().find(|t| **t != Type::Null) {
                    Some(t) if types.len() <= 2 => (t.clone(), nullable),
                    _ => return Err(invalid(name, "unsupported type")),
                }
            }
            SchemaType::AnyValue => return Err(invalid(name, "unsupported type")),
        };
        // A constraint the fields cannot enforce would be promised by the
        // type and not kept: refuse it rather than store what breaks it.
        let unsupported = [
            ("minimum", property.minimum.is_some()),
            ("maximum", property.maximum.is_some()),
            ("exclusive_minimum", property.exclusive_minimum.is_some()),
            ("exclusive_maximum", property.exclusive_maximum.is_some()),
            ("min_length", property.min_length.is_some()),
            ("pattern", property.pattern.is_some()),
            ("multiple_of", property.multiple_of.is_some()),
        ];
        if let Some((constraint, _)) = unsupported.iter().find(|(_, set)| *set) {
            return Err(invalid(
                name,
                &format!(
                    "{constraint} is not supported on a user field (unsigned integers carry a \
                     minimum: use i32)"
                ),
            ));
        }
        let ty = match ty {
            Type::String => FieldType::String {
                max_length: property
                    .max_length
                    .map(|m| u32::try_from(m).unwrap_or(u32::MAX)),
            },
            Type::Integer => FieldType::Integer,
            Type::Boolean => FieldType::Boolean,
            _ => {
                return Err(invalid(
                    name,
                    "unsupported type (expected a string, an integer or a bool, or an Option of one)",
                ));
            }
        };
        let default = defaults
            .get(name)
            .and_then(json_value)
            .unwrap_or(FieldValue::Null);
        specs.push(FieldSpec {
            name: name.clone(),
            ty,
            nullable,
            default,
            writable_by: if property.read_only == Some(true) {
                FieldWriter::Admin
            } else {
                FieldWriter::User
            },
        });
    }
    UserFields::new(specs)
}

/// A user's extra fields as the host's type `T` (see [`user_fields_of`]).
///
/// ```
/// # use portcullis::{fields_of, domain::{EmailAddress, FieldValue, User}};
/// #[derive(serde::Deserialize)]
/// struct Profile { first_name: Option<String> }
///
/// let mut user = User::new(EmailAddress::parse("ann@example.com").unwrap(), "$hash".into());
/// user.fields.set("first_name", FieldValue::String("Ann".into()));
/// let profile: Profile = fields_of(&user).unwrap();
/// assert_eq!(profile.first_name.as_deref(), Some("Ann"));
/// ```
pub fn fields_of<T: DeserializeOwned>(user: &User) -> Result<T, serde_json::Error> {
    let object: Map<String, Value> = user
        .fields
        .iter()
        .map(|(name, value)| {
            let value = match value {
                FieldValue::Null => Value::Null,
                FieldValue::String(s) => Value::from(s.as_str()),
                FieldValue::Integer(i) => Value::from(*i),
                FieldValue::Boolean(b) => Value::from(*b),
            };
            (name.to_owned(), value)
        })
        .collect();
    serde_json::from_value(Value::Object(object))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_example_parses() {
        let fields = parse_user_fields(
            r#"{"first_name":{"type":"string","max_length":50,"nullable":true,"writable_by":"user"},
                "credits":{"type":"integer","default":10},
                "newsletter":{"type":"boolean","default":false,"writable_by":"user"}}"#,
        )
        .unwrap();
        let first = fields.get("first_name").unwrap();
        assert_eq!(
            (first.ty, first.nullable, &first.default, first.writable_by),
            (
                FieldType::String {
                    max_length: Some(50)
                },
                true,
                &FieldValue::Null,
                FieldWriter::User
            )
        );
        let credits = fields.get("credits").unwrap();
        assert_eq!(
            (credits.ty, &credits.default, credits.writable_by),
            (
                FieldType::Integer,
                &FieldValue::Integer(10),
                FieldWriter::Admin
            )
        );
    }

    #[test]
    fn bad_declarations_name_the_field() {
        for (json, field, words) in [
            ("nope", "USER_FIELDS", "not a JSON object"),
            ("[1]", "USER_FIELDS", "not a JSON object"),
            (r#"{"a": 1}"#, "a", "not a JSON object"),
            (
                r#"{"a": {"type": "float", "nullable": true}}"#,
                "a",
                "unsupported type",
            ),
            (r#"{"a": {"nullable": true}}"#, "a", "\"type\" is required"),
            (
                r#"{"role": {"type": "string", "nullable": true}}"#,
                "role",
                "built-in",
            ),
            (r#"{"a": {"type": "string"}}"#, "a", "needs a default"),
            (
                r#"{"a": {"type": "integer", "default": "x"}}"#,
                "a",
                "does not fit",
            ),
            (
                r#"{"a": {"type": "integer", "default": 1, "max_length": 3}}"#,
                "a",
                "string fields only",
            ),
            (
                r#"{"a": {"type": "string", "nullable": true, "maxlength": 3}}"#,
                "a",
                "unknown key",
            ),
            (
                r#"{"a": {"type": "boolean", "default": true, "writable_by": "me"}}"#,
                "a",
                "writable_by",
            ),
        ] {
            let e = parse_user_fields(json).unwrap_err();
            assert_eq!(e.field, field, "{json}");
            assert!(e.to_string().contains(words), "{json}: {e}");
        }
    }

    #[derive(Default, Serialize, serde::Deserialize, utoipa::ToSchema, Debug, PartialEq)]
    struct Profile {
        #[schema(max_length = 50)]
        first_name: Option<String>,
        #[schema(read_only)]
        credits: i32,
        newsletter: bool,
    }

    #[derive(Default, Serialize, utoipa::ToSchema)]
    struct Unsigned {
        level: u8,
    }

    #[derive(Default, Serialize, utoipa::ToSchema)]
    struct MinLength {
        #[schema(min_length = 2)]
        nick: String,
    }

    #[test]
    fn constraints_the_fields_cannot_keep_are_refused() {
        let e = user_fields_of::<Unsigned>().unwrap_err();
        assert!(e.field == "level" && e.reason.contains("minimum"), "{e}");
        let e = user_fields_of::<MinLength>().unwrap_err();
        assert!(e.field == "nick" && e.reason.contains("min_length"), "{e}");
    }

    #[test]
    fn a_host_type_declares_its_fields_and_reads_them_back() {
        let fields = user_fields_of::<Profile>().unwrap();
        let first = fields.get("first_name").unwrap();
        assert_eq!(
            first.ty,
            FieldType::String {
                max_length: Some(50)
            }
        );
        assert!(first.nullable && first.writable_by == FieldWriter::User);
        let credits = fields.get("credits").unwrap();
        assert_eq!(
            (
                credits.ty,
                credits.nullable,
                &credits.default,
                credits.writable_by
            ),
            (
                FieldType::Integer,
                false,
                &FieldValue::Integer(0),
                FieldWriter::Admin
            )
        );
        let newsletter = fields.get("newsletter").unwrap();
        assert_eq!(newsletter.default, FieldValue::Boolean(false));

        let mut user = User::new(
            portcullis_domain::EmailAddress::parse("ann@example.com").unwrap(),
            "$h".into(),
        );
        user.fields = fields.defaults();
        user.fields
            .set("first_name", FieldValue::String("Ann".into()));
        let profile: Profile = fields_of(&user).unwrap();
        assert_eq!(
            profile,
            Profile {
                first_name: Some("Ann".into()),
                credits: 0,
                newsletter: false
            }
        );
    }
}

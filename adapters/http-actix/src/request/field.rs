//! How one field of a JSON body is read, decided by its Rust type: the
//! pydantic check and error of each type the bodies use. A body type's
//! fields are read with these by [`json_body!`](crate::json_body), so the
//! type a field is declared with is both what it parses as and what the
//! OpenAPI document shows.

use portcullis_domain::{EmailAddress, Role};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::pydantic::ValidationError;

/// A value a JSON body field can hold.
pub trait FromJsonField: Sized {
    /// The field `name` holds `value` (present, possibly `null`).
    fn from_json(name: &str, value: &Value) -> Result<Self, ValidationError>;

    /// The field `name` is absent; `missing_input` is what pydantic shows
    /// as the input of a `missing` error. Required unless overridden.
    fn absent(name: &str, missing_input: Value) -> Result<Self, ValidationError> {
        Err(ValidationError::missing(name, missing_input))
    }
}

/// Absent or `null`: `None` ("leave it as it is" in a PATCH body).
impl<T: FromJsonField> FromJsonField for Option<T> {
    fn from_json(name: &str, value: &Value) -> Result<Self, ValidationError> {
        match value {
            Value::Null => Ok(None),
            value => T::from_json(name, value).map(Some),
        }
    }

    fn absent(_: &str, _: Value) -> Result<Self, ValidationError> {
        Ok(None)
    }
}

impl FromJsonField for String {
    fn from_json(name: &str, value: &Value) -> Result<Self, ValidationError> {
        match value {
            Value::String(s) => Ok(s.clone()),
            other => Err(ValidationError::string_type(name, other)),
        }
    }
}

/// A password: a string, held so that it never shows in a `Debug`.
impl FromJsonField for SecretString {
    fn from_json(name: &str, value: &Value) -> Result<Self, ValidationError> {
        String::from_json(name, value).map(SecretString::from)
    }
}

/// A deliverable address (email-validator's rules and messages).
impl FromJsonField for EmailAddress {
    fn from_json(name: &str, value: &Value) -> Result<Self, ValidationError> {
        let raw = String::from_json(name, value)?;
        EmailAddress::parse(&raw).map_err(|e| {
            ValidationError::at(
                name,
                "value_error",
                format!("value is not a valid email address: {}", e.0),
                json!(raw),
            )
            .with_ctx(json!({ "reason": e.0 }))
        })
    }
}

/// A flag, read as pydantic's lax mode reads one.
impl FromJsonField for bool {
    fn from_json(name: &str, value: &Value) -> Result<Self, ValidationError> {
        let parsed = match value {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => match n.as_f64() {
                Some(0.0) => Some(false),
                Some(1.0) => Some(true),
                _ => None,
            },
            Value::String(s) => match s.to_ascii_lowercase().as_str() {
                "0" | "off" | "f" | "false" | "n" | "no" => Some(false),
                "1" | "on" | "t" | "true" | "y" | "yes" => Some(true),
                _ => None,
            },
            other => {
                return Err(ValidationError::at(
                    name,
                    "bool_type",
                    "Input should be a valid boolean",
                    other.clone(),
                ));
            }
        };
        parsed.ok_or_else(|| {
            ValidationError::at(
                name,
                "bool_parsing",
                "Input should be a valid boolean, unable to interpret input",
                value.clone(),
            )
        })
    }
}

/// One of the three role names exactly (pydantic's `Literal`).
impl FromJsonField for Role {
    fn from_json(name: &str, value: &Value) -> Result<Self, ValidationError> {
        value.as_str().and_then(|s| s.parse().ok()).ok_or_else(|| {
            let expected = "'student', 'instructor' or 'admin'";
            ValidationError::at(
                name,
                "literal_error",
                format!("Input should be {expected}"),
                value.clone(),
            )
            .with_ctx(json!({ "expected": expected }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lax_booleans_read_as_pydantic_reads_them() {
        for (input, expected) in [
            (json!(true), Some(false == false)),
            (json!(0), Some(false)),
            (json!(1.0), Some(true)),
            (json!("YES"), Some(true)),
            (json!("off"), Some(false)),
            (json!(2), None),
            (json!("maybe"), None),
        ] {
            assert_eq!(bool::from_json("f", &input).ok(), expected, "{input}");
        }
        assert_eq!(
            bool::from_json("f", &json!([])).unwrap_err().kind,
            "bool_type"
        );
        assert_eq!(
            bool::from_json("f", &json!(2)).unwrap_err().kind,
            "bool_parsing"
        );
    }

    #[test]
    fn an_optional_field_takes_null_and_absence_as_none() {
        assert_eq!(
            Option::<bool>::from_json("f", &Value::Null).ok(),
            Some(None)
        );
        assert_eq!(Option::<bool>::absent("f", json!({})).ok(), Some(None));
        let missing = String::absent("token", Value::Null).unwrap_err();
        assert_eq!(
            (missing.kind, missing.loc),
            ("missing", vec![json!("body"), json!("token")])
        );
    }

    #[test]
    fn a_password_is_a_string_that_does_not_show() {
        let secret = SecretString::from_json("password", &json!("hunter22 hunter22")).unwrap();
        assert!(!format!("{secret:?}").contains("hunter22"));
        assert_eq!(
            SecretString::from_json("password", &json!(5))
                .unwrap_err()
                .kind,
            "string_type"
        );
    }
}

//! The deployment's extra user fields in a JSON body: read by their
//! [`FieldSpec`], with pydantic's checks and errors (`string_type`,
//! `string_too_long`, `int_type`, `int_parsing`, `int_from_float`,
//! `bool_type`, `bool_parsing`, …), `loc: ["body", "<field>"]`.

use portcullis_domain::{
    FieldSpec, FieldType, FieldValue, FieldValues, FieldWriter, INTEGER_RANGE, UserFields,
};
use serde_json::{Map, Value, json};

use super::field::FromJsonField;
use crate::pydantic::ValidationError;

/// The values of the fields of `fields` that `writer` may set, as given in
/// `object` (absent ones are left out; fields `writer` may not set are not
/// looked at, as `role` is not for a user), or one error per problem.
pub(crate) fn read_fields(
    object: &Map<String, Value>,
    fields: &UserFields,
    writer: FieldWriter,
) -> Result<FieldValues, Vec<ValidationError>> {
    let mut values = FieldValues::new();
    let mut problems = Vec::new();
    for spec in fields.iter() {
        if writer == FieldWriter::User && spec.writable_by == FieldWriter::Admin {
            continue;
        }
        if let Some(value) = object.get(&spec.name) {
            match read_value(spec, value) {
                Ok(v) => values.set(spec.name.clone(), v),
                Err(e) => problems.push(e),
            }
        }
    }
    if problems.is_empty() {
        Ok(values)
    } else {
        Err(problems)
    }
}

/// One field's value, as pydantic (lax mode, as FastAPI uses it) reads a
/// `str` / `int` / `bool` field, `Optional[...]` when nullable.
pub(crate) fn read_value(spec: &FieldSpec, value: &Value) -> Result<FieldValue, ValidationError> {
    let name = spec.name.as_str();
    if value.is_null() && spec.nullable {
        return Ok(FieldValue::Null);
    }
    match spec.ty {
        FieldType::String { max_length } => {
            let s = String::from_json(name, value)?;
            if s.contains('\0') {
                // pydantic takes it, and PostgreSQL then fails: a 422 here.
                return Err(ValidationError::at(
                    name,
                    "value_error",
                    "Value error, a string field cannot hold the NUL character",
                    value.clone(),
                )
                .with_ctx(json!({"error": "a string field cannot hold the NUL character"})));
            }
            if let Some(max) = max_length
                && s.chars().count() > max as usize
            {
                return Err(ValidationError::at(
                    name,
                    "string_too_long",
                    format!("String should have at most {max} characters"),
                    value.clone(),
                )
                .with_ctx(json!({ "max_length": max })));
            }
            Ok(FieldValue::String(s))
        }
        FieldType::Integer => read_integer(name, value).map(FieldValue::Integer),
        FieldType::Boolean => bool::from_json(name, value).map(FieldValue::Boolean),
    }
}

fn read_integer(name: &str, value: &Value) -> Result<i64, ValidationError> {
    let int_type = || {
        ValidationError::at(
            name,
            "int_type",
            "Input should be a valid integer",
            value.clone(),
        )
    };
    let from_float = |f: f64| {
        if f.fract() == 0.0 && f.is_finite() {
            Ok(f)
        } else {
            Err(ValidationError::at(
                name,
                "int_from_float",
                "Input should be a valid integer, got a number with a fractional part",
                value.clone(),
            ))
        }
    };
    let number: f64 = match value {
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => return in_range(name, value, i),
            None => from_float(n.as_f64().ok_or_else(int_type)?)?,
        },
        Value::String(s) => {
            let int_parsing = || {
                ValidationError::at(
                    name,
                    "int_parsing",
                    "Input should be a valid integer, unable to parse string as an integer",
                    value.clone(),
                )
            };
            // Digits, optionally `.0…`, in ASCII white space: what pydantic
            // reads (and exactly what the document's pattern allows).
            let t = s.trim_matches([' ', '\t', '\n', '\r']);
            let digits = match t.split_once('.') {
                Some((whole, fraction)) if fraction.chars().all(|c| c == '0') => whole,
                Some(_) => return Err(int_parsing()),
                None => t,
            };
            let unsigned = digits.strip_prefix(['+', '-']).unwrap_or(digits);
            if unsigned.is_empty() || !unsigned.chars().all(|c| c.is_ascii_digit()) {
                return Err(int_parsing());
            }
            match digits.parse::<i64>() {
                Ok(i) => return in_range(name, value, i),
                // More digits than an i64 holds: out of range either way.
                Err(_) if digits.starts_with('-') => i64::MIN as f64,
                Err(_) => i64::MAX as f64,
            }
        }
        _ => return Err(int_type()),
    };
    // Beyond i64 is beyond the range anyway; the cast saturates.
    in_range(name, value, number as i64)
}

/// A 32-bit column's range, said as pydantic says `Field(ge=…, le=…)`.
fn in_range(name: &str, value: &Value, i: i64) -> Result<i64, ValidationError> {
    let (min, max) = INTEGER_RANGE;
    if i > max {
        return Err(ValidationError::at(
            name,
            "less_than_equal",
            format!("Input should be less than or equal to {max}"),
            value.clone(),
        )
        .with_ctx(json!({ "le": max })));
    }
    if i < min {
        return Err(ValidationError::at(
            name,
            "greater_than_equal",
            format!("Input should be greater than or equal to {min}"),
            value.clone(),
        )
        .with_ctx(json!({ "ge": min })));
    }
    Ok(i)
}

/// A value as JSON, for rendering a user.
pub(crate) fn to_json(value: &FieldValue) -> Value {
    match value {
        FieldValue::Null => Value::Null,
        FieldValue::String(s) => json!(s),
        FieldValue::Integer(i) => json!(i),
        FieldValue::Boolean(b) => json!(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ty: FieldType, nullable: bool) -> FieldSpec {
        FieldSpec {
            name: "f".into(),
            ty,
            nullable,
            default: if nullable {
                FieldValue::Null
            } else {
                FieldValue::Boolean(false)
            },
            writable_by: FieldWriter::User,
        }
    }

    /// (input, Ok value or Err pydantic type), as pydantic 2 answers for
    /// `f: int` / `f: str = Field(max_length=3)` / `f: bool` (recorded
    /// with FastAPI Users' pydantic).
    #[test]
    fn values_are_read_as_pydantic_reads_them() {
        let int = spec(FieldType::Integer, false);
        for (input, expected) in [
            (json!(7), Ok(FieldValue::Integer(7))),
            (json!(true), Ok(FieldValue::Integer(1))),
            (json!(5.0), Ok(FieldValue::Integer(5))),
            (json!("7"), Ok(FieldValue::Integer(7))),
            (json!("5.0"), Ok(FieldValue::Integer(5))),
            (json!(5.5), Err("int_from_float")),
            (json!("x"), Err("int_parsing")),
            (json!(null), Err("int_type")),
            (json!([1]), Err("int_type")),
            (json!(2_147_483_648_i64), Err("less_than_equal")),
            (json!(-2_147_483_649_i64), Err("greater_than_equal")),
            (json!(1e300), Err("less_than_equal")),
        ] {
            assert_eq!(
                read_value(&int, &input).map_err(|e| e.kind),
                expected,
                "{input}"
            );
        }
        let text = spec(
            FieldType::String {
                max_length: Some(3),
            },
            true,
        );
        for (input, expected) in [
            (json!("éèà"), Ok(FieldValue::String("éèà".into()))),
            (json!(null), Ok(FieldValue::Null)),
            (json!("abcd"), Err("string_too_long")),
            (json!(5), Err("string_type")),
            (json!(true), Err("string_type")),
            (json!("a\u{0}b"), Err("value_error")),
        ] {
            assert_eq!(
                read_value(&text, &input).map_err(|e| e.kind),
                expected,
                "{input}"
            );
        }
        let too_long = read_value(&text, &json!("abcd")).unwrap_err();
        assert_eq!(too_long.msg, "String should have at most 3 characters");
        assert_eq!(too_long.ctx, Some(json!({"max_length": 3})));
        assert_eq!(too_long.loc, vec![json!("body"), json!("f")]);
        let flag = spec(FieldType::Boolean, false);
        assert_eq!(
            read_value(&flag, &json!("yes")),
            Ok(FieldValue::Boolean(true))
        );
        assert_eq!(
            read_value(&flag, &json!(null)).unwrap_err().kind,
            "bool_type"
        );
        assert_eq!(
            read_value(&flag, &json!(2)).unwrap_err().kind,
            "bool_parsing"
        );
    }

    #[test]
    fn a_user_cannot_set_admin_fields_and_their_bad_values_are_not_judged() {
        let fields = UserFields::new(vec![
            FieldSpec {
                name: "credits".into(),
                writable_by: FieldWriter::Admin,
                ..spec(FieldType::Integer, true)
            },
            FieldSpec {
                name: "nick".into(),
                ..spec(FieldType::String { max_length: None }, true)
            },
        ])
        .unwrap();
        let body = json!({"credits": "lots", "nick": "ann", "other": 1});
        let object = body.as_object().unwrap();
        let values = read_fields(object, &fields, FieldWriter::User).unwrap();
        assert_eq!(values.iter().count(), 1);
        assert_eq!(values.get("nick"), Some(&FieldValue::String("ann".into())));
        let problems = read_fields(object, &fields, FieldWriter::Admin).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].loc, vec![json!("body"), json!("credits")]);
    }
}

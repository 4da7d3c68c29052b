//! The deployment's extra user fields in the document: added to the
//! `UserRead`, `UserCreate`, `UserMeUpdate` and `UserUpdate` schemas at run
//! time, from the same [`UserFields`] the handlers read them by.

use portcullis_domain::{FieldSpec, FieldType, FieldWriter, INTEGER_RANGE, UserFields};
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{OpenApi as Document, RefOr};

use super::schemas::lax_bool_words;
use crate::request::field_to_json;

/// Adds each field of `fields` to the user schemas of `doc`: every field to
/// `UserRead` and `UserUpdate`, the user-writable ones to `UserCreate` and
/// `UserMeUpdate`.
pub(crate) fn add_user_fields(doc: &mut Document, fields: &UserFields) {
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    for spec in fields.iter() {
        let user_writable = spec.writable_by == FieldWriter::User;
        for (component, wanted, read) in [
            ("UserRead", true, true),
            ("UserUpdate", true, false),
            ("UserCreate", user_writable, false),
            ("UserMeUpdate", user_writable, false),
        ] {
            if !wanted {
                continue;
            }
            if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(component) {
                let schema = if read {
                    read_schema(spec)
                } else {
                    write_schema(spec)
                };
                object.properties.insert(spec.name.clone(), schema.into());
                if read {
                    // Every user has every field.
                    object.required.push(spec.name.clone());
                }
            }
        }
    }
}

fn types(ty: Type, nullable: bool) -> SchemaType {
    if nullable {
        SchemaType::from_iter([ty, Type::Null])
    } else {
        SchemaType::from(ty)
    }
}

fn description(spec: &FieldSpec) -> String {
    let who = match spec.writable_by {
        FieldWriter::User => "the user and superusers",
        FieldWriter::Admin => "superusers only",
    };
    format!(
        "A field of this deployment; set by {who}; default {}.",
        field_to_json(&spec.default)
    )
}

/// As rendered: the exact type.
fn read_schema(spec: &FieldSpec) -> Schema {
    let object = ObjectBuilder::new().description(Some(description(spec)));
    match spec.ty {
        FieldType::String { max_length } => object
            .schema_type(types(Type::String, spec.nullable))
            .max_length(max_length.map(|m| m as usize)),
        FieldType::Integer => object
            .schema_type(types(Type::Integer, spec.nullable))
            .minimum(Some(INTEGER_RANGE.0 as f64))
            .maximum(Some(INTEGER_RANGE.1 as f64)),
        FieldType::Boolean => object.schema_type(types(Type::Boolean, spec.nullable)),
    }
    .into()
}

/// As accepted: pydantic's lax forms too (an integer as a whole float, a
/// boolean or a numeric string; a boolean as 0/1 or a word).
fn write_schema(spec: &FieldSpec) -> Schema {
    let mut any = AnyOfBuilder::new().description(Some(description(spec)));
    if spec.nullable {
        any = any.item(ObjectBuilder::new().schema_type(Type::Null));
    }
    match spec.ty {
        FieldType::String { max_length } => {
            any = any.item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .max_length(max_length.map(|m| m as usize))
                    // No NUL: PostgreSQL cannot store it (a 422 here).
                    .pattern(Some(r"^[^\x00]*$")),
            );
        }
        FieldType::Integer => {
            let (min, max) = (INTEGER_RANGE.0 as f64, INTEGER_RANGE.1 as f64);
            any = any
                .item(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(min))
                        .maximum(Some(max)),
                )
                .item(ObjectBuilder::new().schema_type(Type::Boolean))
                .item(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        // Any leading zeros, then at most 9 digits: always in
                        // range (a 10-digit string may be accepted too).
                        .pattern(Some(r"^[ \t\n\r]*[+-]?0*[0-9]{1,9}(\.0*)?[ \t\n\r]*$")),
                );
        }
        FieldType::Boolean => {
            any = any
                .item(ObjectBuilder::new().schema_type(Type::Boolean))
                .item(
                    ObjectBuilder::new()
                        .schema_type(SchemaType::AnyValue)
                        .enum_values(Some([0, 1])),
                )
                .item(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some(lax_bool_words())),
                );
        }
    }
    Schema::AnyOf(any.build())
}

//! The 422 body FastAPI answers malformed input with, as pydantic words it:
//! one [`ValidationError`] per problem, `loc` naming where it is.

use serde::Serialize;
use serde_json::{Value, json};

/// One problem with the input, rendered as pydantic renders it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ValidationError {
    /// What is wrong, as pydantic names it (`missing`, `string_type`, …).
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: &'static str,
    /// Where: `"body"`, then a field name or a character offset.
    #[schema(schema_with = crate::openapi::schemas::validation_loc)]
    pub loc: Vec<Value>,
    /// What is wrong, in pydantic's words (`Field required`, …).
    pub msg: String,
    /// The offending input.
    #[schema(schema_with = crate::openapi::schemas::any_json)]
    pub input: Value,
    /// Details, e.g. the expected pattern.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub ctx: Option<Value>,
}

impl ValidationError {
    pub(crate) fn new(
        kind: &'static str,
        loc: Vec<Value>,
        msg: impl Into<String>,
        input: Value,
    ) -> Self {
        Self {
            kind,
            loc,
            msg: msg.into(),
            input,
            ctx: None,
        }
    }

    /// A problem with the body field `field`.
    pub(crate) fn at(
        field: &str,
        kind: &'static str,
        msg: impl Into<String>,
        input: Value,
    ) -> Self {
        Self::new(kind, vec![json!("body"), json!(field)], msg, input)
    }

    pub(crate) fn with_ctx(mut self, ctx: Value) -> Self {
        self.ctx = Some(ctx);
        self
    }

    /// `missing`: a required field is absent. `input` is what pydantic
    /// shows: the whole object for a model's field, `null` for an embedded
    /// one (and for a form's).
    pub(crate) fn missing(field: &str, input: Value) -> Self {
        Self::at(field, "missing", "Field required", input)
    }

    /// `missing` at `["body"]`: a model body with no body at all.
    pub(crate) fn missing_body() -> Self {
        Self::new(
            "missing",
            vec![json!("body")],
            "Field required",
            Value::Null,
        )
    }

    /// `model_attributes_type` at `["body"]`: a model body that is not an
    /// object (or not JSON at all).
    pub(crate) fn not_an_object(input: Value) -> Self {
        Self::new(
            "model_attributes_type",
            vec![json!("body")],
            "Input should be a valid dictionary or object to extract fields from",
            input,
        )
    }

    /// `string_type`.
    pub(crate) fn string_type(field: &str, input: &Value) -> Self {
        Self::at(
            field,
            "string_type",
            "Input should be a valid string",
            input.clone(),
        )
    }
}

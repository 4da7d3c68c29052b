//! Reading and judging request bodies, with the 422 answers FastAPI (through
//! pydantic) gives: one entry per problem, `loc` naming where it is.

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web::{Bytes, BytesMut, Payload};
use futures_util::StreamExt;
use portcullis_domain::{EmailAddress, Role};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// No request of the contract needs more than this.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// One problem with the input, rendered as pydantic renders it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidationError {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub loc: Vec<Value>,
    pub msg: String,
    pub input: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ctx: Option<Value>,
}

impl ValidationError {
    fn new(kind: &'static str, loc: Vec<Value>, msg: impl Into<String>, input: Value) -> Self {
        Self {
            kind,
            loc,
            msg: msg.into(),
            input,
            ctx: None,
        }
    }

    fn with_ctx(mut self, ctx: Value) -> Self {
        self.ctx = Some(ctx);
        self
    }
}

fn missing_body() -> ApiError {
    ApiError::Validation(vec![ValidationError::new(
        "missing",
        vec![json!("body")],
        "Field required",
        Value::Null,
    )])
}

/// Reads the whole body, refusing more than [`MAX_BODY_BYTES`].
pub async fn read_body(mut payload: Payload) -> Result<Bytes, ApiError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        // A broken upload is the client's problem: answer as to an empty body.
        let Ok(chunk) = chunk else {
            return Err(missing_body());
        };
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn media_type(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

fn is_json_media_type(media: &str) -> bool {
    media
        .split_once('/')
        .is_some_and(|(top, sub)| top == "application" && (sub == "json" || sub.ends_with("+json")))
}

/// The body as a JSON object, or the 422 FastAPI gives: missing body, not
/// JSON, JSON that is not an object, or a body of another content type.
pub fn json_object(req: &HttpRequest, body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    if body.is_empty() {
        return Err(missing_body());
    }
    let not_an_object = |input: Value| {
        ApiError::Validation(vec![ValidationError::new(
            "model_attributes_type",
            vec![json!("body")],
            "Input should be a valid dictionary or object to extract fields from",
            input,
        )])
    };
    match media_type(req) {
        Some(media) if !is_json_media_type(&media) => {
            return Err(not_an_object(Value::String(
                String::from_utf8_lossy(body).into_owned(),
            )));
        }
        _ => {}
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(not_an_object(other)),
        Err(e) => Err(ApiError::Validation(vec![
            ValidationError::new(
                "json_invalid",
                vec![json!("body"), json!(error_offset(body, &e))],
                "JSON decode error",
                json!({}),
            )
            .with_ctx(json!({ "error": json_error_text(&e) })),
        ])),
    }
}

/// Character offset of a serde_json error, as Python's decoder reports it.
fn error_offset(body: &[u8], e: &serde_json::Error) -> usize {
    let text = String::from_utf8_lossy(body);
    let (line, column) = (e.line().max(1), e.column());
    let before: usize = text
        .split('\n')
        .take(line - 1)
        .map(|l| l.chars().count() + 1)
        .sum();
    before + column.saturating_sub(1)
}

fn json_error_text(e: &serde_json::Error) -> String {
    // serde_json appends " at line L column C"; the position is in `loc`.
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// Judges the fields of a JSON object, collecting every problem.
pub struct Fields<'a> {
    object: &'a Map<String, Value>,
    errors: Vec<ValidationError>,
}

impl<'a> Fields<'a> {
    pub fn new(object: &'a Map<String, Value>) -> Self {
        Self {
            object,
            errors: Vec::new(),
        }
    }

    fn loc(name: &str) -> Vec<Value> {
        vec![json!("body"), json!(name)]
    }

    fn string_type(&mut self, name: &str, input: &Value) {
        self.errors.push(ValidationError::new(
            "string_type",
            Self::loc(name),
            "Input should be a valid string",
            input.clone(),
        ));
    }

    /// A field that must be present and a string.
    pub fn required_str(&mut self, name: &str) -> Option<&'a str> {
        match self.object.get(name) {
            None => {
                self.errors.push(ValidationError::new(
                    "missing",
                    Self::loc(name),
                    "Field required",
                    Value::Object(self.object.clone()),
                ));
                None
            }
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                self.string_type(name, other);
                None
            }
        }
    }

    /// A field that may be absent or `null` (both: `None`), else a string.
    pub fn optional_str(&mut self, name: &str) -> Option<&'a str> {
        match self.object.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                self.string_type(name, other);
                None
            }
        }
    }

    fn email_from(&mut self, name: &str, raw: &str) -> Option<EmailAddress> {
        match EmailAddress::parse(raw) {
            Ok(email) => Some(email),
            Err(e) => {
                self.errors.push(
                    ValidationError::new(
                        "value_error",
                        Self::loc(name),
                        format!("value is not a valid email address: {}", e.0),
                        json!(raw),
                    )
                    .with_ctx(json!({ "reason": e.0 })),
                );
                None
            }
        }
    }

    /// A required, deliverable e-mail address.
    pub fn required_email(&mut self, name: &str) -> Option<EmailAddress> {
        let raw = self.required_str(name)?;
        self.email_from(name, raw)
    }

    /// An optional e-mail address (`null` or absent: `None`).
    pub fn optional_email(&mut self, name: &str) -> Option<EmailAddress> {
        let raw = self.optional_str(name)?;
        self.email_from(name, raw)
    }

    /// An optional boolean, read as pydantic's lax mode reads one.
    pub fn optional_bool(&mut self, name: &str) -> Option<bool> {
        let value = self.object.get(name)?;
        let parsed = match value {
            Value::Null => return None,
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
            _ => {
                self.errors.push(ValidationError::new(
                    "bool_type",
                    Self::loc(name),
                    "Input should be a valid boolean",
                    value.clone(),
                ));
                return None;
            }
        };
        if parsed.is_none() {
            self.errors.push(ValidationError::new(
                "bool_parsing",
                Self::loc(name),
                "Input should be a valid boolean, unable to interpret input",
                value.clone(),
            ));
        }
        parsed
    }

    /// An optional role: one of the three names exactly.
    pub fn optional_role(&mut self, name: &str) -> Option<Role> {
        let value = self.object.get(name)?;
        if value.is_null() {
            return None;
        }
        let role = value.as_str().and_then(|s| s.parse::<Role>().ok());
        if role.is_none() {
            let expected = "'student', 'instructor' or 'admin'";
            self.errors.push(
                ValidationError::new(
                    "literal_error",
                    Self::loc(name),
                    format!("Input should be {expected}"),
                    value.clone(),
                )
                .with_ctx(json!({ "expected": expected })),
            );
        }
        role
    }

    /// `Ok` when every field was fine, else the 422 listing each problem.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }
}

/// The fields of an `application/x-www-form-urlencoded` body; anything else
/// (JSON included) reads as a form with no fields, as FastAPI reads it.
/// An empty value counts as absent. A repeated key keeps its last value.
pub struct Form {
    pairs: Vec<(String, String)>,
    errors: Vec<ValidationError>,
}

impl Form {
    pub fn parse(req: &HttpRequest, body: &Bytes) -> Self {
        let pairs = match media_type(req).as_deref() {
            Some("application/x-www-form-urlencoded") => {
                serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).unwrap_or_default()
            }
            _ => Vec::new(),
        };
        Self {
            pairs,
            errors: Vec::new(),
        }
    }

    /// The last non-empty value of `name`.
    pub fn optional(&self, name: &str) -> Option<String> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.clone())
    }

    /// A field that must be present and non-empty.
    pub fn required(&mut self, name: &str) -> Option<String> {
        let value = self.optional(name);
        if value.is_none() {
            self.errors.push(ValidationError::new(
                "missing",
                vec![json!("body"), json!(name)],
                "Field required",
                Value::Null,
            ));
        }
        value
    }

    /// An optional field that, when given, must match `^expected$`.
    pub fn optional_exactly(&mut self, name: &str, expected: &str) {
        if let Some(value) = self.optional(name)
            && value != expected
        {
            let pattern = format!("^{expected}$");
            self.errors.push(
                ValidationError::new(
                    "string_pattern_mismatch",
                    vec![json!("body"), json!(name)],
                    format!("String should match pattern '{pattern}'"),
                    json!(value),
                )
                .with_ctx(json!({ "pattern": pattern })),
            );
        }
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }
}

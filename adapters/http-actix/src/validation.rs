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
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ValidationError {
    /// What is wrong, as pydantic names it (`missing`, `string_type`, …).
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: &'static str,
    /// Where: `"body"`, then a field name or a character offset.
    #[schema(schema_with = crate::openapi::validation_loc)]
    pub loc: Vec<Value>,
    /// What is wrong, in pydantic's words (`Field required`, …).
    pub msg: String,
    /// The offending input.
    #[schema(schema_with = crate::openapi::any_json)]
    pub input: Value,
    /// Details, e.g. the expected pattern.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
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
/// JSON, JSON that is not an object, or a body without a JSON content type.
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
    // Without a JSON content type (none at all included: the reference's
    // FastAPI answers so too) the body is only text, never parsed.
    if !media_type(req).is_some_and(|media| is_json_media_type(&media)) {
        return Err(not_an_object(Value::String(
            String::from_utf8_lossy(body).into_owned(),
        )));
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
///
/// serde_json gives a 1-based line and a byte column: the column of the
/// offending byte, or, at the end of the input, the length of the last line.
/// Python's `json` names the character where the bad token starts: the end
/// of the input when something is missing there, the start of a literal it
/// cannot read (`tru`, `nope`), the opening quote of an unterminated string.
fn error_offset(body: &[u8], e: &serde_json::Error) -> usize {
    let line_start: usize = body
        .split(|&b| b == b'\n')
        .take(e.line().max(1) - 1)
        .map(|l| l.len() + 1)
        .sum();
    let mut at = if e.is_eof() {
        line_start + e.column()
    } else {
        line_start + e.column().saturating_sub(1)
    }
    .min(body.len());
    let message = e.to_string();
    if message.starts_with("EOF while parsing a string") {
        // Back to the opening quote (one not escaped by a backslash).
        while let Some(i) = body[..at].iter().rposition(|&b| b == b'"') {
            at = i;
            let backslashes = body[..i].iter().rev().take_while(|&&b| b == b'\\').count();
            if backslashes % 2 == 0 {
                break;
            }
        }
    } else if message.starts_with("EOF while parsing a value")
        || message.starts_with("expected ident")
    {
        while at > 0 && body[at - 1].is_ascii_alphabetic() {
            at -= 1;
        }
    }
    String::from_utf8_lossy(&body[..at]).chars().count()
}

fn json_error_text(e: &serde_json::Error) -> String {
    // serde_json appends " at line L column C"; the position is in `loc`.
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// `values` when no problem was found, else the 422 listing each problem.
fn verdict<T>(errors: Vec<ValidationError>, values: Option<T>) -> Result<T, ApiError> {
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    // Every required reader records a problem when it yields `None`.
    values.ok_or_else(|| {
        ApiError::Internal("a required field was read as absent without a 422".into())
    })
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
        verdict(self.errors, Some(()))
    }

    /// [`finish`](Self::finish), then the required values read: they are all
    /// present exactly when nothing was wrong (`a.zip(b)` for two).
    pub fn finish_with<T>(self, values: Option<T>) -> Result<T, ApiError> {
        verdict(self.errors, values)
    }
}

/// The `boundary` parameter of a `multipart/form-data` content type
/// (quoted or not; case kept).
fn multipart_boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.trim().eq_ignore_ascii_case("boundary").then(|| {
            let value = value.trim();
            value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value)
                .to_owned()
        })
    })
}

/// The text fields of a `multipart/form-data` body (RFC 7578), in order.
/// File parts (with a `filename`) and malformed parts are left out; a
/// malformed body reads as no fields at all.
fn multipart_fields(boundary: &str, body: &[u8]) -> Vec<(String, String)> {
    if boundary.is_empty() {
        return Vec::new();
    }
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut fields = Vec::new();
    let mut rest = match find(body, delimiter) {
        Some(i) => &body[i + delimiter.len()..],
        None => return fields,
    };
    loop {
        if rest.starts_with(b"--") {
            // The closing delimiter.
            return fields;
        }
        let Some(next) = find(rest, delimiter) else {
            return Vec::new();
        };
        let part = &rest[..next];
        rest = &rest[next + delimiter.len()..];
        // Each part: CRLF, headers, CRLF CRLF, content, CRLF.
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        let Some(split) = find(part, b"\r\n\r\n") else {
            continue;
        };
        let (head, content) = (&part[..split], &part[split + 4..]);
        let head = String::from_utf8_lossy(head);
        let disposition = head.split("\r\n").find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-disposition")
                .then_some(value)
        });
        let Some(disposition) = disposition else {
            continue;
        };
        let mut name = None;
        let mut is_file = false;
        for param in disposition.split(';').skip(1) {
            let Some((key, value)) = param.split_once('=') else {
                continue;
            };
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            match key.trim().to_ascii_lowercase().as_str() {
                "name" => name = Some(value.to_owned()),
                "filename" | "filename*" => is_file = true,
                _ => {}
            }
        }
        if let (Some(name), false) = (name, is_file) {
            fields.push((name, String::from_utf8_lossy(content).into_owned()));
        }
    }
}

/// The first position of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The fields of an `application/x-www-form-urlencoded` or
/// `multipart/form-data` body; anything else (JSON included) reads as a form
/// with no fields, as FastAPI reads it.
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
            // What a browser's `FormData` sends; FastAPI reads it too.
            Some("multipart/form-data") => req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .and_then(multipart_boundary)
                .map(|boundary| multipart_fields(&boundary, body))
                .unwrap_or_default(),
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

    /// The required values read, or the 422 listing each problem: they are
    /// all present exactly when nothing was wrong (`a.zip(b)` for two).
    pub fn finish_with<T>(self, values: Option<T>) -> Result<T, ApiError> {
        verdict(self.errors, values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_error_offsets_are_the_characters_python_names() {
        // (input, offset Python's json.loads reports)
        for (text, python) in [
            ("{", 1),
            (r#"{"email":"x""#, 12),
            ("{bad", 1),
            ("nope", 0),
            (r#"{"a": tru"#, 6),
            (r#"{"a": "abc"#, 6),
            (r#"{"a": "a\"bc"#, 6),
            ("{ ", 2),
            ("[1,]", 3),
            (r#"{"a":1,}"#, 7),
            (r#"{"é": x}"#, 6),
            (r#"{"a":1}x"#, 7),
            ("{\n\"a\": x}", 7),
            ("tru", 0),
            (r#"{"a":"#, 5),
            (r#"{"a" 1}"#, 5),
        ] {
            let e = serde_json::from_str::<Value>(text).unwrap_err();
            assert_eq!(error_offset(text.as_bytes(), &e), python, "{text:?}: {e}");
        }
    }

    #[test]
    fn multipart_text_fields_are_read_and_files_left_out() {
        let body = "preamble\r\n--XyZ\r\n\
            Content-Disposition: form-data; name=\"username\"\r\n\r\n\
            ann@example.com\r\n--XyZ\r\n\
            content-disposition: form-data; name=password\r\n\
            Content-Type: text/plain; charset=utf-8\r\n\r\n\
            p\u{e4}ss\r\nw\u{f6}rd--\r\n--XyZ\r\n\
            Content-Disposition: form-data; name=\"scope\"; filename=\"a.txt\"\r\n\r\n\
            file\r\n--XyZ--\r\nepilogue";
        assert_eq!(
            multipart_fields("XyZ", body.as_bytes()),
            [
                ("username".to_owned(), "ann@example.com".to_owned()),
                ("password".to_owned(), "p\u{e4}ss\r\nw\u{f6}rd--".to_owned()),
            ]
        );
        assert_eq!(
            multipart_boundary("multipart/form-data; charset=x; Boundary=\"a b\""),
            Some("a b".to_owned())
        );
        assert!(multipart_fields("XyZ", b"--XyZ\r\nno end").is_empty());
        assert!(multipart_fields("", body.as_bytes()).is_empty());
    }
}

//! Parsing a JSON body as FastAPI does: what it is (an object, something
//! else, nothing), and `json_invalid` with Python's character offsets.

use actix_web::HttpRequest;
use actix_web::web::Bytes;
use serde_json::{Map, Value, json};

use super::payload::{is_json, media_type};
use crate::pydantic::ValidationError;

/// What a body turned out to be.
pub(crate) enum JsonInput {
    /// No body at all.
    Empty,
    /// A JSON object.
    Object(Map<String, Value>),
    /// JSON that is no object, or a body without a JSON content type (as
    /// text: FastAPI does not parse it).
    NotAnObject(Value),
}

/// Reads `body` as FastAPI would; invalid JSON is the 422 `json_invalid`.
pub(crate) fn parse(req: &HttpRequest, body: &Bytes) -> Result<JsonInput, ValidationError> {
    if body.is_empty() {
        return Ok(JsonInput::Empty);
    }
    // Without a JSON content type (none at all included: FastAPI Users
    // answers so too) the body is only text, never parsed.
    if !media_type(req).is_some_and(|media| is_json(&media)) {
        let text = String::from_utf8_lossy(body).into_owned();
        return Ok(JsonInput::NotAnObject(Value::String(text)));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(JsonInput::Object(map)),
        Ok(other) => Ok(JsonInput::NotAnObject(other)),
        Err(e) => Err(ValidationError::new(
            "json_invalid",
            vec![json!("body"), json!(error_offset(body, &e))],
            "JSON decode error",
            json!({}),
        )
        .with_ctx(json!({ "error": error_text(&e) }))),
    }
}

/// Character offset of a serde_json error, as Python's decoder reports it.
///
/// serde_json gives a 1-based line and a byte column: the column of the
/// offending byte, or, at the end of the input, the length of the last line.
/// Python's `json` names the character where the bad token starts: the end
/// of the input when something is missing there, the start of a literal it
/// cannot read (`tru`, `nope`), the opening quote of an unterminated string.
/// No crate reports Python's offsets, hence this.
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

/// serde_json's message without its " at line L column C": the position is
/// in `loc`.
fn error_text(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
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
}

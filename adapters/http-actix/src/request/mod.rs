//! Reading request bodies into the request types of the routes, with the
//! 422 answers FastAPI (through pydantic) gives.
//!
//! A route's body is one Rust type, declared with [`json_body!`] (JSON) or
//! [`form_body!`] (the login form): the same type derives the OpenAPI
//! schema (`utoipa::ToSchema`) and parses the body, field by field, with
//! the check its Rust type calls for ([`FromJsonField`],
//! [`FromFormField`]). There is nothing else to keep in sync.
//!
//! - [`payload`]: the bytes (actix's `PayloadConfig` limit) and media type;
//! - [`json`]: what a JSON body is, and `json_invalid`;
//! - [`field`] / [`form`]: one field's check per type;
//! - this module: [`JsonBody`], the [`Body`] extractor, and the macros.

// A `ValidationError` is large, and returned only on the 422 path, once per
// problem: boxing it would buy nothing.
#![allow(clippy::result_large_err)]

mod field;
mod fields;
mod form;
mod json;
mod payload;

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev};
use portcullis_domain::{FieldValues, FieldWriter, UserFields};
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::pydantic::ValidationError;
pub use field::FromJsonField;
pub(crate) use fields::to_json as field_to_json;
pub(crate) use form::form_body;
pub use form::{Form, FormBody, GrantType, read_form_field};
use json::JsonInput;
pub(crate) use payload::payload_config;
pub use payload::{BODY_STALL_TIMEOUT, BODY_TOTAL_TIMEOUT, MAX_BODY_BYTES};

/// How FastAPI judges a JSON body that is not an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A pydantic model (`register`, the PATCH routes): no body is
    /// `missing` at `["body"]`, a non-object is `model_attributes_type`, and
    /// a missing field's `input` is the object.
    Model,
    /// Fields embedded in the body (`Body(..., embed=True)`: forgot/reset
    /// password, request-verify, verify): no body or a non-object reads as
    /// an empty object, so each required field is `missing`, `input: null`.
    Embedded,
}

/// A JSON request body: a type declared with [`json_body!`].
pub trait JsonBody: Sized {
    /// How a body that is not an object is judged.
    const SHAPE: Shape;

    /// The body from its fields, or one error per problem.
    /// `missing_input` is the `input` of a `missing` error.
    fn from_object(
        object: &Map<String, Value>,
        missing_input: &Value,
    ) -> Result<Self, Vec<ValidationError>>;
}

/// Judges what a body turned out to be as a `T`.
fn judge<T: JsonBody>(input: JsonInput) -> Result<T, Vec<ValidationError>> {
    match (input, T::SHAPE) {
        (JsonInput::Object(object), Shape::Model) => {
            let missing_input = Value::Object(object.clone());
            T::from_object(&object, &missing_input)
        }
        (JsonInput::Object(object), Shape::Embedded) => T::from_object(&object, &Value::Null),
        (JsonInput::Empty, Shape::Model) => Err(vec![ValidationError::missing_body()]),
        (JsonInput::NotAnObject(input), Shape::Model) => {
            Err(vec![ValidationError::not_an_object(input)])
        }
        (JsonInput::Empty | JsonInput::NotAnObject(_), Shape::Embedded) => {
            T::from_object(&Map::new(), &Value::Null)
        }
    }
}

/// A request body of type `T`, parsed and judged: as an extractor, or with
/// [`Body::read`] where a handler must judge something else first (401
/// before 422 on the PATCH routes).
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<T: JsonBody> Body<T> {
    /// Reads and judges the body: 413 over [`MAX_BODY_BYTES`], else 422
    /// listing every problem, else the body.
    pub async fn read(req: &HttpRequest, payload: &mut dev::Payload) -> Result<T, ApiError> {
        let bytes = payload::read_bytes(req, payload).await?;
        let input = json::parse(req, &bytes).map_err(|e| ApiError::Validation(vec![e]))?;
        judge(input).map_err(ApiError::Validation)
    }
}

impl<T: JsonBody> Body<T> {
    /// [`read`](Self::read), with the deployment's extra user fields that
    /// `writer` may set read from the same object (a model body's only);
    /// their problems follow the body's, as pydantic lists a subclass's
    /// fields after its base's.
    pub async fn read_with_fields(
        req: &HttpRequest,
        payload: &mut dev::Payload,
        fields: &UserFields,
        writer: FieldWriter,
    ) -> Result<(T, FieldValues), ApiError> {
        let bytes = payload::read_bytes(req, payload).await?;
        let input = json::parse(req, &bytes).map_err(|e| ApiError::Validation(vec![e]))?;
        match input {
            JsonInput::Object(object) if T::SHAPE == Shape::Model => {
                let missing_input = Value::Object(object.clone());
                let body = T::from_object(&object, &missing_input);
                let values = fields::read_fields(&object, fields, writer);
                match (body, values) {
                    (Ok(body), Ok(values)) => Ok((body, values)),
                    (body, values) => {
                        let mut problems = body.err().unwrap_or_default();
                        problems.extend(values.err().unwrap_or_default());
                        Err(ApiError::Validation(problems))
                    }
                }
            }
            other => judge(other)
                .map(|body| (body, FieldValues::new()))
                .map_err(ApiError::Validation),
        }
    }
}

impl<T: JsonBody + 'static> FromRequest for Body<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut dev::Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move { Self::read(&req, &mut payload).await.map(Body) })
    }
}

/// Reads each field of a body with its type's check, collecting every
/// problem; used by [`json_body!`].
#[doc(hidden)]
pub fn read_field<T: FromJsonField>(
    object: &Map<String, Value>,
    name: &str,
    missing_input: &Value,
    problems: &mut Vec<ValidationError>,
) -> Option<T> {
    let read = match object.get(name) {
        Some(value) => T::from_json(name, value),
        None => T::absent(name, missing_input.clone()),
    };
    read.map_err(|e| problems.push(e)).ok()
}

/// Declares a JSON request body: the struct (derive `utoipa::ToSchema` on
/// it, with the field attributes the document needs) and its
/// [`JsonBody`] parser, reading each field, named as in the struct, with
/// its type's [`FromJsonField`] check. Unknown fields are ignored, as
/// pydantic does.
macro_rules! json_body {
    (
        $shape:ident;
        $(#[$attr:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$fattr:meta])* $fvis:vis $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$attr])*
        $vis struct $name {
            $( $(#[$fattr])* $fvis $field : $ty ),*
        }

        impl $crate::request::JsonBody for $name {
            const SHAPE: $crate::request::Shape = $crate::request::Shape::$shape;

            fn from_object(
                object: &::serde_json::Map<::std::string::String, ::serde_json::Value>,
                missing_input: &::serde_json::Value,
            ) -> ::std::result::Result<Self, ::std::vec::Vec<$crate::pydantic::ValidationError>> {
                let mut problems = ::std::vec::Vec::new();
                $(
                    let $field = $crate::request::read_field::<$ty>(
                        object, stringify!($field), missing_input, &mut problems,
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
pub(crate) use json_body;

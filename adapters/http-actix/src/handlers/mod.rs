//! One file per route (or pair of routes sharing a use case): its request
//! type, its handler with the `#[utoipa::path]` that documents it, and the
//! mapping of its use case's error enum to the contract's answers.

pub mod fallback;
pub mod health;
pub mod login;
pub mod logout;
pub mod register;
pub mod reset_password;
pub mod users_admin;
pub mod users_me;
pub mod verify;

use actix_web::HttpResponse;
use serde_json::Value;

/// `202 null`: what forgot-password and request-verify-token always answer.
fn accepted_null() -> HttpResponse {
    HttpResponse::Accepted().json(Value::Null)
}

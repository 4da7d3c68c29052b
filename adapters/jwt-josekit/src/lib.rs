//! Portcullis JWT adapter: the [`TokenCodec`](portcullis_domain::TokenCodec)
//! port implemented with [`josekit`] (HMAC-SHA-256 over OpenSSL).
//!
//! It issues and checks the three kinds of token FastAPI Users uses — access,
//! reset-password and verify-e-mail — byte for byte as FastAPI Users (through
//! PyJWT) writes them, so a token minted by either service verifies in the
//! other when they share secrets:
//!
//! | kind | claims, in this order | `aud` |
//! |---|---|---|
//! | access | `sub`, `aud`, `exp` | `["fastapi-users:auth"]` (an array) |
//! | reset | `sub`, `password_fgpt`, `aud`, `exp` | `"fastapi-users:reset"` |
//! | verify | `sub`, `email`, `aud`, `exp` | `"fastapi-users:verify"` |
//!
//! The header is always `{"alg":"HS256","typ":"JWT"}`, `exp` an integer
//! number of seconds, and strings are escaped as Python's `json.dumps` does
//! (non-ASCII as `\uXXXX`).
//!
//! Checking is strict: only `HS256` (never `none`, `HS384`, `HS512`, …), the
//! kind's own secret, an `aud` (string or array of strings) naming the kind's
//! audience, an `exp` in the future by the injected
//! [`Clock`](portcullis_domain::Clock) with no leeway, `nbf` and `iat` not in
//! the future when present, `jti` a string when present (PyJWT's rule), and
//! the kind's required string claims. Anything
//! else, malformed input included, is [`TokenError::Invalid`](portcullis_domain::TokenError),
//! never a panic.
//!
//! josekit is only used to compute the HMAC: the compact form is written and
//! read here so that the bytes match PyJWT's exactly (josekit's header and
//! claim ordering, its string audience and float `exp` do not), the
//! signature is compared in constant time, and no claim is trusted before it
//! has been checked.
//!
//! This crate depends only on `portcullis-domain`, `josekit` and `serde_json`.
#![warn(missing_docs)]

mod codec;
mod settings;
mod wire;

#[cfg(test)]
mod tests;

pub use codec::{
    ACCESS_AUDIENCE, JosekitTokenCodec, MAX_TOKEN_LEN, RESET_AUDIENCE, VERIFY_AUDIENCE,
};
pub use settings::{
    DEFAULT_LIFETIME_SECS, MIN_SECRET_LEN, TokenConfigError, TokenKind, TokenSettings,
};

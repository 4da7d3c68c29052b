//! Portcullis JWT adapter: the [`TokenCodec`](portcullis_domain::TokenCodec)
//! port implemented with [`josekit`] to write the JWS framing, its own
//! strict decoder to read it, and a pure-Rust HMAC-SHA-256 ([`hmac`] +
//! [`sha2`]; no OpenSSL on the request path).
//!
//! It issues and checks the three kinds of token FastAPI Users uses — access,
//! reset-password and verify-e-mail — byte for byte as FastAPI Users (through
//! PyJWT) writes them, so a token minted by either service verifies in the
//! other when they share secrets:
//!
//! | kind | claims, in this order | `aud` |
//! |---|---|---|
//! | access | `sub`, `aud`, (`stamp`), `exp` | `["fastapi-users:auth"]` (an array) |
//! | reset | `sub`, `password_fgpt`, (`state`), `aud`, `exp` | `"fastapi-users:reset"` |
//! | verify | `sub`, `email`, (`state`), `aud`, `exp` | `"fastapi-users:verify"` |
//!
//! Two claims are Portcullis' own, for revocation (`../shared/API.md`,
//! "Sessions"): an access token's `stamp`, an integer, the user's session
//! stamp when it was issued — left out while that is 0, so the token is then
//! FastAPI Users' exactly, and read as 0 when absent (any other type is
//! refused); a reset or verify token's `state`, a string digest of the
//! account's state, written when the caller gives one and read as `None` when
//! absent. PyJWT ignores claims it does not know, so FastAPI Users accepts
//! both. An access token's `exp` (and `iat`, when a token has one) is handed
//! to the caller too ([`AccessClaims`](portcullis_domain::AccessClaims)):
//! a stampless token is judged by when it was issued.
//!
//! The header is always `{"alg":"HS256","typ":"JWT"}`, `exp` an integer
//! number of seconds, and strings are escaped as Python's `json.dumps` does
//! (non-ASCII as `\uXXXX`).
//!
//! Checking is strict: only `HS256` (never `none`, `HS384`, `HS512`, …), the
//! kind's own secret, an `aud` (string or array of strings) naming the kind's
//! audience, an `exp` in the future by the injected
//! [`Clock`](portcullis_domain::Clock) with no leeway, `nbf` and `iat` not in
//! the future when present, `jti` a string when present (PyJWT's rule), `iss`
//! a string when present (josekit's), and
//! the kind's required string claims. `exp`, `nbf` and `iat` must also be
//! non-negative numbers (josekit's rule: stricter than PyJWT, which would
//! take a negative `nbf` or `iat`; neither it nor we ever write one). Anything
//! else, malformed input included, is [`TokenError::Invalid`](portcullis_domain::TokenError),
//! never a panic.
//!
//! Issuing goes through josekit: it writes the header and the base64url
//! segments around payload bytes written here (PyJWT's claim order and
//! `\uXXXX` escapes, an `aud` array, an integer `exp`), signed by our own
//! HMAC.
//!
//! Checking does not: every authenticated request checks an access token,
//! and josekit's `jwt::decode_with_verifier` spent most of its time on
//! bookkeeping (a `Vec` per segment, the header and the payload built as
//! ordered JSON maps and re-checked key by key, the audience copied into a
//! `Vec`). The crate's own decoder gives exactly josekit's answers for
//! less than half the CPU time per access token (figures in
//! `bench/token_codec.sh`): it splits the compact form itself (exactly three segments, at most
//! [`MAX_TOKEN_LEN`] bytes), decodes each segment with the engine josekit
//! used (base64 0.22's strict `URL_SAFE_NO_PAD`: padding, `+`/`/` and
//! non-zero unused bits refused), checks the MAC first, in constant time,
//! so that nothing unsigned is parsed, then parses the header and the
//! payload with serde_json straight into small typed structs: `alg` must be
//! exactly `HS256`, `typ` a string if present, `crit` absent, other header
//! parameters typed as josekit types them (the rare ones judged by
//! josekit's own `JwsHeader::from_map`); `aud` is judged while it is
//! parsed, and members the codec does not read are still parsed in full
//! (so invalid UTF-8 or a lone surrogate anywhere is refused, as before). A
//! repeated member counts with its last value, as it did in serde_json's
//! maps. The tests pin each of these answers.
//!
//! Three more things are this crate's own, each for a reason given where it
//! is done: the HMAC itself (pure Rust, so that no request thread touches
//! OpenSSL, whose exit-time cleanup races threads still exiting; and
//! faster), the MAC comparison (josekit's is not constant-time; ours uses
//! [`subtle`]), and the `exp`/`nbf`/`iat` checks against the clock
//! (josekit's validator panics on huge times; PyJWT truncates float times).
//!
//! Secrets are held in [`secrecy`] types and exposed only to key the HMAC.
//!
//! This crate depends only on `portcullis-domain`, `josekit`, `serde`,
//! `serde_json`, `base64`, `secrecy`, `subtle`, `hmac` and `sha2`.
#![warn(missing_docs)]

mod codec;
mod decode;
mod hs256;
mod oauth_state;
mod python_json;
mod settings;

#[cfg(test)]
mod tests;

pub use codec::{
    ACCESS_AUDIENCE, JosekitTokenCodec, MAX_TOKEN_LEN, RESET_AUDIENCE, VERIFY_AUDIENCE,
};
pub use oauth_state::{
    JosekitOAuthStateCodec, OAUTH_STATE_AUDIENCE, OAUTH_STATE_LIFETIME_SECS, StateSecretError,
};
pub use settings::{
    DEFAULT_LIFETIME_SECS, MIN_SECRET_LEN, TokenConfigError, TokenKind, TokenSettings,
};

//! FastAPI Users' OAuth state tokens (social login), and the PKCE verifier
//! derived from a flow's CSRF token.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::JoseHeader as _;
use josekit::jws::{self, JwsHeader, JwsSigner as _};
use josekit::jwt;
use portcullis_domain::{Clock, OAuthState, OAuthStateCodec, OAuthStateError};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value;

use crate::codec::{MAX_TOKEN_LEN, numeric_date};
use crate::hs256::Hs256Key;
use crate::python_json::push_python_json_str;
use crate::settings::MIN_SECRET_LEN;

/// The audience of OAuth state tokens (FastAPI Users' `STATE_TOKEN_AUDIENCE`),
/// written as a plain string.
pub const OAUTH_STATE_AUDIENCE: &str = "fastapi-users:oauth-state";

/// How long a state token lives: one hour, as FastAPI Users'.
pub const OAUTH_STATE_LIFETIME_SECS: i64 = 3600;

/// The state secret is too short for HS256 (fewer than [`MIN_SECRET_LEN`]
/// bytes) or refused by josekit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("OAUTH_STATE_SECRET: {0}")]
pub struct StateSecretError(String);

/// [`OAuthStateCodec`] over josekit's HS256 with `OAUTH_STATE_SECRET`:
/// tokens byte for byte as FastAPI Users writes them —
/// `{"csrftoken":…,"aud":"fastapi-users:oauth-state","exp":…}`, with
/// `"sub"` first in the associate flow — so a state minted by either service
/// passes the other. A token whose signature, audience or form is wrong is
/// [`OAuthStateError::Invalid`]; a genuine one past `exp`,
/// [`OAuthStateError::Expired`] (PyJWT's order: the signature, then `exp`).
///
/// The PKCE verifier of a flow is base64url(HMAC-SHA-256(secret,
/// `"portcullis-pkce:" + csrf token`)): 43 characters, never sent to the
/// browser.
pub struct JosekitOAuthStateCodec {
    key: Hs256Key,
    header: JwsHeader,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for JosekitOAuthStateCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JosekitOAuthStateCodec")
            .finish_non_exhaustive()
    }
}

impl JosekitOAuthStateCodec {
    /// A codec signing with `secret` (at least 32 bytes), reading the time
    /// from `clock`.
    pub fn new(secret: &SecretString, clock: Arc<dyn Clock>) -> Result<Self, StateSecretError> {
        let bytes = secret.expose_secret().as_bytes();
        if bytes.len() < MIN_SECRET_LEN {
            return Err(StateSecretError(format!(
                "must be at least {MIN_SECRET_LEN} bytes, got {}",
                bytes.len()
            )));
        }
        let key = Hs256Key::new(bytes).map_err(|e| StateSecretError(e.to_string()))?;
        let mut header = JwsHeader::new();
        header.set_algorithm("HS256");
        header.set_token_type("JWT");
        Ok(Self { key, header, clock })
    }
}

impl OAuthStateCodec for JosekitOAuthStateCodec {
    fn issue_state(&self, state: &OAuthState) -> Result<String, OAuthStateError> {
        let mut payload = String::from("{");
        if let Some(sub) = &state.subject {
            payload.push_str("\"sub\":");
            push_python_json_str(&mut payload, sub);
            payload.push(',');
        }
        payload.push_str("\"csrftoken\":");
        push_python_json_str(&mut payload, &state.csrf_token);
        payload.push_str(",\"aud\":");
        push_python_json_str(&mut payload, OAUTH_STATE_AUDIENCE);
        let exp = self
            .clock
            .now_unix()
            .checked_add(OAUTH_STATE_LIFETIME_SECS)
            .ok_or_else(|| OAuthStateError::Issue("state expiry overflows".into()))?;
        payload.push_str(&format!(",\"exp\":{exp}}}"));
        jws::serialize_compact(payload.as_bytes(), &self.header, &self.key)
            .map_err(|e| OAuthStateError::Issue(format!("could not sign state token: {e}")))
    }

    fn verify_state(&self, token: &str) -> Result<OAuthState, OAuthStateError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(OAuthStateError::Invalid);
        }
        let (payload, header) =
            jwt::decode_with_verifier(token, &self.key).map_err(|_| OAuthStateError::Invalid)?;
        if header.claim("crit").is_some() {
            return Err(OAuthStateError::Invalid);
        }
        let exp = payload
            .claim("exp")
            .ok_or(OAuthStateError::Invalid)
            .and_then(|v| numeric_date(v).map_err(|_| OAuthStateError::Invalid))?;
        if exp <= self.clock.now_unix() {
            return Err(OAuthStateError::Expired);
        }
        if !payload
            .audience()
            .is_some_and(|auds| auds.contains(&OAUTH_STATE_AUDIENCE))
        {
            return Err(OAuthStateError::Invalid);
        }
        // A genuine state without a string `csrftoken` matches no cookie
        // (FastAPI Users: `OAUTH_INVALID_STATE`), and one without a string
        // `sub` no user: the caller refuses them, not the decoder.
        let csrf_token = match payload.claim("csrftoken") {
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        let subject = match payload.claim("sub") {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        };
        Ok(OAuthState {
            csrf_token,
            subject,
        })
    }

    fn pkce_verifier(&self, csrf_token: &str) -> String {
        let message = format!("portcullis-pkce:{csrf_token}");
        // HMAC-SHA-256 cannot fail on a valid key.
        let mac = self.key.sign(message.as_bytes()).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(mac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct At(i64);
    impl Clock for At {
        fn now_unix(&self) -> i64 {
            self.0
        }
    }

    fn codec_at(secs: i64) -> JosekitOAuthStateCodec {
        JosekitOAuthStateCodec::new(&SecretString::from("s".repeat(32)), Arc::new(At(secs)))
            .unwrap()
    }

    fn payload_of(token: &str) -> String {
        let part = token.split('.').nth(1).unwrap();
        String::from_utf8(URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn writes_fastapi_users_claims_and_reads_them_back() {
        let codec = codec_at(1_000);
        let login = OAuthState {
            csrf_token: "c5rf".into(),
            subject: None,
        };
        let token = codec.issue_state(&login).unwrap();
        assert_eq!(
            payload_of(&token),
            r#"{"csrftoken":"c5rf","aud":"fastapi-users:oauth-state","exp":4600}"#
        );
        assert_eq!(codec.verify_state(&token).unwrap(), login);
        let associate = OAuthState {
            csrf_token: "c".into(),
            subject: Some("u-1".into()),
        };
        let token = codec.issue_state(&associate).unwrap();
        assert!(payload_of(&token).starts_with(r#"{"sub":"u-1","csrftoken":"c","#));
        assert_eq!(codec.verify_state(&token).unwrap(), associate);
    }

    #[test]
    fn expired_tampered_and_foreign_tokens_are_told_apart() {
        let state = OAuthState {
            csrf_token: "c".into(),
            subject: None,
        };
        let token = codec_at(1_000).issue_state(&state).unwrap();
        assert_eq!(codec_at(4_599).verify_state(&token).unwrap(), state);
        assert_eq!(
            codec_at(4_600).verify_state(&token),
            Err(OAuthStateError::Expired)
        );
        let mut tampered = token.clone();
        tampered.push('x');
        assert_eq!(
            codec_at(1_000).verify_state(&tampered),
            Err(OAuthStateError::Invalid)
        );
        let other =
            JosekitOAuthStateCodec::new(&SecretString::from("t".repeat(32)), Arc::new(At(1_000)))
                .unwrap();
        assert_eq!(other.verify_state(&token), Err(OAuthStateError::Invalid));
        assert_eq!(
            codec_at(1_000).verify_state("nope"),
            Err(OAuthStateError::Invalid)
        );
    }

    #[test]
    fn the_pkce_verifier_is_43_unreserved_characters_keyed_by_the_secret() {
        let v = codec_at(0).pkce_verifier("abc");
        assert_eq!(v.len(), 43);
        assert!(
            v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(v, codec_at(5).pkce_verifier("abc"));
        assert_ne!(v, codec_at(0).pkce_verifier("abd"));
    }

    #[test]
    fn a_short_secret_is_refused() {
        let e =
            JosekitOAuthStateCodec::new(&SecretString::from("short"), Arc::new(At(0))).unwrap_err();
        assert!(e.to_string().contains("OAUTH_STATE_SECRET"));
    }
}

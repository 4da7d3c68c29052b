use std::fmt;
use std::sync::Arc;

use josekit::jws::alg::hmac::HmacJwsSigner;
use josekit::jws::{HS256, JwsSigner as _};
use portcullis_domain::{
    Clock, EmailAddress, ResetClaims, TokenCodec, TokenError, UserId, VerifyClaims,
};
use serde_json::{Map, Value};

use crate::settings::{MIN_SECRET_LEN, TokenConfigError, TokenKind, TokenSettings};
use crate::wire::{b64url_decode, b64url_encode_into, constant_time_eq, push_python_json_str};

/// The audience of access tokens (FastAPI Users' `JWTStrategy` default),
/// written as a one-element JSON array.
pub const ACCESS_AUDIENCE: &str = "fastapi-users:auth";
/// The audience of reset-password tokens, written as a plain string.
pub const RESET_AUDIENCE: &str = "fastapi-users:reset";
/// The audience of verify-e-mail tokens, written as a plain string.
pub const VERIFY_AUDIENCE: &str = "fastapi-users:verify";

/// Longest token looked at, in bytes; anything longer is refused unread.
/// Real tokens are a few hundred bytes.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// `base64url({"alg":"HS256","typ":"JWT"})`, PyJWT's header for HS256
/// (it sorts header keys).
const HEADER_B64: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

impl TokenKind {
    const fn audience(self) -> &'static str {
        match self {
            Self::Access => ACCESS_AUDIENCE,
            Self::Reset => RESET_AUDIENCE,
            Self::Verify => VERIFY_AUDIENCE,
        }
    }
}

/// One kind's signing key and lifetime.
struct KindKey {
    signer: HmacJwsSigner,
    lifetime_secs: i64,
}

impl KindKey {
    fn new(settings: &TokenSettings, kind: TokenKind) -> Result<Self, TokenConfigError> {
        let secret = settings.secret(kind);
        if secret.len() < MIN_SECRET_LEN {
            return Err(TokenConfigError::SecretTooShort {
                kind,
                len: secret.len(),
            });
        }
        let lifetime_secs = settings.lifetime_secs(kind);
        if lifetime_secs <= 0 {
            return Err(TokenConfigError::NonPositiveLifetime {
                kind,
                secs: lifetime_secs,
            });
        }
        let signer =
            HS256
                .signer_from_bytes(secret)
                .map_err(|err| TokenConfigError::KeyRejected {
                    kind,
                    reason: err.to_string(),
                })?;
        Ok(Self {
            signer,
            lifetime_secs,
        })
    }
}

/// [`TokenCodec`] over josekit's HS256: FastAPI-Users-compatible access,
/// reset-password and verify-e-mail tokens, each kind with its own secret,
/// audience and lifetime, times read from an injected [`Clock`].
///
/// See the [crate documentation](crate) for the exact formats and checks.
pub struct JosekitTokenCodec {
    access: KindKey,
    reset: KindKey,
    verify: KindKey,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for JosekitTokenCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JosekitTokenCodec")
            .field("access_lifetime_secs", &self.access.lifetime_secs)
            .field("reset_lifetime_secs", &self.reset.lifetime_secs)
            .field("verify_lifetime_secs", &self.verify.lifetime_secs)
            .finish_non_exhaustive()
    }
}

impl JosekitTokenCodec {
    /// A codec with these secrets and lifetimes, reading the time from `clock`.
    ///
    /// # Errors
    ///
    /// [`TokenConfigError::SecretTooShort`] if a secret is shorter than
    /// [`MIN_SECRET_LEN`] (32) bytes, [`TokenConfigError::NonPositiveLifetime`]
    /// if a lifetime is not positive; the first problem found is reported,
    /// checking access, then reset, then verify.
    pub fn new(settings: TokenSettings, clock: Arc<dyn Clock>) -> Result<Self, TokenConfigError> {
        Ok(Self {
            access: KindKey::new(&settings, TokenKind::Access)?,
            reset: KindKey::new(&settings, TokenKind::Reset)?,
            verify: KindKey::new(&settings, TokenKind::Verify)?,
            clock,
        })
    }

    const fn key(&self, kind: TokenKind) -> &KindKey {
        match kind {
            TokenKind::Access => &self.access,
            TokenKind::Reset => &self.reset,
            TokenKind::Verify => &self.verify,
        }
    }

    /// Signs a token of `kind` whose payload is `{<claims>,"exp":<now+lifetime>}`;
    /// `claims` is the already-written JSON members before `exp`.
    fn mint(&self, kind: TokenKind, claims: &str) -> Result<String, TokenError> {
        let key = self.key(kind);
        let exp = self
            .clock
            .now_unix()
            .checked_add(key.lifetime_secs)
            .ok_or_else(|| TokenError::Issue(format!("{kind} token expiry overflows")))?;
        let payload = format!("{{{claims},\"exp\":{exp}}}");

        let mut token = String::with_capacity(HEADER_B64.len() + payload.len() * 4 / 3 + 48);
        token.push_str(HEADER_B64);
        token.push('.');
        b64url_encode_into(payload.as_bytes(), &mut token);
        let signature = key
            .signer
            .sign(token.as_bytes())
            .map_err(|err| TokenError::Issue(format!("could not sign {kind} token: {err}")))?;
        token.push('.');
        b64url_encode_into(&signature, &mut token);
        Ok(token)
    }

    /// Checks a token of `kind` (shape, header, signature, `aud`, `exp`,
    /// `nbf`, `iat`) and returns its claims, whose kind-specific members the
    /// caller still has to check.
    fn open(&self, kind: TokenKind, token: &str) -> Result<Map<String, Value>, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Invalid);
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Invalid);
        };

        check_header(&decode_object(header_b64)?)?;

        let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
        let signature = b64url_decode(signature_b64).ok_or(TokenError::Invalid)?;
        let expected = self
            .key(kind)
            .signer
            .sign(signing_input.as_bytes())
            .map_err(|_| TokenError::Invalid)?;
        if !constant_time_eq(&expected, &signature) {
            return Err(TokenError::Invalid);
        }

        let claims = decode_object(payload_b64)?;
        check_registered_claims(&claims, kind.audience(), self.clock.now_unix())?;
        Ok(claims)
    }
}

/// base64url → JSON object, or `Invalid`.
fn decode_object(segment: &str) -> Result<Map<String, Value>, TokenError> {
    let bytes = b64url_decode(segment).ok_or(TokenError::Invalid)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(TokenError::Invalid),
    }
}

/// `alg` must be exactly `HS256`; no critical extension is understood; a
/// `kid`, if any, must be a string (as PyJWT demands).
fn check_header(header: &Map<String, Value>) -> Result<(), TokenError> {
    let alg_ok = matches!(header.get("alg"), Some(Value::String(alg)) if alg == "HS256");
    let kid_ok = header.get("kid").is_none_or(Value::is_string);
    if alg_ok && kid_ok && !header.contains_key("crit") {
        Ok(())
    } else {
        Err(TokenError::Invalid)
    }
}

/// A NumericDate claim as PyJWT reads it (`int(value)`: integers as they are,
/// floats truncated toward zero); anything that is not a JSON number is
/// `Invalid`.
fn numeric_date(value: &Value) -> Result<i64, TokenError> {
    let Value::Number(n) = value else {
        return Err(TokenError::Invalid);
    };
    if let Some(i) = n.as_i64() {
        Ok(i)
    } else if n.is_u64() {
        // Beyond i64::MAX: far future either way.
        Ok(i64::MAX)
    } else {
        // `as` truncates toward zero and saturates, like `int()` bounded.
        n.as_f64().map(|f| f as i64).ok_or(TokenError::Invalid)
    }
}

/// The checks every kind shares, with no leeway:
/// - `aud` present, a string or an array of strings, naming `audience`;
/// - `exp` present, a number, and `now < exp`;
/// - `nbf` and `iat`, when present, numbers not after `now`;
/// - `jti`, when present, a string.
fn check_registered_claims(
    claims: &Map<String, Value>,
    audience: &str,
    now: i64,
) -> Result<(), TokenError> {
    let aud_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == audience,
        Some(Value::Array(auds)) => {
            auds.iter().all(Value::is_string) && auds.iter().any(|aud| aud == audience)
        }
        _ => false,
    };
    if !aud_ok {
        return Err(TokenError::Invalid);
    }

    let exp = numeric_date(claims.get("exp").ok_or(TokenError::Invalid)?)?;
    if exp <= now {
        return Err(TokenError::Invalid);
    }
    for not_before in ["nbf", "iat"] {
        if let Some(value) = claims.get(not_before)
            && numeric_date(value)? > now
        {
            return Err(TokenError::Invalid);
        }
    }
    if claims.get("jti").is_some_and(|jti| !jti.is_string()) {
        return Err(TokenError::Invalid);
    }
    Ok(())
}

/// The string claim `name`, or `Invalid` if it is missing or not a string.
fn string_claim(claims: &mut Map<String, Value>, name: &str) -> Result<String, TokenError> {
    match claims.remove(name) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(TokenError::Invalid),
    }
}

/// `"sub":"<user id>"`: the JSON member every kind starts with.
fn sub_member(user: UserId) -> String {
    let mut out = String::from("\"sub\":");
    push_python_json_str(&mut out, &user.to_string());
    out
}

impl TokenCodec for JosekitTokenCodec {
    fn issue_access(&self, user: UserId) -> Result<String, TokenError> {
        let mut claims = sub_member(user);
        claims.push_str(",\"aud\":[");
        push_python_json_str(&mut claims, ACCESS_AUDIENCE);
        claims.push(']');
        self.mint(TokenKind::Access, &claims)
    }

    fn verify_access(&self, token: &str) -> Result<String, TokenError> {
        let mut claims = self.open(TokenKind::Access, token)?;
        string_claim(&mut claims, "sub")
    }

    fn issue_reset(&self, user: UserId, password_fingerprint: &str) -> Result<String, TokenError> {
        let mut claims = sub_member(user);
        claims.push_str(",\"password_fgpt\":");
        push_python_json_str(&mut claims, password_fingerprint);
        claims.push_str(",\"aud\":");
        push_python_json_str(&mut claims, RESET_AUDIENCE);
        self.mint(TokenKind::Reset, &claims)
    }

    fn verify_reset(&self, token: &str) -> Result<ResetClaims, TokenError> {
        let mut claims = self.open(TokenKind::Reset, token)?;
        Ok(ResetClaims {
            subject: string_claim(&mut claims, "sub")?,
            password_fingerprint: string_claim(&mut claims, "password_fgpt")?,
        })
    }

    fn issue_verify(&self, user: UserId, email: &EmailAddress) -> Result<String, TokenError> {
        let mut claims = sub_member(user);
        claims.push_str(",\"email\":");
        push_python_json_str(&mut claims, email.as_str());
        claims.push_str(",\"aud\":");
        push_python_json_str(&mut claims, VERIFY_AUDIENCE);
        self.mint(TokenKind::Verify, &claims)
    }

    fn verify_verify(&self, token: &str) -> Result<VerifyClaims, TokenError> {
        let mut claims = self.open(TokenKind::Verify, token)?;
        Ok(VerifyClaims {
            subject: string_claim(&mut claims, "sub")?,
            email: string_claim(&mut claims, "email")?,
        })
    }
}

use std::fmt;
use std::sync::Arc;

use josekit::jws::{self, JwsHeader};
use portcullis_domain::{
    AccessClaims, Clock, EmailAddress, ResetClaims, TokenCodec, TokenError, UserId, VerifyClaims,
};
use secrecy::ExposeSecret as _;
use serde_json::Value;

use crate::decode::{self, Claims};
use crate::hs256::Hs256Key;
use crate::python_json::push_python_json_str;
use crate::settings::{MIN_SECRET_LEN, TokenConfigError, TokenKind, TokenSettings};

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
    /// Signs and checks (in constant time) this kind's tokens.
    key: Hs256Key,
    lifetime_secs: i64,
}

impl KindKey {
    fn new(settings: &TokenSettings, kind: TokenKind) -> Result<Self, TokenConfigError> {
        // Exposed only to key the HMAC (which keeps its own keyed state).
        let secret = settings.secret(kind).expose_secret();
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
        let key = Hs256Key::new(secret).map_err(|err| TokenConfigError::KeyRejected {
            kind,
            reason: err.to_string(),
        })?;
        Ok(Self { key, lifetime_secs })
    }
}

/// [`TokenCodec`] for HS256 (josekit writes the tokens, the crate's own
/// decoder reads them): FastAPI-Users-compatible access, reset-password and
/// verify-e-mail tokens, each kind with its own secret, audience and
/// lifetime, times read from an injected [`Clock`].
///
/// See the [crate documentation](crate) for the exact formats and checks.
pub struct JosekitTokenCodec {
    access: KindKey,
    reset: KindKey,
    verify: KindKey,
    /// `{"alg":"HS256","typ":"JWT"}`, PyJWT's header (it sorts header keys):
    /// `alg` is set first because josekit's JSON maps keep insertion order
    /// (it turns on serde_json's `preserve_order`).
    header: JwsHeader,
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
        let mut header = JwsHeader::new();
        header.set_algorithm("HS256");
        header.set_token_type("JWT");
        Ok(Self {
            access: KindKey::new(&settings, TokenKind::Access)?,
            reset: KindKey::new(&settings, TokenKind::Reset)?,
            verify: KindKey::new(&settings, TokenKind::Verify)?,
            header,
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
    ///
    /// The payload bytes are written here, not by josekit's
    /// `jwt::encode_with_signer`, because FastAPI Users' tokens are PyJWT's
    /// bytes: non-ASCII as `\uXXXX` (Python's `json.dumps`; serde_json,
    /// which josekit serialises with, writes raw UTF-8), a one-element `aud`
    /// array for access tokens (josekit's `set_audience` writes a string) and
    /// an integer `exp` (josekit's `set_expires_at` may write a float), in
    /// FastAPI Users' claim order. josekit writes the header and the
    /// base64url segments, [`Hs256Key`] the HMAC.
    fn mint(&self, kind: TokenKind, claims: &str) -> Result<String, TokenError> {
        let key = self.key(kind);
        let exp = self
            .clock
            .now_unix()
            .checked_add(key.lifetime_secs)
            .ok_or_else(|| TokenError::Issue(format!("{kind} token expiry overflows")))?;
        let payload = format!("{{{claims},\"exp\":{exp}}}");
        jws::serialize_compact(payload.as_bytes(), &self.header, &key.key)
            .map_err(|err| TokenError::Issue(format!("could not sign {kind} token: {err}")))
    }

    /// Checks a token of `kind` and returns its claims, whose kind-specific
    /// members the caller still has to check.
    ///
    /// No josekit here: [`decode::open`] splits the compact form itself and
    /// decodes each segment as strict unpadded base64url (base64 0.22's
    /// `URL_SAFE_NO_PAD`, the engine josekit used: padding, non-URL
    /// characters and non-zero unused bits refused), checks the 32-byte MAC
    /// with [`Hs256Key`] in constant time before the header or the payload
    /// is parsed, then insists on a JSON-object header with `alg` exactly
    /// `HS256` (so never `none`, no case variant), `typ` a string when
    /// present (not judged otherwise), no `crit` at all (josekit refused
    /// any extension it was not told of, we also the empty list), and the
    /// other parameters typed as josekit required (`kid` a string, …; the
    /// rare ones judged by josekit's `JwsHeader::from_map` itself). The
    /// payload must be a JSON object whose registered claims have josekit's
    /// types (`sub`, `jti`, `iss` strings; `aud` a string or strings;
    /// `exp`, `nbf`, `iat` non-negative numbers) and whose `aud` names this
    /// kind's audience. A member given twice counts with its last value, as
    /// in serde_json's maps. The times are checked in [`check_times`].
    /// Every refusal is [`TokenError::Invalid`].
    fn open(&self, kind: TokenKind, token: &str) -> Result<Claims, TokenError> {
        let claims = decode::open(&self.key(kind).key, kind.audience(), token, MAX_TOKEN_LEN)?;
        check_times(&claims, self.clock.now_unix())?;
        Ok(claims)
    }
}

/// A NumericDate claim as PyJWT reads it (`int(value)`: integers as they are,
/// floats truncated toward zero); anything that is not a JSON number is
/// `Invalid`.
pub(crate) fn numeric_date(value: &Value) -> Result<i64, TokenError> {
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

/// The time checks every kind shares, with no leeway (the `aud` check is
/// [`decode::open`]'s):
/// - `exp` present and `now < exp`;
/// - `nbf` and `iat`, when present, not after `now`.
///
/// The times are read here as PyJWT reads them ([`numeric_date`]: a float
/// time is `int(value)`), not as josekit's `JwtPayloadValidator` would
/// (through `Duration::from_secs_f64`, which panics on a signed token with
/// an `exp` such as `1e300` or `u64::MAX`).
fn check_times(claims: &Claims, now: i64) -> Result<(), TokenError> {
    let exp = numeric_date(claims.exp.as_ref().ok_or(TokenError::Invalid)?)?;
    if exp <= now {
        return Err(TokenError::Invalid);
    }
    for not_before in [&claims.nbf, &claims.iat].into_iter().flatten() {
        if numeric_date(not_before)? > now {
            return Err(TokenError::Invalid);
        }
    }
    Ok(())
}

/// The string claim `claim`, or `Invalid` if it is missing or not a string.
fn string_claim(claim: Option<Value>) -> Result<String, TokenError> {
    match claim {
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

/// The optional string claim `claim`: `None` when absent, `Invalid` when it
/// is there but not a string.
fn optional_string_claim(claim: Option<Value>) -> Result<Option<String>, TokenError> {
    match claim {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(TokenError::Invalid),
    }
}

/// `,"state":"<digest>"` when a state is given.
fn push_state(claims: &mut String, state: Option<&str>) {
    if let Some(state) = state {
        claims.push_str(",\"state\":");
        push_python_json_str(claims, state);
    }
}

impl TokenCodec for JosekitTokenCodec {
    fn issue_access(&self, user: UserId, stamp: i64) -> Result<String, TokenError> {
        let mut claims = sub_member(user);
        claims.push_str(",\"aud\":[");
        push_python_json_str(&mut claims, ACCESS_AUDIENCE);
        claims.push(']');
        if stamp != 0 {
            claims.push_str(&format!(",\"stamp\":{stamp}"));
        }
        self.mint(TokenKind::Access, &claims)
    }

    fn verify_access(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let claims = self.open(TokenKind::Access, token)?;
        let stamp = match claims.stamp {
            None => 0,
            Some(Value::Number(n)) => n.as_i64().ok_or(TokenError::Invalid)?,
            Some(_) => return Err(TokenError::Invalid),
        };
        // Both checked by `open` already (`exp` present, both numbers).
        let expires_at = numeric_date(claims.exp.as_ref().ok_or(TokenError::Invalid)?)?;
        let issued_at = claims.iat.as_ref().map(numeric_date).transpose()?;
        Ok(AccessClaims {
            subject: string_claim(claims.sub)?,
            stamp,
            expires_at,
            issued_at,
        })
    }

    fn issue_reset(
        &self,
        user: UserId,
        password_fingerprint: &str,
        state: Option<&str>,
    ) -> Result<String, TokenError> {
        let mut claims = sub_member(user);
        claims.push_str(",\"password_fgpt\":");
        push_python_json_str(&mut claims, password_fingerprint);
        push_state(&mut claims, state);
        claims.push_str(",\"aud\":");
        push_python_json_str(&mut claims, RESET_AUDIENCE);
        self.mint(TokenKind::Reset, &claims)
    }

    fn verify_reset(&self, token: &str) -> Result<ResetClaims, TokenError> {
        let claims = self.open(TokenKind::Reset, token)?;
        Ok(ResetClaims {
            subject: string_claim(claims.sub)?,
            password_fingerprint: string_claim(claims.password_fgpt)?,
            state: optional_string_claim(claims.state)?,
        })
    }

    fn issue_verify(
        &self,
        user: UserId,
        email: &EmailAddress,
        state: Option<&str>,
    ) -> Result<String, TokenError> {
        let mut claims = sub_member(user);
        claims.push_str(",\"email\":");
        push_python_json_str(&mut claims, email.as_str());
        push_state(&mut claims, state);
        claims.push_str(",\"aud\":");
        push_python_json_str(&mut claims, VERIFY_AUDIENCE);
        self.mint(TokenKind::Verify, &claims)
    }

    fn verify_verify(&self, token: &str) -> Result<VerifyClaims, TokenError> {
        let claims = self.open(TokenKind::Verify, token)?;
        Ok(VerifyClaims {
            subject: string_claim(claims.sub)?,
            email: string_claim(claims.email)?,
            state: optional_string_claim(claims.state)?,
        })
    }
}

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use josekit::jws::{HS256, JwsSigner as _};
use portcullis_domain::{AccessClaims, Clock, EmailAddress, TokenCodec, TokenError, UserId};
use serde_json::{Value, json};

use crate::{JosekitTokenCodec, MAX_TOKEN_LEN, TokenConfigError, TokenKind, TokenSettings};

const ACCESS_SECRET: &str = "access-secret-for-tests-0123456789abcdef";
const RESET_SECRET: &str = "reset-secret-for-tests-0123456789abcdef";
const VERIFY_SECRET: &str = "verify-secret-for-tests-0123456789abcdef";
const USER: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";
const FINGERPRINT: &str = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g";
/// 2100-01-01T00:00:00Z, the `exp` of the PyJWT tokens below.
const PY_EXP: i64 = 4_102_444_800;
const NOW: i64 = 1_700_000_000;

// Minted with PyJWT 2.15.1 (what FastAPI Users 15 calls), with the secrets
// above, e.g.
// jwt.encode({"sub": USER, "aud": ["fastapi-users:auth"], "exp": 4102444800},
//            ACCESS_SECRET, algorithm="HS256")
const PY_ACCESS: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIwZjhmYWQ1Yi1kOWNiLTQ2OWYtYTE2NS03MDg2NzcyODk1MGUiLCJhdWQiOlsiZmFzdGFwaS11c2VyczphdXRoIl0sImV4cCI6NDEwMjQ0NDgwMH0.-KeaHt212NfXfC03TAYvg3_KJ7gBfM1IK3imKFj9iCw";
// {"sub": USER, "aud": "fastapi-users:auth", "exp": 4102444800}
const PY_ACCESS_STRING_AUD: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIwZjhmYWQ1Yi1kOWNiLTQ2OWYtYTE2NS03MDg2NzcyODk1MGUiLCJhdWQiOiJmYXN0YXBpLXVzZXJzOmF1dGgiLCJleHAiOjQxMDI0NDQ4MDB9.Beq_WA8kh5oXIJa5yccNTW6P-e6S0kbKHaVrGg-RtfE";
// {"sub": USER, "password_fgpt": FINGERPRINT, "aud": "fastapi-users:reset", "exp": 4102444800}
const PY_RESET: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIwZjhmYWQ1Yi1kOWNiLTQ2OWYtYTE2NS03MDg2NzcyODk1MGUiLCJwYXNzd29yZF9mZ3B0IjoiJGFyZ29uMmlkJHY9MTkkbT02NTUzNix0PTMscD00JGMyRnNkSE5oYkhRJGFHRnphR2hoYzJnIiwiYXVkIjoiZmFzdGFwaS11c2VyczpyZXNldCIsImV4cCI6NDEwMjQ0NDgwMH0.9bXaIOkXhJZ-kOkY9ZCmdFjXJUl3KMDPpr1r1rHJTUA";
// {"sub": USER, "email": "Mixed.Case@example.com", "aud": "fastapi-users:verify", "exp": 4102444800}
const PY_VERIFY: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIwZjhmYWQ1Yi1kOWNiLTQ2OWYtYTE2NS03MDg2NzcyODk1MGUiLCJlbWFpbCI6Ik1peGVkLkNhc2VAZXhhbXBsZS5jb20iLCJhdWQiOiJmYXN0YXBpLXVzZXJzOnZlcmlmeSIsImV4cCI6NDEwMjQ0NDgwMH0.zYCtvls0zeZIQub5IpNpbkE7DyeifIvbL_hHbIg9Wys";
// {"sub": USER, "email": "josé.ünï@example.com", "aud": "fastapi-users:verify", "exp": 4102444800}
const PY_VERIFY_UNICODE: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIwZjhmYWQ1Yi1kOWNiLTQ2OWYtYTE2NS03MDg2NzcyODk1MGUiLCJlbWFpbCI6Impvc1x1MDBlOS5cdTAwZmNuXHUwMGVmQGV4YW1wbGUuY29tIiwiYXVkIjoiZmFzdGFwaS11c2Vyczp2ZXJpZnkiLCJleHAiOjQxMDI0NDQ4MDB9.sj5TpfyaFbcroIVtq-kiyiMAkjBQdO8ekqUq3FPks8A";
// The access claims, algorithm="HS512", same secret.
const PY_ACCESS_HS512: &str = "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIwZjhmYWQ1Yi1kOWNiLTQ2OWYtYTE2NS03MDg2NzcyODk1MGUiLCJhdWQiOlsiZmFzdGFwaS11c2VyczphdXRoIl0sImV4cCI6NDEwMjQ0NDgwMH0.vrMdXxYTXnfh9KYJNla1d5ZCggWloM604p6xRqmlmftxyLd0VnspBZ3tOg4rZQK_DoqHljVnw7s7bItK6o8zmw";
// The access claims, algorithm="none".
const PY_ACCESS_NONE: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiIwZjhmYWQ1Yi1kOWNiLTQ2OWYtYTE2NS03MDg2NzcyODk1MGUiLCJhdWQiOlsiZmFzdGFwaS11c2VyczphdXRoIl0sImV4cCI6NDEwMjQ0NDgwMH0.";

/// A clock the test sets.
struct FakeClock(AtomicI64);

impl FakeClock {
    fn set(&self, now: i64) {
        self.0.store(now, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now_unix(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

fn settings() -> TokenSettings {
    TokenSettings::new(ACCESS_SECRET, RESET_SECRET, VERIFY_SECRET)
}

fn codec_at(now: i64) -> (JosekitTokenCodec, Arc<FakeClock>) {
    codec_with(settings(), now)
}

fn codec_with(settings: TokenSettings, now: i64) -> (JosekitTokenCodec, Arc<FakeClock>) {
    let clock = Arc::new(FakeClock(AtomicI64::new(now)));
    let codec = JosekitTokenCodec::new(settings, clock.clone()).unwrap();
    (codec, clock)
}

fn user() -> UserId {
    USER.parse().unwrap()
}

fn email() -> EmailAddress {
    EmailAddress::parse("Mixed.Case@example.com").unwrap()
}

/// A token with exactly this header and payload JSON, HMAC-SHA-256-signed
/// with `secret` (whatever the header claims).
fn forge(header: &str, payload: &str, secret: &str) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = HS256
        .signer_from_bytes(secret)
        .unwrap()
        .sign(input.as_bytes())
        .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// An access token with these claims, properly signed.
fn access_with(claims: &Value) -> String {
    forge(HEADER, &claims.to_string(), ACCESS_SECRET)
}

fn payload_of(token: &str) -> (String, Value) {
    let segment = token.split('.').nth(1).unwrap();
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap();
    let value = serde_json::from_str(&text).unwrap();
    (text, value)
}

fn header_of(token: &str) -> String {
    let segment = token.split('.').next().unwrap();
    String::from_utf8(URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

// ---- round trips and formats ------------------------------------------------

#[test]
fn access_round_trip() {
    let (codec, _) = codec_at(NOW);
    let token = codec.issue_access(user(), 0).unwrap();
    assert_eq!(codec.verify_access_untimed(&token), Ok(access(USER)));
}

#[test]
fn reset_round_trip() {
    let (codec, _) = codec_at(NOW);
    let token = codec.issue_reset(user(), FINGERPRINT, None).unwrap();
    let claims = codec.verify_reset(&token).unwrap();
    assert_eq!(claims.subject, USER);
    assert_eq!(claims.password_fingerprint, FINGERPRINT);
}

#[test]
fn verify_round_trip() {
    let (codec, _) = codec_at(NOW);
    let token = codec.issue_verify(user(), &email(), None).unwrap();
    let claims = codec.verify_verify(&token).unwrap();
    assert_eq!(claims.subject, USER);
    assert_eq!(claims.email, "Mixed.Case@example.com");
}

#[test]
fn round_trip_of_awkward_strings() {
    let (codec, _) = codec_at(NOW);
    let fingerprint = "quote\" backslash\\ newline\n nul\u{0} é 😀 </script>";
    let token = codec.issue_reset(user(), fingerprint, None).unwrap();
    assert_eq!(
        codec.verify_reset(&token).unwrap().password_fingerprint,
        fingerprint
    );
    let email = EmailAddress::parse("josé.ünï@example.com").unwrap();
    let token = codec.issue_verify(user(), &email, None).unwrap();
    assert_eq!(codec.verify_verify(&token).unwrap().email, email.as_str());
}

#[test]
fn header_is_pyjwts() {
    let (codec, _) = codec_at(NOW);
    for token in [
        codec.issue_access(user(), 0).unwrap(),
        codec.issue_reset(user(), FINGERPRINT, None).unwrap(),
        codec.issue_verify(user(), &email(), None).unwrap(),
    ] {
        assert_eq!(header_of(&token), r#"{"alg":"HS256","typ":"JWT"}"#);
    }
}

#[test]
fn exp_is_an_integer_and_access_aud_an_array() {
    let (codec, _) = codec_at(NOW);
    let (text, payload) = payload_of(&codec.issue_access(user(), 0).unwrap());
    assert_eq!(
        text,
        format!(
            r#"{{"sub":"{USER}","aud":["fastapi-users:auth"],"exp":{}}}"#,
            NOW + 3600
        )
    );
    assert!(payload["exp"].is_i64());
    assert_eq!(payload["exp"], json!(NOW + 3600));
    assert_eq!(payload["aud"], json!(["fastapi-users:auth"]));
}

#[test]
fn reset_and_verify_payloads_have_string_aud_and_integer_exp() {
    let (codec, _) = codec_at(NOW);
    let (text, payload) = payload_of(&codec.issue_reset(user(), "fp", None).unwrap());
    assert_eq!(
        text,
        format!(
            r#"{{"sub":"{USER}","password_fgpt":"fp","aud":"fastapi-users:reset","exp":{}}}"#,
            NOW + 3600
        )
    );
    assert!(payload["exp"].is_i64());
    let (text, payload) = payload_of(&codec.issue_verify(user(), &email(), None).unwrap());
    assert_eq!(
        text,
        format!(
            r#"{{"sub":"{USER}","email":"Mixed.Case@example.com","aud":"fastapi-users:verify","exp":{}}}"#,
            NOW + 3600
        )
    );
    assert!(payload["exp"].is_i64());
}

#[test]
fn lifetimes_come_from_settings() {
    let mut s = settings();
    s.access_lifetime_secs = 60;
    s.reset_lifetime_secs = 120;
    s.verify_lifetime_secs = 86_400;
    let (codec, _) = codec_with(s, NOW);
    let exp = |token: String| payload_of(&token).1["exp"].as_i64().unwrap();
    assert_eq!(exp(codec.issue_access(user(), 0).unwrap()), NOW + 60);
    assert_eq!(
        exp(codec.issue_reset(user(), "fp", None).unwrap()),
        NOW + 120
    );
    assert_eq!(
        exp(codec.issue_verify(user(), &email(), None).unwrap()),
        NOW + 86_400
    );
}

// ---- compatibility with PyJWT / FastAPI Users ---------------------------------

#[test]
fn pyjwt_tokens_verify() {
    let (codec, _) = codec_at(NOW);
    assert_eq!(codec.verify_access_untimed(PY_ACCESS), Ok(access(USER)));
    assert_eq!(
        codec.verify_access_untimed(PY_ACCESS_STRING_AUD),
        Ok(access(USER))
    );
    let reset = codec.verify_reset(PY_RESET).unwrap();
    assert_eq!(
        (reset.subject.as_str(), reset.password_fingerprint.as_str()),
        (USER, FINGERPRINT)
    );
    let verify = codec.verify_verify(PY_VERIFY).unwrap();
    assert_eq!(
        (verify.subject.as_str(), verify.email.as_str()),
        (USER, "Mixed.Case@example.com")
    );
    let verify = codec.verify_verify(PY_VERIFY_UNICODE).unwrap();
    assert_eq!(verify.email, "josé.ünï@example.com");
}

#[test]
fn pyjwt_tokens_expire_by_our_clock() {
    let (codec, _) = codec_at(PY_EXP);
    assert_eq!(codec.verify_access(PY_ACCESS), Err(TokenError::Invalid));
    assert_eq!(codec.verify_reset(PY_RESET), Err(TokenError::Invalid));
    assert_eq!(codec.verify_verify(PY_VERIFY), Err(TokenError::Invalid));
}

#[test]
fn our_tokens_are_byte_identical_to_pyjwts() {
    // Issued one lifetime before PY_EXP, ours carry the same claims in the
    // same order, so the bytes (and signatures) must match exactly.
    let (codec, _) = codec_at(PY_EXP - 3600);
    assert_eq!(codec.issue_access(user(), 0).unwrap(), PY_ACCESS);
    assert_eq!(
        codec.issue_reset(user(), FINGERPRINT, None).unwrap(),
        PY_RESET
    );
    assert_eq!(
        codec.issue_verify(user(), &email(), None).unwrap(),
        PY_VERIFY
    );
    let unicode = EmailAddress::parse("josé.ünï@example.com").unwrap();
    assert_eq!(
        codec.issue_verify(user(), &unicode, None).unwrap(),
        PY_VERIFY_UNICODE
    );
}

// ---- kinds do not mix ---------------------------------------------------------

fn assert_kinds_do_not_mix(codec: &JosekitTokenCodec) {
    let access = codec.issue_access(user(), 0).unwrap();
    let reset = codec.issue_reset(user(), FINGERPRINT, None).unwrap();
    let verify = codec.issue_verify(user(), &email(), None).unwrap();
    assert_eq!(codec.verify_reset(&access), Err(TokenError::Invalid));
    assert_eq!(codec.verify_verify(&access), Err(TokenError::Invalid));
    assert_eq!(codec.verify_access(&reset), Err(TokenError::Invalid));
    assert_eq!(codec.verify_verify(&reset), Err(TokenError::Invalid));
    assert_eq!(codec.verify_access(&verify), Err(TokenError::Invalid));
    assert_eq!(codec.verify_reset(&verify), Err(TokenError::Invalid));
}

#[test]
fn each_kind_is_refused_by_the_other_two() {
    let (codec, _) = codec_at(NOW);
    assert_kinds_do_not_mix(&codec);
}

#[test]
fn kinds_do_not_mix_even_with_one_shared_secret() {
    // Only the audience tells them apart then.
    let (codec, _) = codec_with(
        TokenSettings::new(ACCESS_SECRET, ACCESS_SECRET, ACCESS_SECRET),
        NOW,
    );
    assert_kinds_do_not_mix(&codec);
}

#[test]
fn a_reset_token_carrying_every_claim_is_still_not_an_access_token() {
    // Same secret, all claims present: the audience alone decides.
    let (codec, _) = codec_with(
        TokenSettings::new(ACCESS_SECRET, ACCESS_SECRET, ACCESS_SECRET),
        NOW,
    );
    let token = access_with(&json!({
        "sub": USER, "password_fgpt": "fp", "email": "a@example.com",
        "aud": "fastapi-users:reset", "exp": NOW + 60
    }));
    assert!(codec.verify_reset(&token).is_ok());
    assert_eq!(codec.verify_access(&token), Err(TokenError::Invalid));
    assert_eq!(codec.verify_verify(&token), Err(TokenError::Invalid));
}

// ---- algorithm and signature ------------------------------------------------

#[test]
fn alg_none_is_refused() {
    let (codec, _) = codec_at(NOW);
    assert_eq!(
        codec.verify_access(PY_ACCESS_NONE),
        Err(TokenError::Invalid)
    );
    // Also with a valid HS256 signature attached to a "none" header.
    let claims = format!(r#"{{"sub":"{USER}","aud":["fastapi-users:auth"],"exp":{PY_EXP}}}"#);
    for header in [
        r#"{"alg":"none","typ":"JWT"}"#,
        r#"{"alg":"None"}"#,
        r#"{"typ":"JWT"}"#,
    ] {
        let token = forge(header, &claims, ACCESS_SECRET);
        assert_eq!(
            codec.verify_access(&token),
            Err(TokenError::Invalid),
            "{header}"
        );
    }
    // And with the HS256 signature stripped.
    let unsigned = PY_ACCESS.rsplit_once('.').unwrap().0.to_owned() + ".";
    assert_eq!(codec.verify_access(&unsigned), Err(TokenError::Invalid));
}

#[test]
fn hs512_with_the_right_secret_is_refused() {
    let (codec, _) = codec_at(NOW);
    assert_eq!(
        codec.verify_access(PY_ACCESS_HS512),
        Err(TokenError::Invalid)
    );
}

#[test]
fn any_other_alg_header_is_refused_even_over_a_valid_hs256_signature() {
    let (codec, _) = codec_at(NOW);
    let claims = format!(r#"{{"sub":"{USER}","aud":["fastapi-users:auth"],"exp":{PY_EXP}}}"#);
    for alg in [
        json!("HS384"),
        json!("HS512"),
        json!("RS256"),
        json!("ES256"),
        json!("PS256"),
        json!("EdDSA"),
        json!("hs256"),
        json!("HS256 "),
        json!(["HS256"]),
        json!(null),
    ] {
        let header = json!({"alg": alg, "typ": "JWT"}).to_string();
        let token = forge(&header, &claims, ACCESS_SECRET);
        assert_eq!(
            codec.verify_access(&token),
            Err(TokenError::Invalid),
            "{header}"
        );
    }
    // The same with alg HS256 is fine: only the header made the difference.
    let token = forge(HEADER, &claims, ACCESS_SECRET);
    assert_eq!(codec.verify_access_untimed(&token), Ok(access(USER)));
}

#[test]
fn crit_and_non_string_kid_headers_are_refused() {
    let (codec, _) = codec_at(NOW);
    let claims = format!(r#"{{"sub":"{USER}","aud":["fastapi-users:auth"],"exp":{PY_EXP}}}"#);
    for header in [
        r#"{"alg":"HS256","crit":["exp"],"exp":1}"#,
        r#"{"alg":"HS256","b64":false,"crit":["b64"]}"#,
        r#"{"alg":"HS256","kid":1}"#,
        r#"{"alg":"HS256","crit":[]}"#,
    ] {
        let token = forge(header, &claims, ACCESS_SECRET);
        assert_eq!(
            codec.verify_access(&token),
            Err(TokenError::Invalid),
            "{header}"
        );
    }
    // typ and a string kid are not judged, as PyJWT does not judge them.
    let token = forge(
        r#"{"alg":"HS256","kid":"k1","typ":"at+jwt"}"#,
        &claims,
        ACCESS_SECRET,
    );
    assert_eq!(codec.verify_access_untimed(&token), Ok(access(USER)));
}

#[test]
fn wrong_secret_is_refused() {
    let (codec, _) = codec_at(NOW);
    let other = "another-secret-that-is-long-enough-0123456789";
    let claims = format!(r#"{{"sub":"{USER}","aud":["fastapi-users:auth"],"exp":{PY_EXP}}}"#);
    let token = forge(HEADER, &claims, other);
    assert_eq!(codec.verify_access(&token), Err(TokenError::Invalid));

    let (foreign, _) = codec_with(TokenSettings::new(other, other, other), NOW);
    let token = foreign.issue_access(user(), 0).unwrap();
    assert_eq!(codec.verify_access(&token), Err(TokenError::Invalid));
    let token = foreign.issue_reset(user(), "fp", None).unwrap();
    assert_eq!(codec.verify_reset(&token), Err(TokenError::Invalid));
    let token = foreign.issue_verify(user(), &email(), None).unwrap();
    assert_eq!(codec.verify_verify(&token), Err(TokenError::Invalid));
}

#[test]
fn tampered_payload_is_refused() {
    let (codec, _) = codec_at(NOW);
    let token = codec.issue_access(user(), 0).unwrap();
    let mut parts: Vec<&str> = token.split('.').collect();
    let payload = format!(
        r#"{{"sub":"00000000-0000-4000-8000-000000000000","aud":["fastapi-users:auth"],"exp":{}}}"#,
        NOW + 3600
    );
    let other = URL_SAFE_NO_PAD.encode(payload);
    parts[1] = &other;
    assert_eq!(
        codec.verify_access(&parts.join(".")),
        Err(TokenError::Invalid)
    );
}

#[test]
fn every_single_character_change_is_refused() {
    let (codec, _) = codec_at(NOW);
    let token = codec.issue_access(user(), 0).unwrap();
    for (i, original) in token.char_indices() {
        for replacement in ['A', 'B', 'Q', 'g', 'w', '-', '_', '.', '='] {
            if replacement == original {
                continue;
            }
            let mut changed = token.clone();
            changed.replace_range(i..=i, &replacement.to_string());
            assert_eq!(
                codec.verify_access(&changed),
                Err(TokenError::Invalid),
                "position {i}: {changed}"
            );
        }
    }
}

// ---- exp, nbf, iat ------------------------------------------------------------

#[test]
fn expiry_has_no_leeway() {
    let (codec, clock) = codec_at(NOW);
    let access = codec.issue_access(user(), 0).unwrap();
    let reset = codec.issue_reset(user(), "fp", None).unwrap();
    let verify = codec.issue_verify(user(), &email(), None).unwrap();
    let exp = NOW + 3600;
    let check = |expected_ok: bool| {
        assert_eq!(codec.verify_access(&access).is_ok(), expected_ok);
        assert_eq!(codec.verify_reset(&reset).is_ok(), expected_ok);
        assert_eq!(codec.verify_verify(&verify).is_ok(), expected_ok);
    };
    clock.set(exp - 1); // exp == now + 1
    check(true);
    clock.set(exp); // exp == now
    check(false);
    clock.set(exp + 1); // expired by one second
    check(false);
}

#[test]
fn exp_is_required_and_must_be_a_number() {
    let (codec, _) = codec_at(NOW);
    let base = json!({"sub": USER, "aud": ["fastapi-users:auth"]});
    assert_eq!(
        codec.verify_access(&access_with(&base)),
        Err(TokenError::Invalid)
    );
    for exp in [
        json!((NOW + 60).to_string()),
        json!(null),
        json!(true),
        json!([NOW + 60]),
        json!({"t": NOW + 60}),
    ] {
        let mut claims = base.clone();
        claims["exp"] = exp.clone();
        assert_eq!(
            codec.verify_access(&access_with(&claims)),
            Err(TokenError::Invalid),
            "{exp}"
        );
    }
}

#[test]
fn float_and_huge_exp_are_read_like_pyjwt() {
    let (codec, _) = codec_at(NOW);
    let with_exp =
        |exp: Value| access_with(&json!({"sub": USER, "aud": ["fastapi-users:auth"], "exp": exp}));
    // int(NOW + 0.9) == NOW: expired, as for PyJWT.
    assert!(
        codec
            .verify_access(&with_exp(json!(NOW as f64 + 0.9)))
            .is_err()
    );
    assert!(
        codec
            .verify_access(&with_exp(json!(NOW as f64 + 1.5)))
            .is_ok()
    );
    assert!(codec.verify_access(&with_exp(json!(u64::MAX))).is_ok());
    assert!(codec.verify_access(&with_exp(json!(1e300))).is_ok());
    assert!(codec.verify_access(&with_exp(json!(-1e300))).is_err());
    assert!(codec.verify_access(&with_exp(json!(i64::MIN))).is_err());
}

#[test]
fn nbf_in_the_future_is_refused() {
    let (codec, _) = codec_at(NOW);
    let with_nbf = |nbf: Value| {
        access_with(
            &json!({"sub": USER, "aud": ["fastapi-users:auth"], "exp": NOW + 60, "nbf": nbf}),
        )
    };
    assert_eq!(
        codec.verify_access(&with_nbf(json!(NOW + 1))),
        Err(TokenError::Invalid)
    );
    assert_eq!(
        codec.verify_access_untimed(&with_nbf(json!(NOW))),
        Ok(access(USER))
    );
    assert_eq!(
        codec.verify_access_untimed(&with_nbf(json!(NOW - 1))),
        Ok(access(USER))
    );
    assert_eq!(
        codec.verify_access(&with_nbf(json!(NOW.to_string()))),
        Err(TokenError::Invalid)
    );
    assert_eq!(
        codec.verify_access(&with_nbf(json!(null))),
        Err(TokenError::Invalid)
    );
}

#[test]
fn iat_in_the_future_is_refused_as_pyjwt_does() {
    let (codec, _) = codec_at(NOW);
    let with_iat = |iat: Value| {
        access_with(
            &json!({"sub": USER, "aud": ["fastapi-users:auth"], "exp": NOW + 60, "iat": iat}),
        )
    };
    assert_eq!(
        codec.verify_access(&with_iat(json!(NOW + 1))),
        Err(TokenError::Invalid)
    );
    assert_eq!(
        codec.verify_access_untimed(&with_iat(json!(NOW))),
        Ok(access(USER))
    );
    assert_eq!(
        codec.verify_access(&with_iat(json!("now"))),
        Err(TokenError::Invalid)
    );
}

// ---- aud ------------------------------------------------------------------------

#[test]
fn missing_aud_is_refused() {
    let (codec, _) = codec_at(NOW);
    let token = access_with(&json!({"sub": USER, "exp": NOW + 60}));
    assert_eq!(codec.verify_access(&token), Err(TokenError::Invalid));
    let token = forge(
        HEADER,
        &json!({"sub": USER, "password_fgpt": "fp", "exp": NOW + 60}).to_string(),
        RESET_SECRET,
    );
    assert_eq!(codec.verify_reset(&token), Err(TokenError::Invalid));
    let token = forge(
        HEADER,
        &json!({"sub": USER, "email": "a@example.com", "exp": NOW + 60}).to_string(),
        VERIFY_SECRET,
    );
    assert_eq!(codec.verify_verify(&token), Err(TokenError::Invalid));
}

#[test]
fn wrong_aud_is_refused() {
    let (codec, _) = codec_at(NOW);
    for aud in [
        json!("fastapi-users:reset"),
        json!(["fastapi-users:verify"]),
        json!("fastapi-users:auth "),
        json!("FASTAPI-USERS:AUTH"),
        json!(""),
        json!([]),
        json!(["fastapi-users:auth", 1]),
        json!([["fastapi-users:auth"]]),
        json!({"aud": "fastapi-users:auth"}),
        json!(null),
        json!(1),
    ] {
        let token = access_with(&json!({"sub": USER, "aud": aud, "exp": NOW + 60}));
        assert_eq!(
            codec.verify_access(&token),
            Err(TokenError::Invalid),
            "{aud}"
        );
    }
}

#[test]
fn aud_may_be_a_string_or_an_array_naming_the_audience() {
    let (codec, _) = codec_at(NOW);
    for aud in [
        json!("fastapi-users:auth"),
        json!(["fastapi-users:auth"]),
        json!(["other", "fastapi-users:auth"]),
    ] {
        let token = access_with(&json!({"sub": USER, "aud": aud, "exp": NOW + 60}));
        assert_eq!(
            codec.verify_access_untimed(&token),
            Ok(access(USER)),
            "{aud}"
        );
    }
    let token = forge(
        HEADER,
        &json!({"sub": USER, "password_fgpt": "fp", "aud": ["fastapi-users:reset"], "exp": NOW + 60})
            .to_string(),
        RESET_SECRET,
    );
    assert!(codec.verify_reset(&token).is_ok());
    let token = forge(
        HEADER,
        &json!({"sub": USER, "email": "a@example.com", "aud": ["fastapi-users:verify"], "exp": NOW + 60})
            .to_string(),
        VERIFY_SECRET,
    );
    assert!(codec.verify_verify(&token).is_ok());
}

// ---- required claims ------------------------------------------------------------

#[test]
fn missing_or_non_string_sub_is_refused() {
    let (codec, _) = codec_at(NOW);
    for sub in [
        None,
        Some(json!(42)),
        Some(json!(null)),
        Some(json!([USER])),
    ] {
        let mut claims = json!({"aud": ["fastapi-users:auth"], "exp": NOW + 60});
        if let Some(sub) = &sub {
            claims["sub"] = sub.clone();
        }
        assert_eq!(
            codec.verify_access(&access_with(&claims)),
            Err(TokenError::Invalid),
            "{sub:?}"
        );
    }
    let token = forge(
        HEADER,
        &json!({"password_fgpt": "fp", "aud": "fastapi-users:reset", "exp": NOW + 60}).to_string(),
        RESET_SECRET,
    );
    assert_eq!(codec.verify_reset(&token), Err(TokenError::Invalid));
    let token = forge(
        HEADER,
        &json!({"email": "a@example.com", "aud": "fastapi-users:verify", "exp": NOW + 60})
            .to_string(),
        VERIFY_SECRET,
    );
    assert_eq!(codec.verify_verify(&token), Err(TokenError::Invalid));
}

#[test]
fn sub_is_returned_unparsed() {
    // The domain parses it; a token may carry anything there.
    let (codec, _) = codec_at(NOW);
    let token =
        access_with(&json!({"sub": "not-a-uuid", "aud": ["fastapi-users:auth"], "exp": NOW + 60}));
    assert_eq!(
        codec.verify_access_untimed(&token),
        Ok(access("not-a-uuid"))
    );
}

#[test]
fn missing_or_non_string_fingerprint_and_email_are_refused() {
    let (codec, _) = codec_at(NOW);
    for fgpt in [None, Some(json!(1)), Some(json!(null))] {
        let mut claims = json!({"sub": USER, "aud": "fastapi-users:reset", "exp": NOW + 60});
        if let Some(f) = &fgpt {
            claims["password_fgpt"] = f.clone();
        }
        let token = forge(HEADER, &claims.to_string(), RESET_SECRET);
        assert_eq!(
            codec.verify_reset(&token),
            Err(TokenError::Invalid),
            "{fgpt:?}"
        );
    }
    for email in [None, Some(json!(["a@example.com"])), Some(json!(false))] {
        let mut claims = json!({"sub": USER, "aud": "fastapi-users:verify", "exp": NOW + 60});
        if let Some(e) = &email {
            claims["email"] = e.clone();
        }
        let token = forge(HEADER, &claims.to_string(), VERIFY_SECRET);
        assert_eq!(
            codec.verify_verify(&token),
            Err(TokenError::Invalid),
            "{email:?}"
        );
    }
}

#[test]
fn non_string_jti_is_refused_as_pyjwt_does() {
    let (codec, _) = codec_at(NOW);
    let token = access_with(
        &json!({"sub": USER, "aud": ["fastapi-users:auth"], "exp": NOW + 60, "jti": 7}),
    );
    assert_eq!(codec.verify_access(&token), Err(TokenError::Invalid));
    let token = access_with(
        &json!({"sub": USER, "aud": ["fastapi-users:auth"], "exp": NOW + 60, "jti": "x"}),
    );
    assert_eq!(codec.verify_access_untimed(&token), Ok(access(USER)));
}

// ---- malformed input ------------------------------------------------------------

#[test]
fn malformed_input_is_invalid_and_never_panics() {
    let (codec, _) = codec_at(NOW);
    let (h, p, s) = {
        let mut it = PY_ACCESS.split('.');
        (it.next().unwrap(), it.next().unwrap(), it.next().unwrap())
    };
    let not_object = URL_SAFE_NO_PAD.encode(b"[1,2]");
    let not_json = URL_SAFE_NO_PAD.encode(b"{\"alg\":\"HS256\"");
    let cases: Vec<String> = vec![
        String::new(),
        ".".into(),
        "..".into(),
        "...".into(),
        "garbage".into(),
        "a.b.c".into(),
        format!("{h}.{p}"),
        format!("{h}.{p}.{s}.{s}"),
        format!("{h}.{p}.{s}."),
        format!(" {PY_ACCESS}"),
        format!("{PY_ACCESS} "),
        format!("{PY_ACCESS}\n"),
        format!("Bearer {PY_ACCESS}"),
        format!("{h}=.{p}.{s}"),
        format!("{h}.{p}=.{s}"),
        format!("{h}.{p}.{s}="),
        format!("{h}.{p}.{}", &s[..s.len() - 1]),
        format!("{h}.{p}.{s}A"),
        format!("{h}.{p}.{}", s.replace('-', "+").replace('_', "/")),
        format!("{not_object}.{p}.{s}"),
        format!("{not_json}.{p}.{s}"),
        format!("é{PY_ACCESS}"),
        format!("{h}.{p}.{}", "A".repeat(MAX_TOKEN_LEN)),
        "a".repeat(10 * 1024 * 1024),
        ".".repeat(100_000),
        "\u{0}".into(),
    ];
    for token in &cases {
        assert_eq!(codec.verify_access(token), Err(TokenError::Invalid));
        assert_eq!(codec.verify_reset(token), Err(TokenError::Invalid));
        assert_eq!(codec.verify_verify(token), Err(TokenError::Invalid));
    }
}

#[test]
fn other_base64_spellings_of_a_valid_token_are_refused() {
    // A lenient decoder (padding optional, non-zero unused bits allowed)
    // reads each variant as the same bytes; only the canonical unpadded
    // spelling is a token.
    let lenient = GeneralPurpose::new(
        &alphabet::URL_SAFE,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let (codec, _) = codec_at(NOW);
    let (h, p, s) = {
        let mut it = PY_ACCESS.split('.');
        (it.next().unwrap(), it.next().unwrap(), it.next().unwrap())
    };
    let mut variants = Vec::new();
    for (segment, rebuild) in [
        (
            p,
            &(|x: &str| format!("{h}.{x}.{s}")) as &dyn Fn(&str) -> String,
        ),
        (s, &|x: &str| format!("{h}.{p}.{x}")),
    ] {
        let padded = format!("{segment}{}", "=".repeat((4 - segment.len() % 4) % 4));
        if padded != segment {
            variants.push(rebuild(&padded));
        }
        let (head, last) = segment.split_at(segment.len() - 1);
        for c in ('A'..='Z')
            .chain('a'..='z')
            .chain('0'..='9')
            .chain(['-', '_'])
        {
            let other = format!("{head}{c}");
            if other != segment && lenient.decode(&other).ok() == lenient.decode(segment).ok() {
                assert_ne!(c.to_string(), last);
                variants.push(rebuild(&other));
            }
        }
    }
    // The signature (32 bytes) has 2 unused bits: 3 other spellings, plus
    // the padded one.
    assert!(variants.len() >= 4, "{variants:?}");
    for token in &variants {
        assert_eq!(
            codec.verify_access(token),
            Err(TokenError::Invalid),
            "{token}"
        );
    }
    assert_eq!(codec.verify_access_untimed(PY_ACCESS), Ok(access(USER)));
}

#[test]
fn huge_nbf_and_iat_are_refused_not_a_panic() {
    let (codec, _) = codec_at(NOW);
    for (claim, value) in [
        ("nbf", json!(1e300)),
        ("nbf", json!(u64::MAX)),
        ("iat", json!(1e300)),
        ("iat", json!(u64::MAX)),
    ] {
        let mut claims = json!({"sub": USER, "aud": ["fastapi-users:auth"], "exp": NOW + 60});
        claims[claim] = value.clone();
        assert_eq!(
            codec.verify_access(&access_with(&claims)),
            Err(TokenError::Invalid),
            "{claim}: {value}"
        );
    }
}

#[test]
fn payloads_that_are_not_json_objects_are_refused_even_when_signed() {
    let (codec, _) = codec_at(NOW);
    for payload in [
        "",
        "null",
        "[]",
        "\"sub\"",
        "{",
        "{\"sub\":1,}",
        "\u{feff}{}",
        "42",
    ] {
        let token = forge(HEADER, payload, ACCESS_SECRET);
        assert_eq!(
            codec.verify_access(&token),
            Err(TokenError::Invalid),
            "{payload:?}"
        );
    }
}

#[test]
fn issuing_when_expiry_would_overflow_is_an_error_not_a_panic() {
    let (codec, _) = codec_at(i64::MAX - 10);
    assert!(matches!(
        codec.issue_access(user(), 0),
        Err(TokenError::Issue(_))
    ));
    assert!(matches!(
        codec.issue_reset(user(), "fp", None),
        Err(TokenError::Issue(_))
    ));
    assert!(matches!(
        codec.issue_verify(user(), &email(), None),
        Err(TokenError::Issue(_))
    ));
}

// ---- configuration --------------------------------------------------------------

#[test]
fn short_secrets_are_refused_naming_the_kind() {
    let clock: Arc<dyn Clock> = Arc::new(FakeClock(AtomicI64::new(NOW)));
    let short = "x".repeat(31);
    let cases = [
        (
            TokenSettings::new(short.clone(), RESET_SECRET, VERIFY_SECRET),
            TokenKind::Access,
        ),
        (
            TokenSettings::new(ACCESS_SECRET, short.clone(), VERIFY_SECRET),
            TokenKind::Reset,
        ),
        (
            TokenSettings::new(ACCESS_SECRET, RESET_SECRET, short.clone()),
            TokenKind::Verify,
        ),
    ];
    for (settings, kind) in cases {
        let err = JosekitTokenCodec::new(settings, clock.clone()).unwrap_err();
        assert_eq!(err, TokenConfigError::SecretTooShort { kind, len: 31 });
        assert_eq!(err.kind(), kind);
        assert_eq!(
            err.to_string(),
            format!("the {kind} token secret is 31 bytes long; it must be at least 32 bytes")
        );
    }
    let err = JosekitTokenCodec::new(TokenSettings::new("", "", ""), clock.clone()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the access token secret is 0 bytes long; it must be at least 32 bytes"
    );
    // Exactly 32 bytes is enough; length is counted in bytes, not characters.
    let ok = "y".repeat(32);
    assert!(
        JosekitTokenCodec::new(
            TokenSettings::new(ok.clone(), ok.clone(), ok),
            clock.clone()
        )
        .is_ok()
    );
    let sixteen_chars_32_bytes = "é".repeat(16);
    assert!(
        JosekitTokenCodec::new(
            TokenSettings::new(
                sixteen_chars_32_bytes.clone(),
                sixteen_chars_32_bytes.clone(),
                sixteen_chars_32_bytes
            ),
            clock
        )
        .is_ok()
    );
}

#[test]
fn non_positive_lifetimes_are_refused_naming_the_kind() {
    let clock: Arc<dyn Clock> = Arc::new(FakeClock(AtomicI64::new(NOW)));
    let mut s = settings();
    s.reset_lifetime_secs = 0;
    let err = JosekitTokenCodec::new(s, clock.clone()).unwrap_err();
    assert_eq!(
        err,
        TokenConfigError::NonPositiveLifetime {
            kind: TokenKind::Reset,
            secs: 0
        }
    );
    assert_eq!(
        err.to_string(),
        "the reset token lifetime must be a positive number of seconds, not 0"
    );
    let mut s = settings();
    s.verify_lifetime_secs = -5;
    assert_eq!(
        JosekitTokenCodec::new(s, clock).unwrap_err().kind(),
        TokenKind::Verify
    );
}

#[test]
fn debug_output_never_shows_secrets() {
    let (codec, _) = codec_at(NOW);
    let shown = format!("{:?} {:?}", settings(), codec);
    for secret in [ACCESS_SECRET, RESET_SECRET, VERIFY_SECRET] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert!(shown.contains("3600"));
}

#[test]
fn codec_is_usable_as_a_shared_port() {
    let (codec, _) = codec_at(NOW);
    let port: Arc<dyn TokenCodec> = Arc::new(codec);
    let token = port.issue_access(user(), 0).unwrap();
    assert_eq!(port.verify_access_untimed(&token), Ok(access(USER)));
}

/// The claims of a stampless token for `subject`, times aside (see
/// [`Untimed`]).
fn access(subject: &str) -> AccessClaims {
    AccessClaims {
        subject: subject.to_owned(),
        stamp: 0,
        expires_at: 0,
        issued_at: None,
    }
}

/// `verify_access` with the times (`exp`, `iat`) blanked, for the tests
/// about everything else; [`the_access_times_are_read_as_pyjwt_reads_them`]
/// checks them.
trait Untimed {
    fn verify_access_untimed(&self, token: &str) -> Result<AccessClaims, TokenError>;
}

impl<T: TokenCodec + ?Sized> Untimed for T {
    fn verify_access_untimed(&self, token: &str) -> Result<AccessClaims, TokenError> {
        self.verify_access(token).map(|claims| AccessClaims {
            expires_at: 0,
            issued_at: None,
            ..claims
        })
    }
}

#[test]
fn the_access_times_are_read_as_pyjwt_reads_them() {
    let (codec, _) = codec_at(NOW);
    let own = codec.issue_access(user(), 0).unwrap();
    assert_eq!(
        codec.verify_access(&own),
        Ok(AccessClaims {
            expires_at: NOW + 3600,
            ..access(USER)
        })
    );
    assert_eq!(
        codec
            .verify_access(PY_ACCESS)
            .map(|c| (c.expires_at, c.issued_at)),
        Ok((PY_EXP, None))
    );
    for (exp, iat, read) in [
        (json!(NOW + 60), json!(NOW - 5), (NOW + 60, Some(NOW - 5))),
        (
            json!(NOW as f64 + 60.9),
            json!(NOW as f64 - 4.5),
            (NOW + 60, Some(NOW - 5)),
        ),
    ] {
        let token = access_with(
            &json!({"sub": USER, "aud": ["fastapi-users:auth"], "exp": exp, "iat": iat}),
        );
        assert_eq!(
            codec
                .verify_access(&token)
                .map(|c| (c.expires_at, c.issued_at)),
            Ok(read),
            "{exp} {iat}"
        );
    }
}

// ---- Portcullis' own claims: the access stamp, the reset/verify state -------

#[test]
fn a_stamp_is_carried_after_aud_and_left_out_when_zero() {
    let (codec, _) = codec_at(NOW);
    let token = codec.issue_access(user(), 7).unwrap();
    let (text, _) = payload_of(&token);
    assert_eq!(
        text,
        format!(
            r#"{{"sub":"{USER}","aud":["fastapi-users:auth"],"stamp":7,"exp":{}}}"#,
            NOW + 3600
        )
    );
    assert_eq!(
        codec.verify_access(&token),
        Ok(AccessClaims {
            subject: USER.to_owned(),
            stamp: 7,
            expires_at: NOW + 3600,
            issued_at: None,
        })
    );
    let (text, _) = payload_of(&codec.issue_access(user(), 0).unwrap());
    assert!(!text.contains("stamp"), "{text}");
}

#[test]
fn a_stamp_that_is_no_integer_is_refused() {
    let (codec, _) = codec_at(NOW);
    for stamp in [json!("1"), json!(1.5), json!(null), json!([1])] {
        let claims =
            json!({"sub": USER, "aud": ["fastapi-users:auth"], "stamp": stamp, "exp": NOW + 10});
        assert_eq!(
            codec.verify_access(&access_with(&claims)),
            Err(TokenError::Invalid),
            "{stamp}"
        );
    }
}

#[test]
fn a_state_is_carried_before_aud_and_read_back() {
    let (codec, _) = codec_at(NOW);
    let reset = codec.issue_reset(user(), "fp", Some("s1")).unwrap();
    let (text, _) = payload_of(&reset);
    assert_eq!(
        text,
        format!(
            r#"{{"sub":"{USER}","password_fgpt":"fp","state":"s1","aud":"fastapi-users:reset","exp":{}}}"#,
            NOW + 3600
        )
    );
    assert_eq!(
        codec.verify_reset(&reset).unwrap().state.as_deref(),
        Some("s1")
    );
    let verify = codec.issue_verify(user(), &email(), Some("s2")).unwrap();
    let (text, _) = payload_of(&verify);
    assert!(
        text.contains(r#""email":"Mixed.Case@example.com","state":"s2","aud""#),
        "{text}"
    );
    assert_eq!(
        codec.verify_verify(&verify).unwrap().state.as_deref(),
        Some("s2")
    );
    // FastAPI Users' tokens have none.
    assert_eq!(
        codec
            .verify_reset(&codec.issue_reset(user(), "fp", None).unwrap())
            .unwrap()
            .state,
        None
    );
}

#[test]
fn a_state_that_is_no_string_is_refused() {
    let (codec, _) = codec_at(NOW);
    let claims = json!({"sub": USER, "password_fgpt": "fp", "state": 1, "aud": "fastapi-users:reset", "exp": NOW + 10});
    let token = forge(HEADER, &claims.to_string(), RESET_SECRET);
    assert_eq!(codec.verify_reset(&token), Err(TokenError::Invalid));
}

// ---- the hand-written decoder gives josekit's answers ---------------------------
//
// `open` no longer calls josekit's `jwt::decode_with_verifier`. These tests pin
// what josekit 0.10 (over serde_json and base64 0.22's URL_SAFE_NO_PAD) answered
// for the corners it handled, each checked against the josekit-based `open`
// before it was replaced.

/// A token with exactly these header and payload bytes (which need not be
/// UTF-8 or JSON), HMAC-SHA-256-signed with `secret`.
fn forge_bytes(header: &[u8], payload: &[u8], secret: &str) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = HS256
        .signer_from_bytes(secret)
        .unwrap()
        .sign(input.as_bytes())
        .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// A signed access token: `header` JSON over the valid claims of [`USER`].
fn access_with_header(header: &str) -> String {
    let claims = format!(r#"{{"sub":"{USER}","aud":["fastapi-users:auth"],"exp":{PY_EXP}}}"#);
    forge(header, &claims, ACCESS_SECRET)
}

/// A signed access token whose payload is exactly `payload`.
fn access_with_payload(payload: &str) -> String {
    forge(HEADER, payload, ACCESS_SECRET)
}

#[test]
fn a_duplicate_header_parameter_is_read_last_one_wins() {
    // serde_json's map keeps the last value of a repeated key, and josekit
    // judged that map.
    let (codec, _) = codec_at(NOW);
    for (header, ok) in [
        (r#"{"alg":"none","alg":"HS256"}"#, true),
        (r#"{"alg":1,"alg":"HS256","typ":"JWT"}"#, true),
        (r#"{"alg":"HS256","alg":"none"}"#, false),
        (r#"{"alg":"HS256","alg":"HS512"}"#, false),
        (r#"{"alg":"HS256","alg":null}"#, false),
        (r#"{"alg":"HS256","typ":1,"typ":"JWT"}"#, true),
        (r#"{"alg":"HS256","typ":"JWT","typ":1}"#, false),
        (r#"{"alg":"HS256","kid":1,"kid":"k"}"#, true),
        (r#"{"alg":"HS256","kid":"k","kid":1}"#, false),
    ] {
        let result = codec.verify_access_untimed(&access_with_header(header));
        if ok {
            assert_eq!(result, Ok(access(USER)), "{header}");
        } else {
            assert_eq!(result, Err(TokenError::Invalid), "{header}");
        }
    }
}

#[test]
fn a_duplicate_claim_is_read_last_one_wins() {
    let (codec, _) = codec_at(NOW);
    let aud = r#""aud":["fastapi-users:auth"]"#;
    let exp = NOW + 60;
    for (payload, ok) in [
        (
            format!(r#"{{"sub":1,"sub":"{USER}",{aud},"exp":{exp}}}"#),
            true,
        ),
        (
            format!(r#"{{"sub":"{USER}","sub":1,{aud},"exp":{exp}}}"#),
            false,
        ),
        (
            format!(r#"{{"sub":"{USER}","aud":"other",{aud},"exp":{exp}}}"#),
            true,
        ),
        (
            format!(r#"{{"sub":"{USER}","aud":7,{aud},"exp":{exp}}}"#),
            true,
        ),
        (
            format!(r#"{{"sub":"{USER}",{aud},"aud":"other","exp":{exp}}}"#),
            false,
        ),
        (
            format!(r#"{{"sub":"{USER}",{aud},"aud":[1],"exp":{exp}}}"#),
            false,
        ),
        (
            format!(r#"{{"sub":"{USER}",{aud},"exp":{},"exp":{exp}}}"#, NOW - 1),
            true,
        ),
        (
            format!(r#"{{"sub":"{USER}",{aud},"exp":"x","exp":{exp}}}"#),
            true,
        ),
        (
            format!(r#"{{"sub":"{USER}",{aud},"exp":{exp},"exp":{}}}"#, NOW - 1),
            false,
        ),
        (
            format!(
                r#"{{"sub":"{USER}",{aud},"exp":{exp},"nbf":{},"nbf":{NOW}}}"#,
                NOW + 99
            ),
            true,
        ),
        (
            format!(
                r#"{{"sub":"{USER}",{aud},"exp":{exp},"nbf":{NOW},"nbf":{}}}"#,
                NOW + 99
            ),
            false,
        ),
        (
            format!(r#"{{"sub":"{USER}",{aud},"exp":{exp},"jti":1,"jti":"j"}}"#),
            true,
        ),
        (
            format!(r#"{{"sub":"{USER}",{aud},"exp":{exp},"jti":"j","jti":1}}"#),
            false,
        ),
        (
            format!(r#"{{"sub":"{USER}",{aud},"exp":{exp},"stamp":"s","stamp":0}}"#),
            true,
        ),
        (
            format!(r#"{{"sub":"{USER}",{aud},"exp":{exp},"stamp":0,"stamp":"s"}}"#),
            false,
        ),
    ] {
        let result = codec.verify_access_untimed(&access_with_payload(&payload));
        if ok {
            assert_eq!(result, Ok(access(USER)), "{payload}");
        } else {
            assert_eq!(result, Err(TokenError::Invalid), "{payload}");
        }
    }
    // The same for the reset and verify claims.
    let token = forge(
        HEADER,
        &format!(
            r#"{{"sub":"{USER}","password_fgpt":1,"password_fgpt":"fp","state":2,"state":"s","aud":"fastapi-users:reset","exp":{exp}}}"#
        ),
        RESET_SECRET,
    );
    let reset = codec.verify_reset(&token).unwrap();
    assert_eq!(
        (reset.password_fingerprint.as_str(), reset.state.as_deref()),
        ("fp", Some("s"))
    );
    let token = forge(
        HEADER,
        &format!(
            r#"{{"sub":"{USER}","email":"a@example.com","email":null,"aud":"fastapi-users:verify","exp":{exp}}}"#
        ),
        VERIFY_SECRET,
    );
    assert_eq!(codec.verify_verify(&token), Err(TokenError::Invalid));
}

#[test]
fn escaped_names_and_values_are_read_unescaped() {
    let (codec, _) = codec_at(NOW);
    let token = access_with_header(r#"{"\u0061lg":"HS\u0032\u00356","t\u0079p":"JWT"}"#);
    assert_eq!(codec.verify_access_untimed(&token), Ok(access(USER)));
    let token = access_with_payload(&format!(
        r#"{{"s\u0075b":"{USER}","\u0061ud":["fastapi-users\u003aauth"],"exp":{},"st\u0061mp":3}}"#,
        NOW + 60
    ));
    assert_eq!(
        codec.verify_access_untimed(&token),
        Ok(AccessClaims {
            stamp: 3,
            ..access(USER)
        })
    );
    let token = access_with_payload(&format!(
        r#"{{"sub":"\u00e9\ud83d\ude00","aud":"fastapi-users:auth","exp":{}}}"#,
        NOW + 60
    ));
    assert_eq!(codec.verify_access_untimed(&token), Ok(access("é😀")));
}

#[test]
fn typ_is_not_judged_but_must_be_a_string_when_present() {
    let (codec, _) = codec_at(NOW);
    for header in [
        r#"{"alg":"HS256"}"#,
        r#"{"alg":"HS256","typ":"JWT"}"#,
        r#"{"typ":"jwt","alg":"HS256"}"#,
        r#"{"alg":"HS256","typ":""}"#,
    ] {
        assert_eq!(
            codec.verify_access_untimed(&access_with_header(header)),
            Ok(access(USER)),
            "{header}"
        );
    }
    for header in [
        r#"{"alg":"HS256","typ":1}"#,
        r#"{"alg":"HS256","typ":null}"#,
        r#"{"alg":"HS256","typ":["JWT"]}"#,
        r#"{"alg":"HS256","typ":{"t":"JWT"}}"#,
    ] {
        assert_eq!(
            codec.verify_access(&access_with_header(header)),
            Err(TokenError::Invalid),
            "{header}"
        );
    }
}

#[test]
fn the_other_header_parameters_are_judged_as_josekit_judged_them() {
    let (codec, _) = codec_at(NOW);
    for header in [
        r#"{"alg":"HS256","kid":"k","jku":"https://x","x5u":"https://x","cty":"JWT","url":"u"}"#,
        r#"{"alg":"HS256","x5t":"AAAA","x5t#S256":"AQ","nonce":"abc"}"#,
        r#"{"alg":"HS256","x5c":["AAAA","AQ=="]}"#,
        r#"{"alg":"HS256","jwk":{"kty":"oct"}}"#,
        r#"{"alg":"HS256","b64":false}"#,
        r#"{"alg":"HS256","b64":"x"}"#,
        r#"{"alg":"HS256","zip":"DEF"}"#,
        r#"{"alg":"HS256","other":{"deep":[1,2.5,null,true,{"x":"y"}]}}"#,
        r#"{"alg":"HS256","":""}"#,
    ] {
        assert_eq!(
            codec.verify_access_untimed(&access_with_header(header)),
            Ok(access(USER)),
            "{header}"
        );
    }
    for header in [
        r#"{"alg":"HS256","jku":1}"#,
        r#"{"alg":"HS256","x5u":null}"#,
        r#"{"alg":"HS256","cty":[]}"#,
        r#"{"alg":"HS256","url":{}}"#,
        r#"{"alg":"HS256","kid":null}"#,
        r#"{"alg":"HS256","x5t":"AAAA="}"#,
        r#"{"alg":"HS256","x5t":"AB"}"#,
        r#"{"alg":"HS256","x5t#S256":"a+b/"}"#,
        r#"{"alg":"HS256","nonce":1}"#,
        r#"{"alg":"HS256","x5c":"AAAA"}"#,
        r#"{"alg":"HS256","x5c":["AA-_"]}"#,
        r#"{"alg":"HS256","x5c":[1]}"#,
        r#"{"alg":"HS256","jwk":{}}"#,
        r#"{"alg":"HS256","jwk":{"kty":1}}"#,
        r#"{"alg":"HS256","jwk":"k"}"#,
    ] {
        assert_eq!(
            codec.verify_access(&access_with_header(header)),
            Err(TokenError::Invalid),
            "{header}"
        );
    }
}

#[test]
fn crit_in_any_shape_is_refused() {
    let (codec, _) = codec_at(NOW);
    for header in [
        r#"{"alg":"HS256","crit":"exp"}"#,
        r#"{"alg":"HS256","crit":null}"#,
        r#"{"alg":"HS256","crit":[1]}"#,
        r#"{"alg":"HS256","crit":{}}"#,
        r#"{"alg":"HS256","crit":["b64"],"b64":true}"#,
        r#"{"crit":[],"alg":"HS256"}"#,
        r#"{"alg":"HS256","cr\u0069t":[]}"#,
    ] {
        assert_eq!(
            codec.verify_access(&access_with_header(header)),
            Err(TokenError::Invalid),
            "{header}"
        );
    }
}

#[test]
fn text_that_is_not_utf8_or_has_a_lone_surrogate_is_refused_anywhere() {
    // serde_json refuses both while building a `Value`, unknown members
    // included (its `IgnoredAny` would not check UTF-8).
    let (codec, _) = codec_at(NOW);
    let claims = format!(r#"{{"sub":"{USER}","aud":["fastapi-users:auth"],"exp":{PY_EXP}"#);
    let headers: [&[u8]; 4] = [
        b"{\"alg\":\"HS256\",\"x\":\"\xff\"}",
        b"{\"alg\":\"HS256\",\"\xc3\":1}",
        br#"{"alg":"HS256","x":"\ud800"}"#,
        br#"{"alg":"HS256","x":["\udc00"]}"#,
    ];
    for header in headers {
        let token = forge_bytes(header, format!("{claims}}}").as_bytes(), ACCESS_SECRET);
        assert_eq!(
            codec.verify_access(&token),
            Err(TokenError::Invalid),
            "{header:?}"
        );
    }
    let members: [&[u8]; 6] = [
        b",\"x\":\"\xff\"",
        b",\"x\":{\"y\":[\"\xe9\"]}",
        b",\"\xff\":1",
        br#","x":"\ud800""#,
        br#","x":{"y":"\udfff"}"#,
        br#","jti":"\ud800""#,
    ];
    for member in members {
        let payload = [claims.as_bytes(), member, b"}"].concat();
        let token = forge_bytes(HEADER.as_bytes(), &payload, ACCESS_SECRET);
        assert_eq!(
            codec.verify_access(&token),
            Err(TokenError::Invalid),
            "{member:?}"
        );
    }
    // The same member, valid, is fine.
    let token = access_with_payload(&format!(r#"{claims},"x":{{"y":["é"]}}}}"#));
    assert_eq!(codec.verify_access_untimed(&token), Ok(access(USER)));
}

#[test]
fn whitespace_around_the_json_is_allowed_anything_else_is_not() {
    let (codec, _) = codec_at(NOW);
    let claims = format!(r#"{{"sub":"{USER}","aud":["fastapi-users:auth"],"exp":{PY_EXP}}}"#);
    let token = forge(" \t\n{ \"alg\" : \"HS256\" }\r\n ", &claims, ACCESS_SECRET);
    assert_eq!(codec.verify_access_untimed(&token), Ok(access(USER)));
    let token = forge(HEADER, &format!("\n {claims} \n"), ACCESS_SECRET);
    assert_eq!(codec.verify_access_untimed(&token), Ok(access(USER)));
    for (header, payload) in [
        (format!("{HEADER}x"), claims.clone()),
        (format!("{HEADER}{HEADER}"), claims.clone()),
        (format!("{HEADER}\u{0}"), claims.clone()),
        ("[]".to_owned(), claims.clone()),
        ("null".to_owned(), claims.clone()),
        (String::new(), claims.clone()),
        (HEADER.to_owned(), format!("{claims},")),
        (HEADER.to_owned(), format!("{claims}{{}}")),
        (HEADER.to_owned(), format!("{claims}\u{a0}")),
        (HEADER.to_owned(), format!("[{claims}]")),
    ] {
        let token = forge(&header, &payload, ACCESS_SECRET);
        assert_eq!(
            codec.verify_access(&token),
            Err(TokenError::Invalid),
            "{header} {payload}"
        );
    }
}

#[test]
fn registered_claim_types_are_judged_as_josekit_judged_them() {
    let (codec, _) = codec_at(NOW);
    let base = format!(
        r#""sub":"{USER}","aud":["fastapi-users:auth"],"exp":{}"#,
        NOW + 60
    );
    for extra in [
        r#""iss":"me""#,
        r#""jti":"""#,
        r#""nbf":0"#,
        r#""iat":0"#,
        r#""nbf":-0.0"#,
        r#""iat":-0"#,
        r#""nbf":0.5"#,
        r#""iat":1e2"#,
        r#""stamp":-3"#,
        r#""stamp":0"#,
        r#""exp2":-1"#,
        r#""email":1"#,
        r#""password_fgpt":[]"#,
        r#""state":{}"#,
    ] {
        let token = access_with_payload(&format!("{{{base},{extra}}}"));
        assert!(codec.verify_access(&token).is_ok(), "{extra}");
    }
    for extra in [
        r#""iss":1"#,
        r#""iss":null"#,
        r#""jti":null"#,
        r#""jti":["j"]"#,
        r#""nbf":-1"#,
        r#""iat":-1"#,
        r#""nbf":-0.5"#,
        r#""iat":-1e-300"#,
        r#""nbf":true"#,
        r#""iat":null"#,
        r#""stamp":9223372036854775808"#,
        r#""stamp":1.0"#,
        r#""stamp":1e3"#,
        r#""number":1e400"#,
        r#""number":-"#,
        r#""number":01"#,
        r#""number":1."#,
        r#""number":NaN"#,
    ] {
        let token = access_with_payload(&format!("{{{base},{extra}}}"));
        assert_eq!(
            codec.verify_access(&token),
            Err(TokenError::Invalid),
            "{extra}"
        );
    }
    // A negative `exp` is refused for its type as well as for being past.
    let token = access_with_payload(&format!(
        r#"{{"sub":"{USER}","aud":["fastapi-users:auth"],"exp":-1}}"#
    ));
    assert_eq!(codec.verify_access(&token), Err(TokenError::Invalid));
    // The stamp is handed back as written.
    let token = access_with_payload(&format!("{{{base},\"stamp\":-3}}"));
    assert_eq!(
        codec.verify_access_untimed(&token),
        Ok(AccessClaims {
            stamp: -3,
            ..access(USER)
        })
    );
}

#[test]
fn aud_elements_are_all_checked_even_after_a_match() {
    let (codec, _) = codec_at(NOW);
    for aud in [
        r#"["fastapi-users:auth","x"]"#,
        r#"["x","y","fastapi-users:auth"]"#,
        r#"["fastapi-users:auth","fastapi-users:auth"]"#,
    ] {
        let token = access_with_payload(&format!(
            r#"{{"sub":"{USER}","aud":{aud},"exp":{}}}"#,
            NOW + 60
        ));
        assert_eq!(
            codec.verify_access_untimed(&token),
            Ok(access(USER)),
            "{aud}"
        );
    }
    for aud in [
        r#"["fastapi-users:auth",null]"#,
        r#"["fastapi-users:auth",{"a":"fastapi-users:auth"}]"#,
        r#"["fastapi-users:auth",["x"]]"#,
        r#"["fastapi-users:auth",true]"#,
        r#"[1.5,"fastapi-users:auth"]"#,
        r#"["fastapi-users:auth","\udc00"]"#,
        r#"["fastapi-users:auth",1e400]"#,
        r#"["fastapi-users:auth",]"#,
        r#"{"fastapi-users:auth":"fastapi-users:auth"}"#,
        r#"true"#,
        r#"["fastapi-users:aut"]"#,
        r#"["fastapi-users:auth\u0000"]"#,
    ] {
        let token = access_with_payload(&format!(
            r#"{{"sub":"{USER}","aud":{aud},"exp":{}}}"#,
            NOW + 60
        ));
        assert_eq!(
            codec.verify_access(&token),
            Err(TokenError::Invalid),
            "{aud}"
        );
    }
}

#[test]
fn deep_nesting_is_refused_as_serde_json_refuses_it() {
    // serde_json stops at 128 levels of arrays and objects, the token's own
    // object counting as one: 127 nested inside it are refused.
    let (codec, _) = codec_at(NOW);
    let nested = |depth: usize| {
        access_with_payload(&format!(
            r#"{{"sub":"{USER}","aud":["fastapi-users:auth"],"exp":{},"x":{}{}}}"#,
            NOW + 60,
            "[".repeat(depth),
            "]".repeat(depth)
        ))
    };
    assert_eq!(codec.verify_access_untimed(&nested(126)), Ok(access(USER)));
    assert_eq!(codec.verify_access(&nested(127)), Err(TokenError::Invalid));
    let aud_nested = access_with_payload(&format!(
        r#"{{"sub":"{USER}","aud":["fastapi-users:auth",{}{}],"exp":{}}}"#,
        "[".repeat(130),
        "]".repeat(130),
        NOW + 60
    ));
    assert_eq!(codec.verify_access(&aud_nested), Err(TokenError::Invalid));
    let objects = |depth: usize| {
        format!(
            r#"{{"alg":"HS256","x":{}1{}}}"#,
            "{\"a\":".repeat(depth),
            "}".repeat(depth)
        )
    };
    assert_eq!(
        codec.verify_access_untimed(&access_with_header(&objects(126))),
        Ok(access(USER))
    );
    assert_eq!(
        codec.verify_access(&access_with_header(&objects(127))),
        Err(TokenError::Invalid)
    );
    let header = format!(
        r#"{{"alg":"HS256","x":{}1{}}}"#,
        "[".repeat(126),
        "]".repeat(126)
    );
    assert_eq!(
        codec.verify_access_untimed(&access_with_header(&header)),
        Ok(access(USER))
    );
}

#[test]
fn every_segment_is_strict_unpadded_base64url() {
    // base64 0.22's URL_SAFE_NO_PAD, as josekit used it: no padding, only
    // `A-Z a-z 0-9 - _`, the unused bits of the last character zero, and no
    // length of 1 mod 4.
    let (codec, _) = codec_at(NOW);
    let claims = format!(r#"{{"sub":"{USER}","aud":["fastapi-users:auth"],"exp":{PY_EXP}}}"#);
    // 28 header bytes: 38 characters, 4 unused bits in the last.
    let header = r#"{"alg":"HS256","typ":"JWT" }"#;
    let token = forge(header, &claims, ACCESS_SECRET);
    assert_eq!(codec.verify_access_untimed(&token), Ok(access(USER)));
    let (h, rest) = token.split_once('.').unwrap();
    assert_eq!(h.len() % 4, 2);
    let resign = |h: &str| {
        let (p, _) = rest.split_once('.').unwrap();
        let input = format!("{h}.{p}");
        let mac = HS256
            .signer_from_bytes(ACCESS_SECRET)
            .unwrap()
            .sign(input.as_bytes())
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac))
    };
    assert_eq!(codec.verify_access_untimed(&resign(h)), Ok(access(USER)));
    let last = h.chars().last().unwrap();
    let bumped = char::from(u8::try_from(u32::from(last) + 1).unwrap());
    for bad in [
        format!("{h}=="),
        format!("{h}="),
        format!("{}{bumped}", &h[..h.len() - 1]),
        format!("{h}A"),
        format!("{}+{}", &h[..4], &h[5..]),
        format!("{}/{}", &h[..4], &h[5..]),
        format!("{} {}", &h[..4], &h[4..]),
        format!("{}\n{}", &h[..4], &h[4..]),
        format!("{}%{}", &h[..4], &h[5..]),
    ] {
        // Signed over exactly these characters, so only the decoding refuses.
        assert_eq!(
            codec.verify_access(&resign(&bad)),
            Err(TokenError::Invalid),
            "{bad}"
        );
    }
    // A payload spelled with a non-canonical last character, re-signed.
    let p = URL_SAFE_NO_PAD.encode(&claims);
    assert_ne!(p.len() % 4, 0);
    let last = p.chars().last().unwrap();
    let bumped = char::from(u8::try_from(u32::from(last) + 1).unwrap());
    let input = format!(
        "{}.{}{bumped}",
        URL_SAFE_NO_PAD.encode(HEADER),
        &p[..p.len() - 1]
    );
    let mac = HS256
        .signer_from_bytes(ACCESS_SECRET)
        .unwrap()
        .sign(input.as_bytes())
        .unwrap();
    let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac));
    assert_eq!(codec.verify_access(&token), Err(TokenError::Invalid));
}

#[test]
fn only_a_32_byte_mac_is_a_signature() {
    let (codec, _) = codec_at(NOW);
    let (input, s) = PY_ACCESS.rsplit_once('.').unwrap();
    let mac = URL_SAFE_NO_PAD.decode(s).unwrap();
    assert_eq!(mac.len(), 32);
    let mut longer = mac.clone();
    longer.push(0);
    let twice = [mac.as_slice(), mac.as_slice()].concat();
    for signature in [&mac[..31], &mac[..0], &longer[..], &twice[..]] {
        let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature));
        assert_eq!(codec.verify_access(&token), Err(TokenError::Invalid));
    }
    assert_eq!(codec.verify_access_untimed(PY_ACCESS), Ok(access(USER)));
}

#[test]
fn a_valid_token_of_max_token_len_is_read_one_byte_more_is_not() {
    // Padded with an unknown claim and a `kid`, signed.
    let (codec, _) = codec_at(NOW);
    let sized = |len: usize| {
        for kid in 0..4 {
            for pad in 0..MAX_TOKEN_LEN {
                let header = format!(r#"{{"alg":"HS256","kid":"{}"}}"#, "k".repeat(kid));
                let payload = format!(
                    r#"{{"sub":"{USER}","aud":["fastapi-users:auth"],"exp":{PY_EXP},"pad":"{}"}}"#,
                    "p".repeat(pad)
                );
                let token = forge(&header, &payload, ACCESS_SECRET);
                if token.len() == len {
                    return token;
                }
                if token.len() > len {
                    break;
                }
            }
        }
        panic!("no token of {len} bytes");
    };
    assert_eq!(
        codec.verify_access_untimed(&sized(MAX_TOKEN_LEN)),
        Ok(access(USER))
    );
    assert_eq!(
        codec.verify_access(&sized(MAX_TOKEN_LEN + 1)),
        Err(TokenError::Invalid)
    );
    // Long but well under the limit: larger than any fixed buffer.
    assert_eq!(codec.verify_access_untimed(&sized(3000)), Ok(access(USER)));
}

/// `verify_access` as it was before the decoder was written: josekit's
/// `jwt::decode_with_verifier` (with the same pure-Rust key), the codec's
/// `crit`, audience and time checks, and the claims read from josekit's map.
fn verify_access_through_josekit(token: &str, now: i64) -> Result<AccessClaims, TokenError> {
    use josekit::JoseHeader as _;
    use serde_json::Map;

    use crate::codec::numeric_date;
    use crate::hs256::Hs256Key;

    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Invalid);
    }
    let key = Hs256Key::new(ACCESS_SECRET.as_bytes()).unwrap();
    let (payload, header) =
        josekit::jwt::decode_with_verifier(token, &key).map_err(|_| TokenError::Invalid)?;
    if header.claim("crit").is_some()
        || !payload
            .audience()
            .is_some_and(|auds| auds.contains(&"fastapi-users:auth"))
    {
        return Err(TokenError::Invalid);
    }
    let claims: Map<String, Value> = payload.into();
    let expires_at = numeric_date(claims.get("exp").ok_or(TokenError::Invalid)?)?;
    if expires_at <= now {
        return Err(TokenError::Invalid);
    }
    for name in ["nbf", "iat"] {
        if let Some(value) = claims.get(name)
            && numeric_date(value)? > now
        {
            return Err(TokenError::Invalid);
        }
    }
    let stamp = match claims.get("stamp") {
        None => 0,
        Some(Value::Number(n)) => n.as_i64().ok_or(TokenError::Invalid)?,
        Some(_) => return Err(TokenError::Invalid),
    };
    let Some(Value::String(subject)) = claims.get("sub") else {
        return Err(TokenError::Invalid);
    };
    Ok(AccessClaims {
        subject: subject.clone(),
        stamp,
        expires_at,
        issued_at: claims.get("iat").map(numeric_date).transpose()?,
    })
}

/// Every text one edit away from `text`: each character deleted, and each
/// of `inserts` put before each character and at the end.
fn one_edit_away(text: &str, inserts: &[&str]) -> Vec<String> {
    let mut bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    bounds.push(text.len());
    let mut out = Vec::new();
    for (n, &at) in bounds.iter().enumerate() {
        if let Some(&next) = bounds.get(n + 1) {
            out.push(format!("{}{}", &text[..at], &text[next..]));
        }
        for insert in inserts {
            out.push(format!("{}{insert}{}", &text[..at], &text[at..]));
        }
    }
    out
}

#[test]
fn the_decoder_answers_as_josekit_did_for_thousands_of_signed_near_misses() {
    // Signed headers and payloads one edit away from valid ones (so only
    // the decoding and the checks decide), compared with the josekit-based
    // reading, answer for answer, claims included.
    let (codec, _) = codec_at(NOW);
    let inserts = [
        "\"",
        "\\",
        ",",
        ":",
        "{",
        "}",
        "[",
        "]",
        "0",
        "-",
        "e",
        ".",
        " ",
        "\u{0}",
        "é",
        "\\u",
        "\\ud800",
        "1e999",
        "null",
        "\"alg\":\"none\",",
        "\"crit\":[],",
        "\"kid\":1,",
        "\"aud\":\"x\",",
        "\"sub\":2,",
        "\"exp\":1,",
        "\"stamp\":-1,",
        "\"nbf\":9e9,",
        "\"iat\":-0,",
        "\"jti\":[],",
        "\"iss\":{},",
        "\"x5t\":\"A=\",",
    ];
    let headers = [HEADER, r#"{"typ":"JWT","alg":"HS256","kid":"k"}"#];
    let payloads = [
        format!(
            r#"{{"sub":"{USER}","aud":["fastapi-users:auth"],"stamp":7,"exp":{}}}"#,
            NOW + 60
        ),
        format!(
            r#"{{"sub":"a","aud":"fastapi-users:auth","exp":{}.5,"iat":{NOW},"nbf":0}}"#,
            NOW + 60
        ),
    ];
    let mut compared = 0;
    let mut accepted = 0;
    let mut check = |header: &str, payload: &str| {
        let token = forge(header, payload, ACCESS_SECRET);
        let expected = verify_access_through_josekit(&token, NOW);
        assert_eq!(codec.verify_access(&token), expected, "{header} {payload}");
        compared += 1;
        accepted += usize::from(expected.is_ok());
    };
    for header in headers {
        for payload in &payloads {
            check(header, payload);
            for edited in one_edit_away(payload, &inserts) {
                check(header, &edited);
            }
        }
        for edited in one_edit_away(header, &inserts) {
            check(&edited, &payloads[0]);
        }
    }
    // Both answers occur often enough for the comparison to mean something.
    assert!(compared > 10_000, "{compared}");
    assert!(
        accepted > 500 && compared - accepted > 5_000,
        "{accepted} of {compared}"
    );
}

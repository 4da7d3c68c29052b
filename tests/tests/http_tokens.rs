//! The three kinds of token over real HTTP: their exact form (shared/API.md,
//! "Tokens"), and every way an access token must be refused.

use portcullis_tests::test_app::{
    AUTH_AUDIENCE, JWT_SECRET, PASSWORD, RESET_AUDIENCE, RESET_SECRET, Signing, TestApp,
    VERIFY_AUDIENCE, VERIFY_SECRET, access_token_for, b64url_decode, decode_jwt, forge_jwt,
    hs256_jwt, hs256_signed_with, now,
};
use serde_json::{Value, json};

/// This suite is about JWTs: its apps run `AUTH_STRATEGY=jwt` whatever
/// `PORTCULLIS_TEST_AUTH_STRATEGY` says (the `database` strategy's opaque
/// tokens: tests/http_sessions.rs).
async fn spawn_app() -> TestApp {
    spawn_app_with(Vec::<(&str, &str)>::new()).await
}

/// [`spawn_app`] with more variables.
async fn spawn_app_with<'a>(vars: impl IntoIterator<Item = (&'a str, &'a str)>) -> TestApp {
    let mut all = vec![("AUTH_STRATEGY", "jwt")];
    all.extend(vars);
    portcullis_tests::test_app::spawn_app_with(all).await
}

const OTHER_SECRET: &str = "not-the-secret-0123456789abcdef-0123456789";

/// Asserts `exp` is an integer `lifetime` seconds from now (give or take
/// the time the test took).
#[track_caller]
fn assert_exp_in(claims: &Value, lifetime: i64, issued_after: i64) {
    let exp = &claims["exp"];
    assert!(exp.is_i64() || exp.is_u64(), "exp is an integer: {claims}");
    let exp = exp.as_i64().expect("an i64");
    assert!(
        exp >= issued_after + lifetime && exp <= now() + lifetime + 1,
        "exp {exp} is about {lifetime}s after {issued_after}: {claims}"
    );
}

#[track_caller]
fn assert_keys(value: &Value, expected: &[&str]) {
    let mut keys: Vec<&str> = value
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    let mut expected = expected.to_vec();
    expected.sort_unstable();
    assert_eq!(keys, expected, "{value}");
}

/// A registered user and their id.
async fn ann(app: &TestApp) -> (Value, String) {
    let user = app.register_ok("ann@example.com", PASSWORD).await;
    let id = TestApp::id_of(&user);
    (user, id)
}

// ---------------------------------------------------------------- their form

#[actix_web::test]
async fn access_token_is_an_hs256_jwt_with_sub_aud_list_and_integer_exp() {
    let app = spawn_app().await;
    let (_, id) = ann(&app).await;
    let before = now();
    let token = app.login_token("ann@example.com", PASSWORD).await;
    let (header, claims) = decode_jwt(&token);
    assert_eq!(header["alg"], "HS256", "{header}");
    assert_eq!(header["typ"], "JWT", "{header}");
    assert_keys(&claims, &["sub", "aud", "exp"]);
    assert_eq!(claims["sub"], json!(id));
    assert_eq!(claims["aud"], json!([AUTH_AUDIENCE]));
    assert_exp_in(&claims, 3600, before);
    assert!(hs256_signed_with(&token, JWT_SECRET));
    assert!(!hs256_signed_with(&token, RESET_SECRET));
}

#[actix_web::test]
async fn access_token_lifetime_follows_jwt_access_token_expire_minutes() {
    let app = spawn_app_with([("JWT_ACCESS_TOKEN_EXPIRE_MINUTES", "5")]).await;
    ann(&app).await;
    let before = now();
    let token = app.login_token("ann@example.com", PASSWORD).await;
    let (_, claims) = decode_jwt(&token);
    assert_exp_in(&claims, 300, before);
}

#[actix_web::test]
async fn reset_token_carries_sub_password_fingerprint_and_the_reset_audience() {
    let app = spawn_app().await;
    let (_, id) = ann(&app).await;
    let before = now();
    let token = app.reset_token_for("ann@example.com").await;
    let (header, claims) = decode_jwt(&token);
    assert_eq!(header["alg"], "HS256", "{header}");
    // `state` is Portcullis' own (the account's state, shared/API.md
    // "Sessions"); FastAPI Users ignores it.
    assert_keys(&claims, &["sub", "password_fgpt", "state", "aud", "exp"]);
    assert_eq!(claims["sub"], json!(id));
    assert_eq!(claims["aud"], json!(RESET_AUDIENCE));
    let fingerprint = claims["password_fgpt"].as_str().expect("a string");
    assert!(!fingerprint.is_empty());
    assert!(!fingerprint.contains(PASSWORD));
    assert_exp_in(&claims, 3600, before);
    assert!(hs256_signed_with(&token, RESET_SECRET));
    assert!(!hs256_signed_with(&token, JWT_SECRET));
}

#[actix_web::test]
async fn verify_token_carries_sub_email_and_the_verify_audience() {
    let app = spawn_app().await;
    let user = app.register_ok("Ann.Smith@EXAMPLE.com", PASSWORD).await;
    let before = now();
    let token = app.verify_token_for("ann.smith@example.com").await;
    let (header, claims) = decode_jwt(&token);
    assert_eq!(header["alg"], "HS256", "{header}");
    assert_keys(&claims, &["sub", "email", "state", "aud", "exp"]);
    assert_eq!(claims["sub"], user["id"]);
    assert_eq!(claims["email"], "Ann.Smith@example.com");
    assert_eq!(claims["aud"], json!(VERIFY_AUDIENCE));
    assert_exp_in(&claims, 3600, before);
    assert!(hs256_signed_with(&token, VERIFY_SECRET));
    assert!(!hs256_signed_with(&token, JWT_SECRET));
}

/// The header segment PyJWT writes: `{"alg":"HS256","typ":"JWT"}`.
const PYJWT_HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// The JSON text of a token's payload, as sent.
fn payload_text(token: &str) -> String {
    let payload = token.split('.').nth(1).expect("a payload");
    String::from_utf8(b64url_decode(payload).expect("base64url")).expect("UTF-8")
}

#[actix_web::test]
async fn tokens_are_byte_compatible_with_fastapi_users() {
    // PyJWT writes the header and claims compactly, in insertion order,
    // non-ASCII escaped (json.dumps defaults): the same bytes here.
    let app = spawn_app().await;
    let user = app.register_ok("ännä@exämple.com", PASSWORD).await;
    let id = TestApp::id_of(&user);

    let access = app.login_token("ännä@exämple.com", PASSWORD).await;
    assert!(access.starts_with(&format!("{PYJWT_HEADER}.")), "{access}");
    let exp = decode_jwt(&access).1["exp"].clone();
    assert_eq!(
        payload_text(&access),
        format!(r#"{{"sub":"{id}","aud":["fastapi-users:auth"],"exp":{exp}}}"#)
    );

    let verify = app.verify_token_for("ännä@exämple.com").await;
    assert!(verify.starts_with(&format!("{PYJWT_HEADER}.")), "{verify}");
    let claims = decode_jwt(&verify).1;
    let (exp, state) = (&claims["exp"], claims["state"].as_str().expect("a state"));
    assert_eq!(
        payload_text(&verify),
        format!(
            r#"{{"sub":"{id}","email":"\u00e4nn\u00e4@ex\u00e4mple.com","state":"{state}","aud":"fastapi-users:verify","exp":{exp}}}"#
        )
    );

    let reset = app.reset_token_for("ännä@exämple.com").await;
    assert!(reset.starts_with(&format!("{PYJWT_HEADER}.")), "{reset}");
    let claims = decode_jwt(&reset).1;
    let fingerprint = claims["password_fgpt"].as_str().expect("a string");
    assert!(
        fingerprint.starts_with("$argon2id$"),
        "password_fgpt is a password hash: {fingerprint}"
    );
    assert_eq!(
        payload_text(&reset),
        format!(
            r#"{{"sub":"{id}","password_fgpt":"{fingerprint}","state":{},"aud":"fastapi-users:reset","exp":{}}}"#,
            claims["state"], claims["exp"]
        )
    );
}

// ---------------------------------------------------------------- forged, accepted

#[actix_web::test]
async fn a_token_minted_elsewhere_with_the_shared_secret_is_accepted() {
    let app = spawn_app().await;
    let (user, id) = ann(&app).await;
    // Exactly what PyJWT / FastAPI Users would mint.
    let token = access_token_for(&id, 60);
    assert_eq!(app.me(&token).await.expect_json(200), user);
}

#[actix_web::test]
async fn access_token_with_a_plain_string_audience_is_accepted() {
    let app = spawn_app().await;
    let (user, id) = ann(&app).await;
    let token = hs256_jwt(
        &json!({"sub": id, "aud": AUTH_AUDIENCE, "exp": now() + 60}),
        JWT_SECRET,
    );
    assert_eq!(app.me(&token).await.expect_json(200), user);
}

#[actix_web::test]
async fn access_token_with_a_past_nbf_is_accepted() {
    let app = spawn_app().await;
    let (user, id) = ann(&app).await;
    let token = hs256_jwt(
        &json!({"sub": id, "aud": [AUTH_AUDIENCE], "exp": now() + 60, "nbf": now() - 10}),
        JWT_SECRET,
    );
    assert_eq!(app.me(&token).await.expect_json(200), user);
}

#[actix_web::test]
async fn bearer_scheme_is_case_insensitive() {
    let app = spawn_app().await;
    let (user, _) = ann(&app).await;
    let token = app.login_token("ann@example.com", PASSWORD).await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let res = app
            .get_with_authorization("/users/me", &format!("{scheme} {token}"))
            .await;
        assert_eq!(res.expect_json(200), user, "{scheme}");
    }
}

// ---------------------------------------------------------------- refused

#[actix_web::test]
async fn access_token_with_alg_none_is_refused() {
    let app = spawn_app().await;
    let (_, id) = ann(&app).await;
    let claims = json!({"sub": id, "aud": [AUTH_AUDIENCE], "exp": now() + 600});
    for alg in ["none", "None", "NONE"] {
        let header = json!({"alg": alg, "typ": "JWT"});
        let unsigned = forge_jwt(&header, &claims, JWT_SECRET, Signing::None);
        app.me(&unsigned).await.expect_401();
        // Even with a valid HS256 signature attached.
        let signed = forge_jwt(&header, &claims, JWT_SECRET, Signing::Hs256);
        app.me(&signed).await.expect_401();
    }
    // And an HS256 header without a signature.
    let header = json!({"alg": "HS256", "typ": "JWT"});
    app.me(&forge_jwt(&header, &claims, JWT_SECRET, Signing::None))
        .await
        .expect_401();
}

#[actix_web::test]
async fn access_token_signed_hs384_or_hs512_with_the_right_secret_is_refused() {
    let app = spawn_app().await;
    let (_, id) = ann(&app).await;
    let claims = json!({"sub": id, "aud": [AUTH_AUDIENCE], "exp": now() + 600});
    for (alg, signing) in [("HS384", Signing::Hs384), ("HS512", Signing::Hs512)] {
        let token = forge_jwt(
            &json!({"alg": alg, "typ": "JWT"}),
            &claims,
            JWT_SECRET,
            signing,
        );
        app.me(&token).await.expect_401();
        // Nor when the header lies about the algorithm.
        let liar = forge_jwt(
            &json!({"alg": "HS256", "typ": "JWT"}),
            &claims,
            JWT_SECRET,
            signing,
        );
        app.me(&liar).await.expect_401();
    }
    for alg in ["RS256", "ES256", "PS256", "EdDSA", "hs256"] {
        let token = forge_jwt(
            &json!({"alg": alg, "typ": "JWT"}),
            &claims,
            JWT_SECRET,
            Signing::Hs256,
        );
        app.me(&token).await.expect_401();
    }
}

#[actix_web::test]
async fn access_token_signed_with_another_secret_is_refused() {
    let app = spawn_app().await;
    let (_, id) = ann(&app).await;
    let claims = json!({"sub": id, "aud": [AUTH_AUDIENCE], "exp": now() + 600});
    for secret in [OTHER_SECRET, RESET_SECRET, VERIFY_SECRET] {
        app.me(&hs256_jwt(&claims, secret)).await.expect_401();
    }
}

#[actix_web::test]
async fn access_token_expired_by_one_second_is_refused() {
    let app = spawn_app().await;
    let (_, id) = ann(&app).await;
    app.me(&access_token_for(&id, -1)).await.expect_401();
    app.me(&access_token_for(&id, -3600)).await.expect_401();
    // The positive control: the same token, still valid.
    app.me(&access_token_for(&id, 30)).await.expect_json(200);
}

#[actix_web::test]
async fn access_token_with_a_future_nbf_is_refused() {
    let app = spawn_app().await;
    let (_, id) = ann(&app).await;
    let token = hs256_jwt(
        &json!({"sub": id, "aud": [AUTH_AUDIENCE], "exp": now() + 600, "nbf": now() + 60}),
        JWT_SECRET,
    );
    app.me(&token).await.expect_401();
}

#[actix_web::test]
async fn access_token_with_a_wrong_or_missing_audience_is_refused() {
    let app = spawn_app().await;
    let (_, id) = ann(&app).await;
    let exp = now() + 600;
    for aud in [
        json!([RESET_AUDIENCE]),
        json!(RESET_AUDIENCE),
        json!([VERIFY_AUDIENCE]),
        json!(VERIFY_AUDIENCE),
        json!("fastapi-users:AUTH"),
        json!([]),
        json!("other"),
    ] {
        let token = hs256_jwt(&json!({"sub": id, "aud": aud, "exp": exp}), JWT_SECRET);
        app.me(&token).await.expect_401();
    }
    let no_aud = hs256_jwt(&json!({"sub": id, "exp": exp}), JWT_SECRET);
    app.me(&no_aud).await.expect_401();
}

#[actix_web::test]
async fn access_token_with_a_missing_unknown_or_malformed_subject_is_refused() {
    let app = spawn_app().await;
    ann(&app).await;
    let exp = now() + 600;
    for sub in [
        json!("0f8fad5b-d9cb-469f-a165-70867728950e"),
        json!("not-a-uuid"),
        json!(42),
        json!(null),
    ] {
        let token = hs256_jwt(
            &json!({"sub": sub, "aud": [AUTH_AUDIENCE], "exp": exp}),
            JWT_SECRET,
        );
        app.me(&token).await.expect_401();
    }
    let no_sub = hs256_jwt(&json!({"aud": [AUTH_AUDIENCE], "exp": exp}), JWT_SECRET);
    app.me(&no_sub).await.expect_401();
}

#[actix_web::test]
async fn a_tampered_access_token_is_refused() {
    let app = spawn_app().await;
    ann(&app).await;
    let bob = app.register_ok("bob@example.com", PASSWORD).await;
    let token = app.login_token("ann@example.com", PASSWORD).await;
    let (header, mut claims) = decode_jwt(&token);
    claims["sub"] = bob["id"].clone();
    let signature = token.rsplit('.').next().expect("three parts");
    let unsigned = forge_jwt(&header, &claims, JWT_SECRET, Signing::None);
    let tampered = format!("{unsigned}{signature}");
    app.me(&tampered).await.expect_401();
}

#[actix_web::test]
async fn extra_claims_in_a_token_grant_no_rights() {
    let app = spawn_app().await;
    let (_, id) = ann(&app).await;
    let token = hs256_jwt(
        &json!({
            "sub": id,
            "aud": [AUTH_AUDIENCE],
            "exp": now() + 600,
            "is_superuser": true,
            "is_verified": true,
            "role": "admin",
            "scopes": ["admin"],
        }),
        JWT_SECRET,
    );
    let me = app.me(&token).await.expect_json(200);
    assert_eq!(me["is_superuser"], false);
    assert_eq!(me["role"], "student");
    app.get_with_token(&format!("/users/{id}"), &token)
        .await
        .expect_403();
}

#[actix_web::test]
async fn reset_and_verify_tokens_are_not_access_tokens() {
    let app = spawn_app().await;
    ann(&app).await;
    app.register_ok("bob@example.com", PASSWORD).await;
    // Two users: a verification would kill a reset token of the same
    // account (its state changed), and the reverse.
    let reset = app.reset_token_for("bob@example.com").await;
    let verify = app.verify_token_for("ann@example.com").await;
    app.me(&reset).await.expect_401();
    app.me(&verify).await.expect_401();
    // Both still do their own job afterwards.
    app.verify(&verify).await.expect_json(200);
    app.reset_password(&reset, "brand new password")
        .await
        .expect_null(200);
}

#[actix_web::test]
async fn an_access_token_is_neither_a_reset_nor_a_verify_token() {
    let app = spawn_app().await;
    ann(&app).await;
    let access = app.login_token("ann@example.com", PASSWORD).await;
    app.reset_password(&access, "brand new password")
        .await
        .expect_code("RESET_PASSWORD_BAD_TOKEN");
    app.verify(&access)
        .await
        .expect_code("VERIFY_USER_BAD_TOKEN");
    app.login_token("ann@example.com", PASSWORD).await;
}

#[actix_web::test]
async fn a_reset_token_is_no_verify_token_and_the_reverse() {
    let app = spawn_app().await;
    ann(&app).await;
    let reset = app.reset_token_for("ann@example.com").await;
    let verify = app.verify_token_for("ann@example.com").await;
    app.verify(&reset)
        .await
        .expect_code("VERIFY_USER_BAD_TOKEN");
    app.reset_password(&verify, "brand new password")
        .await
        .expect_code("RESET_PASSWORD_BAD_TOKEN");
}

#[actix_web::test]
async fn tokens_signed_with_the_access_secret_but_another_audience_are_refused_everywhere() {
    let app = spawn_app().await;
    let (_, id) = ann(&app).await;
    let exp = now() + 600;
    // A verify token signed with the access secret.
    let verify_claims =
        json!({"sub": id, "email": "ann@example.com", "aud": VERIFY_AUDIENCE, "exp": exp});
    app.verify(&hs256_jwt(&verify_claims, JWT_SECRET))
        .await
        .expect_code("VERIFY_USER_BAD_TOKEN");
    // A correct one, as control.
    app.verify(&hs256_jwt(&verify_claims, VERIFY_SECRET))
        .await
        .expect_json(200);
    // An access token signed with the verify secret.
    let access_claims = json!({"sub": id, "aud": [AUTH_AUDIENCE], "exp": exp});
    app.me(&hs256_jwt(&access_claims, VERIFY_SECRET))
        .await
        .expect_401();
}

#[actix_web::test]
async fn a_token_in_the_query_string_is_not_read() {
    let app = spawn_app().await;
    ann(&app).await;
    let token = app.login_token("ann@example.com", PASSWORD).await;
    for query in ["access_token", "token", "authorization", "Authorization"] {
        app.get(&format!("/users/me?{query}={token}"))
            .await
            .expect_401();
    }
    app.get(&format!("/users/me?Authorization=Bearer%20{token}"))
        .await
        .expect_401();
}

#[actix_web::test]
async fn other_authorization_schemes_are_refused() {
    let app = spawn_app().await;
    ann(&app).await;
    let token = app.login_token("ann@example.com", PASSWORD).await;
    for value in [
        token.clone(),
        format!("Basic {token}"),
        format!("Token {token}"),
        format!("JWT {token}"),
        format!("Bearer{token}"),
        format!("Bearer {token}x"),
    ] {
        app.get_with_authorization("/users/me", &value)
            .await
            .expect_401();
    }
}

#[actix_web::test]
async fn a_token_in_a_cookie_other_than_the_session_cookie_is_not_read() {
    // The session cookie (`COOKIE_NAME`, `fastapiusersauth` by default) is
    // read since issue 10 (tests/tests/http_sessions.rs); no other is.
    let app = spawn_app_with([("COOKIE_NAME", "sid")]).await;
    ann(&app).await;
    let token = app.login_token("ann@example.com", PASSWORD).await;
    let res = app
        .send_to(
            awc::http::Method::GET,
            &app.url("/users/me"),
            &[(
                "cookie",
                &format!(
                    "fastapiusersauth={token}; access_token={token}; Authorization=Bearer%20{token}"
                ),
            )],
            portcullis_tests::test_app::Body::Empty,
        )
        .await;
    res.expect_401();
}

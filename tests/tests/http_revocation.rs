//! Sessions over real HTTP (shared/API.md, "Beyond FastAPI Users →
//! Sessions"): the two `AUTH_STRATEGY`s, revocation on a password change or
//! reset and on deactivation, and reset and verification tokens bound to
//! the account's state.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use actix_web::{App, test};
use awc::http::Method;
use portcullis::domain::Clock;
use portcullis::{AuthStrategy, PortcullisBuilder};
use portcullis_tests::test_app::{
    Body, PASSWORD, TestApp, access_token_for, decode_jwt, now, spawn_app_with,
};
use serde_json::json;

const NEW_PASSWORD: &str = "a brand new password";

/// An app on `strategy` (`jwt` or `database`), whatever
/// `PORTCULLIS_TEST_AUTH_STRATEGY` says.
async fn app_on(strategy: &str) -> TestApp {
    spawn_app_with([("AUTH_STRATEGY", strategy)]).await
}

const STRATEGIES: [&str; 2] = ["jwt", "database"];

/// `token` works: `GET /users/me` is 200 and names `email`.
async fn assert_works(app: &TestApp, token: &str, email: &str) {
    let me = app.me(token).await.expect_json(200);
    assert_eq!(me["email"], email, "{me}");
}

#[actix_web::test]
async fn a_password_change_ends_every_session_and_the_new_password_logs_in() {
    for strategy in STRATEGIES {
        let app = app_on(strategy).await;
        let (_, first) = app.new_user("ann@example.com").await;
        let second = app.login_token("ann@example.com", PASSWORD).await;
        assert_works(&app, &second, "ann@example.com").await;

        app.patch_json(
            "/users/me",
            Some(&first),
            &json!({ "password": NEW_PASSWORD }),
        )
        .await
        .expect_json(200);

        app.me(&first).await.expect_401();
        app.me(&second).await.expect_401();
        app.login("ann@example.com", PASSWORD)
            .await
            .expect_code("LOGIN_BAD_CREDENTIALS");
        let fresh = app.login_token("ann@example.com", NEW_PASSWORD).await;
        assert_works(&app, &fresh, "ann@example.com").await;
    }
}

#[actix_web::test]
async fn a_patch_without_a_password_keeps_the_sessions() {
    for strategy in STRATEGIES {
        let app = app_on(strategy).await;
        let (_, token) = app.new_user("ann@example.com").await;
        app.patch_json("/users/me", Some(&token), &json!({}))
            .await
            .expect_json(200);
        assert_works(&app, &token, "ann@example.com").await;
    }
}

#[actix_web::test]
async fn a_reset_ends_every_session() {
    for strategy in STRATEGIES {
        let app = app_on(strategy).await;
        let (_, token) = app.new_user("ann@example.com").await;
        let reset = app.reset_token_for("ann@example.com").await;
        app.reset_password(&reset, NEW_PASSWORD)
            .await
            .expect_null(200);
        app.me(&token).await.expect_401();
        let fresh = app.login_token("ann@example.com", NEW_PASSWORD).await;
        assert_works(&app, &fresh, "ann@example.com").await;
    }
}

#[actix_web::test]
async fn an_admin_password_change_and_a_deactivation_end_every_session() {
    for strategy in STRATEGIES {
        let app = app_on(strategy).await;
        let (user, before_change) = app.new_user("ann@example.com").await;
        let id = TestApp::id_of(&user);

        app.admin_patch(&id, &json!({ "password": NEW_PASSWORD }))
            .await
            .expect_json(200);
        app.me(&before_change).await.expect_401();

        let before_deactivation = app.login_token("ann@example.com", NEW_PASSWORD).await;
        app.admin_patch(&id, &json!({ "is_active": false }))
            .await
            .expect_json(200);
        app.admin_patch(&id, &json!({ "is_active": true }))
            .await
            .expect_json(200);
        // Reactivated: the session of before stays ended, a new one works.
        app.me(&before_deactivation).await.expect_401();
        let fresh = app.login_token("ann@example.com", NEW_PASSWORD).await;
        assert_works(&app, &fresh, "ann@example.com").await;

        // Another change (a role, a flag) keeps the session.
        app.admin_patch(&id, &json!({ "is_verified": true }))
            .await
            .expect_json(200);
        assert_works(&app, &fresh, "ann@example.com").await;
    }
}

#[actix_web::test]
async fn a_deleted_users_sessions_end() {
    for strategy in STRATEGIES {
        let app = app_on(strategy).await;
        let (user, token) = app.new_user("ann@example.com").await;
        let admin = app.superuser_token().await;
        let path = format!("/users/{}", TestApp::id_of(&user));
        app.delete(&path, Some(&admin)).await.expect_empty(204);
        app.me(&token).await.expect_401();
    }
}

#[actix_web::test]
async fn a_reset_token_dies_when_the_account_is_deactivated_and_reactivated() {
    let app = app_on("jwt").await;
    let user = app.register_ok("ann@example.com", PASSWORD).await;
    let id = TestApp::id_of(&user);
    let reset = app.reset_token_for("ann@example.com").await;
    app.admin_patch(&id, &json!({ "is_active": false }))
        .await
        .expect_json(200);
    app.admin_patch(&id, &json!({ "is_active": true }))
        .await
        .expect_json(200);
    app.reset_password(&reset, NEW_PASSWORD)
        .await
        .expect_code("RESET_PASSWORD_BAD_TOKEN");
    // The password did not change.
    app.login_token("ann@example.com", PASSWORD).await;
}

#[actix_web::test]
async fn a_reset_token_dies_when_the_address_is_verified_after_it() {
    let app = app_on("jwt").await;
    let user = app.register_ok("ann@example.com", PASSWORD).await;
    let reset = app.reset_token_for("ann@example.com").await;
    let (_, claims) = decode_jwt(&reset);
    assert!(
        claims["state"].as_str().is_some_and(|s| s.len() == 32),
        "a state claim: {claims}"
    );
    app.admin_patch(&TestApp::id_of(&user), &json!({ "is_verified": true }))
        .await
        .expect_json(200);
    app.reset_password(&reset, NEW_PASSWORD)
        .await
        .expect_code("RESET_PASSWORD_BAD_TOKEN");
}

#[actix_web::test]
async fn a_verify_token_dies_when_the_address_or_the_password_changes() {
    let app = app_on("jwt").await;
    // The address: the token names the old one.
    let user = app.register_ok("ann@example.com", PASSWORD).await;
    let verify = app.verify_token_for("ann@example.com").await;
    app.admin_patch(
        &TestApp::id_of(&user),
        &json!({ "email": "ann.new@example.com" }),
    )
    .await
    .expect_json(200);
    app.verify(&verify)
        .await
        .expect_code("VERIFY_USER_BAD_TOKEN");

    // The password: only the state claim tells (FastAPI Users' checks
    // would let this token by).
    let (_, token) = app.new_user("bob@example.com").await;
    let verify = app.verify_token_for("bob@example.com").await;
    app.patch_json(
        "/users/me",
        Some(&token),
        &json!({ "password": NEW_PASSWORD }),
    )
    .await
    .expect_json(200);
    app.verify(&verify)
        .await
        .expect_code("VERIFY_USER_BAD_TOKEN");
    let fresh = app.login_token("bob@example.com", NEW_PASSWORD).await;
    assert_eq!(app.me(&fresh).await.expect_json(200)["is_verified"], false);
}

#[actix_web::test]
async fn a_jwt_carries_the_stamp_once_sessions_were_ended_and_a_stampless_one_from_before_dies_then()
 {
    let app = app_on("jwt").await;
    let (user, token) = app.new_user("ann@example.com").await;
    let id = TestApp::id_of(&user);
    let (_, claims) = decode_jwt(&token);
    assert!(claims.get("stamp").is_none(), "no stamp at 0: {claims}");
    // A token as FastAPI Users mints it (no stamp) works while the stamp is 0.
    let foreign = access_token_for(&id, 600);
    assert_works(&app, &foreign, "ann@example.com").await;

    let before_change = now();
    app.patch_json(
        "/users/me",
        Some(&token),
        &json!({ "password": NEW_PASSWORD }),
    )
    .await
    .expect_json(200);
    app.me(&foreign).await.expect_401();
    let fresh = app.login_token("ann@example.com", NEW_PASSWORD).await;
    let (_, claims) = decode_jwt(&fresh);
    // The stamp is the time of the change, in Unix milliseconds.
    let stamp = claims["stamp"].as_i64().expect("an integer stamp");
    assert!(
        (before_change * 1000..=(now() + 1) * 1000).contains(&stamp),
        "{claims}"
    );
    assert_works(&app, &fresh, "ann@example.com").await;
}

#[actix_web::test]
async fn a_jwt_logout_is_204_and_the_token_keeps_working() {
    // Documented: a JWT cannot be revoked alone.
    let app = app_on("jwt").await;
    let (_, token) = app.new_user("ann@example.com").await;
    app.send(Method::POST, "/auth/jwt/logout", Some(&token), Body::Empty)
        .await
        .expect_empty(204);
    assert_works(&app, &token, "ann@example.com").await;
}

#[actix_web::test]
async fn the_database_strategy_issues_opaque_tokens_that_logout_revokes() {
    let app = app_on("database").await;
    app.register_ok("ann@example.com", PASSWORD).await;
    let body = app
        .login("ann@example.com", PASSWORD)
        .await
        .expect_json(200);
    assert_eq!(body["token_type"], "bearer", "{body}");
    let token = body["access_token"].as_str().expect("a token").to_owned();
    assert_eq!(token.len(), 43, "{token}");
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "URL-safe: {token}"
    );
    let other = app.login_token("ann@example.com", PASSWORD).await;
    assert_ne!(token, other);
    assert_works(&app, &token, "ann@example.com").await;

    app.send(Method::POST, "/auth/jwt/logout", Some(&token), Body::Empty)
        .await
        .expect_empty(204);
    app.me(&token).await.expect_401();
    app.send(Method::POST, "/auth/jwt/logout", Some(&token), Body::Empty)
        .await
        .expect_401();
    // Only that session ended.
    assert_works(&app, &other, "ann@example.com").await;
}

#[actix_web::test]
async fn the_database_strategy_refuses_garbage_and_jwts_with_401() {
    let app = app_on("database").await;
    let (user, token) = app.new_user("ann@example.com").await;
    let jwt = access_token_for(&TestApp::id_of(&user), 600);
    let mut near_miss = token.clone();
    near_miss.replace_range(0..1, if token.starts_with('A') { "B" } else { "A" });
    let long = "a".repeat(10 * 1024);
    for bad in [
        jwt.as_str(),
        near_miss.as_str(),
        &token[..42],
        &format!("{token}A"),
        long.as_str(),
        "é",
        "%00",
        "a.b.c",
    ] {
        let response = app
            .get_with_authorization("/users/me", &format!("Bearer {bad}"))
            .await;
        assert_eq!(response.status, 401, "{bad:?}: {}", response.text());
        response.expect_401();
    }
    assert_works(&app, &token, "ann@example.com").await;
}

/// A clock the test moves.
struct StepClock(AtomicI64);

impl Clock for StepClock {
    fn now_unix(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[actix_web::test]
async fn a_database_token_expires_after_the_access_token_lifetime() {
    // The server of the other tests reads the system clock: this one is
    // built in process over a clock the test moves (the same actix stack,
    // mounted as a host would).
    let start = now();
    let clock = Arc::new(StepClock(AtomicI64::new(start)));
    let service = PortcullisBuilder::new()
        .token_secrets([1; 32], [2; 32], [3; 32])
        .auth_strategy(AuthStrategy::Database)
        .access_token_lifetime(Duration::from_secs(60))
        .clock(clock.clone())
        .build()
        .expect("valid settings");
    let app = test::init_service(App::new().configure(portcullis::mount(service, "/api"))).await;
    let register = test::TestRequest::post()
        .uri("/api/auth/register")
        .set_json(json!({ "email": "ann@example.com", "password": PASSWORD }))
        .to_request();
    assert_eq!(test::call_service(&app, register).await.status(), 201);
    let login = test::TestRequest::post()
        .uri("/api/auth/jwt/login")
        .set_form([("username", "ann@example.com"), ("password", PASSWORD)])
        .to_request();
    let body: serde_json::Value = test::call_and_read_body_json(&app, login).await;
    let token = body["access_token"].as_str().expect("a token").to_owned();
    assert_eq!(token.len(), 43);
    let me = |token: &str| {
        test::TestRequest::get()
            .uri("/api/users/me")
            .insert_header(("Authorization", format!("Bearer {token}")))
            .to_request()
    };

    // Valid for the whole lifetime after `created_at`, to the second…
    clock.0.store(start + 60, Ordering::SeqCst);
    let res = test::call_service(&app, me(&token)).await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = test::read_body_json(res).await;
    assert_eq!(body["email"], "ann@example.com");
    // …and not a second more.
    clock.0.store(start + 61, Ordering::SeqCst);
    let res = test::call_service(&app, me(&token)).await;
    assert_eq!(res.status(), 401);
    let body: serde_json::Value = test::read_body_json(res).await;
    assert_eq!(body, json!({ "detail": "Unauthorized" }));
}

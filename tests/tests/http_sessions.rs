//! Sessions over real HTTP (issue 10, shared/API.md "Beyond FastAPI Users →
//! Sessions"): the cookie transport (`/auth/cookie/login`, `/logout`, the
//! exact `Set-Cookie` FastAPI Users sends, recorded in
//! `tests/fixtures/fastapi_users_cookie_transport.json`), bearer-or-cookie
//! authentication with the header winning, the `Origin` rule of
//! cookie-authenticated changes, and `DELETE /users/me/sessions`.

use awc::http::Method;
use portcullis_tests::test_app::{
    Body, FRONTEND_URL, PASSWORD, SUPERUSER_EMAIL, SUPERUSER_PASSWORD, TestApp, access_token_for,
    hs256_jwt, now, spawn_app, spawn_app_with,
};
use serde_json::{Value, json};

const COOKIE: &str = "fastapiusersauth";
const FOREIGN: &str = "https://evil.example.net";

/// What the real FastAPI Users answered (see the fixture's `_comment`).
fn fastapi_users() -> Value {
    serde_json::from_str(include_str!(
        "../fixtures/fastapi_users_cookie_transport.json"
    ))
    .expect("the fixture is JSON")
}

fn recorded(key: &str) -> String {
    fastapi_users()[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in the fixture"))
        .to_owned()
}

/// `Cookie: fastapiusersauth=<token>`.
fn cookie(token: &str) -> String {
    format!("{COOKIE}={token}")
}

/// Registers `email` and logs in with the cookie transport: (user, token).
async fn cookie_user(app: &TestApp, email: &str) -> (Value, String) {
    let user = app.register_ok(email, PASSWORD).await;
    let token = app.cookie_login_token(email, PASSWORD, COOKIE).await;
    (user, token)
}

async fn me_with_cookie(app: &TestApp, token: &str) -> portcullis_tests::test_app::TestResponse {
    app.send_with(
        Method::GET,
        "/users/me",
        &[("cookie", &cookie(token))],
        Body::Empty,
    )
    .await
}

/// `PATCH /users/me` with a new password, with these headers.
async fn change_password(
    app: &TestApp,
    headers: &[(&str, &str)],
    password: &str,
) -> portcullis_tests::test_app::TestResponse {
    app.send_with(
        Method::PATCH,
        "/users/me",
        headers,
        Body::Json(json!({ "password": password })),
    )
    .await
}

// ------------------------------------------------------------ cookie login

#[actix_web::test]
async fn cookie_login_sets_the_cookie_fastapi_users_sets() {
    let app = spawn_app().await;
    app.register_ok("ann@example.com", PASSWORD).await;
    let res = app.cookie_login("ann@example.com", PASSWORD).await;
    res.expect_empty(204);
    let set: Vec<_> = res.headers.get_all("set-cookie").collect();
    assert_eq!(set.len(), 1, "one Set-Cookie: {set:?}");
    let token = app
        .cookie_login_token("ann@example.com", PASSWORD, COOKIE)
        .await;
    let header = res.header("set-cookie").unwrap_or_default();
    let sent_token = header
        .strip_prefix("fastapiusersauth=")
        .and_then(|r| r.split(';').next())
        .unwrap_or_default();
    assert_eq!(
        header,
        recorded("login_set_cookie").replace("<token>", sent_token),
        "HttpOnly; Max-Age=3600 (the token lifetime); Path=/; SameSite=lax; Secure, in this order"
    );
    // The cookie's value is an access token of the user, usable as bearer too.
    for token in [sent_token, token.as_str()] {
        assert_eq!(
            app.me(token).await.expect_json(200)["email"],
            "ann@example.com"
        );
    }
}

#[actix_web::test]
async fn cookie_login_follows_cookie_secure_cookie_domain_and_the_lifetime() {
    let app = spawn_app_with([("COOKIE_SECURE", "false"), ("COOKIE_DOMAIN", "example.com")]).await;
    app.register_ok("ann@example.com", PASSWORD).await;
    let res = app.cookie_login("ann@example.com", PASSWORD).await;
    res.expect_empty(204);
    let header = res.header("set-cookie").unwrap_or_default();
    let token = header
        .strip_prefix("fastapiusersauth=")
        .and_then(|r| r.split(';').next())
        .unwrap_or_default();
    assert_eq!(
        header,
        recorded("login_set_cookie_insecure_with_domain").replace("<token>", token)
    );

    let app = spawn_app_with([
        ("COOKIE_NAME", "sid"),
        ("JWT_ACCESS_TOKEN_EXPIRE_MINUTES", "5"),
    ])
    .await;
    app.register_ok("ann@example.com", PASSWORD).await;
    let token = app
        .cookie_login_token("ann@example.com", PASSWORD, "sid")
        .await;
    let res = app.cookie_login("ann@example.com", PASSWORD).await;
    let header = res.header("set-cookie").unwrap_or_default();
    let again = header
        .strip_prefix("sid=")
        .and_then(|r| r.split(';').next())
        .unwrap_or_default();
    assert_eq!(
        header,
        format!("sid={again}; HttpOnly; Max-Age=300; Path=/; SameSite=lax; Secure")
    );
    // The configured name is the one read; the default name is not.
    let res = app
        .send_with(
            Method::GET,
            "/users/me",
            &[("cookie", &format!("sid={token}"))],
            Body::Empty,
        )
        .await;
    assert_eq!(res.expect_json(200)["email"], "ann@example.com");
    me_with_cookie(&app, &token).await.expect_401();
}

#[actix_web::test]
async fn cookie_login_refuses_what_jwt_login_refuses_and_sets_no_cookie() {
    let app = spawn_app().await;
    app.register_ok("ann@example.com", PASSWORD).await;
    let res = app.cookie_login("ann@example.com", "wrong password").await;
    res.expect_code("LOGIN_BAD_CREDENTIALS");
    assert_eq!(res.header("set-cookie"), None);
    let res = app.cookie_login("nobody@example.com", PASSWORD).await;
    res.expect_code("LOGIN_BAD_CREDENTIALS");
    let res = app
        .post_form("/auth/cookie/login", &[("username", "ann@example.com")])
        .await;
    res.expect_422_at("missing", json!(["body", "password"]));
    assert_eq!(res.header("set-cookie"), None);

    let app = spawn_app_with([("LOGIN_REQUIRES_VERIFICATION", "true")]).await;
    app.register_ok("ann@example.com", PASSWORD).await;
    app.cookie_login("ann@example.com", PASSWORD)
        .await
        .expect_code("LOGIN_USER_NOT_VERIFIED");
}

#[actix_web::test]
async fn cookie_login_is_under_the_per_address_limit() {
    let app = spawn_app_with([("RATE_LIMIT_AUTH_PER_MINUTE", "2")]).await;
    for _ in 0..2 {
        app.cookie_login("nobody@example.com", PASSWORD)
            .await
            .expect_code("LOGIN_BAD_CREDENTIALS");
    }
    let res = app.cookie_login(SUPERUSER_EMAIL, SUPERUSER_PASSWORD).await;
    assert_eq!(res.expect_json(429), json!({"detail": "TOO_MANY_REQUESTS"}));
    assert!(res.header("retry-after").is_some());
    assert_eq!(res.header("set-cookie"), None);
}

// ------------------------------------------------- the cookie authenticates

#[actix_web::test]
async fn the_cookie_authenticates_get_and_patch_users_me() {
    let app = spawn_app().await;
    let (user, token) = cookie_user(&app, "ann@example.com").await;
    assert_eq!(me_with_cookie(&app, &token).await.expect_json(200), user);

    // A same-site page's fetch (no Origin on a same-origin GET; here none).
    let res = change_password(&app, &[("cookie", &cookie(&token))], "ann's new password").await;
    assert_eq!(res.expect_json(200), user);
    app.login("ann@example.com", PASSWORD)
        .await
        .expect_code("LOGIN_BAD_CREDENTIALS");
    app.login_token("ann@example.com", "ann's new password")
        .await;
}

#[actix_web::test]
async fn the_cookie_is_found_among_other_cookies_even_malformed_ones() {
    let app = spawn_app().await;
    let (_, token) = cookie_user(&app, "ann@example.com").await;
    for header in [
        format!("theme=dark; {COOKIE}={token}; lang=en"),
        format!("nameless; =; {COOKIE}={token}"),
        format!("{COOKIE}=\"{token}\""),
        format!("  {COOKIE} = {token} ;"),
    ] {
        let res = app
            .send_with(
                Method::GET,
                "/users/me",
                &[("cookie", &header)],
                Body::Empty,
            )
            .await;
        assert_eq!(res.expect_json(200)["email"], "ann@example.com", "{header}");
    }
}

#[actix_web::test]
async fn a_malformed_unknown_or_expired_cookie_is_401_never_5xx() {
    let app = spawn_app().await;
    let (user, _) = cookie_user(&app, "ann@example.com").await;
    let id = TestApp::id_of(&user);
    let expired = access_token_for(&id, -10);
    let foreign_key = hs256_jwt(
        &json!({"sub": id, "aud": ["fastapi-users:auth"], "exp": now() + 600}),
        "another-secret-that-is-long-enough-0123456789",
    );
    let unknown_user = access_token_for("8f1e6a3c-4a4e-4c7e-9d0b-8f3c2a1b0c9d", 600);
    let long = "x".repeat(4000);
    for value in [
        "garbage",
        "a.b.c",
        "\"\"",
        "\"",
        "%00%ff",
        "eyJhbGciOiJub25lIn0.e30.",
        expired.as_str(),
        foreign_key.as_str(),
        unknown_user.as_str(),
        long.as_str(),
    ] {
        let res = me_with_cookie(&app, value).await;
        res.expect_401();
        assert_eq!(res.header("www-authenticate").as_deref(), Some("Bearer"));
    }
    for header in [
        COOKIE.to_owned(),
        format!("{COOKIE}="),
        ";;;".to_owned(),
        "=x".to_owned(),
    ] {
        let res = app
            .send_with(
                Method::GET,
                "/users/me",
                &[("cookie", &header)],
                Body::Empty,
            )
            .await;
        res.expect_401();
    }
}

#[actix_web::test]
async fn the_bearer_header_wins_over_the_cookie() {
    let app = spawn_app().await;
    let (_, ann_cookie) = cookie_user(&app, "ann@example.com").await;
    let (_, bob) = app.new_user("bob@example.com").await;
    let bearer = format!("Bearer {bob}");
    let headers = [("cookie", cookie(&ann_cookie)), ("authorization", bearer)];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let res = app
        .send_with(Method::GET, "/users/me", &headers, Body::Empty)
        .await;
    assert_eq!(res.expect_json(200)["email"], "bob@example.com");

    // A refused bearer token is not rescued by a good cookie.
    let res = app
        .send_with(
            Method::GET,
            "/users/me",
            &[
                ("cookie", &cookie(&ann_cookie)),
                ("authorization", "Bearer not.a.token"),
            ],
            Body::Empty,
        )
        .await;
    res.expect_401();
}

// ------------------------------------------------------------- the Origin rule

#[actix_web::test]
async fn a_cookie_authenticated_change_from_a_foreign_page_is_403_and_changes_nothing() {
    let app = spawn_app().await;
    let (_, token) = cookie_user(&app, "ann@example.com").await;
    let jar = cookie(&token);
    for origin in [
        FOREIGN,
        "null",
        "http://frontend.example.com:8080",
        "https://frontend.example.com",
    ] {
        let res = change_password(
            &app,
            &[("cookie", &jar), ("origin", origin)],
            "stolen password!",
        )
        .await;
        res.expect_403();
        let res = app
            .send_with(
                Method::POST,
                "/auth/cookie/logout",
                &[("cookie", &jar), ("origin", origin)],
                Body::Empty,
            )
            .await;
        res.expect_403();
        assert_eq!(res.header("set-cookie"), None, "the cookie stays");
        let res = app
            .send_with(
                Method::DELETE,
                "/users/me/sessions",
                &[("cookie", &jar), ("origin", origin)],
                Body::Empty,
            )
            .await;
        res.expect_403();
    }
    // Nothing changed: the old password still logs in, the new one does not,
    // and the cookie still works.
    app.login_token("ann@example.com", PASSWORD).await;
    app.login("ann@example.com", "stolen password!")
        .await
        .expect_code("LOGIN_BAD_CREDENTIALS");
    me_with_cookie(&app, &token).await.expect_json(200);
    // A safe method is never Origin-checked.
    let res = app
        .send_with(
            Method::GET,
            "/users/me",
            &[("cookie", &jar), ("origin", FOREIGN)],
            Body::Empty,
        )
        .await;
    assert_eq!(res.expect_json(200)["email"], "ann@example.com");
}

#[actix_web::test]
async fn frontend_url_same_origin_allowed_origins_and_no_origin_pass_the_rule() {
    let app = spawn_app_with([(
        "CORS_ORIGINS",
        "https://admin.example.com, http://localhost:5173",
    )])
    .await;
    let (_, token) = cookie_user(&app, "ann@example.com").await;
    let mut jar = cookie(&token);
    let own = app.address.clone();
    let own_upper = own.to_uppercase();
    let mut password = String::from(PASSWORD);
    for origin in [
        Some(FRONTEND_URL),
        Some(own.as_str()),
        Some(own_upper.as_str()),
        Some("https://admin.example.com"),
        Some("http://localhost:5173"),
        None,
    ] {
        let next = format!("{password}!");
        let mut headers = vec![("cookie", jar.as_str())];
        if let Some(origin) = origin {
            headers.push(("origin", origin));
        }
        change_password(&app, &headers, &next)
            .await
            .expect_json(200);
        // The change ended the session: log in again for the next origin.
        jar = cookie(
            &app.cookie_login_token("ann@example.com", &next, "fastapiusersauth")
                .await,
        );
        password = next;
    }
}

#[actix_web::test]
async fn bearer_requests_are_never_origin_checked() {
    let app = spawn_app().await;
    let (_, token) = app.new_user("ann@example.com").await;
    let bearer = format!("Bearer {token}");
    let res = change_password(
        &app,
        &[("authorization", &bearer), ("origin", FOREIGN)],
        "a brand new password",
    )
    .await;
    assert_eq!(res.expect_json(200)["email"], "ann@example.com");
    // The change ended the session: a new token for the logout.
    let token = app
        .login_token("ann@example.com", "a brand new password")
        .await;
    let bearer = format!("Bearer {token}");
    let res = app
        .send_with(
            Method::POST,
            "/auth/jwt/logout",
            &[("authorization", &bearer), ("origin", FOREIGN)],
            Body::Empty,
        )
        .await;
    res.expect_empty(204);
}

// ------------------------------------------------------------ cookie logout

#[actix_web::test]
async fn cookie_logout_clears_the_cookie_as_fastapi_users_does() {
    let app = spawn_app().await;
    let (_, token) = cookie_user(&app, "ann@example.com").await;
    let res = app
        .send_with(
            Method::POST,
            "/auth/cookie/logout",
            &[("cookie", &cookie(&token))],
            Body::Empty,
        )
        .await;
    res.expect_empty(204);
    assert_eq!(
        res.header("set-cookie"),
        Some(recorded("logout_set_cookie"))
    );

    // With a bearer token, as FastAPI Users' logout accepts it too (a new
    // one: with AUTH_STRATEGY=database the logout above deleted the first).
    let token = app.login_token("ann@example.com", PASSWORD).await;
    let bearer = format!("Bearer {token}");
    let res = app
        .send_with(
            Method::POST,
            "/auth/cookie/logout",
            &[("authorization", &bearer)],
            Body::Empty,
        )
        .await;
    res.expect_empty(204);
    assert_eq!(
        res.header("set-cookie"),
        Some(recorded("logout_set_cookie"))
    );

    let app = spawn_app_with([("COOKIE_SECURE", "false"), ("COOKIE_DOMAIN", "example.com")]).await;
    let (_, token) = cookie_user(&app, "ann@example.com").await;
    let res = app
        .send_with(
            Method::POST,
            "/auth/cookie/logout",
            &[("cookie", &cookie(&token))],
            Body::Empty,
        )
        .await;
    res.expect_empty(204);
    assert_eq!(
        res.header("set-cookie"),
        Some(recorded("logout_set_cookie_insecure_with_domain"))
    );
}

#[actix_web::test]
async fn cookie_logout_without_a_usable_cookie_is_401_and_clears_nothing() {
    let app = spawn_app().await;
    for headers in [vec![], vec![("cookie", "fastapiusersauth=garbage")]] {
        let res = app
            .send_with(Method::POST, "/auth/cookie/logout", &headers, Body::Empty)
            .await;
        assert_eq!(
            res.expect_json(401),
            fastapi_users()["logout_without_credentials"]["body"]
        );
        assert_eq!(res.header("set-cookie"), None);
    }
}

#[actix_web::test]
async fn with_the_database_strategy_cookie_logout_kills_the_token() {
    let app = spawn_app_with([("AUTH_STRATEGY", "database")]).await;
    let (_, token) = cookie_user(&app, "ann@example.com").await;
    assert_eq!(token.len(), 43, "an opaque token: {token}");
    me_with_cookie(&app, &token).await.expect_json(200);
    app.send_with(
        Method::POST,
        "/auth/cookie/logout",
        &[("cookie", &cookie(&token))],
        Body::Empty,
    )
    .await
    .expect_empty(204);
    me_with_cookie(&app, &token).await.expect_401();
    app.me(&token).await.expect_401();
}

// ------------------------------------------------ DELETE /users/me/sessions

#[actix_web::test]
async fn ending_all_sessions_answers_204_and_clears_the_cookie_it_came_with() {
    let app = spawn_app().await;
    let (_, token) = app.new_user("ann@example.com").await;
    let res = app.delete("/users/me/sessions", Some(&token)).await;
    res.expect_empty(204);
    assert_eq!(
        res.header("set-cookie"),
        None,
        "a bearer request has no cookie to clear"
    );

    let (_, token) = cookie_user(&app, "bob@example.com").await;
    let res = app
        .send_with(
            Method::DELETE,
            "/users/me/sessions",
            &[("cookie", &cookie(&token))],
            Body::Empty,
        )
        .await;
    res.expect_empty(204);
    assert_eq!(
        res.header("set-cookie"),
        Some(recorded("logout_set_cookie"))
    );

    app.delete("/users/me/sessions", None).await.expect_401();
    app.delete("/users/me/sessions", Some("not.a.token"))
        .await
        .expect_401();
    // Logging in again works.
    let fresh = app.login_token("ann@example.com", PASSWORD).await;
    assert_eq!(
        app.me(&fresh).await.expect_json(200)["email"],
        "ann@example.com"
    );
}

#[actix_web::test]
async fn ending_all_sessions_kills_every_earlier_token_of_the_user_only() {
    let app = spawn_app().await;
    let (_, bearer) = app.new_user("ann@example.com").await;
    let cookie_token = app
        .cookie_login_token("ann@example.com", PASSWORD, COOKIE)
        .await;
    let (_, bob) = app.new_user("bob@example.com").await;
    app.delete("/users/me/sessions", Some(&bearer))
        .await
        .expect_empty(204);
    app.me(&bearer).await.expect_401();
    me_with_cookie(&app, &cookie_token).await.expect_401();
    assert_eq!(
        app.me(&bob).await.expect_json(200)["email"],
        "bob@example.com"
    );
    let fresh = app.login_token("ann@example.com", PASSWORD).await;
    assert_eq!(
        app.me(&fresh).await.expect_json(200)["email"],
        "ann@example.com"
    );
}

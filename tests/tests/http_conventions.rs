//! The conventions of shared/API.md over real HTTP: `/health`, the prefix,
//! JSON 404/405 answers, content types.

use awc::http::Method;
use portcullis_tests::test_app::{
    Body, PASSWORD, SUPERUSER_EMAIL, SUPERUSER_PASSWORD, TestApp, spawn_app, spawn_app_with,
};
use serde_json::json;

const UNKNOWN_ID: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

/// The suite runs on the store `PORTCULLIS_TEST_STORE` names (scripts/test
/// runs it once per store): the users the server stores are in that
/// database, as another connection to it sees them.
#[actix_web::test]
async fn the_app_keeps_its_users_in_the_store_the_run_names() {
    let app = spawn_app().await;
    app.database.assert_named_store();
    app.register_ok("ann@example.com", PASSWORD).await;
    app.database.assert_holds("ann@example.com").await;
    app.database.assert_holds(SUPERUSER_EMAIL).await;
}

#[actix_web::test]
async fn health_answers_200_status_ok_outside_the_prefix() {
    let app = spawn_app().await;
    let res = app.get_raw("/health").await;
    assert_eq!(res.expect_json(200), json!({"status": "ok"}));
}

#[actix_web::test]
async fn health_is_not_under_the_prefix() {
    let app = spawn_app().await;
    app.get("/health").await.expect_404();
}

#[actix_web::test]
async fn unknown_routes_are_404_json_not_found() {
    let app = spawn_app().await;
    for path in [
        "/nope",
        "/api",
        "/api/",
        "/api/nope",
        "/api/auth",
        "/api/users",
        "/api/auth/jwt",
        "/docs/nope",
    ] {
        let res = app
            .send_to(Method::GET, &app.raw_url(path), &[], Body::Empty)
            .await;
        res.expect_404();
    }
    app.post_json("/auth/nope", &json!({})).await.expect_404();
    app.post_json("/users/me/extra", &json!({}))
        .await
        .expect_404();
}

#[actix_web::test]
async fn a_wrong_method_is_405_json_method_not_allowed() {
    let app = spawn_app().await;
    let root = app.superuser_token().await;
    let id = UNKNOWN_ID.to_owned();
    let cases: Vec<(Method, String)> = vec![
        (Method::GET, "/auth/register".into()),
        (Method::PUT, "/auth/register".into()),
        (Method::GET, "/auth/jwt/login".into()),
        (Method::DELETE, "/auth/jwt/login".into()),
        (Method::GET, "/auth/jwt/logout".into()),
        (Method::GET, "/auth/forgot-password".into()),
        (Method::GET, "/auth/reset-password".into()),
        (Method::GET, "/auth/request-verify-token".into()),
        (Method::GET, "/auth/verify".into()),
        (Method::PUT, "/users/me".into()),
        (Method::POST, "/users/me".into()),
        (Method::PUT, format!("/users/{id}")),
        (Method::POST, format!("/users/{id}")),
    ];
    for (method, path) in cases {
        // With or without a token: the method is judged first.
        for token in [None, Some(root.as_str())] {
            let res = app.send(method.clone(), &path, token, Body::Empty).await;
            assert_eq!(res.status, 405, "{method} {path}: {}", res.text());
            res.expect_405();
        }
    }
    let res = app
        .send_to(Method::POST, &app.raw_url("/health"), &[], Body::Empty)
        .await;
    res.expect_405();
}

#[actix_web::test]
async fn delete_on_users_me_is_the_admin_delete_of_a_non_uuid_id() {
    // FastAPI Users has no DELETE /users/me: the path matches
    // DELETE /users/{id} with the id "me", which no user has.
    let app = spawn_app().await;
    let (_, token) = app.new_user("ann@example.com").await;
    let root = app.superuser_token().await;
    app.delete("/users/me", None).await.expect_401();
    app.delete("/users/me", Some(&token)).await.expect_403();
    app.delete("/users/me", Some(&root)).await.expect_404();
    app.me(&token).await.expect_json(200);
}

#[actix_web::test]
async fn every_error_answer_is_json() {
    let app = spawn_app().await;
    // 400, 401, 403, 404, 405, 422: expect_* check the content type.
    app.login("nobody@example.com", PASSWORD)
        .await
        .expect_code("LOGIN_BAD_CREDENTIALS");
    app.get("/users/me").await.expect_401();
    let (_, token) = app.new_user("ann@example.com").await;
    app.get_with_token(&format!("/users/{UNKNOWN_ID}"), &token)
        .await
        .expect_403();
    app.admin_get(UNKNOWN_ID).await.expect_404();
    app.get("/auth/register").await.expect_405();
    app.post_json("/auth/register", &json!({}))
        .await
        .expect_422();
}

#[actix_web::test]
async fn empty_answers_carry_no_body() {
    let app = spawn_app().await;
    let (user, token) = app.new_user("ann@example.com").await;
    let logout = app
        .send(Method::POST, "/auth/jwt/logout", Some(&token), Body::Empty)
        .await;
    logout.expect_empty(204);
    let root = app.superuser_token().await;
    let delete = app
        .delete(&format!("/users/{}", TestApp::id_of(&user)), Some(&root))
        .await;
    delete.expect_empty(204);
}

#[actix_web::test]
async fn api_prefix_is_configurable() {
    let app = spawn_app_with([("API_PREFIX", "/v1")]).await;
    assert_eq!(app.api_prefix, "/v1");
    let user = app.register_ok("ann@example.com", PASSWORD).await;
    let token = app.login_token("ann@example.com", PASSWORD).await;
    assert_eq!(app.me(&token).await.expect_json(200), user);
    app.superuser_token().await;
    // Nothing under the default prefix, /health still at the root.
    let res = app
        .send_to(
            Method::POST,
            &app.raw_url("/api/auth/register"),
            &[],
            Body::Json(json!({"email": "bob@example.com", "password": PASSWORD})),
        )
        .await;
    res.expect_404();
    assert_eq!(
        app.get_raw("/health").await.expect_json(200),
        json!({"status": "ok"})
    );
}

#[actix_web::test]
async fn the_first_superuser_logs_in_with_the_configured_password_only() {
    let app = spawn_app().await;
    let token = app.superuser_token().await;
    app.login(
        portcullis_tests::test_app::SUPERUSER_EMAIL,
        &format!("{SUPERUSER_PASSWORD}x"),
    )
    .await
    .expect_code("LOGIN_BAD_CREDENTIALS");
    app.me(&token).await.expect_json(200);
}

#[actix_web::test]
async fn nothing_a_client_sends_produces_a_server_error() {
    let app = spawn_app().await;
    let (_, token) = app.new_user("ann@example.com").await;
    let root = app.superuser_token().await;
    let long = "a".repeat(5000);
    let long_email = format!("{long}@example.com");
    let bodies: Vec<Body> = vec![
        Body::Empty,
        Body::raw("application/json", "{"),
        Body::raw("application/json", "\u{0}"),
        Body::raw("application/json", vec![0xff, 0xfe, b'{']),
        Body::raw(
            "application/json",
            b"{\"email\": \"a\xff@example.com\"}".to_vec(),
        ),
        Body::raw("application/json", "[".repeat(10_000)),
        Body::raw("application/json", "1".repeat(10_000)),
        Body::raw(
            "application/json",
            r#"{"email": "x@example.com", "email": 5}"#,
        ),
        Body::Json(json!({"email": long_email, "password": long, "token": long})),
        Body::Json(
            json!({"email": "\u{0}@example.com", "password": "\u{0}".repeat(9), "token": "\u{0}"}),
        ),
        Body::Json(
            json!({"email": 1e308, "password": {"a": [1]}, "token": [], "role": {}, "is_active": "yes"}),
        ),
        Body::Json(
            json!({"email": "ann@example.com", "password": "ann@example.com", "token": "a.b.c"}),
        ),
        Body::Json(
            json!({"email": "@", "password": "😀😀😀😀😀😀😀😀", "token": "😀.😀.😀", "role": "😀"}),
        ),
        Body::raw("multipart/form-data; boundary=x", "--x\r\n"),
        Body::raw("multipart/form-data", "garbage"),
        Body::raw("multipart/form-data; boundary=", "----\r\n\r\n"),
        Body::raw(
            "application/x-www-form-urlencoded",
            "%%%&&&===username=%ff&password=%",
        ),
        Body::form(&[
            ("username", long_email.as_str()),
            ("password", long.as_str()),
        ]),
        Body::form(&[("username", "ann@example.com"), ("password", "\u{0}")]),
    ];
    let routes: Vec<(Method, String)> = vec![
        (Method::POST, "/auth/register".into()),
        (Method::POST, "/auth/jwt/login".into()),
        (Method::POST, "/auth/jwt/logout".into()),
        (Method::POST, "/auth/forgot-password".into()),
        (Method::POST, "/auth/reset-password".into()),
        (Method::POST, "/auth/request-verify-token".into()),
        (Method::POST, "/auth/verify".into()),
        (Method::PATCH, "/users/me".into()),
        (Method::PATCH, format!("/users/{UNKNOWN_ID}")),
        (Method::DELETE, format!("/users/{UNKNOWN_ID}")),
    ];
    for (method, path) in &routes {
        for token in [None, Some(token.as_str()), Some(root.as_str())] {
            for body in &bodies {
                let res = app.send(method.clone(), path, token, body.clone()).await;
                assert!(
                    (400..500).contains(&res.status) || res.status < 300,
                    "{method} {path} answered {}: {}",
                    res.status,
                    res.text()
                );
            }
        }
    }
    for path in [
        "/users/%ZZ".to_owned(),
        "/users/%00".to_owned(),
        format!("/users/{long}"),
        "/users/..%2F..%2Fetc".to_owned(),
        "/users/%F0%9F%98%80".to_owned(),
    ] {
        for token in [None, Some(token.as_str()), Some(root.as_str())] {
            let res = app.send(Method::GET, &path, token, Body::Empty).await;
            assert!(
                (400..500).contains(&res.status),
                "GET {path} answered {}: {}",
                res.status,
                res.text()
            );
        }
    }
    // Still serving. (`token` itself may be dead: a valid password in the
    // bodies above ended the user's sessions, and with
    // AUTH_STRATEGY=database the logout deleted it.)
    let (_, fresh) = app.new_user("still.serving@example.com").await;
    app.me(&fresh).await.expect_json(200);
}

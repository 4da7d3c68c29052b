//! `/api/auth/...` over real HTTP and SMTP: register, login, logout,
//! forgot/reset password, request-verify/verify (shared/API.md).

use portcullis_tests::test_app::{
    Body, PASSWORD, RESET_LINK, SUPERUSER_EMAIL, SUPERUSER_PASSWORD, TestApp, VERIFY_LINK,
    VERIFY_SECRET, assert_plain_user, assert_user, hs256_jwt, now, spawn_app, spawn_app_with,
};
use serde_json::{Value, json};

const TOO_SHORT: &str = "Password should be at least 8 characters";
const CONTAINS_EMAIL: &str = "Password should not contain e-mail";

/// A user the first superuser deactivated; returns their old token.
async fn deactivated_user(app: &TestApp, email: &str) -> (Value, String) {
    let (user, token) = app.new_user(email).await;
    let id = TestApp::id_of(&user);
    app.admin_patch(&id, &json!({"is_active": false}))
        .await
        .expect_json(200);
    (user, token)
}

// ---------------------------------------------------------------- register

#[actix_web::test]
async fn register_answers_201_with_an_active_unverified_student() {
    let app = spawn_app().await;
    let res = app.register("ann@example.com", PASSWORD).await;
    let user = res.expect_json(201);
    assert_plain_user(&user, "ann@example.com");
    assert!(!res.text().contains("hashed_password"));
    assert!(!res.text().contains(PASSWORD));
}

#[actix_web::test]
async fn register_lowercases_the_domain_and_keeps_the_local_part_as_given() {
    let app = spawn_app().await;
    let user = app
        .register_ok("Mixed.Case@EXAMPLE.COM", "a fine password")
        .await;
    assert_plain_user(&user, "Mixed.Case@example.com");
    let token = app
        .login_token("Mixed.Case@example.com", "a fine password")
        .await;
    assert_eq!(app.me(&token).await.expect_json(200), user);
}

#[actix_web::test]
async fn register_strips_surrounding_white_space_from_the_email() {
    let app = spawn_app().await;
    let user = app.register_ok("  ann@Example.com  ", PASSWORD).await;
    assert_plain_user(&user, "ann@example.com");
}

#[actix_web::test]
async fn register_rejects_duplicate_email_case_insensitively() {
    let app = spawn_app().await;
    app.register_ok("Ann@example.com", PASSWORD).await;
    for again in [
        "Ann@example.com",
        "ann@example.com",
        "ANN@EXAMPLE.COM",
        " ann@Example.Com ",
    ] {
        app.register(again, "another password")
            .await
            .expect_code("REGISTER_USER_ALREADY_EXISTS");
    }
    app.register(SUPERUSER_EMAIL.to_uppercase().as_str(), PASSWORD)
        .await
        .expect_code("REGISTER_USER_ALREADY_EXISTS");
}

#[actix_web::test]
async fn register_rejects_a_password_shorter_than_8_characters() {
    let app = spawn_app().await;
    for short in ["", "a", "1234567"] {
        app.register("ann@example.com", short)
            .await
            .expect_code_reason("REGISTER_INVALID_PASSWORD", TOO_SHORT);
    }
    app.register_ok("ann@example.com", "12345678").await;
}

#[actix_web::test]
async fn register_counts_password_length_in_characters_not_bytes() {
    let app = spawn_app().await;
    // 7 characters, 14 bytes.
    app.register("ann@example.com", "ééééééé")
        .await
        .expect_code_reason("REGISTER_INVALID_PASSWORD", TOO_SHORT);
    // 8 characters.
    app.register_ok("ann@example.com", "éééééééé").await;
    app.login_token("ann@example.com", "éééééééé").await;
}

#[actix_web::test]
async fn register_rejects_a_password_containing_the_email_case_insensitively() {
    let app = spawn_app().await;
    for pw in [
        "ann@example.com",
        "xxann@example.comxx",
        "my ANN@EXAMPLE.COM pw",
    ] {
        app.register("Ann@Example.com", pw)
            .await
            .expect_code_reason("REGISTER_INVALID_PASSWORD", CONTAINS_EMAIL);
    }
}

#[actix_web::test]
async fn register_checks_the_password_before_the_email_clash() {
    let app = spawn_app().await;
    app.register_ok("ann@example.com", PASSWORD).await;
    app.register("ANN@example.com", "short")
        .await
        .expect_code_reason("REGISTER_INVALID_PASSWORD", TOO_SHORT);
    app.register("ann@example.com", "xx ann@example.com")
        .await
        .expect_code_reason("REGISTER_INVALID_PASSWORD", CONTAINS_EMAIL);
}

#[actix_web::test]
async fn register_ignores_is_superuser_is_active_is_verified_and_role() {
    let app = spawn_app().await;
    let res = app
        .post_json(
            "/auth/register",
            &json!({
                "email": "mallory@example.com",
                "password": PASSWORD,
                "is_superuser": true,
                "is_active": false,
                "is_verified": true,
                "role": "admin",
            }),
        )
        .await;
    let user = res.expect_json(201);
    assert_plain_user(&user, "mallory@example.com");
    // Stored that way too: active (can log in), and no superuser rights.
    let token = app.login_token("mallory@example.com", PASSWORD).await;
    assert_eq!(app.me(&token).await.expect_json(200), user);
    let root = app.superuser_token().await;
    let root_id = TestApp::id_of(&app.me(&root).await.expect_json(200));
    app.get_with_token(&format!("/users/{root_id}"), &token)
        .await
        .expect_403();
}

#[actix_web::test]
async fn register_with_missing_fields_is_422_naming_each() {
    let app = spawn_app().await;
    let detail = app
        .post_json("/auth/register", &json!({}))
        .await
        .expect_422();
    let locs: Vec<&Value> = detail.iter().map(|d| &d["loc"]).collect();
    assert_eq!(
        locs,
        [&json!(["body", "email"]), &json!(["body", "password"])]
    );
    assert!(detail.iter().all(|d| d["type"] == "missing"));

    app.post_json("/auth/register", &json!({"email": "ann@example.com"}))
        .await
        .expect_422_at("missing", json!(["body", "password"]));
    app.post_json("/auth/register", &json!({"password": PASSWORD}))
        .await
        .expect_422_at("missing", json!(["body", "email"]));
}

#[actix_web::test]
async fn register_with_malformed_json_is_422_json_invalid() {
    let app = spawn_app().await;
    let entry = app
        .post_raw(
            "/auth/register",
            "application/json",
            r#"{"email":"ann@example.com""#,
        )
        .await
        .expect_422();
    assert_eq!(entry.len(), 1);
    assert_eq!(entry[0]["type"], "json_invalid");
    assert_eq!(entry[0]["loc"][0], "body");
    assert!(
        entry[0]["loc"][1].is_u64(),
        "loc names the offset: {entry:?}"
    );
}

#[actix_web::test]
async fn register_without_a_body_is_422_body_missing() {
    let app = spawn_app().await;
    let res = app
        .send(awc::http::Method::POST, "/auth/register", None, Body::Empty)
        .await;
    res.expect_422_at("missing", json!(["body"]));
}

#[actix_web::test]
async fn register_with_a_wrong_content_type_is_422() {
    let app = spawn_app().await;
    let json_text = format!(r#"{{"email":"ann@example.com","password":"{PASSWORD}"}}"#);
    for ct in ["text/plain", "application/x-www-form-urlencoded"] {
        app.post_raw("/auth/register", ct, &json_text)
            .await
            .expect_422_at("model_attributes_type", json!(["body"]));
    }
    app.post_form(
        "/auth/register",
        &[("email", "ann@example.com"), ("password", PASSWORD)],
    )
    .await
    .expect_422();
    // Nothing was created.
    app.login("ann@example.com", PASSWORD)
        .await
        .expect_code("LOGIN_BAD_CREDENTIALS");
}

#[actix_web::test]
async fn register_accepts_json_content_types_with_parameters_or_a_json_suffix() {
    let app = spawn_app().await;
    for (i, ct) in [
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.api+json",
    ]
    .into_iter()
    .enumerate()
    {
        let email = format!("ann{i}@example.com");
        let body = format!(r#"{{"email":"{email}","password":"{PASSWORD}"}}"#);
        let user = app
            .post_raw("/auth/register", ct, &body)
            .await
            .expect_json(201);
        assert_plain_user(&user, &email);
    }
}

#[actix_web::test]
async fn register_without_a_content_type_is_422_even_for_valid_json() {
    let app = spawn_app().await;
    let text = format!(r#"{{"email":"ann@example.com","password":"{PASSWORD}"}}"#);
    let res = app
        .send(
            awc::http::Method::POST,
            "/auth/register",
            None,
            Body::Raw {
                content_type: None,
                bytes: text.clone().into_bytes(),
            },
        )
        .await;
    let entry = res.expect_422_at("model_attributes_type", json!(["body"]));
    assert_eq!(entry["input"], json!(text));
}

#[actix_web::test]
async fn register_with_a_body_that_is_no_object_is_422() {
    let app = spawn_app().await;
    for body in [json!([1]), json!("ann@example.com"), json!(42), json!(null)] {
        app.post_json("/auth/register", &body).await.expect_422();
    }
}

#[actix_web::test]
async fn register_with_a_non_string_field_is_422_string_type() {
    let app = spawn_app().await;
    app.post_json(
        "/auth/register",
        &json!({"email": "ann@example.com", "password": 12345678}),
    )
    .await
    .expect_422_at("string_type", json!(["body", "password"]));
    app.post_json(
        "/auth/register",
        &json!({"email": ["ann@example.com"], "password": PASSWORD}),
    )
    .await
    .expect_422_at("string_type", json!(["body", "email"]));
}

#[actix_web::test]
async fn register_rejects_undeliverable_and_malformed_addresses_with_422() {
    let app = spawn_app().await;
    for bad in [
        "ann@site.test",
        "ann@example.test",
        "ann@localhost",
        "ann@foo.localhost",
        "ann@example.invalid",
        "ann@printer.local",
        "ann@example",
        "not-an-email",
        "ann@",
        "@example.com",
        "ann@@example.com",
        "ann smith@example.com",
        "ann..smith@example.com",
        "",
    ] {
        let entry = app
            .register(bad, PASSWORD)
            .await
            .expect_422_at("value_error", json!(["body", "email"]));
        assert_eq!(entry["input"], json!(bad), "{entry}");
        assert!(
            entry["msg"]
                .as_str()
                .is_some_and(|m| m.starts_with("value is not a valid email address")),
            "{entry}"
        );
    }
}

#[actix_web::test]
async fn register_reports_every_problem_at_once() {
    let app = spawn_app().await;
    let detail = app
        .post_json(
            "/auth/register",
            &json!({"email": "ann@site.test", "password": 5}),
        )
        .await
        .expect_422();
    let locs: Vec<&Value> = detail.iter().map(|d| &d["loc"]).collect();
    assert_eq!(
        locs,
        [&json!(["body", "email"]), &json!(["body", "password"])]
    );
}

// ---------------------------------------------------------------- login

#[actix_web::test]
async fn login_answers_200_with_a_bearer_access_token() {
    let app = spawn_app().await;
    let user = app.register_ok("ann@example.com", PASSWORD).await;
    let body = app
        .login("ann@example.com", PASSWORD)
        .await
        .expect_json(200);
    let obj = body.as_object().expect("an object");
    assert_eq!(obj.len(), 2, "{body}");
    assert_eq!(body["token_type"], "bearer");
    let token = body["access_token"].as_str().expect("a string token");
    assert_eq!(app.me(token).await.expect_json(200), user);
}

#[actix_web::test]
async fn login_matches_the_email_case_insensitively() {
    let app = spawn_app().await;
    let user = app.register_ok("Ann.Smith@Example.com", PASSWORD).await;
    for username in [
        "ann.smith@example.com",
        "ANN.SMITH@EXAMPLE.COM",
        "Ann.Smith@example.com",
    ] {
        let token = app.login_token(username, PASSWORD).await;
        assert_eq!(app.me(&token).await.expect_json(200), user);
    }
}

#[actix_web::test]
async fn login_with_a_wrong_password_is_bad_credentials() {
    let app = spawn_app().await;
    app.register_ok("ann@example.com", PASSWORD).await;
    app.login("ann@example.com", "wrong password")
        .await
        .expect_code("LOGIN_BAD_CREDENTIALS");
    app.login("ann@example.com", &PASSWORD.to_uppercase())
        .await
        .expect_code("LOGIN_BAD_CREDENTIALS");
}

#[actix_web::test]
async fn login_with_an_unknown_email_is_bad_credentials() {
    let app = spawn_app().await;
    app.login("nobody@example.com", PASSWORD)
        .await
        .expect_code("LOGIN_BAD_CREDENTIALS");
}

#[actix_web::test]
async fn login_with_a_username_that_is_no_email_is_bad_credentials() {
    let app = spawn_app().await;
    for username in ["ann", "ann@site.test", "not an email", "@"] {
        app.login(username, PASSWORD)
            .await
            .expect_code("LOGIN_BAD_CREDENTIALS");
    }
}

#[actix_web::test]
async fn login_of_an_inactive_user_is_bad_credentials() {
    let app = spawn_app().await;
    deactivated_user(&app, "ann@example.com").await;
    app.login("ann@example.com", PASSWORD)
        .await
        .expect_code("LOGIN_BAD_CREDENTIALS");
}

#[actix_web::test]
async fn login_with_an_empty_username_or_password_is_422_missing() {
    let app = spawn_app().await;
    app.register_ok("ann@example.com", PASSWORD).await;
    app.post_form(
        "/auth/jwt/login",
        &[("username", ""), ("password", PASSWORD)],
    )
    .await
    .expect_422_at("missing", json!(["body", "username"]));
    app.post_form(
        "/auth/jwt/login",
        &[("username", "ann@example.com"), ("password", "")],
    )
    .await
    .expect_422_at("missing", json!(["body", "password"]));
}

#[actix_web::test]
async fn login_without_fields_is_422_naming_both() {
    let app = spawn_app().await;
    for res in [
        app.post_form("/auth/jwt/login", &[]).await,
        app.send(
            awc::http::Method::POST,
            "/auth/jwt/login",
            None,
            Body::Empty,
        )
        .await,
    ] {
        let detail = res.expect_422();
        let locs: Vec<&Value> = detail.iter().map(|d| &d["loc"]).collect();
        assert_eq!(
            locs,
            [&json!(["body", "username"]), &json!(["body", "password"])]
        );
        assert!(detail.iter().all(|d| d["type"] == "missing"));
    }
    app.post_form("/auth/jwt/login", &[("username", "ann@example.com")])
        .await
        .expect_422_at("missing", json!(["body", "password"]));
}

#[actix_web::test]
async fn login_with_a_grant_type_other_than_password_is_422() {
    let app = spawn_app().await;
    app.register_ok("ann@example.com", PASSWORD).await;
    for grant in ["client_credentials", "Password", "password "] {
        let entry = app
            .post_form(
                "/auth/jwt/login",
                &[
                    ("username", "ann@example.com"),
                    ("password", PASSWORD),
                    ("grant_type", grant),
                ],
            )
            .await
            .expect_422_at("string_pattern_mismatch", json!(["body", "grant_type"]));
        assert_eq!(entry["input"], json!(grant));
    }
}

#[actix_web::test]
async fn login_accepts_grant_type_password_and_ignores_scope_and_client_fields() {
    let app = spawn_app().await;
    app.register_ok("ann@example.com", PASSWORD).await;
    let body = app
        .post_form(
            "/auth/jwt/login",
            &[
                ("grant_type", "password"),
                ("username", "ann@example.com"),
                ("password", PASSWORD),
                ("scope", "read write"),
                ("client_id", "my-client"),
                ("client_secret", "s3cret"),
            ],
        )
        .await
        .expect_json(200);
    assert_eq!(body["token_type"], "bearer");
}

#[actix_web::test]
async fn login_with_a_json_body_is_422() {
    let app = spawn_app().await;
    app.register_ok("ann@example.com", PASSWORD).await;
    let detail = app
        .post_json(
            "/auth/jwt/login",
            &json!({"username": "ann@example.com", "password": PASSWORD}),
        )
        .await
        .expect_422();
    let locs: Vec<&Value> = detail.iter().map(|d| &d["loc"]).collect();
    assert_eq!(
        locs,
        [&json!(["body", "username"]), &json!(["body", "password"])]
    );
}

#[actix_web::test]
async fn login_accepts_a_form_content_type_with_parameters() {
    let app = spawn_app().await;
    app.register_ok("ann@example.com", "pässwörd!").await;
    let body = app
        .post_raw(
            "/auth/jwt/login",
            "application/x-www-form-urlencoded; charset=UTF-8",
            "username=ann%40example.com&password=p%C3%A4ssw%C3%B6rd%21",
        )
        .await
        .expect_json(200);
    assert_eq!(body["token_type"], "bearer");
}

#[actix_web::test]
async fn login_accepts_a_multipart_form_as_a_browser_formdata_sends_it() {
    let app = spawn_app().await;
    let user = app.register_ok("ann@example.com", PASSWORD).await;
    let multipart = |username: &str, password: &str| {
        format!(
            "--B0uNdArY\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\n{username}\r\n\
             --B0uNdArY\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\n{password}\r\n\
             --B0uNdArY--\r\n"
        )
    };
    let ct = "multipart/form-data; boundary=B0uNdArY";
    let body = app
        .post_raw(
            "/auth/jwt/login",
            ct,
            &multipart("ann@example.com", PASSWORD),
        )
        .await
        .expect_json(200);
    let token = body["access_token"].as_str().expect("a token");
    assert_eq!(app.me(token).await.expect_json(200), user);
    app.post_raw(
        "/auth/jwt/login",
        ct,
        &multipart("ann@example.com", "wrong password"),
    )
    .await
    .expect_code("LOGIN_BAD_CREDENTIALS");
    app.post_raw("/auth/jwt/login", ct, &multipart("", PASSWORD))
        .await
        .expect_422_at("missing", json!(["body", "username"]));
}

#[actix_web::test]
async fn login_takes_the_last_of_repeated_fields() {
    let app = spawn_app().await;
    app.register_ok("ann@example.com", PASSWORD).await;
    app.post_form(
        "/auth/jwt/login",
        &[
            ("username", "ann@example.com"),
            ("password", PASSWORD),
            ("username", "bob@example.com"),
        ],
    )
    .await
    .expect_code("LOGIN_BAD_CREDENTIALS");
    app.post_form(
        "/auth/jwt/login",
        &[
            ("username", "bob@example.com"),
            ("password", PASSWORD),
            ("username", "ann@example.com"),
        ],
    )
    .await
    .expect_json(200);
}

#[actix_web::test]
async fn login_does_not_require_verification_by_default() {
    let app = spawn_app().await;
    let user = app.register_ok("ann@example.com", PASSWORD).await;
    assert_eq!(user["is_verified"], false);
    app.login_token("ann@example.com", PASSWORD).await;
}

#[actix_web::test]
async fn login_requires_verification_when_configured_and_succeeds_after_verifying() {
    let app = spawn_app_with([("LOGIN_REQUIRES_VERIFICATION", "true")]).await;
    app.register_ok("ann@example.com", PASSWORD).await;
    app.login("ann@example.com", PASSWORD)
        .await
        .expect_code("LOGIN_USER_NOT_VERIFIED");
    // Credentials are judged first.
    app.login("ann@example.com", "wrong password")
        .await
        .expect_code("LOGIN_BAD_CREDENTIALS");
    app.login("nobody@example.com", PASSWORD)
        .await
        .expect_code("LOGIN_BAD_CREDENTIALS");
    // The (verified) first superuser logs in.
    app.superuser_token().await;

    let token = app.verify_token_for("ann@example.com").await;
    let verified = app.verify(&token).await.expect_json(200);
    assert_user(&verified, "ann@example.com", true, false, true, "student");
    let access = app.login_token("ANN@example.com", PASSWORD).await;
    assert_eq!(app.me(&access).await.expect_json(200), verified);
}

// ---------------------------------------------------------------- logout

#[actix_web::test]
async fn logout_answers_204_empty_and_the_token_keeps_working() {
    // A JWT cannot be revoked alone (the database strategy deletes the
    // token: tests/http_sessions.rs).
    let app = spawn_app_with([("AUTH_STRATEGY", "jwt")]).await;
    let (user, token) = app.new_user("ann@example.com").await;
    let res = app
        .send(
            awc::http::Method::POST,
            "/auth/jwt/logout",
            Some(&token),
            Body::Empty,
        )
        .await;
    res.expect_empty(204);
    assert_eq!(app.me(&token).await.expect_json(200), user);
    // And again: still a stateless 204.
    app.send(
        awc::http::Method::POST,
        "/auth/jwt/logout",
        Some(&token),
        Body::Empty,
    )
    .await
    .expect_empty(204);
}

#[actix_web::test]
async fn logout_without_a_usable_token_is_401() {
    let app = spawn_app().await;
    app.send(
        awc::http::Method::POST,
        "/auth/jwt/logout",
        None,
        Body::Empty,
    )
    .await
    .expect_401();
    app.send(
        awc::http::Method::POST,
        "/auth/jwt/logout",
        Some("not-a-token"),
        Body::Empty,
    )
    .await
    .expect_401();
}

#[actix_web::test]
async fn logout_of_an_inactive_user_is_401() {
    let app = spawn_app().await;
    let (_, token) = deactivated_user(&app, "ann@example.com").await;
    app.send(
        awc::http::Method::POST,
        "/auth/jwt/logout",
        Some(&token),
        Body::Empty,
    )
    .await
    .expect_401();
}

// ---------------------------------------------------------------- forgot-password

#[actix_web::test]
async fn forgot_password_answers_202_null_and_mails_a_reset_link_to_an_active_user() {
    let app = spawn_app().await;
    app.register_ok("Ann@example.com", PASSWORD).await;
    app.forgot_password("Ann@example.com")
        .await
        .expect_null(202);
    let mail = app.mail_to("Ann@example.com").await;
    assert_eq!(mail.to, ["Ann@example.com"]);
    let token = mail
        .token_after(RESET_LINK)
        .unwrap_or_else(|| panic!("a link {RESET_LINK}<token> in {}", mail.data));
    assert!(mail.data.contains(&format!("{RESET_LINK}{token}")));
    app.reset_password(&token, "a new password")
        .await
        .expect_null(200);
}

#[actix_web::test]
async fn forgot_password_matches_the_email_case_insensitively() {
    let app = spawn_app().await;
    app.register_ok("Ann@example.com", PASSWORD).await;
    app.forgot_password("ANN@EXAMPLE.COM")
        .await
        .expect_null(202);
    // The sink matches addresses case-insensitively: the envelope says
    // where the mail really went, the stored spelling.
    let mail = app.mail_to("ann@example.com").await;
    assert_eq!(mail.to, ["Ann@example.com"], "{}", mail.data);
    let token = mail
        .token_after(RESET_LINK)
        .unwrap_or_else(|| panic!("a link {RESET_LINK}<token> in {}", mail.data));
    app.reset_password(&token, "a new password")
        .await
        .expect_null(200);
    app.login_token("ann@example.com", "a new password").await;
}

#[actix_web::test]
async fn forgot_password_for_an_unknown_email_answers_202_null_and_sends_no_mail() {
    let app = spawn_app().await;
    app.forgot_password("nobody@example.com")
        .await
        .expect_null(202);
    assert!(app.no_mail_to("nobody@example.com").await);
    assert!(app.sink.mails().is_empty());
}

#[actix_web::test]
async fn forgot_password_for_an_inactive_user_answers_202_null_and_sends_no_mail() {
    let app = spawn_app().await;
    deactivated_user(&app, "ann@example.com").await;
    app.forgot_password("ann@example.com")
        .await
        .expect_null(202);
    assert!(app.no_mail_to("ann@example.com").await);
}

#[actix_web::test]
async fn forgot_password_with_an_invalid_or_missing_email_is_422() {
    let app = spawn_app().await;
    app.post_json("/auth/forgot-password", &json!({}))
        .await
        .expect_422_at("missing", json!(["body", "email"]));
    app.forgot_password("ann@site.test")
        .await
        .expect_422_at("value_error", json!(["body", "email"]));
    app.post_raw("/auth/forgot-password", "application/json", "{")
        .await
        .expect_422_at("json_invalid", json!(["body", 1]));
    // An embedded field, not a model (FastAPI Users answers so): a body
    // that is not JSON reads as no fields.
    app.post_raw(
        "/auth/forgot-password",
        "text/plain",
        r#"{"email":"ann@example.com"}"#,
    )
    .await
    .expect_422_at("missing", json!(["body", "email"]));
}

/// What FastAPI Users answers (recorded from `shared/reference`) when the
/// body of a route with embedded fields is no JSON object, or absent: one
/// `missing` per required field, `input: null`.
#[actix_web::test]
async fn embedded_bodies_that_are_no_object_are_one_missing_per_field() {
    let app = spawn_app().await;
    let missing = |field: &str| json!({"type": "missing", "loc": ["body", field], "msg": "Field required", "input": null});
    let routes = [
        ("/auth/forgot-password", vec![missing("email")]),
        ("/auth/request-verify-token", vec![missing("email")]),
        ("/auth/verify", vec![missing("token")]),
        (
            "/auth/reset-password",
            vec![missing("token"), missing("password")],
        ),
    ];
    for (path, expected) in routes {
        for body in [r#""a@example.com""#, "[1]", "5", "null", "{}", ""] {
            let res = app.post_raw(path, "application/json", body).await;
            assert_eq!(
                res.expect_json(422),
                json!({ "detail": expected }),
                "{path} with {body:?}"
            );
        }
        let res = app
            .post_raw(path, "text/plain", r#"{"email": "a@example.com"}"#)
            .await;
        assert_eq!(
            res.expect_json(422),
            json!({ "detail": expected }),
            "{path}"
        );
    }
    // A model body (register) keeps pydantic's model answers.
    app.post_raw("/auth/register", "application/json", "[1]")
        .await
        .expect_422_at("model_attributes_type", json!(["body"]));
    let res = app
        .post_raw("/auth/register", "application/json", "{}")
        .await;
    assert_eq!(
        res.expect_json(422),
        json!({"detail": [
            {"type": "missing", "loc": ["body", "email"], "msg": "Field required", "input": {}},
            {"type": "missing", "loc": ["body", "password"], "msg": "Field required", "input": {}},
        ]})
    );
}

// ---------------------------------------------------------------- reset-password

#[actix_web::test]
async fn reset_password_answers_200_null_and_sets_the_new_password() {
    let app = spawn_app().await;
    app.register_ok("ann@example.com", PASSWORD).await;
    let token = app.reset_token_for("ann@example.com").await;
    app.reset_password(&token, "brand new password")
        .await
        .expect_null(200);
    app.login("ann@example.com", PASSWORD)
        .await
        .expect_code("LOGIN_BAD_CREDENTIALS");
    app.login_token("ann@example.com", "brand new password")
        .await;
}

#[actix_web::test]
async fn reset_token_works_only_once() {
    let app = spawn_app().await;
    app.register_ok("ann@example.com", PASSWORD).await;
    let token = app.reset_token_for("ann@example.com").await;
    app.reset_password(&token, "brand new password")
        .await
        .expect_null(200);
    app.reset_password(&token, "another new password")
        .await
        .expect_code("RESET_PASSWORD_BAD_TOKEN");
    app.login_token("ann@example.com", "brand new password")
        .await;
}

#[actix_web::test]
async fn reset_token_dies_when_the_password_changes_by_other_means() {
    let app = spawn_app().await;
    let (_, access) = app.new_user("ann@example.com").await;
    let token = app.reset_token_for("ann@example.com").await;
    app.patch_json(
        "/users/me",
        Some(&access),
        &json!({"password": "changed myself"}),
    )
    .await
    .expect_json(200);
    app.reset_password(&token, "brand new password")
        .await
        .expect_code("RESET_PASSWORD_BAD_TOKEN");
    app.login_token("ann@example.com", "changed myself").await;
}

#[actix_web::test]
async fn reset_with_a_garbage_token_is_bad_token() {
    let app = spawn_app().await;
    for token in ["", "garbage", "a.b.c"] {
        app.reset_password(token, "brand new password")
            .await
            .expect_code("RESET_PASSWORD_BAD_TOKEN");
    }
}

#[actix_web::test]
async fn reset_with_a_bad_token_reports_the_bad_token_even_with_a_weak_password() {
    let app = spawn_app().await;
    app.reset_password("garbage", "short")
        .await
        .expect_code("RESET_PASSWORD_BAD_TOKEN");
}

#[actix_web::test]
async fn reset_with_a_good_token_and_a_weak_password_is_invalid_password_and_the_token_still_works()
{
    let app = spawn_app().await;
    app.register_ok("Ann@example.com", PASSWORD).await;
    let token = app.reset_token_for("Ann@example.com").await;
    app.reset_password(&token, "short")
        .await
        .expect_code_reason("RESET_PASSWORD_INVALID_PASSWORD", TOO_SHORT);
    app.reset_password(&token, "new ANN@example.COM pw")
        .await
        .expect_code_reason("RESET_PASSWORD_INVALID_PASSWORD", CONTAINS_EMAIL);
    // The old password is untouched.
    app.login_token("ann@example.com", PASSWORD).await;
    app.reset_password(&token, "brand new password")
        .await
        .expect_null(200);
    app.login_token("ann@example.com", "brand new password")
        .await;
}

#[actix_web::test]
async fn reset_token_dies_when_the_user_is_deactivated() {
    let app = spawn_app().await;
    let (user, _) = app.new_user("ann@example.com").await;
    let token = app.reset_token_for("ann@example.com").await;
    app.admin_patch(&TestApp::id_of(&user), &json!({"is_active": false}))
        .await
        .expect_json(200);
    app.reset_password(&token, "brand new password")
        .await
        .expect_code("RESET_PASSWORD_BAD_TOKEN");
}

#[actix_web::test]
async fn reset_token_dies_when_the_user_is_deleted() {
    let app = spawn_app().await;
    let (user, _) = app.new_user("ann@example.com").await;
    let token = app.reset_token_for("ann@example.com").await;
    let root = app.superuser_token().await;
    app.delete(&format!("/users/{}", TestApp::id_of(&user)), Some(&root))
        .await
        .expect_empty(204);
    app.reset_password(&token, "brand new password")
        .await
        .expect_code("RESET_PASSWORD_BAD_TOKEN");
}

#[actix_web::test]
async fn reset_with_missing_or_mistyped_fields_is_422() {
    let app = spawn_app().await;
    let detail = app
        .post_json("/auth/reset-password", &json!({}))
        .await
        .expect_422();
    let locs: Vec<&Value> = detail.iter().map(|d| &d["loc"]).collect();
    assert_eq!(
        locs,
        [&json!(["body", "token"]), &json!(["body", "password"])]
    );
    app.post_json(
        "/auth/reset-password",
        &json!({"token": "t", "password": 12345678}),
    )
    .await
    .expect_422_at("string_type", json!(["body", "password"]));
    app.post_raw("/auth/reset-password", "application/json", "nope")
        .await
        .expect_422();
}

// ---------------------------------------------------------------- request-verify-token

#[actix_web::test]
async fn request_verify_token_answers_202_null_and_mails_a_verify_link() {
    let app = spawn_app().await;
    app.register_ok("Ann@example.com", PASSWORD).await;
    app.request_verify_token("ann@EXAMPLE.com")
        .await
        .expect_null(202);
    let mail = app.mail_to("Ann@example.com").await;
    assert_eq!(mail.to, ["Ann@example.com"]);
    let token = mail
        .token_after(VERIFY_LINK)
        .unwrap_or_else(|| panic!("a link {VERIFY_LINK}<token> in {}", mail.data));
    assert!(mail.data.contains(&format!("{VERIFY_LINK}{token}")));
    app.verify(&token).await.expect_json(200);
}

#[actix_web::test]
async fn request_verify_token_for_an_unknown_email_answers_202_null_and_sends_no_mail() {
    let app = spawn_app().await;
    app.request_verify_token("nobody@example.com")
        .await
        .expect_null(202);
    assert!(app.no_mail_to("nobody@example.com").await);
    assert!(app.sink.mails().is_empty());
}

#[actix_web::test]
async fn request_verify_token_for_an_inactive_user_answers_202_null_and_sends_no_mail() {
    let app = spawn_app().await;
    deactivated_user(&app, "ann@example.com").await;
    app.request_verify_token("ann@example.com")
        .await
        .expect_null(202);
    assert!(app.no_mail_to("ann@example.com").await);
}

#[actix_web::test]
async fn request_verify_token_for_a_verified_user_answers_202_null_and_sends_no_mail() {
    let app = spawn_app().await;
    app.request_verify_token(SUPERUSER_EMAIL)
        .await
        .expect_null(202);
    app.register_ok("ann@example.com", PASSWORD).await;
    let token = app.verify_token_for("ann@example.com").await;
    app.verify(&token).await.expect_json(200);
    app.request_verify_token("ann@example.com")
        .await
        .expect_null(202);
    assert!(app.no_mail_to("ann@example.com").await);
    assert!(app.no_mail_to(SUPERUSER_EMAIL).await);
}

#[actix_web::test]
async fn request_verify_token_with_an_invalid_or_missing_email_is_422() {
    let app = spawn_app().await;
    app.post_json("/auth/request-verify-token", &json!({}))
        .await
        .expect_422_at("missing", json!(["body", "email"]));
    app.request_verify_token("ann@localhost")
        .await
        .expect_422_at("value_error", json!(["body", "email"]));
    app.post_json("/auth/request-verify-token", &json!({"email": 1}))
        .await
        .expect_422_at("string_type", json!(["body", "email"]));
}

// ---------------------------------------------------------------- verify

#[actix_web::test]
async fn verify_marks_the_user_verified_and_returns_it() {
    let app = spawn_app().await;
    let (user, access) = app.new_user("Ann@Example.com").await;
    let token = app.verify_token_for("ann@example.com").await;
    let verified = app.verify(&token).await.expect_json(200);
    assert_user(&verified, "Ann@example.com", true, false, true, "student");
    assert_eq!(verified["id"], user["id"]);
    assert_eq!(app.me(&access).await.expect_json(200), verified);
}

#[actix_web::test]
async fn verify_with_a_garbage_token_is_bad_token() {
    let app = spawn_app().await;
    for token in ["", "garbage", "a.b.c"] {
        app.verify(token).await.expect_code("VERIFY_USER_BAD_TOKEN");
    }
}

#[actix_web::test]
async fn verify_twice_is_already_verified() {
    let app = spawn_app().await;
    app.register_ok("ann@example.com", PASSWORD).await;
    let token = app.verify_token_for("ann@example.com").await;
    app.verify(&token).await.expect_json(200);
    app.verify(&token)
        .await
        .expect_code("VERIFY_USER_ALREADY_VERIFIED");
}

#[actix_web::test]
async fn verify_of_a_user_an_admin_verified_meanwhile_is_already_verified() {
    let app = spawn_app().await;
    let (user, _) = app.new_user("ann@example.com").await;
    let token = app.verify_token_for("ann@example.com").await;
    app.admin_patch(&TestApp::id_of(&user), &json!({"is_verified": true}))
        .await
        .expect_json(200);
    app.verify(&token)
        .await
        .expect_code("VERIFY_USER_ALREADY_VERIFIED");
}

#[actix_web::test]
async fn verify_token_dies_when_the_admin_changed_the_email() {
    let app = spawn_app().await;
    let (user, _) = app.new_user("ann@example.com").await;
    let token = app.verify_token_for("ann@example.com").await;
    app.admin_patch(
        &TestApp::id_of(&user),
        &json!({"email": "ann.new@example.com"}),
    )
    .await
    .expect_json(200);
    app.verify(&token)
        .await
        .expect_code("VERIFY_USER_BAD_TOKEN");
}

#[actix_web::test]
async fn verify_token_dies_when_the_user_was_deleted() {
    let app = spawn_app().await;
    let (user, _) = app.new_user("ann@example.com").await;
    let token = app.verify_token_for("ann@example.com").await;
    let root = app.superuser_token().await;
    app.delete(&format!("/users/{}", TestApp::id_of(&user)), Some(&root))
        .await
        .expect_empty(204);
    app.verify(&token)
        .await
        .expect_code("VERIFY_USER_BAD_TOKEN");
    // Even when someone registers the address again.
    app.register_ok("ann@example.com", PASSWORD).await;
    app.verify(&token)
        .await
        .expect_code("VERIFY_USER_BAD_TOKEN");
}

#[actix_web::test]
async fn verify_checks_the_token_before_already_verified() {
    let app = spawn_app().await;
    let root = app.superuser_token().await;
    let root_id = TestApp::id_of(&app.me(&root).await.expect_json(200));
    let claims = |aud: &str| {
        json!({
            "sub": root_id,
            "email": SUPERUSER_EMAIL,
            "aud": aud,
            "exp": now() + 600,
        })
    };
    // A well-formed verify token for the (verified) superuser…
    app.verify(&hs256_jwt(&claims("fastapi-users:verify"), VERIFY_SECRET))
        .await
        .expect_code("VERIFY_USER_ALREADY_VERIFIED");
    // …but a bad one is reported as bad, not as "already verified".
    app.verify(&hs256_jwt(&claims("fastapi-users:auth"), VERIFY_SECRET))
        .await
        .expect_code("VERIFY_USER_BAD_TOKEN");
    app.verify(&hs256_jwt(
        &claims("fastapi-users:verify"),
        "another-secret-0123456789abcdef-0123456789",
    ))
    .await
    .expect_code("VERIFY_USER_BAD_TOKEN");
}

#[actix_web::test]
async fn verify_matches_the_email_inside_the_token_case_insensitively() {
    let app = spawn_app().await;
    let user = app.register_ok("Ann@example.com", PASSWORD).await;
    let token = hs256_jwt(
        &json!({
            "sub": TestApp::id_of(&user),
            "email": "ANN@EXAMPLE.COM",
            "aud": "fastapi-users:verify",
            "exp": now() + 600,
        }),
        VERIFY_SECRET,
    );
    let verified = app.verify(&token).await.expect_json(200);
    assert_user(&verified, "Ann@example.com", true, false, true, "student");
}

#[actix_web::test]
async fn verify_with_a_token_whose_email_belongs_to_another_user_is_bad_token() {
    let app = spawn_app().await;
    let ann = app.register_ok("ann@example.com", PASSWORD).await;
    app.register_ok("bob@example.com", PASSWORD).await;
    let token = hs256_jwt(
        &json!({
            "sub": TestApp::id_of(&ann),
            "email": "bob@example.com",
            "aud": "fastapi-users:verify",
            "exp": now() + 600,
        }),
        VERIFY_SECRET,
    );
    app.verify(&token)
        .await
        .expect_code("VERIFY_USER_BAD_TOKEN");
}

#[actix_web::test]
async fn verify_with_an_expired_token_is_bad_token() {
    let app = spawn_app().await;
    let user = app.register_ok("ann@example.com", PASSWORD).await;
    let token = hs256_jwt(
        &json!({
            "sub": TestApp::id_of(&user),
            "email": "ann@example.com",
            "aud": "fastapi-users:verify",
            "exp": now() - 1,
        }),
        VERIFY_SECRET,
    );
    app.verify(&token)
        .await
        .expect_code("VERIFY_USER_BAD_TOKEN");
}

#[actix_web::test]
async fn verify_with_a_missing_or_mistyped_token_is_422() {
    let app = spawn_app().await;
    app.post_json("/auth/verify", &json!({}))
        .await
        .expect_422_at("missing", json!(["body", "token"]));
    app.post_json("/auth/verify", &json!({"token": 5}))
        .await
        .expect_422_at("string_type", json!(["body", "token"]));
    app.post_raw("/auth/verify", "text/plain", r#"{"token":"x"}"#)
        .await
        .expect_422_at("missing", json!(["body", "token"]));
}

#[actix_web::test]
async fn the_first_superuser_can_log_in() {
    let app = spawn_app().await;
    let token = app
        .login_token(&SUPERUSER_EMAIL.to_uppercase(), SUPERUSER_PASSWORD)
        .await;
    app.me(&token).await.expect_json(200);
}

// ---------------------------------------------------------------- races

#[actix_web::test]
async fn concurrent_registrations_of_one_address_create_exactly_one_user() {
    let app = spawn_app().await;
    let (a, b, c, d, e) = tokio::join!(
        app.register("ann@example.com", PASSWORD),
        app.register("ANN@example.com", PASSWORD),
        app.register("Ann@Example.com", PASSWORD),
        app.register("ann@EXAMPLE.COM", PASSWORD),
        app.register("aNN@example.com", PASSWORD),
    );
    let answers = [a, b, c, d, e];
    let created = answers.iter().filter(|r| r.status == 201).count();
    assert_eq!(
        created,
        1,
        "{:?}",
        answers.iter().map(|r| r.text()).collect::<Vec<_>>()
    );
    for res in answers.iter().filter(|r| r.status != 201) {
        res.expect_code("REGISTER_USER_ALREADY_EXISTS");
    }
}

#[actix_web::test]
async fn a_reset_token_used_concurrently_still_works_only_once() {
    let app = spawn_app().await;
    app.register_ok("ann@example.com", PASSWORD).await;
    let token = app.reset_token_for("ann@example.com").await;
    let (a, b, c, d) = tokio::join!(
        app.reset_password(&token, "new password one"),
        app.reset_password(&token, "new password two"),
        app.reset_password(&token, "new password three"),
        app.reset_password(&token, "new password four"),
    );
    let answers = [a, b, c, d];
    let succeeded = answers.iter().filter(|r| r.status == 200).count();
    assert_eq!(
        succeeded,
        1,
        "{:?}",
        answers.iter().map(|r| r.text()).collect::<Vec<_>>()
    );
    for res in answers.iter().filter(|r| r.status != 200) {
        res.expect_code("RESET_PASSWORD_BAD_TOKEN");
    }
}

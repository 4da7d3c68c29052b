//! A deployment's own password rules over real HTTP: `PASSWORD_MIN_LENGTH`
//! from the configuration, and a host's [`PasswordValidator`] whose reason
//! reaches the client exactly, in the 400 bodies of register, reset,
//! `PATCH /users/me` and `PATCH /users/{id}` (as FastAPI Users'
//! `InvalidPasswordException(reason=…)`).

use std::sync::Arc;

use portcullis::domain::{PasswordOwner, PasswordValidator};
use portcullis::password::HasherConfig;
use portcullis::{PortcullisBuilder, SuperuserOutcome, async_trait, create_superuser};
use portcullis_tests::test_app::{
    FRONTEND_URL, JWT_SECRET, PASSWORD, RESET_SECRET, SUPERUSER_EMAIL, SUPERUSER_PASSWORD, TestApp,
    TestDatabase, VERIFY_SECRET, serve_built, sink_and_mailer, spawn_app_with,
};
use serde_json::json;

/// The host's rule: no password containing "forbidden". Its reason names
/// whose password it judged, so the tests see the owner it was given.
struct NoForbiddenWord;

#[async_trait]
impl PasswordValidator for NoForbiddenWord {
    async fn validate<'a>(&self, password: &str, owner: &PasswordOwner<'a>) -> Result<(), String> {
        if !password.contains("forbidden") {
            return Ok(());
        }
        let whose = match owner.user {
            None => "new user".to_owned(),
            Some(stored) => format!("stored user {}", stored.email),
        };
        Err(format!(
            "No forbidden words in the password of {}, {whose}",
            owner.email
        ))
    }
}

/// A whole server like the harness's (its secrets, its mail sink, its first
/// superuser, the store `PORTCULLIS_TEST_STORE` names), assembled in code
/// with the host's validator.
async fn spawn_app_with_validator(validator: Arc<dyn PasswordValidator>) -> TestApp {
    let database = TestDatabase::fresh();
    let store = portcullis::open_store(&database.url)
        .await
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", database.url));
    let (sink, mailer) = sink_and_mailer().await;
    let service = PortcullisBuilder::new()
        .store(store)
        .hasher_config(HasherConfig {
            argon2_memory_kib: 8192,
            argon2_iterations: 1,
            ..HasherConfig::default()
        })
        .token_secrets(JWT_SECRET, RESET_SECRET, VERIFY_SECRET)
        .frontend_url(FRONTEND_URL)
        .mailer(mailer)
        .password_validator(validator)
        .build()
        .expect("the service builds");
    let root = create_superuser(&service, SUPERUSER_EMAIL, Some(SUPERUSER_PASSWORD), false).await;
    assert!(matches!(root, Ok(SuperuserOutcome::Created(_))), "{root:?}");
    database.assert_named_store();
    serve_built(service, sink, database)
}

#[actix_web::test]
async fn register_sends_the_hosts_reason_as_is_and_creates_nobody() {
    let app = spawn_app_with_validator(Arc::new(NoForbiddenWord)).await;
    app.register("ann@example.com", "a forbidden password")
        .await
        .expect_code_reason(
            "REGISTER_INVALID_PASSWORD",
            "No forbidden words in the password of ann@example.com, new user",
        );
    app.login("ann@example.com", "a forbidden password")
        .await
        .expect_code("LOGIN_BAD_CREDENTIALS");
    // The built-in checks come first, with their own reasons.
    app.register("ann@example.com", "forbidden ann@example.com")
        .await
        .expect_code_reason(
            "REGISTER_INVALID_PASSWORD",
            "Password should not contain e-mail",
        );
    app.register("ann@example.com", "forbid")
        .await
        .expect_code_reason(
            "REGISTER_INVALID_PASSWORD",
            "Password should be at least 8 characters",
        );
    app.register_ok("ann@example.com", PASSWORD).await;
    app.login_token("ann@example.com", PASSWORD).await;
}

#[actix_web::test]
async fn reset_password_sends_the_hosts_reason_and_the_token_stays_usable() {
    let app = spawn_app_with_validator(Arc::new(NoForbiddenWord)).await;
    app.register_ok("Ann@example.com", PASSWORD).await;
    let token = app.reset_token_for("ann@example.com").await;
    app.reset_password(&token, "my forbidden passphrase")
        .await
        .expect_code_reason(
            "RESET_PASSWORD_INVALID_PASSWORD",
            "No forbidden words in the password of Ann@example.com, stored user Ann@example.com",
        );
    // Nothing changed: the old password works, the token is still good.
    app.login_token("ann@example.com", PASSWORD).await;
    app.reset_password(&token, "a permitted passphrase")
        .await
        .expect_null(200);
    app.login_token("ann@example.com", "a permitted passphrase")
        .await;
}

#[actix_web::test]
async fn patch_me_sends_the_hosts_reason_and_keeps_the_password() {
    let app = spawn_app_with_validator(Arc::new(NoForbiddenWord)).await;
    let (_, token) = app.new_user("ann@example.com").await;
    app.patch_json(
        "/users/me",
        Some(&token),
        &json!({ "password": "forbidden fruit" }),
    )
    .await
    .expect_code_reason(
        "UPDATE_USER_INVALID_PASSWORD",
        "No forbidden words in the password of ann@example.com, stored user ann@example.com",
    );
    app.login_token("ann@example.com", PASSWORD).await;
    app.login("ann@example.com", "forbidden fruit")
        .await
        .expect_code("LOGIN_BAD_CREDENTIALS");
}

#[actix_web::test]
async fn patch_user_judges_the_new_address_and_changes_nothing_when_refused() {
    let app = spawn_app_with_validator(Arc::new(NoForbiddenWord)).await;
    let (ann, _) = app.new_user("ann@example.com").await;
    let id = TestApp::id_of(&ann);
    app.admin_patch(
        &id,
        &json!({ "email": "bea@example.com", "password": "forbidden fruit" }),
    )
    .await
    .expect_code_reason(
        "UPDATE_USER_INVALID_PASSWORD",
        "No forbidden words in the password of bea@example.com, stored user ann@example.com",
    );
    // Neither the address nor the password changed.
    let stored = app.admin_get(&id).await.expect_json(200);
    assert_eq!(stored["email"], "ann@example.com");
    app.login_token("ann@example.com", PASSWORD).await;
    // An accepted password goes through.
    let changed = app
        .admin_patch(&id, &json!({ "password": "permitted fruit" }))
        .await
        .expect_json(200);
    assert_eq!(changed["email"], "ann@example.com");
    app.login_token("ann@example.com", "permitted fruit").await;
}

#[actix_web::test]
async fn password_min_length_from_the_configuration_shapes_the_reason() {
    let app = spawn_app_with([("PASSWORD_MIN_LENGTH", "12")]).await;
    let too_short = "Password should be at least 12 characters";
    // 11 characters: refused everywhere a password is set.
    app.register("ann@example.com", "eleven char")
        .await
        .expect_code_reason("REGISTER_INVALID_PASSWORD", too_short);
    // 12 characters: accepted.
    app.register_ok("ann@example.com", "twelve chars").await;
    let token = app.login_token("ann@example.com", "twelve chars").await;
    app.patch_json(
        "/users/me",
        Some(&token),
        &json!({ "password": "eleven char" }),
    )
    .await
    .expect_code_reason("UPDATE_USER_INVALID_PASSWORD", too_short);
    let reset = app.reset_token_for("ann@example.com").await;
    app.reset_password(&reset, "eleven char")
        .await
        .expect_code_reason("RESET_PASSWORD_INVALID_PASSWORD", too_short);
    let me = app.me(&token).await.expect_json(200);
    app.admin_patch(&TestApp::id_of(&me), &json!({ "password": "eleven char" }))
        .await
        .expect_code_reason("UPDATE_USER_INVALID_PASSWORD", too_short);
    app.login_token("ann@example.com", "twelve chars").await;
}

//! Taking over a FastAPI Users deployment, over real HTTP, with what the real
//! FastAPI Users 15 wrote (`tests/fixtures/fastapi_users/`, made by
//! `scripts/fastapi_users_fixtures.sh`): its users (pwdlib argon2id, pwdlib
//! and passlib bcrypt `$2a$`/`$2b$`/`$2y$`) seeded with their exact ids and
//! hashes through the store port, on the store `PORTCULLIS_TEST_STORE`
//! names, and the access, reset and verify tokens it minted, under the
//! secrets it ran with. One test opens a copy of the SQLite database FastAPI
//! Users created itself.

use std::sync::Arc;
use std::time::Duration;

use portcullis::PortcullisBuilder;
use portcullis::domain::{
    EmailAddress, Role, SESSION_STAMP_TIME_FLOOR, Store, User, UserId, UserPatch,
};
use portcullis::password::HasherConfig;
use portcullis_tests::test_app::{
    AUTH_AUDIENCE, FRONTEND_URL, TestApp, TestDatabase, hs256_jwt, now, serve_built,
    sink_and_mailer,
};
use serde_json::{Value, json};

/// What `scripts/fastapi_users_fixtures.sh` wrote.
const FIXTURES: &str = include_str!("../fixtures/fastapi_users/fixtures.json");
/// The SQLite file FastAPI Users created.
const FASTAPI_USERS_DB: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/fastapi_users/fastapi_users.db"
);

/// `JWT_ACCESS_TOKEN_EXPIRE_MINUTES` of these apps, in seconds: FastAPI
/// Users' default, and what the tokens minted here as FastAPI Users mints
/// them assume.
const ACCESS_LIFETIME: u64 = 3600;

/// The configured scheme of these apps: what every adopted hash becomes.
const CONFIGURED_PREFIX: &str = "$argon2id$v=19$m=8192,t=1,p=1$";

fn fixtures() -> Value {
    serde_json::from_str(FIXTURES).expect("fixtures.json is JSON")
}

fn secret(name: &str) -> String {
    fixtures()["secrets"][name]
        .as_str()
        .unwrap_or_else(|| panic!("no secret {name}"))
        .to_owned()
}

/// The fixture's users: `id`, `email`, `password`, `scheme`,
/// `hashed_password`, flags.
fn users() -> Vec<Value> {
    fixtures()["users"].as_array().expect("users").clone()
}

fn user(email: &str) -> Value {
    users()
        .into_iter()
        .find(|u| u["email"] == email)
        .unwrap_or_else(|| panic!("no fixture user {email}"))
}

/// The tokens FastAPI Users minted for `purpose` (`access`, `reset`,
/// `verify`), with the user each is for.
fn tokens(purpose: &str) -> Vec<(Value, String)> {
    let found: Vec<_> = fixtures()["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .filter(|t| t["purpose"] == purpose)
        .map(|t| {
            let email = t["email"].as_str().expect("email");
            (user(email), t["token"].as_str().expect("token").to_owned())
        })
        .collect();
    assert!(!found.is_empty(), "no {purpose} token in the fixtures");
    found
}

fn text<'a>(user: &'a Value, key: &str) -> &'a str {
    user[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} of {user}"))
}

fn id_of(user: &Value) -> UserId {
    UserId::parse(text(user, "id")).expect("a UUID")
}

/// Cheap argon2id parameters ([`CONFIGURED_PREFIX`]).
fn cheap() -> HasherConfig {
    HasherConfig {
        argon2_memory_kib: 8192,
        argon2_iterations: 1,
        ..HasherConfig::default()
    }
}

/// pwdlib's parameters, which FastAPI Users hashes with.
fn pwdlib_parameters() -> HasherConfig {
    HasherConfig {
        argon2_memory_kib: 65_536,
        argon2_iterations: 3,
        argon2_parallelism: 4,
        ..HasherConfig::default()
    }
}

/// A server on `store` with FastAPI Users' secrets, `hasher` and a mail
/// sink.
async fn spawn_on(store: Arc<dyn Store>, database: TestDatabase, hasher: HasherConfig) -> TestApp {
    let (sink, mailer) = sink_and_mailer().await;
    let service = PortcullisBuilder::new()
        .store(store)
        .hasher_config(hasher)
        .access_token_lifetime(Duration::from_secs(ACCESS_LIFETIME))
        // Every fixture user logs in and resets several times from one
        // address: more than the default 30 auth requests a minute.
        .auth_rate_limit_per_minute(0)
        .token_secrets(
            secret("JWT_SECRET_KEY"),
            secret("AUTH_RESET_PASSWORD_TOKEN_SECRET"),
            secret("AUTH_VERIFICATION_TOKEN_SECRET"),
        )
        .frontend_url(FRONTEND_URL)
        .mailer(mailer)
        .build()
        .expect("the service builds");
    serve_built(service, sink, database)
}

/// An app on a fresh database of the store `PORTCULLIS_TEST_STORE` names,
/// holding the fixture's users with their ids, hashes and flags, written
/// through the store port, hashing with [`cheap`] parameters; and that
/// store, to look at what is stored.
async fn spawn_adopted() -> (TestApp, Arc<dyn Store>) {
    spawn_adopted_with(cheap()).await
}

/// [`spawn_adopted`], hashing with `hasher`.
async fn spawn_adopted_with(hasher: HasherConfig) -> (TestApp, Arc<dyn Store>) {
    let database = TestDatabase::fresh();
    let store = portcullis::open_store(&database.url)
        .await
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", database.url));
    for user in users() {
        let seeded = User {
            id: id_of(&user),
            email: EmailAddress::parse(text(&user, "email")).expect("an address"),
            hashed_password: text(&user, "hashed_password").to_owned(),
            is_active: user["is_active"] == true,
            is_superuser: user["is_superuser"] == true,
            is_verified: user["is_verified"] == true,
            role: Role::default(),
            fields: Default::default(),
            session_stamp: 0,
        };
        store.create(seeded).await.expect("the user is seeded");
    }
    let app = spawn_on(Arc::clone(&store), database, hasher).await;
    app.database.assert_named_store();
    (app, store)
}

async fn stored_hash(store: &Arc<dyn Store>, user: &Value) -> String {
    store
        .get(id_of(user))
        .await
        .expect("the store answers")
        .expect("the user is there")
        .hashed_password
}

/// Logs `user` in with its own password and reads `/users/me` with the
/// token: the user it names is the fixture's.
async fn logs_in(app: &TestApp, user: &Value, password: &str) {
    let email = text(user, "email");
    let token = app.login_token(email, password).await;
    let me = app.me(&token).await.expect_json(200);
    assert_eq!((&me["id"], &me["email"]), (&user["id"], &user["email"]));
}

#[actix_web::test]
async fn every_fastapi_users_hash_logs_in_with_its_password_and_not_with_a_wrong_one() {
    let (app, _) = spawn_adopted().await;
    let schemes: Vec<_> = users()
        .iter()
        .map(|u| text(u, "scheme").to_owned())
        .collect();
    for scheme in [
        "argon2",
        "pwdlib-bcrypt-2b",
        "passlib-bcrypt-2a",
        "passlib-bcrypt-2b",
        "passlib-bcrypt-2y",
    ] {
        assert!(schemes.iter().any(|s| s == scheme), "no {scheme} user");
    }
    for user in users() {
        let (email, password) = (text(&user, "email"), text(&user, "password"));
        app.login(email, &format!("!{password}"))
            .await
            .expect_code("LOGIN_BAD_CREDENTIALS");
        logs_in(&app, &user, password).await;
    }
}

#[actix_web::test]
async fn an_adopted_hash_is_replaced_by_the_configured_argon2id_at_login_and_still_logs_in() {
    let (app, store) = spawn_adopted().await;
    for user in users() {
        let (email, password) = (text(&user, "email"), text(&user, "password"));
        let before = stored_hash(&store, &user).await;
        assert_eq!(before, text(&user, "hashed_password"), "{email} seeded");
        // A failed login replaces nothing.
        app.login(email, "not the password")
            .await
            .expect_code("LOGIN_BAD_CREDENTIALS");
        assert_eq!(stored_hash(&store, &user).await, before, "{email}");

        logs_in(&app, &user, password).await;
        let after = stored_hash(&store, &user).await;
        assert!(
            after.starts_with(CONFIGURED_PREFIX) && after != before,
            "{email}: {before} became {after}"
        );
        logs_in(&app, &user, password).await;
        assert_eq!(stored_hash(&store, &user).await, after, "re-hashed once");
        app.login(email, "not the password")
            .await
            .expect_code("LOGIN_BAD_CREDENTIALS");
    }
}

#[actix_web::test]
async fn bcrypt_counts_the_first_72_bytes_of_a_password_as_passlib_did() {
    let (app, _) = spawn_adopted().await;
    let gina = user("gina@example.com");
    let password = text(&gina, "password");
    assert!(password.len() > 72 && text(&gina, "hashed_password").starts_with("$2b$"));
    // passlib ignored what follows byte 72; so does Portcullis.
    logs_in(&app, &gina, &password[..72]).await;
    app.login(text(&gina, "email"), &password[..71])
        .await
        .expect_code("LOGIN_BAD_CREDENTIALS");
}

#[actix_web::test]
async fn an_access_token_fastapi_users_minted_reads_users_me() {
    let (app, _) = spawn_adopted().await;
    for (user, token) in tokens("access") {
        let me = app.me(&token).await.expect_json(200);
        assert_eq!(me["id"], user["id"]);
        assert_eq!(me["email"], user["email"]);
        assert_eq!(me["is_superuser"], user["is_superuser"]);
        assert_eq!(me["is_verified"], user["is_verified"]);
    }
}

#[actix_web::test]
async fn a_reset_token_fastapi_users_mailed_resets_the_password_once() {
    let (app, store) = spawn_adopted().await;
    for (user, token) in tokens("reset") {
        let (email, old) = (text(&user, "email"), text(&user, "password"));
        let new = format!("reset on portcullis {}", text(&user, "scheme"));
        app.reset_password(&token, &new).await.expect_null(200);
        assert!(
            stored_hash(&store, &user)
                .await
                .starts_with(CONFIGURED_PREFIX),
            "{email}"
        );
        app.login(email, old)
            .await
            .expect_code("LOGIN_BAD_CREDENTIALS");
        logs_in(&app, &user, &new).await;
        app.reset_password(&token, "yet another password")
            .await
            .expect_code("RESET_PASSWORD_BAD_TOKEN");
        logs_in(&app, &user, &new).await;
    }
}

/// alice's reset token, which FastAPI Users mailed.
fn alices_reset_token() -> (Value, String) {
    tokens("reset")
        .into_iter()
        .find(|(u, _)| u["email"] == "alice@example.com")
        .expect("alice's reset token")
}

#[actix_web::test]
async fn a_login_that_re_hashes_ends_the_reset_link_fastapi_users_mailed_as_fastapi_users_does() {
    // Portcullis' parameters are not pwdlib's: the login re-hashes alice's
    // hash, and the link FastAPI Users mailed her is bound to the old hash
    // (`password_fgpt`), as it is on FastAPI Users after its own re-hash
    // (of a bcrypt hash, say).
    let (app, store) = spawn_adopted().await;
    let (alice, token) = alices_reset_token();
    logs_in(&app, &alice, text(&alice, "password")).await;
    assert!(
        stored_hash(&store, &alice)
            .await
            .starts_with(CONFIGURED_PREFIX)
    );
    app.reset_password(&token, "a brand new password")
        .await
        .expect_code("RESET_PASSWORD_BAD_TOKEN");
    logs_in(&app, &alice, text(&alice, "password")).await;
}

#[actix_web::test]
async fn with_pwdlib_parameters_a_login_keeps_the_hash_and_the_reset_link_fastapi_users_mailed() {
    let (app, store) = spawn_adopted_with(pwdlib_parameters()).await;
    let (alice, token) = alices_reset_token();
    logs_in(&app, &alice, text(&alice, "password")).await;
    assert_eq!(
        stored_hash(&store, &alice).await,
        text(&alice, "hashed_password"),
        "a pwdlib hash is current under pwdlib's parameters"
    );
    app.reset_password(&token, "a brand new password")
        .await
        .expect_null(200);
    assert!(
        stored_hash(&store, &alice)
            .await
            .starts_with("$argon2id$v=19$m=65536,t=3,p=4$")
    );
    logs_in(&app, &alice, "a brand new password").await;
}

#[actix_web::test]
async fn a_verify_token_fastapi_users_mailed_verifies_the_user() {
    let (app, store) = spawn_adopted().await;
    for (user, token) in tokens("verify") {
        assert_eq!(user["is_verified"], false, "{user}");
        let verified = app.verify(&token).await.expect_json(200);
        assert_eq!(verified["id"], user["id"]);
        assert_eq!(verified["is_verified"], true);
        let stored = store.get(id_of(&user)).await.expect("store").expect("user");
        assert!(stored.is_verified, "{}", user["email"]);
        app.verify(&token)
            .await
            .expect_code("VERIFY_USER_ALREADY_VERIFIED");
    }
}

/// A copy of FastAPI Users' database file, removed when dropped.
struct DatabaseCopy(std::path::PathBuf);

impl Drop for DatabaseCopy {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

#[actix_web::test]
async fn portcullis_opens_the_sqlite_database_fastapi_users_created_and_logs_its_users_in() {
    let copy = DatabaseCopy(std::env::temp_dir().join(format!(
        "portcullis-fastapi-users-{}.db",
        uuid::Uuid::new_v4()
    )));
    std::fs::copy(FASTAPI_USERS_DB, &copy.0).expect("copy the FastAPI Users database");
    let url = format!("sqlite://{}", copy.0.display());
    let store = portcullis::open_store(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    let app = spawn_on(Arc::clone(&store), TestDatabase::external(url), cheap()).await;

    // Its own token first (the hashes are still FastAPI Users').
    let (alice, token) = tokens("access")
        .into_iter()
        .find(|(u, _)| u["email"] == "alice@example.com")
        .expect("alice's access token");
    let me = app.me(&token).await.expect_json(200);
    assert_eq!((&me["id"], &me["role"]), (&alice["id"], &json!("student")));
    // Its reset and verify links, on its own rows.
    let (bruno, reset) = tokens("reset")
        .into_iter()
        .find(|(u, _)| u["email"] == "bruno@example.com")
        .expect("bruno's reset token");
    app.reset_password(&reset, "bruno's new password")
        .await
        .expect_null(200);
    logs_in(&app, &bruno, "bruno's new password").await;
    let (carol, verify) = tokens("verify")
        .into_iter()
        .find(|(u, _)| u["email"] == "carol@example.com")
        .expect("carol's verify token");
    let verified = app.verify(&verify).await.expect_json(200);
    assert_eq!(
        (&verified["id"], &verified["is_verified"]),
        (&carol["id"], &json!(true))
    );

    for user in users()
        .into_iter()
        .filter(|u| u["email"] != "bruno@example.com")
    {
        let (email, password) = (text(&user, "email"), text(&user, "password"));
        assert_eq!(
            stored_hash(&store, &user).await,
            text(&user, "hashed_password")
        );
        app.login(email, "not the password")
            .await
            .expect_code("LOGIN_BAD_CREDENTIALS");
        logs_in(&app, &user, password).await;
        assert!(
            stored_hash(&store, &user)
                .await
                .starts_with(CONFIGURED_PREFIX),
            "{email}"
        );
        logs_in(&app, &user, password).await;
    }
}

// ---- A mixed fleet: FastAPI Users' stampless JWTs after a revocation ---------

/// An access token exactly as FastAPI Users mints it for `user` at
/// `issued` (Unix seconds): `sub`, `aud`, `exp = issued + lifetime`, no
/// `iat`, HS256 with its secret.
fn fastapi_users_access_token(user: &Value, issued: i64) -> String {
    hs256_jwt(
        &json!({
            "sub": user["id"],
            "aud": [AUTH_AUDIENCE],
            "exp": issued + ACCESS_LIFETIME as i64,
        }),
        &secret("JWT_SECRET_KEY"),
    )
}

/// The stored session stamp of `user`.
async fn stored_stamp(store: &Arc<dyn Store>, user: &Value) -> i64 {
    store
        .get(id_of(user))
        .await
        .expect("the store answers")
        .expect("the user is there")
        .session_stamp
}

/// Now in Unix milliseconds.
fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    i64::try_from(since.as_millis()).expect("a sane clock")
}

/// Waits until the wall clock's whole second is at or after `stamp` (Unix
/// milliseconds): from then on, a token FastAPI Users mints is "after" it.
async fn until_a_second_after(stamp: i64) {
    while now().saturating_mul(1000) < stamp {
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `/users/me` with `token` is 200 and names `user`.
async fn reads_me(app: &TestApp, token: &str, user: &Value) {
    let me = app.me(token).await.expect_json(200);
    assert_eq!((&me["id"], &me["email"]), (&user["id"], &user["email"]));
}

#[actix_web::test]
async fn a_token_fastapi_users_mints_after_a_password_change_works_and_one_from_before_does_not() {
    let (app, store) = spawn_adopted().await;
    let alice = user("alice@example.com");
    let email = text(&alice, "email");
    let password = text(&alice, "password");
    let before = fastapi_users_access_token(&alice, now());
    reads_me(&app, &before, &alice).await;
    let own_before = app.login_token(email, password).await;
    reads_me(&app, &own_before, &alice).await;

    let started = now_ms();
    app.patch_json(
        "/users/me",
        Some(&own_before),
        &json!({ "password": "a brand new password" }),
    )
    .await
    .expect_json(200);
    let stamp = stored_stamp(&store, &alice).await;
    assert!(
        (started..=now_ms()).contains(&stamp),
        "the stamp is the change's time in ms: {started} <= {stamp}"
    );

    // Minted before the change, by either side: refused.
    app.me(&before).await.expect_401();
    app.me(&own_before).await.expect_401();
    let a_second_before = fastapi_users_access_token(&alice, stamp / 1000 - 1);
    app.me(&a_second_before).await.expect_401();
    // Minted within the change's own second: refused (the safe side),
    // unless the change fell on the whole second.
    let same_second = fastapi_users_access_token(&alice, stamp / 1000);
    if stamp % 1000 != 0 {
        app.me(&same_second).await.expect_401();
    }

    // Minted after it: accepted, as FastAPI Users accepts it.
    until_a_second_after(stamp).await;
    let after = fastapi_users_access_token(&alice, now());
    reads_me(&app, &after, &alice).await;

    // A stamped Portcullis token from before a later revocation: refused;
    // FastAPI Users' minted after that one: accepted.
    let own_stamped = app.login_token(email, "a brand new password").await;
    reads_me(&app, &own_stamped, &alice).await;
    app.delete("/users/me/sessions", Some(&own_stamped))
        .await
        .expect_empty(204);
    let later = stored_stamp(&store, &alice).await;
    assert!(later > stamp, "{later} > {stamp}");
    app.me(&own_stamped).await.expect_401();
    app.me(&after).await.expect_401();
    until_a_second_after(later).await;
    reads_me(&app, &fastapi_users_access_token(&alice, now()), &alice).await;
}

#[actix_web::test]
async fn a_legacy_counter_stamp_refuses_every_stampless_token_until_the_next_revocation() {
    let (app, store) = spawn_adopted().await;
    let bruno = user("bruno@example.com");
    // A stamp raised before stamps carried time: a counter.
    let counted = store
        .patch(
            id_of(&bruno),
            UserPatch {
                end_sessions: Some(0),
                ..UserPatch::default()
            },
        )
        .await
        .expect("the stamp is raised");
    assert_eq!(counted.session_stamp, 1);
    assert!(counted.session_stamp < SESSION_STAMP_TIME_FLOOR);
    let fresh = fastapi_users_access_token(&bruno, now());
    app.me(&fresh).await.expect_401();
    for (user, token) in tokens("access") {
        if user["id"] == bruno["id"] {
            app.me(&token).await.expect_401();
        }
    }
    // Portcullis' own tokens carry the counter and work.
    let own = app
        .login_token(text(&bruno, "email"), text(&bruno, "password"))
        .await;
    reads_me(&app, &own, &bruno).await;
    // The next revocation turns the counter into a time.
    app.delete("/users/me/sessions", Some(&own))
        .await
        .expect_empty(204);
    let stamp = stored_stamp(&store, &bruno).await;
    assert!(stamp >= SESSION_STAMP_TIME_FLOOR, "{stamp}");
    until_a_second_after(stamp).await;
    reads_me(&app, &fastapi_users_access_token(&bruno, now()), &bruno).await;
}

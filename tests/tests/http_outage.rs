//! The 503 contract over real HTTP (shared/API.md: "A store outage is
//! `503`, never a panic"): while the store cannot answer, every route that
//! needs it answers `503 {"detail": "Service Unavailable"}` with a
//! `Retry-After`, `/health` answers `503 {"status": "unavailable"}`, the
//! cause stays in the log and out of the answer, and the service recovers
//! by itself when the store is back.
//!
//! Two ways down: a store switched off (an in-memory store behind a
//! wrapper that fails as `StoreError::Unavailable`), and a real SQLite
//! database whose write lock another connection holds past the busy
//! timeout.

#[path = "support/outage.rs"]
mod outage;

use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::{Connection, RunQueryDsl, SqliteConnection};
use outage::{CAUSE, Switchable, spawn_app_on};
use portcullis_store_diesel_sqlite::{SqliteStoreOptions, SqliteUserStore};
use portcullis_store_memory::MemoryUserStore;
use portcullis_tests::test_app::{PASSWORD, TestApp, TestResponse, assert_plain_user};
use serde_json::json;

/// Asserts the whole 503 answer: the fixed body, a `Retry-After` in
/// seconds, and nothing of `cause` anywhere in it.
#[track_caller]
fn assert_unavailable(res: &TestResponse, cause: &[&str]) {
    assert_eq!(
        res.expect_json(503),
        json!({"detail": "Service Unavailable"})
    );
    let retry = res
        .header("retry-after")
        .unwrap_or_else(|| panic!("a 503 says when to retry: {:?}", res.headers));
    let seconds: u64 = retry
        .parse()
        .unwrap_or_else(|e| panic!("Retry-After {retry:?} is whole seconds: {e}"));
    assert!(seconds >= 1, "Retry-After: {seconds}");
    assert_no_leak(res, cause);
}

#[track_caller]
fn assert_no_leak(res: &TestResponse, cause: &[&str]) {
    let text = res.text();
    // Every header but the request id, a random UUID that may hold any
    // short hex run ("db-7" included) by chance.
    let headers = format!(
        "{:?}",
        res.headers
            .iter()
            .filter(|(name, _)| name.as_str() != "x-request-id")
            .collect::<Vec<_>>()
    );
    for part in cause {
        assert!(
            !text.contains(part),
            "the cause leaks into the body: {text}"
        );
        assert!(
            !headers.contains(part),
            "the cause leaks into the headers: {headers}"
        );
    }
}

#[actix_web::test]
async fn a_store_that_is_down_is_a_503_everywhere_and_the_service_recovers() {
    let store = Switchable::new(Arc::new(MemoryUserStore::new()));
    let app = spawn_app_on(store.clone(), "memory://").await;
    let (ann, token) = app.new_user("ann@example.com").await;
    assert_eq!(
        app.get_raw("/health").await.expect_json(200),
        json!({"status": "ok"})
    );

    store.set_down(true);
    let cause = [
        CAUSE,
        "hunter2",
        "db-7",
        "5432",
        "refused",
        "user store unavailable",
    ];
    let health = app.get_raw("/health").await;
    assert_eq!(health.expect_json(503), json!({"status": "unavailable"}));
    assert_no_leak(&health, &cause);
    assert_eq!(store.failures(), 1, "the health check asked the store");

    let answers = [
        ("GET /users/me", app.me(&token).await),
        (
            "PATCH /users/me",
            app.patch_json(
                "/users/me",
                Some(&token),
                &json!({"password": "a new password"}),
            )
            .await,
        ),
        ("register", app.register("bob@example.com", PASSWORD).await),
        ("login", app.login("ann@example.com", PASSWORD).await),
        (
            "forgot-password",
            app.forgot_password("ann@example.com").await,
        ),
        (
            "request-verify-token",
            app.request_verify_token("ann@example.com").await,
        ),
    ];
    for (what, res) in &answers {
        assert_eq!(res.status, 503, "{what}: {}", res.text());
        assert_unavailable(res, &cause);
    }
    assert!(
        store.failures() > answers.len(),
        "every answer met the outage ({} failures)",
        store.failures()
    );

    // Back up: nothing to restart.
    store.set_down(false);
    assert_eq!(
        app.get_raw("/health").await.expect_json(200),
        json!({"status": "ok"})
    );
    assert_eq!(app.me(&token).await.expect_json(200), ann);
    app.login_token("ann@example.com", PASSWORD).await;
    app.register_ok("bob@example.com", PASSWORD).await;
}

/// A database file in the temporary folder, removed with its WAL files.
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

#[actix_web::test]
async fn a_sqlite_write_lock_held_past_the_busy_timeout_is_a_503_within_it() {
    let file = TempFile(
        std::env::temp_dir().join(format!("portcullis-outage-{}.db", uuid::Uuid::new_v4())),
    );
    let url = format!("sqlite://{}", file.0.display());
    let busy_timeout = Duration::from_millis(300);
    let store = SqliteUserStore::open_with(
        &url,
        SqliteStoreOptions {
            busy_timeout,
            ..SqliteStoreOptions::default()
        },
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let app = spawn_app_on(Arc::new(store), &url).await;
    let (ann, token) = app.new_user("ann@example.com").await;

    // Another connection takes the write lock and keeps it.
    let mut blocker = SqliteConnection::establish(&file.0.to_string_lossy()).unwrap();
    diesel::sql_query("BEGIN IMMEDIATE")
        .execute(&mut blocker)
        .unwrap();
    let started = Instant::now();
    let res = app.register("bob@example.com", PASSWORD).await;
    let elapsed = started.elapsed();
    assert_unavailable(&res, &["locked", "database", "SQLITE", "busy"]);
    assert!(
        elapsed >= busy_timeout && elapsed < busy_timeout + Duration::from_secs(3),
        "the register waited for the lock, then gave up: {elapsed:?}"
    );
    diesel::sql_query("ROLLBACK").execute(&mut blocker).unwrap();

    // The lock is gone: the same request succeeds.
    let bob = app.register_ok("bob@example.com", PASSWORD).await;
    assert_plain_user(&bob, "bob@example.com");
    assert_eq!(app.me(&token).await.expect_json(200), ann);
    assert_eq!(
        TestApp::id_of(
            &app.me(&app.login_token("bob@example.com", PASSWORD).await)
                .await
                .expect_json(200)
        ),
        TestApp::id_of(&bob)
    );
}

//! The failed-login lockout over real HTTP (API.md, Abuse resistance,
//! "failed logins"): after `LOGIN_LOCKOUT_FAILURES` failures for one
//! address within `LOGIN_LOCKOUT_MINUTES`, every login for it is
//! `429 {"detail": "LOGIN_TOO_MANY_ATTEMPTS"}` + `Retry-After`, unknown
//! addresses alike; a success clears the count; the count is shared by
//! every instance on one database. Run on each store by `scripts/test`.
//!
//! The per-client-address limit is turned off here: these tests send many
//! logins from one client on purpose.

use portcullis_tests::test_app::{PASSWORD, TestApp, TestResponse, spawn_app_with};
use serde_json::json;

/// Three failures within two minutes lock an address.
const SMALL: [(&str, &str); 3] = [
    ("LOGIN_LOCKOUT_FAILURES", "3"),
    ("LOGIN_LOCKOUT_MINUTES", "2"),
    ("RATE_LIMIT_AUTH_PER_MINUTE", "0"),
];

/// Fails `n` logins for `address`, each an ordinary bad-credentials answer.
async fn fail(app: &TestApp, address: &str, n: usize) {
    for i in 0..n {
        let answer = app.login(address, "a wrong password").await;
        assert_eq!(
            answer.expect_json(400),
            json!({"detail": "LOGIN_BAD_CREDENTIALS"}),
            "failure {} of {n} for {address}",
            i + 1
        );
    }
}

/// Asserts the lockout answer, with a `Retry-After` of at least one second
/// and at most `window_secs`; returns it.
#[track_caller]
fn assert_locked(answer: &TestResponse, window_secs: u64) -> u64 {
    assert_eq!(
        answer.expect_json(429),
        json!({"detail": "LOGIN_TOO_MANY_ATTEMPTS"})
    );
    let retry_after = answer
        .header("retry-after")
        .unwrap_or_else(|| panic!("a 429 says Retry-After: {:?}", answer.headers));
    let secs: u64 = retry_after
        .parse()
        .unwrap_or_else(|e| panic!("Retry-After is whole seconds ({e}): {retry_after:?}"));
    assert!(
        secs > 0 && secs <= window_secs,
        "Retry-After {secs} not within the window of {window_secs} s"
    );
    secs
}

#[actix_web::test]
async fn after_the_failures_every_login_for_the_address_is_refused_right_password_or_not() {
    let app = spawn_app_with(SMALL).await;
    app.register_ok("ann@example.com", PASSWORD).await;
    app.register_ok("bob@example.com", PASSWORD).await;
    fail(&app, "ann@example.com", 3).await;

    assert_locked(&app.login("ann@example.com", PASSWORD).await, 120);
    assert_locked(&app.login("ann@example.com", "a wrong password").await, 120);
    // The address in any letter case is the same address.
    assert_locked(&app.login("ANN@Example.COM", PASSWORD).await, 120);
    // Another address is not affected.
    app.login_token("bob@example.com", PASSWORD).await;
}

#[actix_web::test]
async fn the_default_is_ten_failures_within_fifteen_minutes() {
    let app = spawn_app_with([("RATE_LIMIT_AUTH_PER_MINUTE", "0")]).await;
    app.register_ok("ann@example.com", PASSWORD).await;
    fail(&app, "ann@example.com", 10).await;
    assert_locked(&app.login("ann@example.com", PASSWORD).await, 15 * 60);
}

#[actix_web::test]
async fn an_unknown_address_gets_the_identical_answer() {
    let app = spawn_app_with(SMALL).await;
    app.register_ok("ann@example.com", PASSWORD).await;
    fail(&app, "ann@example.com", 3).await;
    fail(&app, "nobody@example.com", 3).await;

    let known = app.login("ann@example.com", PASSWORD).await;
    let unknown = app.login("nobody@example.com", PASSWORD).await;
    assert_locked(&known, 120);
    assert_locked(&unknown, 120);
    assert_eq!(known.body, unknown.body);
    // The same headers, but for the ones that differ by nature.
    let names = |answer: &TestResponse| {
        let mut names: Vec<String> = answer
            .headers
            .keys()
            .map(|name| name.as_str().to_owned())
            .filter(|name| !matches!(name.as_str(), "date" | "x-request-id"))
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&known), names(&unknown));
    for name in names(&known) {
        if name != "retry-after" {
            assert_eq!(known.header(&name), unknown.header(&name), "{name}");
        }
    }
}

#[actix_web::test]
async fn a_successful_login_before_the_limit_clears_the_count() {
    let app = spawn_app_with(SMALL).await;
    app.register_ok("ann@example.com", PASSWORD).await;
    fail(&app, "ann@example.com", 2).await;
    app.login_token("ann@example.com", PASSWORD).await;
    // Without the clearing this would be failures 3 and 4.
    fail(&app, "ann@example.com", 2).await;
    app.login_token("ann@example.com", PASSWORD).await;
}

#[actix_web::test]
async fn zero_failures_turns_the_lockout_off() {
    let app = spawn_app_with([
        ("LOGIN_LOCKOUT_FAILURES", "0"),
        ("RATE_LIMIT_AUTH_PER_MINUTE", "0"),
    ])
    .await;
    app.register_ok("ann@example.com", PASSWORD).await;
    fail(&app, "ann@example.com", 12).await;
    app.login_token("ann@example.com", PASSWORD).await;
}

#[actix_web::test]
async fn failures_counted_on_one_instance_lock_the_address_on_another() {
    let first = spawn_app_with(SMALL).await;
    let Some(second) = first.spawn_sibling(SMALL).await else {
        eprintln!("memory store: instances share no database, nothing to check");
        return;
    };
    first.register_ok("ann@example.com", PASSWORD).await;
    fail(&first, "ann@example.com", 2).await;
    fail(&second, "ann@example.com", 1).await;
    assert_locked(&first.login("ann@example.com", PASSWORD).await, 120);
    assert_locked(&second.login("ann@example.com", PASSWORD).await, 120);

    // Unknown addresses too, and a success on one instance clears the
    // count the other sees.
    fail(&second, "nobody@example.com", 3).await;
    assert_locked(&first.login("nobody@example.com", PASSWORD).await, 120);
    first.register_ok("cy@example.com", PASSWORD).await;
    fail(&first, "cy@example.com", 2).await;
    second.login_token("cy@example.com", PASSWORD).await;
    fail(&first, "cy@example.com", 2).await;
    first.login_token("cy@example.com", PASSWORD).await;
}

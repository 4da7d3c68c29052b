//! Mails over real HTTP (API.md, Abuse resistance, "mails" and "timing"):
//! at most `MAIL_PER_ADDRESS_PER_HOUR` reset + verification mails to one
//! address per hour, shared by every instance on one database, further
//! requests answering `202 null` and sending nothing; and mail off the
//! request path, so a mail server that never answers does not hold the
//! answer. Run on each store by `scripts/test`.
//!
//! Mails are delivered after the answer: a test waits for each mail it
//! expects, and watches a while for one that must not come.

use portcullis_tests::smtp_sink::StalledSmtpPeer;
use portcullis_tests::test_app::{MAIL_WAIT, NO_MAIL_WAIT, PASSWORD, TestApp, spawn_app_with};

const NO_RATE_LIMIT: (&str, &str) = ("RATE_LIMIT_AUTH_PER_MINUTE", "0");

/// Mails to `address` this app's sink received so far.
fn mails_to(app: &TestApp, address: &str) -> usize {
    app.sink
        .mails()
        .iter()
        .filter(|mail| mail.is_to(address))
        .count()
}

#[actix_web::test]
async fn the_fourth_reset_or_verify_mail_within_the_hour_is_not_sent() {
    let app = spawn_app_with([NO_RATE_LIMIT]).await;
    app.register_ok("ann@example.com", PASSWORD).await;
    app.register_ok("bob@example.com", PASSWORD).await;

    // Three mails, of both kinds and in any letter case, go out.
    app.reset_token_for("ann@example.com").await;
    app.verify_token_for("ANN@example.com").await;
    app.reset_token_for("Ann@Example.com").await;
    // Then nothing, for either kind, with the same answer as ever.
    app.forgot_password("ann@example.com")
        .await
        .expect_null(202);
    app.request_verify_token("ann@example.com")
        .await
        .expect_null(202);
    assert!(app.no_mail_to("ann@example.com").await, "a fourth mail");
    assert_eq!(mails_to(&app, "ann@example.com"), 3);

    // Another address has its own allowance.
    app.reset_token_for("bob@example.com").await;
}

#[actix_web::test]
async fn zero_means_no_cap() {
    let app = spawn_app_with([("MAIL_PER_ADDRESS_PER_HOUR", "0"), NO_RATE_LIMIT]).await;
    app.register_ok("ann@example.com", PASSWORD).await;
    for _ in 0..5 {
        app.reset_token_for("ann@example.com").await;
    }
    assert_eq!(mails_to(&app, "ann@example.com"), 5);
}

#[actix_web::test]
async fn the_cap_follows_the_setting() {
    let app = spawn_app_with([("MAIL_PER_ADDRESS_PER_HOUR", "1"), NO_RATE_LIMIT]).await;
    app.register_ok("ann@example.com", PASSWORD).await;
    app.verify_token_for("ann@example.com").await;
    app.forgot_password("ann@example.com")
        .await
        .expect_null(202);
    assert!(app.no_mail_to("ann@example.com").await, "a second mail");
}

#[actix_web::test]
async fn the_mail_cap_is_shared_by_instances_on_one_database() {
    let first = spawn_app_with([NO_RATE_LIMIT]).await;
    let Some(second) = first.spawn_sibling([NO_RATE_LIMIT]).await else {
        eprintln!("memory store: instances share no database, nothing to check");
        return;
    };
    first.register_ok("ann@example.com", PASSWORD).await;
    first.reset_token_for("ann@example.com").await;
    second.reset_token_for("ann@example.com").await;
    second.verify_token_for("ann@example.com").await;
    for app in [&first, &second] {
        app.forgot_password("ann@example.com")
            .await
            .expect_null(202);
        app.request_verify_token("ann@example.com")
            .await
            .expect_null(202);
    }
    assert!(first.no_mail_to("ann@example.com").await);
    assert!(second.no_mail_to("ann@example.com").await);
    assert_eq!(
        mails_to(&first, "ann@example.com") + mails_to(&second, "ann@example.com"),
        3
    );
}

#[actix_web::test]
async fn a_mail_server_that_never_answers_does_not_hold_the_answer() {
    // The peer accepts the connection and then says nothing, ever (until
    // the test ends): a request that waited for the delivery would wait
    // for the SMTP client's own timeouts, or for ever.
    let peer = StalledSmtpPeer::start().await;
    let port = peer.port().to_string();
    let app = spawn_app_with([("SMTP_PORT", port.as_str()), NO_RATE_LIMIT]).await;
    app.register_ok("ann@example.com", PASSWORD).await;

    app.forgot_password("ann@example.com")
        .await
        .expect_null(202);
    // The mail was really attempted: the peer saw the connection…
    assert!(
        peer.wait_for_connections(1, MAIL_WAIT).await,
        "no connection to the mail server"
    );
    // …and its client is still waiting on it: the answer above came back
    // while the delivery was stuck, not after the SMTP client gave up.
    assert_eq!(peer.still_waiting(), 1);

    // A verification mail behind the stuck one answers the same.
    app.request_verify_token("ann@example.com")
        .await
        .expect_null(202);
    // Nothing reached the sink the app would otherwise mail to.
    assert!(
        app.sink
            .wait_for_mail_to("ann@example.com", NO_MAIL_WAIT)
            .await
            .is_none()
    );
}

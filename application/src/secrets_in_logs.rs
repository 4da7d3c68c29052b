//! The use cases' spans and events, at every level, name users by id and
//! never show a password, a token, a hash or the address; the auth events
//! are there.

use std::io;
use std::sync::{Arc, Mutex};

use portcullis_domain::{ResetClaims, UserChanges};
use tracing_subscriber::fmt::format::FmtSpan;

use crate::test_support::*;

const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "another staple here";
const HASH: &str = "$argon2id$the-stored-hash";
const TOKEN: &str = "eyJ.the-token.sig";

/// Everything logged while it is alive, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn spans_name_the_user_and_never_show_a_secret() {
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::NEW | FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut user = a_user();
    user.hashed_password = HASH.into();
    let id = user.id;
    let mut admin = a_user();
    admin.is_superuser = true;

    let mut m = Mocks::new();
    m.login_failures("ann@example.com", None);
    let stored = user.clone();
    m.users
        .expect_get_by_email()
        .withf(email_is("ann@example.com"))
        .returning(move |_| Ok(Some(stored.clone())));
    let stored = user.clone();
    m.users
        .expect_get()
        .withf(id_is(id))
        .returning(move |_| Ok(Some(stored.clone())));
    m.users
        .expect_replace_password_hash()
        .returning(|_, _, _| Ok(true));
    let stored = user.clone();
    m.users.expect_patch().returning(move |_, p| {
        let mut u = stored.clone();
        p.apply_to(&mut u);
        Ok(u)
    });
    m.hasher
        .expect_verify_and_update()
        .returning(|_, _| valid(None));
    m.hasher.expect_hash().returning(|_| Ok(HASH.into()));
    m.tokens
        .expect_issue_access()
        .returning(|_, _| Ok(TOKEN.into()));
    m.tokens.expect_verify_access().returning(move |_| {
        Ok(portcullis_domain::AccessClaims {
            subject: id.to_string(),
            stamp: 0,
            expires_at: i64::MAX,
            issued_at: None,
        })
    });
    m.sessions
        .expect_delete_access_tokens_of()
        .returning(|_| Ok(0));
    m.tokens.expect_verify_reset().returning(move |_| {
        Ok(ResetClaims {
            subject: id.to_string(),
            password_fingerprint: HASH.into(),
            state: None,
        })
    });
    m.events.expect_on_after_login().return_const(());
    m.events.expect_on_after_reset_password().return_const(());
    m.events.expect_on_after_update().return_const(());
    let s = m.service();

    s.login("ann@example.com", PASSWORD).await.unwrap();
    s.authenticate(TOKEN).await.unwrap();
    s.reset_password(TOKEN, NEW_PASSWORD).await.unwrap();
    s.update_me(user.clone(), Some(NEW_PASSWORD)).await.unwrap();
    let changes = UserChanges {
        password: Some(NEW_PASSWORD.into()),
        ..UserChanges::default()
    };
    s.admin_update_user(&admin, id, changes).await.unwrap();
    s.logout(&user, TOKEN).await.unwrap();

    let text = log.text();
    for event in [
        "auth_event=\"login_ok\"",
        "auth_event=\"password_reset\"",
        "auth_event=\"sessions_revoked\" cause=\"password_reset\"",
        "auth_event=\"sessions_revoked\" cause=\"password_change\"",
    ] {
        assert!(
            text.lines()
                .any(|line| line.contains(event) && line.contains(&format!("user_id={id}"))),
            "{event} with the user's id: {text}"
        );
    }
    for use_case in [
        "login",
        "authenticate",
        "reset_password",
        "update_me",
        "admin_update_user",
        "logout",
    ] {
        assert!(
            text.contains(&format!("{use_case}{{")) && text.contains(&format!("user_id={id}")),
            "{use_case} has a span naming the user: {text}"
        );
    }
    for secret in [PASSWORD, NEW_PASSWORD, HASH, TOKEN, "ann@example.com"] {
        assert!(
            !text.to_lowercase().contains(&secret.to_lowercase()),
            "{secret:?} logged: {text}"
        );
    }
}

/// The log of `run`, at every level, spans opened and closed included.
async fn logged<F: Future<Output = ()>>(run: F) -> String {
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::NEW | FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    run.await;
    log.text()
}

#[tokio::test]
async fn failed_and_locked_logins_are_auth_events_without_username_or_password() {
    let user = a_user();
    let id = user.id;
    let mut m = Mocks::new();
    m.login_failures("ann@example.com", None);
    m.failure_counted("ann@example.com");
    m.users
        .expect_get_by_email()
        .withf(email_is("ann@example.com"))
        .returning(move |_| Ok(Some(user.clone())));
    m.hasher
        .expect_verify_and_update()
        .returning(|_, _| invalid());
    let s = m.service();
    let text = logged(async {
        s.login("ann@example.com", PASSWORD).await.unwrap_err();
    })
    .await;
    assert!(
        text.lines().any(|line| line
            .contains("auth_event=\"login_failed\" reason=\"bad_credentials\" user_id=")
            && line.contains(&id.to_string())),
        "{text}"
    );

    let mut m = Mocks::new();
    m.login_failures("who@example.com", None);
    m.failure_counted("who@example.com");
    m.users.expect_get_by_email().returning(|_| Ok(None));
    m.hasher.expect_verify_unknown().returning(|_| Ok(()));
    let s = m.service();
    let unknown = logged(async {
        s.login("who@example.com", PASSWORD).await.unwrap_err();
    })
    .await;
    assert!(
        unknown.contains("auth_event=\"login_failed\" reason=\"bad_credentials\""),
        "{unknown}"
    );

    let mut m = Mocks::new();
    m.login_failures(
        "ann@example.com",
        Some(window_of(
            test_now() - std::time::Duration::from_secs(1),
            10,
        )),
    );
    let s = m.service();
    let locked = logged(async {
        s.login("ann@example.com", PASSWORD).await.unwrap_err();
    })
    .await;
    assert!(locked.contains("auth_event=\"login_locked\""), "{locked}");

    for text in [text, unknown, locked] {
        for secret in [PASSWORD, "ann@example.com", "who@example.com"] {
            assert!(!text.contains(secret), "{secret:?} logged: {text}");
        }
    }
}

//! The SMTP mailer against a real (test) SMTP server over TCP.

use std::sync::Arc;
use std::time::Duration;

use portcullis_domain::{EmailAddress, Mailer, User, UserEvents};
use portcullis_mail::{MailingUserEvents, SmtpMailer, SmtpSettings, SmtpTls, reset_password_mail};
use portcullis_tests::smtp_sink::SmtpSink;

const FROM: &str = "noreply@portcullis.example.com";
const FRONTEND: &str = "http://localhost:3000/";
const WAIT: Duration = Duration::from_secs(10);

/// A 250-character, JWT-shaped token with dots, dashes and underscores.
fn jwt_like_token() -> String {
    let header = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";
    let signature = "Xk_3-pQz9_Lm-Tv7aB2c_D4e-F6gH8iJ0kL1mN3oP5q";
    let fill = 250 - header.len() - signature.len() - 2;
    let payload: String = "eyJzdWIiOiI0ZjNi-MmQ1_ZTY3OCIsImF1ZCI6WyJmYXN0YXBpLXVzZXJzOmF1dGgiXX0"
        .chars()
        .cycle()
        .take(fill)
        .collect();
    let token = format!("{header}.{payload}.{signature}");
    assert_eq!(token.len(), 250);
    assert!(token.contains('.') && token.contains('-') && token.contains('_'));
    token
}

fn smtp_settings(port: u16) -> SmtpSettings {
    SmtpSettings::new(
        "127.0.0.1",
        Some(port),
        SmtpTls::None,
        format!("Portcullis <{FROM}>"),
    )
}

fn ann() -> User {
    User::new(
        EmailAddress::parse("Ann.Smith@Example.com").unwrap(),
        "hash".into(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_mail_goes_over_smtp_with_the_token_verbatim() {
    let sink = SmtpSink::start().await;
    let mailer = SmtpMailer::new(smtp_settings(sink.port())).unwrap();
    let user = ann();
    let token = jwt_like_token();

    mailer
        .send(reset_password_mail(&user.email, FRONTEND, &token))
        .await
        .unwrap();

    let mail = sink
        .wait_for_mail_to("ann.smith@example.com", WAIT)
        .await
        .expect("the sink received the mail");
    assert_eq!(mail.from, FROM);
    assert_eq!(mail.to, vec![user.email.as_str().to_owned()]);
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("Reset your password")
    );
    assert!(mail.header("From").unwrap().contains(FROM));
    assert!(mail.header("To").unwrap().contains(user.email.as_str()));
    assert!(
        mail.header("Content-Type")
            .unwrap()
            .starts_with("multipart/alternative")
    );
    assert!(mail.data.contains("text/plain") && mail.data.contains("text/html"));
    assert_eq!(
        mail.token_after("/reset-password?token=").as_deref(),
        Some(token.as_str())
    );
    assert!(mail.data.contains(&format!(
        "http://localhost:3000/reset-password?token={token}\r\n"
    )));
    assert!(mail.data.split("\r\n").all(|line| line.len() <= 998));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_connection_carries_several_mails_and_auth_is_accepted() {
    let sink = SmtpSink::start().await;
    let mailer =
        SmtpMailer::new(smtp_settings(sink.port()).with_credentials("user", "secret")).unwrap();
    mailer.test_connection().await.unwrap();
    let user = ann();
    for i in 0..3 {
        mailer
            .send(reset_password_mail(
                &user.email,
                FRONTEND,
                &format!("tok-{i}"),
            ))
            .await
            .unwrap();
    }
    for i in 0..3 {
        let mail = sink
            .wait_for_mail_to(user.email.as_str(), WAIT)
            .await
            .unwrap();
        assert_eq!(
            mail.token_after("/reset-password?token=").unwrap(),
            format!("tok-{i}")
        );
    }
    assert_eq!(sink.mails().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailing_user_events_send_reset_and_verify_mails() {
    let sink = SmtpSink::start().await;
    let mailer: Arc<dyn Mailer> = Arc::new(SmtpMailer::new(smtp_settings(sink.port())).unwrap());
    let events = MailingUserEvents::new(mailer, FRONTEND);
    let user = ann();
    let token = jwt_like_token();

    events.on_after_forgot_password(&user, &token).await;
    let mail = sink
        .wait_for_mail_to(user.email.as_str(), WAIT)
        .await
        .unwrap();
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("Reset your password")
    );
    assert_eq!(
        mail.token_after("/reset-password?token=").as_deref(),
        Some(token.as_str())
    );

    events
        .on_after_request_verify(&user, "verify.tok_en-1")
        .await;
    let mail = sink
        .wait_for_mail_to(user.email.as_str(), WAIT)
        .await
        .unwrap();
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("Verify your e-mail")
    );
    assert_eq!(
        mail.token_after("/verify?token=").as_deref(),
        Some("verify.tok_en-1")
    );
    assert_eq!(mail.token_after("/reset-password?token="), None);
}

/// A port nothing listens on (bound, then released).
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_is_an_error_and_events_do_not_panic() {
    let port = closed_port().await;
    let mailer = SmtpMailer::new(smtp_settings(port))
        .unwrap()
        .with_timeout(Duration::from_secs(2));
    let user = ann();
    let err = mailer
        .send(reset_password_mail(&user.email, FRONTEND, "t"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    assert!(mailer.test_connection().await.is_err());

    let events = MailingUserEvents::new(Arc::new(mailer), FRONTEND);
    events.on_after_forgot_password(&user, "t").await;
    events.on_after_request_verify(&user, "t").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misconfiguration_is_refused_at_construction() {
    let mut bad = smtp_settings(25);
    bad.from = "Portcullis <not-an-address>".into();
    let err = SmtpMailer::new(bad).unwrap_err();
    assert!(err.to_string().contains("MAIL_FROM"), "{err}");
    assert!("smtps".parse::<SmtpTls>().is_err());
}

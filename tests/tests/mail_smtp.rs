//! The SMTP mailer against a real (test) SMTP server over TCP.

use std::sync::Arc;
use std::time::Duration;

use portcullis_domain::{EmailAddress, Mailer, User, UserEvents};
use portcullis_mail::{MailingUserEvents, SmtpMailer, SmtpSettings, SmtpTls, reset_password_mail};
use portcullis_tests::smtp_sink::{SinkTls, SmtpSink};

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

/// lettre hands a connection back to its pool in a task of its own, spawned
/// when a send ends; a send right after may find the pool empty and open a
/// second connection. On a current-thread runtime that task is queued when
/// the send returns, and yielding lets it run before the next send: no
/// timing involved.
async fn let_the_pool_take_its_connection_back() {
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn pooled_connection_carries_several_mails_after_one_login_with_the_credentials() {
    let sink = SmtpSink::start().await;
    let mailer = SmtpMailer::new(
        smtp_settings(sink.port()).with_credentials("mailer@example.com", "s3cret pass:word"),
    )
    .unwrap();
    mailer.test_connection().await.unwrap();
    let user = ann();
    let mails = 3;
    for i in 0..mails {
        let_the_pool_take_its_connection_back().await;
        mailer
            .send(reset_password_mail(
                &user.email,
                FRONTEND,
                &format!("tok-{i}"),
            ))
            .await
            .unwrap();
    }
    for i in 0..mails {
        let mail = sink
            .wait_for_mail_to(user.email.as_str(), WAIT)
            .await
            .unwrap();
        assert_eq!(
            mail.token_after("/reset-password?token=").unwrap(),
            format!("tok-{i}")
        );
    }
    assert_eq!(sink.mails().len(), mails);

    // The start-up check and every mail went over one pooled connection,
    // which logged in once with the configured credentials.
    let connections = sink.connections();
    assert_eq!(connections.len(), 1, "{connections:#?}");
    assert_eq!(connections[0].mails_in_clear, mails);
    let auths = sink.auths();
    assert_eq!(auths.len(), 1, "{auths:#?}");
    assert_eq!(auths[0].username, "mailer@example.com");
    assert_eq!(auths[0].password, "s3cret pass:word");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_credentials_the_mailer_does_not_log_in() {
    let sink = SmtpSink::start().await;
    let mailer = SmtpMailer::new(smtp_settings(sink.port())).unwrap();
    let user = ann();
    mailer
        .send(reset_password_mail(&user.email, FRONTEND, "t"))
        .await
        .unwrap();
    sink.wait_for_mail_to(user.email.as_str(), WAIT)
        .await
        .expect("the mail");
    assert_eq!(sink.auths(), vec![]);
}

/// The text `body` as the sink sees it in the message: CRLF line endings.
fn crlf(body: &str) -> String {
    body.replace("\r\n", "\n").replace('\n', "\r\n")
}

/// Sends a reset mail with a JWT-like token and credentials through `tls` to
/// a sink speaking `sink_tls`, trusting the sink's CA; checks the mail
/// arrived intact and returns the sink.
async fn a_reset_mail_goes_over(tls: SmtpTls, sink_tls: SinkTls) -> SmtpSink {
    let sink = SmtpSink::start_with(sink_tls).await;
    let ca = sink.ca_certificate_pem().expect("a TLS sink").to_owned();
    let settings = SmtpSettings::new(
        "127.0.0.1",
        Some(sink.port()),
        tls,
        format!("Portcullis <{FROM}>"),
    )
    .with_credentials("mailer", "over-tls-only")
    .with_root_certificate(ca);
    let mailer = SmtpMailer::new(settings)
        .unwrap()
        .with_timeout(Duration::from_secs(5));
    let user = ann();
    let token = jwt_like_token();
    let mail = reset_password_mail(&user.email, FRONTEND, &token);
    let (text, html) = (crlf(&mail.text), crlf(&mail.html));
    mailer.send(mail).await.unwrap();

    let received = sink
        .wait_for_mail_to(user.email.as_str(), WAIT)
        .await
        .expect("the mail arrived");
    assert_eq!(received.from, FROM);
    assert_eq!(received.to, vec![user.email.as_str().to_owned()]);
    assert_eq!(
        received.header("Subject").as_deref(),
        Some("Reset your password")
    );
    assert!(received.data.contains(&text), "{}", received.data);
    assert!(received.data.contains(&html), "{}", received.data);
    assert_eq!(
        received.token_after("/reset-password?token=").as_deref(),
        Some(token.as_str())
    );
    sink
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_upgrades_before_login_and_mail() {
    let sink = a_reset_mail_goes_over(SmtpTls::StartTls, SinkTls::StartTls).await;
    let connections = sink.connections();
    assert_eq!(connections.len(), 1, "{connections:#?}");
    let connection = &connections[0];
    assert!(connection.starttls && !connection.implicit_tls);
    assert_eq!(
        (connection.mails_in_clear, connection.mails_over_tls),
        (0, 1)
    );
    let auths = &connection.auths;
    assert_eq!(auths.len(), 1, "{auths:#?}");
    assert_eq!(
        (auths[0].username.as_str(), auths[0].password.as_str()),
        ("mailer", "over-tls-only")
    );
    assert!(auths[0].over_tls, "credentials went in clear");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls_carries_login_and_mail() {
    let sink = a_reset_mail_goes_over(SmtpTls::Tls, SinkTls::Implicit).await;
    let connections = sink.connections();
    assert_eq!(connections.len(), 1, "{connections:#?}");
    let connection = &connections[0];
    assert!(connection.implicit_tls && !connection.starttls);
    assert_eq!(
        (connection.mails_in_clear, connection.mails_over_tls),
        (0, 1)
    );
    let auths = sink.auths();
    assert_eq!(auths.len(), 1, "{auths:#?}");
    assert_eq!(auths[0].username, "mailer");
    assert_eq!(auths[0].password, "over-tls-only");
    assert!(auths[0].over_tls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_never_falls_back_to_plain_text() {
    // A server (or a man in the middle) that does not offer STARTTLS.
    let sink = SmtpSink::start().await;
    let settings = SmtpSettings::new(
        "127.0.0.1",
        Some(sink.port()),
        SmtpTls::StartTls,
        format!("Portcullis <{FROM}>"),
    )
    .with_credentials("mailer", "never-in-clear");
    let mailer = SmtpMailer::new(settings)
        .unwrap()
        .with_timeout(Duration::from_secs(5));
    let user = ann();
    let err = mailer
        .send(reset_password_mail(&user.email, FRONTEND, "t"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("(starttls)"), "{err}");
    assert_eq!(sink.connections().len(), 1, "it did connect");
    assert!(sink.mails().is_empty());
    assert!(sink.auths().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_refused_and_nothing_is_sent() {
    for (tls, sink_tls) in [
        (SmtpTls::StartTls, SinkTls::StartTls),
        (SmtpTls::Tls, SinkTls::Implicit),
    ] {
        let sink = SmtpSink::start_with(sink_tls).await;
        // The sink's CA is not trusted: the system roots do not know it.
        let settings = SmtpSettings::new(
            "127.0.0.1",
            Some(sink.port()),
            tls,
            format!("Portcullis <{FROM}>"),
        )
        .with_credentials("mailer", "never-sent");
        let mailer = SmtpMailer::new(settings)
            .unwrap()
            .with_timeout(Duration::from_secs(5));
        let user = ann();
        let err = mailer
            .send(reset_password_mail(&user.email, FRONTEND, "t"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains(&format!("({tls})")), "{err}");
        assert!(sink.mails().is_empty());
        assert!(sink.auths().is_empty());
        let connections = sink.connections();
        assert_eq!(connections.len(), 1, "{tls}: {connections:#?}");
        assert!(!connections[0].starttls, "{tls}: the handshake failed");
    }
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

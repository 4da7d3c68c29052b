use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use portcullis_domain::{Mail, Mailer, User, UserEvents};

use crate::templates::{reset_password_mail, verify_mail};

/// [`UserEvents`] that mail the tokens: `on_after_forgot_password` sends
/// [`reset_password_mail`], `on_after_request_verify` sends [`verify_mail`],
/// both with links under `frontend_url` (`FRONTEND_URL`). A send failure is
/// logged at WARN and goes no further; the other hooks do nothing.
pub struct MailingUserEvents {
    /// Where the mails go out.
    pub mailer: Arc<dyn Mailer>,
    /// Base of the links (`FRONTEND_URL`); a trailing `/` is ignored.
    pub frontend_url: String,
}

impl MailingUserEvents {
    /// Hooks sending through `mailer`, with links under `frontend_url`.
    pub fn new(mailer: Arc<dyn Mailer>, frontend_url: impl Into<String>) -> Self {
        Self {
            mailer,
            frontend_url: frontend_url.into(),
        }
    }

    async fn deliver(&self, kind: &'static str, user: &User, mail: Mail) {
        match self.mailer.send(mail).await {
            Ok(()) => tracing::debug!(user_id = %user.id, kind, "mail handed over"),
            Err(error) => tracing::warn!(user_id = %user.id, kind, %error, "could not send mail"),
        }
    }
}

impl fmt::Debug for MailingUserEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailingUserEvents")
            .field("frontend_url", &self.frontend_url)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl UserEvents for MailingUserEvents {
    async fn on_after_forgot_password(&self, user: &User, token: &str) {
        let mail = reset_password_mail(&user.email, &self.frontend_url, token);
        self.deliver("reset-password", user, mail).await;
    }

    async fn on_after_request_verify(&self, user: &User, token: &str) {
        let mail = verify_mail(&user.email, &self.frontend_url, token);
        self.deliver("verify", user, mail).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use portcullis_domain::{EmailAddress, MailError};

    use super::*;

    #[derive(Default)]
    struct Recorder {
        sent: Mutex<Vec<Mail>>,
        fail: bool,
    }

    #[async_trait]
    impl Mailer for Recorder {
        async fn send(&self, mail: Mail) -> Result<(), MailError> {
            self.sent.lock().unwrap().push(mail);
            if self.fail {
                Err(MailError("down".into()))
            } else {
                Ok(())
            }
        }
    }

    fn user() -> User {
        User::new(
            EmailAddress::parse("ann@example.com").unwrap(),
            "hash".into(),
        )
    }

    #[tokio::test]
    async fn forgot_password_and_request_verify_send_their_mails() {
        let recorder = Arc::new(Recorder::default());
        let events = MailingUserEvents::new(recorder.clone(), "http://front/");
        events.on_after_forgot_password(&user(), "tok.1").await;
        events.on_after_request_verify(&user(), "tok.2").await;
        events.on_after_register(&user()).await;
        events.on_after_verify(&user()).await;
        let sent = recorder.sent.lock().unwrap();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0].subject, "Reset your password");
        assert!(
            sent[0]
                .text
                .contains("http://front/reset-password?token=tok.1\n")
        );
        assert_eq!(sent[1].subject, "Verify your e-mail");
        assert!(sent[1].text.contains("http://front/verify?token=tok.2\n"));
    }

    #[tokio::test]
    async fn a_failing_mailer_is_swallowed() {
        let recorder = Arc::new(Recorder {
            fail: true,
            ..Recorder::default()
        });
        let events = MailingUserEvents::new(recorder.clone(), "http://front");
        events.on_after_forgot_password(&user(), "t").await;
        assert_eq!(recorder.sent.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn log_mailer_always_succeeds() {
        let events = MailingUserEvents::new(Arc::new(crate::LogMailer), "http://front");
        events.on_after_request_verify(&user(), "t").await;
        assert!(
            crate::LogMailer::new()
                .send(verify_mail(&user().email, "http://f", "t"))
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn background_mailer_returns_at_once_and_delivers() {
        let recorder = Arc::new(Recorder::default());
        let bg = crate::BackgroundMailer::new(recorder.clone());
        bg.send(verify_mail(&user().email, "http://f", "t"))
            .await
            .unwrap();
        for _ in 0..100 {
            if !recorder.sent.lock().unwrap().is_empty() {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("background mail never delivered");
    }
}

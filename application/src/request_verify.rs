use portcullis_domain::EmailAddress;

use crate::{InfraError, UserService};

impl UserService {
    /// Sends a verification token (through the `on_after_request_verify`
    /// hook) to an existing, active, unverified user; does nothing otherwise.
    /// The caller answers the same either way. The token is bound to the
    /// account's state (see [`verify`](Self::verify)). At most
    /// [`Policy::mail_per_address_per_hour`] reset and verification mails
    /// an hour go to one address: past that the hook is not called, and an
    /// INFO line with the user's id says so.
    ///
    /// Every path does the same store work (one lookup, one count of the
    /// request in the mail ledger); the mail itself is the hook's, which
    /// must not wait for the mail server (the built-in one queues it).
    ///
    /// [`Policy::mail_per_address_per_hour`]: crate::Policy::mail_per_address_per_hour
    #[tracing::instrument(skip_all, fields(user_id = tracing::field::Empty))]
    pub async fn request_verify(&self, email: &EmailAddress) -> Result<(), InfraError> {
        let allowed = self.mail_allowed(email).await?;
        let Some(user) = self.ports.users.get_by_email(email).await? else {
            return Ok(());
        };
        tracing::Span::current().record("user_id", tracing::field::display(user.id));
        if !user.is_active || user.is_verified {
            return Ok(());
        }
        if !allowed {
            tracing::info!(user_id = %user.id, "mail cap reached for the address: no verification mail");
            return Ok(());
        }
        let token = self.ports.tokens.issue_verify(
            user.id,
            &user.email,
            Some(&crate::sessions::account_state(&user)),
        )?;
        tracing::info!(
            target: crate::AUTH_LOG_TARGET,
            auth_event = "verify_requested",
            user_id = %user.id,
            "verification requested"
        );
        self.ports
            .events
            .on_after_request_verify(&user, &token)
            .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::*;

    #[tokio::test]
    async fn sends_a_token_to_an_active_unverified_user() {
        let mut m = Mocks::new();
        m.mail_counted("ann@example.com", 1);
        let user = a_user();
        let id = user.id;
        m.users
            .expect_get_by_email()
            .withf(email_is("ann@example.com"))
            .returning(move |_| Ok(Some(user.clone())));
        m.tokens
            .expect_issue_verify()
            .withf(move |_, e, s| {
                e.as_str() == "Ann@example.com"
                    && *s == Some(crate::sessions::account_state(&a_user_with(id)).as_str())
            })
            .returning(|_, _, _| Ok("v-tok".into()));
        m.events
            .expect_on_after_request_verify()
            .withf(|_, t| t == "v-tok")
            .times(1)
            .return_const(());
        assert_matches!(
            m.service().request_verify(&email("ann@example.com")).await,
            Ok(())
        );
    }

    #[tokio::test]
    async fn unknown_inactive_and_verified_users_get_nothing() {
        let mut m = Mocks::new();
        m.mail_counted("x@example.com", 1);
        m.users
            .expect_get_by_email()
            .withf(email_is("x@example.com"))
            .returning(|_| Ok(None));
        assert_matches!(
            m.service().request_verify(&email("x@example.com")).await,
            Ok(())
        );

        for (active, verified) in [(false, false), (true, true)] {
            let mut m = Mocks::new();
            m.mail_counted("ann@example.com", 1);
            let mut user = a_user();
            user.is_active = active;
            user.is_verified = verified;
            m.users
                .expect_get_by_email()
                .withf(email_is("ann@example.com"))
                .returning(move |_| Ok(Some(user.clone())));
            assert_matches!(
                m.service().request_verify(&email("ann@example.com")).await,
                Ok(())
            );
        }
    }

    #[tokio::test]
    async fn past_the_cap_no_token_is_made_and_no_hook_called() {
        // No token or hook expected: either fails the test.
        let mut m = Mocks::new();
        m.mail_counted("ann@example.com", 4);
        let user = a_user();
        m.users
            .expect_get_by_email()
            .returning(move |_| Ok(Some(user.clone())));
        assert_matches!(
            m.service().request_verify(&email("ANN@example.com")).await,
            Ok(())
        );
    }

    #[tokio::test]
    async fn with_no_cap_nothing_is_counted() {
        let mut m = Mocks::new();
        m.policy.mail_per_address_per_hour = 0;
        let user = a_user();
        m.users
            .expect_get_by_email()
            .returning(move |_| Ok(Some(user.clone())));
        m.tokens
            .expect_issue_verify()
            .returning(|_, _, _| Ok("v-tok".into()));
        m.events
            .expect_on_after_request_verify()
            .times(1)
            .return_const(());
        assert_matches!(
            m.service().request_verify(&email("ann@example.com")).await,
            Ok(())
        );
    }

    #[tokio::test]
    async fn a_ledger_outage_is_unavailable() {
        let mut m = Mocks::new();
        m.throttle
            .expect_hit()
            .returning(|_, _, _, _| Err(outage()));
        assert_matches!(
            m.service().request_verify(&email("ann@example.com")).await,
            Err(crate::InfraError::Unavailable(_))
        );
    }
}

use portcullis_domain::EmailAddress;

use crate::{InfraError, UserService};

impl UserService {
    /// Starts a password reset. Whatever the address, the caller answers the
    /// same, so nobody learns who has an account; a reset token goes out
    /// (through the `on_after_forgot_password` hook) only to an existing,
    /// active user, and at most [`Policy::mail_per_address_per_hour`] reset
    /// and verification mails an hour to one address (past that the hook
    /// is not called, and an INFO line with the user's id says so). The
    /// token carries a fingerprint of the current password hash (FastAPI
    /// Users' `password_fgpt`) and the account's state (see
    /// [`reset_password`](Self::reset_password)), so it dies when the
    /// password, the address, a flag or the session stamp changes.
    ///
    /// Every path costs the same: one lookup, one count of the request in
    /// the mail ledger, one hash (the fingerprint, or a dummy of the same
    /// cost).
    ///
    /// [`Policy::mail_per_address_per_hour`]: crate::Policy::mail_per_address_per_hour
    #[tracing::instrument(skip_all, fields(user_id = tracing::field::Empty))]
    pub async fn forgot_password(&self, email: &EmailAddress) -> Result<(), InfraError> {
        let allowed = self.mail_allowed(email).await?;
        let user = match self.ports.users.get_by_email(email).await? {
            Some(user) if user.is_active => user,
            _ => {
                // The fingerprint below costs a hash: spend the same here,
                // so timing does not tell who has an account.
                self.ports.hasher.hash(email.as_str()).await?;
                return Ok(());
            }
        };
        tracing::Span::current().record("user_id", tracing::field::display(user.id));
        if !allowed {
            tracing::info!(user_id = %user.id, "mail cap reached for the address: no reset mail");
            // As costly as the fingerprint.
            self.ports.hasher.hash(email.as_str()).await?;
            return Ok(());
        }
        let fingerprint = self.ports.hasher.hash(&user.hashed_password).await?;
        let token = self.ports.tokens.issue_reset(
            user.id,
            &fingerprint,
            Some(&crate::sessions::account_state(&user)),
        )?;
        tracing::info!(
            target: crate::AUTH_LOG_TARGET,
            auth_event = "reset_requested",
            user_id = %user.id,
            "password reset requested"
        );
        self.ports
            .events
            .on_after_forgot_password(&user, &token)
            .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use portcullis_domain::User;

    use crate::InfraError;
    use crate::test_support::*;

    #[tokio::test]
    async fn sends_a_token_bound_to_the_current_hash_to_an_active_user() {
        let mut m = Mocks::new();
        m.mail_counted("ann@example.com", 1);
        let user = a_user();
        let id = user.id;
        m.users
            .expect_get_by_email()
            .withf(email_is("ann@example.com"))
            .returning(move |_| Ok(Some(user.clone())));
        m.hasher
            .expect_hash()
            .withf(|s| s == "$argon2id$old")
            .returning(|_| Ok("$fgpt".into()));
        m.tokens
            .expect_issue_reset()
            .withf(move |u, f, s| {
                *u == id
                    && f == "$fgpt"
                    && *s == Some(crate::sessions::account_state(&a_user_with(id)).as_str())
            })
            .returning(|_, _, _| Ok("reset-tok".into()));
        m.events
            .expect_on_after_forgot_password()
            .withf(|_, t| t == "reset-tok")
            .times(1)
            .return_const(());
        assert_matches!(
            m.service().forgot_password(&email("ann@example.com")).await,
            Ok(())
        );
    }

    #[tokio::test]
    async fn unknown_and_inactive_users_get_nothing() {
        let mut m = Mocks::new();
        m.mail_counted("who@example.com", 1);
        m.users
            .expect_get_by_email()
            .withf(email_is("who@example.com"))
            .returning(|_| Ok(None));
        m.hasher
            .expect_hash()
            .times(1)
            .returning(|_| Ok("$dummy".into()));
        assert_matches!(
            m.service().forgot_password(&email("who@example.com")).await,
            Ok(())
        );

        let mut m = Mocks::new();
        m.mail_counted("ann@example.com", 1);
        let mut user = a_user();
        user.is_active = false;
        m.users
            .expect_get_by_email()
            .withf(email_is("ann@example.com"))
            .returning(move |_| Ok(Some(user.clone())));
        m.hasher
            .expect_hash()
            .times(1)
            .returning(|_| Ok("$dummy".into()));
        assert_matches!(
            m.service().forgot_password(&email("ann@example.com")).await,
            Ok(())
        );
    }

    /// The store knows `user` at `address` (as asked for).
    fn known(m: &mut Mocks, address: &str, user: User) {
        m.users
            .expect_get_by_email()
            .withf(email_is(address))
            .returning(move |_| Ok(Some(user.clone())));
    }

    /// Expects a reset mail (through the hook) to ann.
    fn reset_mail_sent(m: &mut Mocks) {
        m.hasher
            .expect_hash()
            .withf(|s| s == "$argon2id$old")
            .times(1)
            .returning(|_| Ok("$fgpt".into()));
        m.tokens
            .expect_issue_reset()
            .times(1)
            .returning(|_, _, _| Ok("reset-tok".into()));
        m.events
            .expect_on_after_forgot_password()
            .times(1)
            .return_const(());
    }

    #[tokio::test]
    async fn the_mail_at_the_cap_still_goes_out() {
        let mut m = Mocks::new();
        m.mail_counted("ann@example.com", 3);
        known(&mut m, "Ann@Example.com", a_user());
        reset_mail_sent(&mut m);
        assert_matches!(
            m.service().forgot_password(&email("Ann@Example.com")).await,
            Ok(())
        );
    }

    #[tokio::test]
    async fn past_the_cap_no_token_is_made_and_no_hook_called_but_a_hash_is_spent() {
        // No token or hook expected: either fails the test.
        let mut m = Mocks::new();
        m.mail_counted("ann@example.com", 4);
        known(&mut m, "Ann@example.com", a_user());
        m.hasher
            .expect_hash()
            .withf(|s| s == "Ann@example.com")
            .times(1)
            .returning(|_| Ok("$dummy".into()));
        assert_matches!(
            m.service().forgot_password(&email("Ann@example.com")).await,
            Ok(())
        );
    }

    #[tokio::test]
    async fn the_cap_follows_the_policy_and_zero_counts_nothing() {
        let mut m = Mocks::new();
        m.policy.mail_per_address_per_hour = 1;
        m.mail_counted("ann@example.com", 2);
        known(&mut m, "ann@example.com", a_user());
        m.hasher
            .expect_hash()
            .times(1)
            .returning(|_| Ok("$dummy".into()));
        assert_matches!(
            m.service().forgot_password(&email("ann@example.com")).await,
            Ok(())
        );

        // No ledger expectation: a count would fail the test.
        let mut m = Mocks::new();
        m.policy.mail_per_address_per_hour = 0;
        known(&mut m, "ann@example.com", a_user());
        reset_mail_sent(&mut m);
        assert_matches!(
            m.service().forgot_password(&email("ann@example.com")).await,
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
            m.service().forgot_password(&email("ann@example.com")).await,
            Err(InfraError::Unavailable(_))
        );
    }
}

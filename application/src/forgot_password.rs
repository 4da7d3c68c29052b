use portcullis_domain::EmailAddress;

use crate::{InfraError, UserService};

impl UserService {
    /// Starts a password reset. Whatever the address, the caller answers the
    /// same, so nobody learns who has an account; a reset token goes out
    /// (through the `on_after_forgot_password` hook) only to an existing,
    /// active user. The token carries a fingerprint of the current password
    /// hash (FastAPI Users' `password_fgpt`) and the account's state (see
    /// [`reset_password`](Self::reset_password)), so it dies when the
    /// password, the address, a flag or the session stamp changes.
    #[tracing::instrument(skip_all, fields(email = %email, user_id = tracing::field::Empty))]
    pub async fn forgot_password(&self, email: &EmailAddress) -> Result<(), InfraError> {
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
        let fingerprint = self.ports.hasher.hash(&user.hashed_password).await?;
        let token = self.ports.tokens.issue_reset(
            user.id,
            &fingerprint,
            Some(&crate::sessions::account_state(&user)),
        )?;
        self.ports
            .events
            .on_after_forgot_password(&user, &token)
            .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::*;

    #[tokio::test]
    async fn sends_a_token_bound_to_the_current_hash_to_an_active_user() {
        let mut m = Mocks::new();
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
}

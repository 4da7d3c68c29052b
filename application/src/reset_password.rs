use portcullis_domain::{PasswordOwner, PasswordPolicyViolation, StoreError, UserId, UserPatch};

use crate::auth_log::{AUTH_LOG_TARGET, Revocation};
use crate::{InfraError, UserService};

/// Why a password reset was refused.
#[derive(Debug, thiserror::Error)]
pub enum ResetPasswordError {
    /// Bad, expired or used token, or its user is gone or inactive. Checked
    /// before the new password, so a bad token is reported as such.
    #[error("bad reset token")]
    BadToken,
    /// Good token, weak password: the token stays usable.
    #[error("invalid password: {0}")]
    InvalidPassword(PasswordPolicyViolation),
    /// The store or another adapter failed: see [`InfraError`].
    #[error(transparent)]
    Infra(#[from] InfraError),
}

impl UserService {
    /// Sets a new password with a reset token. The token works once: it is
    /// bound to a fingerprint of the password hash it was issued against, and
    /// the new hash replaces exactly that hash in one conditional update, so
    /// of two concurrent resets with one token only one can win (in any
    /// number of server processes).
    ///
    /// A token of Portcullis' is also bound to the account's state (address,
    /// password hash, active and verified flags, session stamp): it dies
    /// when any of them changed after it was issued, deactivation then
    /// reactivation included (deactivation raises the stamp). A token
    /// without that claim (minted by FastAPI Users) has FastAPI Users'
    /// checks only: the fingerprint and an active user.
    ///
    /// A reset ends every session of the user (both strategies): their
    /// stamp is raised and their opaque tokens deleted.
    #[tracing::instrument(skip_all, fields(user_id = tracing::field::Empty))]
    pub async fn reset_password(
        &self,
        token: &str,
        password: &str,
    ) -> Result<(), ResetPasswordError> {
        use ResetPasswordError::BadToken;
        let claims = self
            .ports
            .tokens
            .verify_reset(token)
            .map_err(|_| BadToken)?;
        let id = UserId::parse(&claims.subject).map_err(|_| BadToken)?;
        tracing::Span::current().record("user_id", tracing::field::display(id));
        let mut user = self.ports.users.get(id).await?.ok_or(BadToken)?;
        if claims
            .state
            .as_ref()
            .is_some_and(|state| *state != crate::sessions::account_state(&user))
        {
            return Err(BadToken);
        }
        let bound = self
            .ports
            .hasher
            .verify_and_update(&user.hashed_password, &claims.password_fingerprint)
            .await?;
        if !bound.valid || !user.is_active {
            return Err(BadToken);
        }
        let owner = PasswordOwner {
            email: &user.email,
            fields: &user.fields,
            user: Some(&user),
        };
        let password = self
            .password_rules
            .check(password, &owner)
            .await
            .map_err(ResetPasswordError::InvalidPassword)?;
        let new_hash = self.ports.hasher.hash(password.expose()).await?;
        let replaced = self
            .ports
            .users
            .replace_password_hash(user.id, &user.hashed_password, &new_hash)
            .await?;
        if !replaced {
            // Changed by a concurrent reset (or deleted) since we read it.
            return Err(BadToken);
        }
        user.hashed_password = new_hash;
        // The hash alone was replaced, conditionally; the sessions end
        // right after (a store has no conditional patch with a stamp).
        let patch = UserPatch {
            end_sessions: Some(self.stamp_now()),
            ..UserPatch::default()
        };
        match self.ports.users.patch(user.id, patch).await {
            Ok(stored) => user = stored,
            Err(StoreError::NotFound) => return Err(BadToken),
            Err(e) => return Err(e.into()),
        }
        self.forget_access_tokens(user.id, Revocation::PasswordReset)
            .await?;
        tracing::info!(
            target: AUTH_LOG_TARGET,
            auth_event = "password_reset",
            user_id = %user.id,
            "password reset"
        );
        self.ports.events.on_after_reset_password(&user).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use portcullis_domain::{ResetClaims, TokenError, User};

    /// The token given (`t`) is a reset token of `user`.
    fn token_for(m: &mut Mocks, user: &User) {
        let subject = user.id.to_string();
        m.tokens
            .expect_verify_reset()
            .withf(|t| t == "t")
            .returning(move |_| {
                Ok(ResetClaims {
                    subject: subject.clone(),
                    password_fingerprint: "$fgpt".into(),
                    state: None,
                })
            });
    }

    #[tokio::test]
    async fn sets_the_new_hash() {
        let mut m = Mocks::new();
        let user = a_user();
        let id = user.id;
        token_for(&mut m, &user);
        m.users
            .expect_get()
            .withf(id_is(user.id))
            .returning(move |_| Ok(Some(user.clone())));
        m.hasher
            .expect_verify_and_update()
            .withf(|s, h| s == "$argon2id$old" && h == "$fgpt")
            .returning(|_, _| valid(None));
        m.hasher
            .expect_hash()
            .withf(|p| p == "brand new pw")
            .returning(|_| Ok("$new".into()));
        m.users
            .expect_replace_password_hash()
            .withf(move |i, current, new| *i == id && current == "$argon2id$old" && new == "$new")
            .times(1)
            .returning(|_, _, _| Ok(true));
        ends_sessions(&mut m, id);
        m.events
            .expect_on_after_reset_password()
            .withf(|u| u.session_stamp == 1)
            .times(1)
            .return_const(());
        assert_matches!(
            m.service().reset_password("t", "brand new pw").await,
            Ok(())
        );
    }

    /// The write after the new hash: `id`'s stamp raised, then their opaque
    /// tokens deleted.
    fn ends_sessions(m: &mut Mocks, id: UserId) {
        let mut stored = a_user_with(id);
        stored.hashed_password = "$new".into();
        stored.session_stamp = 1;
        m.expect_sessions_ended(id, stored, 1);
    }

    /// The token given (`t`) is a reset token of Portcullis' for `user`
    /// in the state `state_of` was in.
    fn stated_token_for(m: &mut Mocks, user: &User, state_of: &User) {
        let subject = user.id.to_string();
        let state = crate::sessions::account_state(state_of);
        m.tokens.expect_verify_reset().returning(move |_| {
            Ok(ResetClaims {
                subject: subject.clone(),
                password_fingerprint: "$fgpt".into(),
                state: Some(state.clone()),
            })
        });
    }

    #[tokio::test]
    async fn a_token_of_the_current_state_works() {
        let mut m = Mocks::new();
        let user = a_user();
        let id = user.id;
        stated_token_for(&mut m, &user, &user);
        m.users
            .expect_get()
            .returning(move |_| Ok(Some(user.clone())));
        m.hasher
            .expect_verify_and_update()
            .returning(|_, _| valid(None));
        m.hasher.expect_hash().returning(|_| Ok("$new".into()));
        m.users
            .expect_replace_password_hash()
            .returning(|_, _, _| Ok(true));
        ends_sessions(&mut m, id);
        m.events.expect_on_after_reset_password().return_const(());
        assert_matches!(
            m.service().reset_password("t", "brand new pw").await,
            Ok(())
        );
    }

    #[tokio::test]
    async fn a_token_of_another_state_is_bad_before_any_hashing() {
        // Each change the state covers: deactivated and reactivated (the
        // stamp was raised), verified, another address.
        let changes: [fn(&mut User); 3] = [
            |u| u.session_stamp += 1,
            |u| u.is_verified = true,
            |u| u.email = email("ann2@example.com"),
        ];
        for change in changes {
            let mut m = Mocks::new();
            let then = a_user();
            let mut now = then.clone();
            change(&mut now);
            stated_token_for(&mut m, &then, &then);
            m.users
                .expect_get()
                .returning(move |_| Ok(Some(now.clone())));
            // No hasher expectation: a hash fails the test.
            assert_matches!(
                m.service().reset_password("t", "brand new pw").await,
                Err(ResetPasswordError::BadToken)
            );
        }
    }

    #[tokio::test]
    async fn a_bad_token_is_reported_even_with_a_weak_password() {
        let mut m = Mocks::new();
        m.tokens
            .expect_verify_reset()
            .returning(|_| Err(TokenError::Invalid));
        assert_matches!(
            m.service().reset_password("t", "x").await,
            Err(ResetPasswordError::BadToken)
        );
    }

    #[tokio::test]
    async fn a_token_of_a_changed_password_is_bad() {
        let mut m = Mocks::new();
        let user = a_user();
        token_for(&mut m, &user);
        m.users
            .expect_get()
            .withf(id_is(user.id))
            .returning(move |_| Ok(Some(user.clone())));
        m.hasher
            .expect_verify_and_update()
            .returning(|_, _| invalid());
        assert_matches!(
            m.service().reset_password("t", "brand new pw").await,
            Err(ResetPasswordError::BadToken)
        );
    }

    #[tokio::test]
    async fn a_token_of_a_deleted_or_inactive_user_is_bad() {
        let mut m = Mocks::new();
        let gone = a_user();
        token_for(&mut m, &gone);
        m.users
            .expect_get()
            .withf(id_is(gone.id))
            .returning(|_| Ok(None));
        assert_matches!(
            m.service().reset_password("t", "brand new pw").await,
            Err(ResetPasswordError::BadToken)
        );

        let mut m = Mocks::new();
        let mut user = a_user();
        user.is_active = false;
        token_for(&mut m, &user);
        m.users
            .expect_get()
            .withf(id_is(user.id))
            .returning(move |_| Ok(Some(user.clone())));
        m.hasher
            .expect_verify_and_update()
            .returning(|_, _| valid(None));
        assert_matches!(
            m.service().reset_password("t", "brand new pw").await,
            Err(ResetPasswordError::BadToken)
        );
    }

    #[tokio::test]
    async fn a_subject_that_is_no_uuid_is_bad() {
        let mut m = Mocks::new();
        m.tokens.expect_verify_reset().returning(|_| {
            Ok(ResetClaims {
                subject: "nope".into(),
                password_fingerprint: "$f".into(),
                state: None,
            })
        });
        assert_matches!(
            m.service().reset_password("t", "brand new pw").await,
            Err(ResetPasswordError::BadToken)
        );
    }

    #[tokio::test]
    async fn a_weak_password_with_a_good_token_changes_nothing() {
        let mut m = Mocks::new();
        let user = a_user();
        token_for(&mut m, &user);
        m.users
            .expect_get()
            .withf(id_is(user.id))
            .returning(move |_| Ok(Some(user.clone())));
        m.hasher
            .expect_verify_and_update()
            .returning(|_, _| valid(None));
        assert_matches!(
            m.service().reset_password("t", "short").await,
            Err(ResetPasswordError::InvalidPassword(
                PasswordPolicyViolation::TooShort { min: 8 }
            ))
        );
    }

    #[tokio::test]
    async fn a_host_validator_judges_the_stored_user_and_its_refusal_changes_nothing() {
        let mut m = Mocks::new();
        let user = a_user();
        token_for(&mut m, &user);
        let id = user.id;
        m.users
            .expect_get()
            .returning(move |_| Ok(Some(user.clone())));
        m.hasher
            .expect_verify_and_update()
            .returning(|_, _| valid(None));
        // no hash, no write expected
        m.refuse_once(
            "brand new pw",
            move |o| o.email.as_str() == "Ann@example.com" && o.user.is_some_and(|u| u.id == id),
            "Not like your old one",
        );
        assert_matches!(
            m.service().reset_password("t", "brand new pw").await,
            Err(ResetPasswordError::InvalidPassword(PasswordPolicyViolation::Rejected(ref r)))
                if r == "Not like your old one"
        );
    }

    #[tokio::test]
    async fn the_minimum_length_is_the_deployments() {
        let mut m = Mocks::new();
        m.rules.min_length = 13;
        let user = a_user();
        token_for(&mut m, &user);
        m.users
            .expect_get()
            .returning(move |_| Ok(Some(user.clone())));
        m.hasher
            .expect_verify_and_update()
            .returning(|_, _| valid(None));
        assert_matches!(
            m.service().reset_password("t", "brand new pw").await,
            Err(ResetPasswordError::InvalidPassword(ref why))
                if why.reason() == "Password should be at least 13 characters"
        );
    }

    #[tokio::test]
    async fn a_token_that_lost_a_race_is_bad() {
        // Between our read and our write another reset changed the hash:
        // the conditional update refuses, and so do we.
        let mut m = Mocks::new();
        let user = a_user();
        token_for(&mut m, &user);
        m.users
            .expect_get()
            .withf(id_is(user.id))
            .returning(move |_| Ok(Some(user.clone())));
        m.hasher
            .expect_verify_and_update()
            .returning(|_, _| valid(None));
        m.hasher.expect_hash().returning(|_| Ok("$new".into()));
        m.users
            .expect_replace_password_hash()
            .returning(|_, _, _| Ok(false));
        assert_matches!(
            m.service().reset_password("t", "brand new pw").await,
            Err(ResetPasswordError::BadToken)
        );
    }
}

use portcullis_domain::{EmailAddress, StoreError, User, UserId, UserPatch};

use crate::{InfraError, UserService};

/// Why an e-mail verification was refused.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Bad or expired token, or its user is gone or has another address now.
    #[error("bad verify token")]
    BadToken,
    /// The token is good but the user is verified already.
    #[error("user already verified")]
    AlreadyVerified,
    /// The store or another adapter failed: see [`InfraError`].
    #[error(transparent)]
    Infra(#[from] InfraError),
}

impl UserService {
    /// Marks the user a verify token was issued for as verified. The token
    /// is checked first (including that its e-mail is still the user's),
    /// then whether there is anything left to do, then — for a token of
    /// Portcullis' — that the account's state is still the one the token
    /// was issued against (address, password hash, active and verified
    /// flags, session stamp): a token issued before a deactivation, a
    /// password change or the end of the user's sessions is dead. A token
    /// without that claim (minted by FastAPI Users) has FastAPI Users'
    /// checks only: its user and its address.
    #[tracing::instrument(skip_all, fields(user_id = tracing::field::Empty))]
    pub async fn verify(&self, token: &str) -> Result<User, VerifyError> {
        use VerifyError::BadToken;
        let claims = self
            .ports
            .tokens
            .verify_verify(token)
            .map_err(|_| BadToken)?;
        let email = EmailAddress::parse(&claims.email).map_err(|_| BadToken)?;
        let id = UserId::parse(&claims.subject).map_err(|_| BadToken)?;
        tracing::Span::current().record("user_id", tracing::field::display(id));
        let user = self
            .ports
            .users
            .get_by_email(&email)
            .await?
            .ok_or(BadToken)?;
        if user.id != id {
            return Err(BadToken);
        }
        if user.is_verified {
            return Err(VerifyError::AlreadyVerified);
        }
        if claims
            .state
            .is_some_and(|state| state != crate::sessions::account_state(&user))
        {
            return Err(BadToken);
        }
        // Only `is_verified` is written: a concurrent change to another
        // column (an administrator deactivating the user, say) is kept.
        let patch = UserPatch {
            is_verified: Some(true),
            ..UserPatch::default()
        };
        let user = match self.ports.users.patch(user.id, patch).await {
            Ok(user) => user,
            Err(StoreError::NotFound) => return Err(BadToken),
            Err(e) => return Err(e.into()),
        };
        tracing::info!(
            target: crate::AUTH_LOG_TARGET,
            auth_event = "verify",
            user_id = %user.id,
            "address verified"
        );
        self.ports.events.on_after_verify(&user).await;
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use portcullis_domain::{TokenError, VerifyClaims};

    fn token(m: &mut Mocks, subject: String, email: &str) {
        let email = email.to_owned();
        m.tokens
            .expect_verify_verify()
            .withf(|t| t == "t")
            .returning(move |_| {
                Ok(VerifyClaims {
                    subject: subject.clone(),
                    email: email.clone(),
                    state: None,
                })
            });
    }

    /// The token given is Portcullis' for `user` in the state of `state_of`.
    fn stated_token(m: &mut Mocks, user: &User, state_of: &User) {
        let subject = user.id.to_string();
        let email = user.email.as_str().to_owned();
        let state = crate::sessions::account_state(state_of);
        m.tokens.expect_verify_verify().returning(move |_| {
            Ok(VerifyClaims {
                subject: subject.clone(),
                email: email.clone(),
                state: Some(state.clone()),
            })
        });
    }

    #[tokio::test]
    async fn a_token_of_the_current_state_verifies() {
        let mut m = Mocks::new();
        let user = a_user();
        stated_token(&mut m, &user, &user);
        let read = user.clone();
        m.users
            .expect_get_by_email()
            .returning(move |_| Ok(Some(read.clone())));
        m.users.expect_patch().times(1).returning(move |_, p| {
            let mut u = user.clone();
            p.apply_to(&mut u);
            Ok(u)
        });
        m.events.expect_on_after_verify().times(1).return_const(());
        assert!(m.service().verify("t").await.unwrap().is_verified);
    }

    #[tokio::test]
    async fn a_token_of_another_state_is_bad() {
        // Deactivated then reactivated (stamp raised), or a new password.
        let changes: [fn(&mut User); 2] = [
            |u| u.session_stamp += 1,
            |u| u.hashed_password = "$argon2id$other".into(),
        ];
        for change in changes {
            let mut m = Mocks::new();
            let then = a_user();
            let mut now = then.clone();
            change(&mut now);
            stated_token(&mut m, &then, &then);
            m.users
                .expect_get_by_email()
                .returning(move |_| Ok(Some(now.clone())));
            // No patch expected.
            assert_matches!(m.service().verify("t").await, Err(VerifyError::BadToken));
        }
    }

    #[tokio::test]
    async fn verifies_the_user() {
        let mut m = Mocks::new();
        let user = a_user();
        let id = user.id;
        token(&mut m, user.id.to_string(), "ann@example.com");
        let read = user.clone();
        m.users
            .expect_get_by_email()
            .withf(email_is("ann@example.com"))
            .returning(move |_| Ok(Some(read.clone())));
        // Only `is_verified` is written; what comes back is the stored user
        // (here deactivated meanwhile by an administrator, which is kept).
        let mut now = user.clone();
        now.is_active = false;
        m.users
            .expect_patch()
            .withf(move |i, p| {
                *i == id
                    && *p
                        == UserPatch {
                            is_verified: Some(true),
                            ..UserPatch::default()
                        }
            })
            .times(1)
            .returning(move |_, p| {
                let mut u = now.clone();
                p.apply_to(&mut u);
                Ok(u)
            });
        m.events.expect_on_after_verify().times(1).return_const(());
        let verified = m.service().verify("t").await.unwrap();
        assert!(verified.is_verified);
        assert!(!verified.is_active);
    }

    #[tokio::test]
    async fn bad_token_comes_before_already_verified() {
        let mut m = Mocks::new();
        m.tokens
            .expect_verify_verify()
            .returning(|_| Err(TokenError::Invalid));
        assert_matches!(m.service().verify("t").await, Err(VerifyError::BadToken));
    }

    #[tokio::test]
    async fn a_token_for_another_user_or_address_is_bad() {
        // the address now belongs to someone else
        let mut m = Mocks::new();
        token(&mut m, UserId::random().to_string(), "ann@example.com");
        m.users
            .expect_get_by_email()
            .withf(email_is("ann@example.com"))
            .returning(|_| Ok(Some(a_user())));
        assert_matches!(m.service().verify("t").await, Err(VerifyError::BadToken));
        // nobody has the address any more (e-mail changed or user deleted)
        let mut m = Mocks::new();
        token(&mut m, UserId::random().to_string(), "ann@example.com");
        m.users
            .expect_get_by_email()
            .withf(email_is("ann@example.com"))
            .returning(|_| Ok(None));
        assert_matches!(m.service().verify("t").await, Err(VerifyError::BadToken));
        // garbage claims
        let mut m = Mocks::new();
        token(&mut m, "x".into(), "not an address");
        assert_matches!(m.service().verify("t").await, Err(VerifyError::BadToken));
    }

    #[tokio::test]
    async fn a_verified_user_is_already_verified() {
        let mut m = Mocks::new();
        let mut user = a_user();
        user.is_verified = true;
        token(&mut m, user.id.to_string(), "ann@example.com");
        m.users
            .expect_get_by_email()
            .withf(email_is("ann@example.com"))
            .returning(move |_| Ok(Some(user.clone())));
        assert_matches!(
            m.service().verify("t").await,
            Err(VerifyError::AlreadyVerified)
        );
    }
}

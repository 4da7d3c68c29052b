use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use portcullis_domain::{Password, PasswordPolicyViolation, StoreError, UserId};

use crate::{InfraError, UserService};

/// The users whose password a reset is changing right now, in this process.
///
/// A reset token is bound to the password hash it was issued against, but
/// checking that binding and storing the new hash are two store calls: two
/// concurrent resets with one token would both pass the check. While one
/// reset of a user runs, another one for the same user is refused as a bad
/// token, and a later one sees the new hash, so a token works once.
/// (Across several server processes this needs a conditional update in the
/// store.)
#[derive(Clone, Default)]
pub(crate) struct InFlight(Arc<Mutex<HashSet<UserId>>>);

impl InFlight {
    /// Marks `id` busy until the guard drops; `None` when it already is.
    fn claim(&self, id: UserId) -> Option<InFlightGuard> {
        let mut busy = self.0.lock().unwrap_or_else(|e| e.into_inner());
        busy.insert(id).then(|| InFlightGuard {
            set: self.clone(),
            id,
        })
    }
}

pub(crate) struct InFlightGuard {
    set: InFlight,
    id: UserId,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let mut busy = self.set.0.lock().unwrap_or_else(|e| e.into_inner());
        busy.remove(&self.id);
    }
}

/// Why a password reset was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResetPasswordError {
    /// Bad, expired or used token, or its user is gone or inactive. Checked
    /// before the new password, so a bad token is reported as such.
    #[error("bad reset token")]
    BadToken,
    /// Good token, weak password: the token stays usable.
    #[error("invalid password: {0}")]
    InvalidPassword(PasswordPolicyViolation),
    #[error(transparent)]
    Infra(#[from] InfraError),
}

impl UserService {
    /// Sets a new password with a reset token. The token works once: it is
    /// bound to a fingerprint of the password hash it was issued against,
    /// and a concurrent reset of the same user is refused as a bad token.
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
        // One reset per user at a time: the binding check below and the
        // update must not interleave with another reset's.
        let _claim = self.resets_in_flight.claim(id).ok_or(BadToken)?;
        let mut user = self
            .ports
            .users
            .get(id)
            .await
            .map_err(InfraError::from)?
            .ok_or(BadToken)?;
        let bound = self
            .ports
            .hasher
            .verify_and_update(&user.hashed_password, &claims.password_fingerprint)
            .await
            .map_err(InfraError::from)?;
        if !bound.valid || !user.is_active {
            return Err(BadToken);
        }
        let password =
            Password::new(password, &user.email).map_err(ResetPasswordError::InvalidPassword)?;
        user.hashed_password = self
            .ports
            .hasher
            .hash(password.expose())
            .await
            .map_err(InfraError::from)?;
        let user = match self.ports.users.update(user).await {
            Ok(user) => user,
            Err(StoreError::NotFound) => return Err(BadToken),
            Err(e) => return Err(InfraError::from(e).into()),
        };
        self.ports.events.on_after_reset_password(&user).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use portcullis_domain::{ResetClaims, TokenError, User};

    fn token_for(m: &mut Mocks, user: &User) {
        let subject = user.id.to_string();
        m.tokens.expect_verify_reset().returning(move |_| {
            Ok(ResetClaims {
                subject: subject.clone(),
                password_fingerprint: "$fgpt".into(),
            })
        });
    }

    #[tokio::test]
    async fn sets_the_new_hash() {
        let mut m = Mocks::new();
        let user = a_user();
        token_for(&mut m, &user);
        m.users
            .expect_get()
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
            .expect_update()
            .withf(|u| u.hashed_password == "$new")
            .times(1)
            .returning(Ok);
        m.events
            .expect_on_after_reset_password()
            .times(1)
            .return_const(());
        assert_eq!(
            m.service().reset_password("t", "brand new pw").await,
            Ok(())
        );
    }

    #[tokio::test]
    async fn a_bad_token_is_reported_even_with_a_weak_password() {
        let mut m = Mocks::new();
        m.tokens
            .expect_verify_reset()
            .returning(|_| Err(TokenError::Invalid));
        assert_eq!(
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
            .returning(move |_| Ok(Some(user.clone())));
        m.hasher
            .expect_verify_and_update()
            .returning(|_, _| invalid());
        assert_eq!(
            m.service().reset_password("t", "brand new pw").await,
            Err(ResetPasswordError::BadToken)
        );
    }

    #[tokio::test]
    async fn a_token_of_a_deleted_or_inactive_user_is_bad() {
        let mut m = Mocks::new();
        token_for(&mut m, &a_user());
        m.users.expect_get().returning(|_| Ok(None));
        assert_eq!(
            m.service().reset_password("t", "brand new pw").await,
            Err(ResetPasswordError::BadToken)
        );

        let mut m = Mocks::new();
        let mut user = a_user();
        user.is_active = false;
        token_for(&mut m, &user);
        m.users
            .expect_get()
            .returning(move |_| Ok(Some(user.clone())));
        m.hasher
            .expect_verify_and_update()
            .returning(|_, _| valid(None));
        assert_eq!(
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
            })
        });
        assert_eq!(
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
            .returning(move |_| Ok(Some(user.clone())));
        m.hasher
            .expect_verify_and_update()
            .returning(|_, _| valid(None));
        assert_eq!(
            m.service().reset_password("t", "short").await,
            Err(ResetPasswordError::InvalidPassword(
                PasswordPolicyViolation::TooShort
            ))
        );
    }

    #[test]
    fn one_reset_per_user_at_a_time() {
        let in_flight = InFlight::default();
        let (ann, bob) = (UserId::random(), UserId::random());
        let first = in_flight.claim(ann).expect("free");
        assert!(in_flight.claim(ann).is_none(), "busy while the first runs");
        let other = in_flight.claim(bob).expect("another user is independent");
        drop(first);
        assert!(in_flight.claim(ann).is_some(), "free again afterwards");
        drop(other);
    }
}

use portcullis_domain::{Password, PasswordPolicyViolation, StoreError, User, UserChanges};

use crate::{InfraError, UserService};

/// Why a user's change of their own account was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateMeError {
    /// The new password breaks the policy.
    #[error("invalid password: {0}")]
    InvalidPassword(PasswordPolicyViolation),
    /// The user vanished between authentication and the update.
    #[error("user gone")]
    Gone,
    /// The store or another adapter failed: see [`InfraError`].
    #[error(transparent)]
    Infra(#[from] InfraError),
}

impl UserService {
    /// A user changes their own password. Only the password can be changed
    /// here: e-mail changes are for administrators until e-mail change with
    /// re-verification exists. `None` changes nothing.
    pub async fn update_me(
        &self,
        mut user: User,
        password: Option<&str>,
    ) -> Result<User, UpdateMeError> {
        let Some(password) = password else {
            return Ok(user);
        };
        let password =
            Password::new(password, &user.email).map_err(UpdateMeError::InvalidPassword)?;
        user.hashed_password = self
            .ports
            .hasher
            .hash(password.expose())
            .await
            .map_err(InfraError::from)?;
        let user = match self.ports.users.update(user).await {
            Ok(user) => user,
            Err(StoreError::NotFound) => return Err(UpdateMeError::Gone),
            Err(e) => return Err(InfraError::from(e).into()),
        };
        let changes = UserChanges {
            password: Some(password.expose().to_owned()),
            ..UserChanges::default()
        };
        self.ports.events.on_after_update(&user, &changes).await;
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;

    #[tokio::test]
    async fn no_password_changes_nothing() {
        let m = Mocks::new();
        let user = a_user();
        assert_eq!(m.service().update_me(user.clone(), None).await, Ok(user));
    }

    #[tokio::test]
    async fn changes_the_password() {
        let mut m = Mocks::new();
        m.hasher.expect_hash().returning(|_| Ok("$new".into()));
        m.users
            .expect_update()
            .withf(|u| u.hashed_password == "$new")
            .returning(Ok);
        m.events.expect_on_after_update().times(1).return_const(());
        let user = m
            .service()
            .update_me(a_user(), Some("brand new pw"))
            .await
            .unwrap();
        assert_eq!(user.hashed_password, "$new");
    }

    #[tokio::test]
    async fn enforces_the_policy() {
        let m = Mocks::new();
        assert_eq!(
            m.service()
                .update_me(a_user(), Some("ann@example.com!"))
                .await,
            Err(UpdateMeError::InvalidPassword(
                PasswordPolicyViolation::ContainsEmail
            ))
        );
    }

    #[tokio::test]
    async fn a_user_deleted_meanwhile_is_gone() {
        let mut m = Mocks::new();
        m.hasher.expect_hash().returning(|_| Ok("$new".into()));
        m.users
            .expect_update()
            .returning(|_| Err(StoreError::NotFound));
        assert_eq!(
            m.service().update_me(a_user(), Some("brand new pw")).await,
            Err(UpdateMeError::Gone)
        );
    }
}

use portcullis_domain::{Password, PasswordOwner, PasswordPolicyViolation, User, UserChanges};

use crate::{InfraError, UserService};

/// Why a user's change of their own account was refused.
#[derive(Debug, thiserror::Error)]
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
    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    pub async fn update_me(
        &self,
        user: User,
        password: Option<&str>,
    ) -> Result<User, UpdateMeError> {
        let Some(password) = password else {
            return Ok(user);
        };
        let mut current = user;
        let mut checked = self.check_own_password(password, &current).await?;
        let new_hash = self.ports.hasher.hash(checked.expose()).await?;
        // Only the hash is written, and only over the hash this user had: a
        // whole-row write of the snapshot taken at authentication could undo
        // a concurrent deactivation, role change or reset. When the hash
        // changed meanwhile, look again (the user may be gone or inactive
        // now) and retry a few times.
        let mut attempts = 0;
        let user = loop {
            let replaced = self
                .ports
                .users
                .replace_password_hash(current.id, &current.hashed_password, &new_hash)
                .await?;
            match self.ports.users.get(current.id).await? {
                Some(stored) if replaced => break stored,
                Some(stored) if stored.is_active && attempts < 3 => {
                    attempts += 1;
                    checked = self.check_own_password(password, &stored).await?;
                    current = stored;
                }
                Some(stored) if stored.is_active => {
                    return Err(InfraError::Internal(
                        format!(
                            "the password of {} kept changing during the update",
                            stored.id
                        )
                        .into(),
                    )
                    .into());
                }
                _ => return Err(UpdateMeError::Gone),
            }
        };
        let password = checked;
        let changes = UserChanges {
            password: Some(password.expose().into()),
            ..UserChanges::default()
        };
        self.ports.events.on_after_update(&user, &changes).await;
        Ok(user)
    }

    /// `password` against the rules, for `user` as stored.
    async fn check_own_password(
        &self,
        password: &str,
        user: &User,
    ) -> Result<Password, UpdateMeError> {
        let owner = PasswordOwner {
            email: &user.email,
            fields: &user.fields,
            user: Some(user),
        };
        self.password_rules
            .check(password, &owner)
            .await
            .map_err(UpdateMeError::InvalidPassword)
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
        assert_eq!(
            m.service().update_me(user.clone(), None).await.unwrap(),
            user
        );
    }

    #[tokio::test]
    async fn changes_only_the_hash_it_saw() {
        let mut m = Mocks::new();
        let user = a_user();
        m.hasher.expect_hash().returning(|_| Ok("$new".into()));
        m.users
            .expect_replace_password_hash()
            .withf(|_, current, new| current == "$argon2id$old" && new == "$new")
            .times(1)
            .returning(|_, _, _| Ok(true));
        let mut stored = user.clone();
        stored.hashed_password = "$new".into();
        stored.role = portcullis_domain::Role::Instructor; // changed by an admin meanwhile
        let returned = stored.clone();
        m.users
            .expect_get()
            .returning(move |_| Ok(Some(returned.clone())));
        m.events.expect_on_after_update().times(1).return_const(());
        let updated = m
            .service()
            .update_me(user, Some("brand new pw"))
            .await
            .unwrap();
        assert_eq!(updated, stored, "the stored user, concurrent changes kept");
    }

    #[tokio::test]
    async fn a_hash_changed_meanwhile_is_looked_at_again() {
        let mut m = Mocks::new();
        let user = a_user();
        m.hasher.expect_hash().returning(|_| Ok("$new".into()));
        let mut reset = user.clone();
        reset.hashed_password = "$reset".into();
        let mut seq = mockall::Sequence::new();
        m.users
            .expect_replace_password_hash()
            .withf(|_, current, _| current == "$argon2id$old")
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(false));
        let fresh = reset.clone();
        m.users
            .expect_get()
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_| Ok(Some(fresh.clone())));
        m.users
            .expect_replace_password_hash()
            .withf(|_, current, _| current == "$reset")
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(true));
        let mut done = reset.clone();
        done.hashed_password = "$new".into();
        let stored = done.clone();
        m.users
            .expect_get()
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_| Ok(Some(stored.clone())));
        m.events.expect_on_after_update().return_const(());
        assert_eq!(
            m.service()
                .update_me(user, Some("brand new pw"))
                .await
                .unwrap(),
            done
        );
    }

    #[tokio::test]
    async fn enforces_the_policy() {
        let m = Mocks::new();
        assert_matches!(
            m.service()
                .update_me(a_user(), Some("ann@example.com!"))
                .await,
            Err(UpdateMeError::InvalidPassword(
                PasswordPolicyViolation::ContainsEmail
            ))
        );
    }

    #[tokio::test]
    async fn a_host_validator_judges_the_user_and_its_refusal_changes_nothing() {
        let mut m = Mocks::new(); // no hash, no write expected
        let user = a_user();
        let id = user.id;
        m.refuse_once(
            "brand new pw",
            move |o| o.email.as_str() == "Ann@example.com" && o.user.is_some_and(|u| u.id == id),
            "Pick something longer, Ann",
        );
        assert_matches!(
            m.service().update_me(user, Some("brand new pw")).await,
            Err(UpdateMeError::InvalidPassword(PasswordPolicyViolation::Rejected(ref r)))
                if r == "Pick something longer, Ann"
        );
    }

    #[tokio::test]
    async fn the_minimum_length_is_the_deployments() {
        let mut m = Mocks::new();
        m.rules.min_length = 20;
        assert_matches!(
            m.service().update_me(a_user(), Some("brand new pw")).await,
            Err(UpdateMeError::InvalidPassword(ref why))
                if why.reason() == "Password should be at least 20 characters"
        );
    }

    #[tokio::test]
    async fn a_user_deleted_meanwhile_is_gone() {
        let mut m = Mocks::new();
        m.hasher.expect_hash().returning(|_| Ok("$new".into()));
        m.users
            .expect_replace_password_hash()
            .returning(|_, _, _| Ok(false));
        m.users.expect_get().returning(|_| Ok(None));
        assert_matches!(
            m.service().update_me(a_user(), Some("brand new pw")).await,
            Err(UpdateMeError::Gone)
        );
    }
}

use portcullis_domain::{
    FieldValues, FieldWriter, Password, PasswordOwner, PasswordPolicyViolation, StoreError, User,
    UserChanges, UserPatch,
};

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
    /// re-verification exists. `None` changes nothing. A new password ends
    /// every session of the user, in both strategies (the token this
    /// request came with included): their stamp is raised in the write
    /// after the new hash and their opaque tokens deleted.
    pub async fn update_me(
        &self,
        user: User,
        password: Option<&str>,
    ) -> Result<User, UpdateMeError> {
        self.update_me_with_fields(user, password, &FieldValues::new())
            .await
    }

    /// [`update_me`](Self::update_me), with new values for user-writable
    /// extra fields (others, and unknown names, are ignored, as `role` is).
    /// Only the named fields are written.
    #[tracing::instrument(name = "update_me", skip_all, fields(user_id = %user.id))]
    pub async fn update_me_with_fields(
        &self,
        user: User,
        password: Option<&str>,
        fields: &FieldValues,
    ) -> Result<User, UpdateMeError> {
        let fields = self.writable_changes(fields, FieldWriter::User);
        let (user, password) = match password {
            None if fields.is_empty() => return Ok(user),
            None => (user, None),
            Some(password) => {
                let (user, checked) = self.replace_own_password(user, password, &fields).await?;
                (user, Some(checked))
            }
        };
        let end_sessions = password.is_some();
        let user = if fields.is_empty() && !end_sessions {
            user
        } else {
            let patch = UserPatch {
                fields: fields.clone(),
                end_sessions: end_sessions.then(|| self.stamp_now()),
                ..UserPatch::default()
            };
            match self.ports.users.patch(user.id, patch).await {
                Ok(user) => user,
                Err(StoreError::NotFound) => return Err(UpdateMeError::Gone),
                Err(e) => return Err(e.into()),
            }
        };
        if end_sessions {
            self.forget_access_tokens(user.id, crate::auth_log::Revocation::PasswordChange)
                .await?;
        }
        let changes = UserChanges {
            password: password.map(|p| p.expose().into()),
            fields,
            ..UserChanges::default()
        };
        self.ports.events.on_after_update(&user, &changes).await;
        Ok(user)
    }

    /// Replaces the user's password hash, only over the hash they had.
    async fn replace_own_password(
        &self,
        user: User,
        password: &str,
        changes: &FieldValues,
    ) -> Result<(User, Password), UpdateMeError> {
        let mut current = user;
        let mut checked = self.check_own_password(password, &current, changes).await?;
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
                    checked = self.check_own_password(password, &stored, changes).await?;
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
        Ok((user, checked))
    }

    /// `password` against the rules, for `user` as stored with the field
    /// `changes` of the same request applied.
    async fn check_own_password(
        &self,
        password: &str,
        user: &User,
        changes: &FieldValues,
    ) -> Result<Password, UpdateMeError> {
        let mut fields = user.fields.clone();
        fields.apply(changes);
        let owner = PasswordOwner {
            email: &user.email,
            fields: &fields,
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
    use portcullis_domain::UserId;

    /// After the new hash: `id`'s stamp raised (with no other column),
    /// the user as stored then returned, their opaque tokens deleted.
    fn ends_sessions(m: &mut Mocks, id: UserId, stored: User) {
        m.users
            .expect_patch()
            .withf(move |i, p| {
                *i == id
                    && *p
                        == UserPatch {
                            end_sessions: Some(TEST_NOW_MS),
                            ..UserPatch::default()
                        }
            })
            .times(1)
            .returning(move |_, p| {
                let mut u = stored.clone();
                p.apply_to(&mut u);
                Ok(u)
            });
        m.sessions
            .expect_delete_access_tokens_of()
            .withf(move |u| *u == id)
            .times(1)
            .returning(|_| Ok(0));
    }

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
        let id = user.id;
        m.hasher.expect_hash().returning(|_| Ok("$new".into()));
        m.users
            .expect_replace_password_hash()
            .withf(move |i, current, new| *i == id && current == "$argon2id$old" && new == "$new")
            .times(1)
            .returning(|_, _, _| Ok(true));
        let mut stored = user.clone();
        stored.hashed_password = "$new".into();
        stored.role = portcullis_domain::Role::Instructor; // changed by an admin meanwhile
        let returned = stored.clone();
        m.users
            .expect_get()
            .withf(id_is(id))
            .returning(move |_| Ok(Some(returned.clone())));
        ends_sessions(&mut m, id, stored.clone());
        m.events.expect_on_after_update().times(1).return_const(());
        let updated = m
            .service()
            .update_me(user, Some("brand new pw"))
            .await
            .unwrap();
        stored.session_stamp = TEST_NOW_MS;
        assert_eq!(
            updated, stored,
            "the stored user, concurrent changes kept, sessions ended"
        );
    }

    #[tokio::test]
    async fn a_hash_changed_meanwhile_is_looked_at_again() {
        let mut m = Mocks::new();
        let user = a_user();
        let id = user.id;
        m.hasher.expect_hash().returning(|_| Ok("$new".into()));
        let mut reset = user.clone();
        reset.hashed_password = "$reset".into();
        let mut seq = mockall::Sequence::new();
        m.users
            .expect_replace_password_hash()
            .withf(move |i, current, _| *i == id && current == "$argon2id$old")
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(false));
        let fresh = reset.clone();
        m.users
            .expect_get()
            .withf(id_is(id))
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_| Ok(Some(fresh.clone())));
        m.users
            .expect_replace_password_hash()
            .withf(move |i, current, _| *i == id && current == "$reset")
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(true));
        let mut done = reset.clone();
        done.hashed_password = "$new".into();
        let stored = done.clone();
        m.users
            .expect_get()
            .withf(id_is(id))
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_| Ok(Some(stored.clone())));
        ends_sessions(&mut m, id, done.clone());
        m.events.expect_on_after_update().return_const(());
        done.session_stamp = TEST_NOW_MS;
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
        let user = a_user();
        m.hasher.expect_hash().returning(|_| Ok("$new".into()));
        m.users
            .expect_replace_password_hash()
            .withf(move |i, _, _| *i == user.id)
            .returning(|_, _, _| Ok(false));
        m.users
            .expect_get()
            .withf(id_is(user.id))
            .returning(|_| Ok(None));
        assert_matches!(
            m.service().update_me(user, Some("brand new pw")).await,
            Err(UpdateMeError::Gone)
        );
    }
}

#[cfg(test)]
mod field_tests {
    use portcullis_domain::FieldValue;

    use super::*;
    use crate::fields::tests::two_fields;
    use crate::test_support::*;

    #[tokio::test]
    async fn writes_only_the_user_writable_fields_given_and_calls_the_hook() {
        let mut m = Mocks::new();
        let user = a_user();
        let id = user.id;
        let stored = user.clone();
        m.users
            .expect_patch()
            .withf(move |i, p| {
                let mut only_nickname = FieldValues::new();
                only_nickname.set("nickname", FieldValue::Null);
                *i == id
                    && p.fields == only_nickname
                    && UserPatch {
                        fields: FieldValues::new(),
                        ..p.clone()
                    }
                    .is_empty()
            })
            .times(1)
            .returning(move |_, p| {
                let mut u = stored.clone();
                p.apply_to(&mut u);
                Ok(u)
            });
        m.events
            .expect_on_after_update()
            .withf(|_, c| {
                c.password.is_none() && c.fields.get("nickname") == Some(&FieldValue::Null)
            })
            .times(1)
            .return_const(());
        let mut given = FieldValues::new();
        given.set("nickname", FieldValue::Null);
        given.set("credits", FieldValue::Integer(5)); // admin-only: ignored
        let user = m
            .service()
            .with_user_fields(two_fields())
            .update_me_with_fields(user, None, &given)
            .await
            .unwrap();
        assert_eq!(user.fields.get("nickname"), Some(&FieldValue::Null));
    }

    #[tokio::test]
    async fn only_admin_fields_change_nothing() {
        let m = Mocks::new(); // no store call expected
        let user = a_user();
        let mut given = FieldValues::new();
        given.set("credits", FieldValue::Integer(5));
        let same = m
            .service()
            .with_user_fields(two_fields())
            .update_me_with_fields(user.clone(), None, &given)
            .await
            .unwrap();
        assert_eq!(same, user);
    }

    #[tokio::test]
    async fn a_user_deleted_meanwhile_is_gone() {
        let mut m = Mocks::new();
        m.users
            .expect_patch()
            .returning(|_, _| Err(StoreError::NotFound));
        let mut given = FieldValues::new();
        given.set("nickname", FieldValue::String("x".into()));
        assert_matches!(
            m.service()
                .with_user_fields(two_fields())
                .update_me_with_fields(a_user(), None, &given)
                .await,
            Err(UpdateMeError::Gone)
        );
    }
}

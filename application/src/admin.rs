//! User administration, for superusers only: read, change, delete any user.

use portcullis_domain::{
    FieldWriter, PasswordOwner, PasswordPolicyViolation, StoreError, User, UserChanges, UserId,
    UserPatch,
};
use secrecy::ExposeSecret;

use crate::auth_log::Revocation;
use crate::{InfraError, UserService};

/// Why an administrator could not read a user.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The acting user is not a superuser.
    #[error("forbidden")]
    Forbidden,
    /// No user has this id.
    #[error("no such user")]
    NotFound,
    /// The store or another adapter failed: see [`InfraError`].
    #[error(transparent)]
    Infra(#[from] InfraError),
}

/// Why an administrator could not change a user.
#[derive(Debug, thiserror::Error)]
pub enum AdminUpdateError {
    /// The acting user is not a superuser.
    #[error("forbidden")]
    Forbidden,
    /// No user has this id.
    #[error("no such user")]
    NotFound,
    /// Another user has the new address.
    #[error("e-mail already in use")]
    EmailAlreadyExists,
    /// The new password breaks the policy for the user's address after
    /// this change.
    #[error("invalid password: {0}")]
    InvalidPassword(PasswordPolicyViolation),
    /// The store or another adapter failed: see [`InfraError`].
    #[error(transparent)]
    Infra(#[from] InfraError),
}

/// Why an administrator could not delete a user.
#[derive(Debug, thiserror::Error)]
pub enum AdminDeleteError {
    /// The acting user is not a superuser.
    #[error("forbidden")]
    Forbidden,
    /// Administrators cannot delete their own account.
    #[error("Admins cannot delete their own account")]
    CannotDeleteSelf,
    /// No user has this id.
    #[error("no such user")]
    NotFound,
    /// The store or another adapter failed: see [`InfraError`].
    #[error(transparent)]
    Infra(#[from] InfraError),
}

impl From<AdminError> for AdminUpdateError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Forbidden => Self::Forbidden,
            AdminError::NotFound => Self::NotFound,
            AdminError::Infra(i) => Self::Infra(i),
        }
    }
}

impl From<AdminError> for AdminDeleteError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Forbidden => Self::Forbidden,
            AdminError::NotFound => Self::NotFound,
            AdminError::Infra(i) => Self::Infra(i),
        }
    }
}

impl UserService {
    /// Any user, for a superuser.
    #[tracing::instrument(skip_all, fields(actor = %actor.id, user_id = %id))]
    pub async fn admin_get_user(&self, actor: &User, id: UserId) -> Result<User, AdminError> {
        if !actor.is_superuser {
            return Err(AdminError::Forbidden);
        }
        self.ports.users.get(id).await?.ok_or(AdminError::NotFound)
    }

    /// Changes any user, for a superuser. A new e-mail (not just a new
    /// spelling of the same one) resets `is_verified` unless `changes` sets
    /// it; a new password must pass the policy for the resulting address.
    ///
    /// Only the columns `changes` asks for are written (a
    /// [`UserPatch`]), so a concurrent change to another column — a password
    /// reset, a verification — is kept, not undone.
    ///
    /// A new password or a deactivation (`is_active: false`) ends every
    /// session of the user, in both strategies: the same write raises their
    /// session stamp, then their opaque tokens are deleted.
    #[tracing::instrument(skip_all, fields(actor = %actor.id, user_id = %id))]
    pub async fn admin_update_user(
        &self,
        actor: &User,
        id: UserId,
        changes: UserChanges,
    ) -> Result<User, AdminUpdateError> {
        let current = self.admin_get_user(actor, id).await?;
        let mut patch = UserPatch::default();
        let mut new_address = false;
        let mut address = &current.email;
        if let Some(email) = &changes.email {
            new_address = !email.same_account(&current.email);
            if *email != current.email {
                // A new address, or a new spelling of the current one.
                patch.email = Some(email.clone());
            }
            address = email;
        }
        let password = match &changes.password {
            Some(p) => {
                // The rules judge the password of the user as they will be:
                // the new address, the new field values.
                let mut fields = current.fields.clone();
                fields.apply(&changes.fields);
                let owner = PasswordOwner {
                    email: address,
                    fields: &fields,
                    user: Some(&current),
                };
                Some(
                    self.password_rules
                        .check(p.expose_secret(), &owner)
                        .await
                        .map_err(AdminUpdateError::InvalidPassword)?,
                )
            }
            None => None,
        };
        if new_address && self.ports.users.get_by_email(address).await?.is_some() {
            return Err(AdminUpdateError::EmailAlreadyExists);
        }
        if let Some(password) = password {
            patch.hashed_password = Some(self.ports.hasher.hash(password.expose()).await?);
        }
        patch.is_active = changes.is_active;
        patch.is_superuser = changes.is_superuser;
        patch.is_verified = changes.is_verified.or(new_address.then_some(false));
        patch.role = changes.role;
        patch.fields = self.writable_changes(&changes.fields, FieldWriter::Admin);
        let end_sessions = patch.hashed_password.is_some() || changes.is_active == Some(false);
        patch.end_sessions = end_sessions.then(|| self.stamp_now());
        let revocation = if patch.hashed_password.is_some() {
            Revocation::PasswordChange
        } else {
            Revocation::Deactivation
        };
        let user = match self.ports.users.patch(id, patch).await {
            Ok(user) => user,
            Err(StoreError::Conflict) => return Err(AdminUpdateError::EmailAlreadyExists),
            Err(StoreError::NotFound) => return Err(AdminUpdateError::NotFound),
            Err(e) => return Err(e.into()),
        };
        if end_sessions {
            self.forget_access_tokens(user.id, revocation).await?;
        }
        self.ports.events.on_after_update(&user, &changes).await;
        Ok(user)
    }

    /// Deletes any user but oneself, for a superuser.
    #[tracing::instrument(skip_all, fields(actor = %actor.id, user_id = %id))]
    pub async fn admin_delete_user(
        &self,
        actor: &User,
        id: UserId,
    ) -> Result<(), AdminDeleteError> {
        let user = self.admin_get_user(actor, id).await?;
        if user.id == actor.id {
            return Err(AdminDeleteError::CannotDeleteSelf);
        }
        self.ports.events.on_before_delete(&user).await;
        match self.ports.users.delete(user.id).await {
            Ok(()) => {}
            Err(StoreError::NotFound) => return Err(AdminDeleteError::NotFound),
            Err(e) => return Err(e.into()),
        }
        self.ports.events.on_after_delete(&user).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use portcullis_domain::{FieldValue, Role};

    fn admin() -> User {
        let mut u = User::new(email("root@example.com"), "$h".into());
        u.is_superuser = true;
        u
    }

    /// The store holds `user`, looked up by its id.
    fn stored(m: &mut Mocks, user: User) {
        m.users
            .expect_get()
            .withf(id_is(user.id))
            .returning(move |_| Ok(Some(user.clone())));
    }

    /// The store applies a patch of `user` to the stored `user` and checks
    /// it with `check`, once.
    fn patched(m: &mut Mocks, user: User, check: impl Fn(&UserPatch) -> bool + Send + 'static) {
        let id = user.id;
        m.users
            .expect_patch()
            .withf(move |i, p| *i == id && check(p))
            .times(1)
            .returning(move |_, p| {
                let mut u = user.clone();
                p.apply_to(&mut u);
                Ok(u)
            });
    }

    #[tokio::test]
    async fn non_superusers_are_forbidden_before_anything_is_looked_up() {
        let actor = a_user();
        let m = Mocks::new();
        let s = m.service();
        let id = UserId::random();
        assert_matches!(
            s.admin_get_user(&actor, id).await,
            Err(AdminError::Forbidden)
        );
        assert_matches!(
            s.admin_update_user(&actor, id, UserChanges::default())
                .await,
            Err(AdminUpdateError::Forbidden)
        );
        assert_matches!(
            s.admin_delete_user(&actor, id).await,
            Err(AdminDeleteError::Forbidden)
        );
    }

    #[tokio::test]
    async fn unknown_ids_are_not_found() {
        let mut m = Mocks::new();
        let id = UserId::random();
        m.users
            .expect_get()
            .withf(id_is(id))
            .returning(|_| Ok(None));
        let s = m.service();
        assert_matches!(
            s.admin_get_user(&admin(), id).await,
            Err(AdminError::NotFound)
        );
        assert_matches!(
            s.admin_update_user(&admin(), id, UserChanges::default())
                .await,
            Err(AdminUpdateError::NotFound)
        );
        assert_matches!(
            s.admin_delete_user(&admin(), id).await,
            Err(AdminDeleteError::NotFound)
        );
    }

    #[tokio::test]
    async fn a_new_email_resets_verification_unless_set_in_the_same_change() {
        let mut target = a_user();
        target.is_verified = true;
        let mut m = Mocks::new();
        stored(&mut m, target.clone());
        m.users
            .expect_get_by_email()
            .withf(email_is("new@example.com"))
            .returning(|_| Ok(None));
        patched(&mut m, target.clone(), |p| {
            *p == UserPatch {
                email: Some(email("new@example.com")),
                is_verified: Some(false),
                ..UserPatch::default()
            }
        });
        m.events.expect_on_after_update().return_const(());
        let changes = UserChanges {
            email: Some(email("new@example.com")),
            ..UserChanges::default()
        };
        let u = m
            .service()
            .admin_update_user(&admin(), target.id, changes)
            .await
            .unwrap();
        assert_eq!(u.email.as_str(), "new@example.com");
        assert!(!u.is_verified);

        let mut m = Mocks::new();
        stored(&mut m, target.clone());
        m.users
            .expect_get_by_email()
            .withf(email_is("new@example.com"))
            .returning(|_| Ok(None));
        patched(&mut m, target.clone(), |p| {
            *p == UserPatch {
                email: Some(email("new@example.com")),
                is_verified: Some(true),
                ..UserPatch::default()
            }
        });
        m.events.expect_on_after_update().return_const(());
        let changes = UserChanges {
            email: Some(email("new@example.com")),
            is_verified: Some(true),
            ..UserChanges::default()
        };
        let u = m
            .service()
            .admin_update_user(&admin(), target.id, changes)
            .await
            .unwrap();
        assert!(u.is_verified);
    }

    #[tokio::test]
    async fn the_same_email_changes_nothing() {
        let mut target = a_user();
        target.is_verified = true;
        let mut m = Mocks::new();
        stored(&mut m, target.clone());
        patched(&mut m, target.clone(), UserPatch::is_empty);
        m.events.expect_on_after_update().return_const(());
        let changes = UserChanges {
            email: Some(email("Ann@example.com")),
            ..UserChanges::default()
        };
        let u = m
            .service()
            .admin_update_user(&admin(), target.id, changes)
            .await
            .unwrap();
        assert_eq!(u, target);
    }

    #[tokio::test]
    async fn a_taken_email_is_refused_also_when_the_store_decides() {
        let target = a_user();
        let mut m = Mocks::new();
        stored(&mut m, target.clone());
        m.users
            .expect_get_by_email()
            .withf(email_is("ROOT@example.com"))
            .returning(|_| Ok(Some(admin())));
        let changes = UserChanges {
            email: Some(email("ROOT@example.com")),
            ..UserChanges::default()
        };
        assert_matches!(
            m.service()
                .admin_update_user(&admin(), target.id, changes.clone())
                .await,
            Err(AdminUpdateError::EmailAlreadyExists)
        );

        let mut m = Mocks::new();
        stored(&mut m, target.clone());
        m.users
            .expect_get_by_email()
            .withf(email_is("ROOT@example.com"))
            .returning(|_| Ok(None));
        m.users
            .expect_patch()
            .returning(|_, _| Err(StoreError::Conflict));
        assert_matches!(
            m.service()
                .admin_update_user(&admin(), target.id, changes)
                .await,
            Err(AdminUpdateError::EmailAlreadyExists)
        );
    }

    #[tokio::test]
    async fn sets_flags_role_and_password() {
        let target = a_user();
        let mut m = Mocks::new();
        stored(&mut m, target.clone());
        m.hasher
            .expect_hash()
            .withf(|p| p == "brand new pw")
            .returning(|_| Ok("$new".into()));
        patched(&mut m, target.clone(), |p| {
            *p == UserPatch {
                email: None,
                hashed_password: Some("$new".into()),
                is_active: Some(false),
                is_superuser: Some(true),
                is_verified: Some(true),
                role: Some(Role::Instructor),
                fields: Default::default(),
                end_sessions: Some(TEST_NOW_MS),
            }
        });
        tokens_deleted(&mut m, target.id);
        m.events.expect_on_after_update().times(1).return_const(());
        let changes = UserChanges {
            password: Some("brand new pw".into()),
            is_active: Some(false),
            is_superuser: Some(true),
            is_verified: Some(true),
            role: Some(Role::Instructor),
            ..UserChanges::default()
        };
        let u = m
            .service()
            .admin_update_user(&admin(), target.id, changes)
            .await
            .unwrap();
        assert_eq!(u.hashed_password, "$new");
        assert!(!u.is_active && u.is_superuser && u.is_verified);
        assert_eq!(u.role, Role::Instructor);
        assert_eq!(u.session_stamp, TEST_NOW_MS);
    }

    /// `id`'s opaque tokens are deleted, once.
    fn tokens_deleted(m: &mut Mocks, id: UserId) {
        m.sessions
            .expect_delete_access_tokens_of()
            .withf(move |u| *u == id)
            .times(1)
            .returning(|_| Ok(3));
    }

    #[tokio::test]
    async fn a_new_password_alone_or_a_deactivation_alone_ends_the_sessions() {
        for deactivate in [false, true] {
            let target = a_user();
            let mut m = Mocks::new();
            stored(&mut m, target.clone());
            m.hasher.expect_hash().returning(|_| Ok("$new".into()));
            patched(&mut m, target.clone(), move |p| {
                *p == UserPatch {
                    hashed_password: (!deactivate).then(|| "$new".into()),
                    is_active: deactivate.then_some(false),
                    end_sessions: Some(TEST_NOW_MS),
                    ..UserPatch::default()
                }
            });
            tokens_deleted(&mut m, target.id);
            m.events.expect_on_after_update().return_const(());
            let changes = if deactivate {
                UserChanges {
                    is_active: Some(false),
                    ..UserChanges::default()
                }
            } else {
                UserChanges {
                    password: Some("brand new pw".into()),
                    ..UserChanges::default()
                }
            };
            m.service()
                .admin_update_user(&admin(), target.id, changes)
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn an_activation_or_a_role_change_keeps_the_sessions() {
        let target = a_user();
        let mut m = Mocks::new();
        stored(&mut m, target.clone());
        patched(&mut m, target.clone(), |p| {
            *p == UserPatch {
                is_active: Some(true),
                role: Some(Role::Instructor),
                ..UserPatch::default()
            }
        });
        // No expectation on the sessions: a deletion fails the test.
        m.events.expect_on_after_update().return_const(());
        let changes = UserChanges {
            is_active: Some(true),
            role: Some(Role::Instructor),
            ..UserChanges::default()
        };
        m.service()
            .admin_update_user(&admin(), target.id, changes)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_host_validator_judges_the_new_address_and_its_refusal_changes_nothing() {
        let mut target = a_user();
        target.fields.set("team", FieldValue::String("red".into()));
        target
            .fields
            .set("nickname", FieldValue::String("annie".into()));
        let id = target.id;
        let mut m = Mocks::new(); // no hash, no patch expected
        stored(&mut m, target.clone());
        m.refuse_once(
            "brand new pw",
            move |o| {
                o.email.as_str() == "new@example.com"
                    // the fields as they will be: changed ones new, others kept
                    && o.fields.get("team") == Some(&FieldValue::String("blue".into()))
                    && o.fields.get("nickname") == Some(&FieldValue::String("annie".into()))
                    && o.user
                        .is_some_and(|u| u.id == id && u.email.as_str() == "Ann@example.com")
            },
            "Not with that address",
        );
        let changes = UserChanges {
            email: Some(email("new@example.com")),
            password: Some("brand new pw".into()),
            fields: [("team".to_owned(), FieldValue::String("blue".into()))]
                .into_iter()
                .collect(),
            ..UserChanges::default()
        };
        assert_matches!(
            m.service()
                .admin_update_user(&admin(), target.id, changes)
                .await,
            Err(AdminUpdateError::InvalidPassword(PasswordPolicyViolation::Rejected(ref r)))
                if r == "Not with that address"
        );
    }

    #[tokio::test]
    async fn the_minimum_length_is_the_deployments() {
        let target = a_user();
        let mut m = Mocks::new();
        m.rules.min_length = 13;
        stored(&mut m, target.clone());
        let changes = UserChanges {
            password: Some("brand new pw".into()),
            ..UserChanges::default()
        };
        assert_matches!(
            m.service()
                .admin_update_user(&admin(), target.id, changes)
                .await,
            Err(AdminUpdateError::InvalidPassword(ref why))
                if why.reason() == "Password should be at least 13 characters"
        );
    }

    #[tokio::test]
    async fn a_weak_password_is_refused() {
        let target = a_user();
        let mut m = Mocks::new();
        stored(&mut m, target.clone());
        let changes = UserChanges {
            password: Some("short".into()),
            ..UserChanges::default()
        };
        assert_matches!(
            m.service()
                .admin_update_user(&admin(), target.id, changes)
                .await,
            Err(AdminUpdateError::InvalidPassword(
                PasswordPolicyViolation::TooShort { min: 8 }
            ))
        );
    }

    #[tokio::test]
    async fn a_new_spelling_of_the_same_address_is_written_but_keeps_verification() {
        let mut target = a_user();
        target.is_verified = true;
        let mut m = Mocks::new();
        stored(&mut m, target.clone());
        patched(&mut m, target.clone(), |p| {
            *p == UserPatch {
                email: Some(email("ANN@example.com")),
                ..UserPatch::default()
            }
        });
        m.events.expect_on_after_update().return_const(());
        let changes = UserChanges {
            email: Some(email("ANN@example.com")),
            ..UserChanges::default()
        };
        let u = m
            .service()
            .admin_update_user(&admin(), target.id, changes)
            .await
            .unwrap();
        assert_eq!(u.email.as_str(), "ANN@example.com");
        assert!(u.is_verified);
    }

    #[tokio::test]
    async fn only_the_changed_columns_are_written_and_the_stored_user_is_returned() {
        // The user reset their password after the administrator's read: the
        // role change must not write the old hash back.
        let target = a_user();
        let mut now = target.clone();
        now.hashed_password = "$argon2id$reset".into();
        let mut m = Mocks::new();
        stored(&mut m, target.clone());
        patched(&mut m, now, |p| {
            *p == UserPatch {
                role: Some(Role::Instructor),
                ..UserPatch::default()
            }
        });
        m.events.expect_on_after_update().return_const(());
        let changes = UserChanges {
            role: Some(Role::Instructor),
            ..UserChanges::default()
        };
        let u = m
            .service()
            .admin_update_user(&admin(), target.id, changes)
            .await
            .unwrap();
        assert_eq!(u.role, Role::Instructor);
        assert_eq!(u.hashed_password, "$argon2id$reset");
    }

    #[tokio::test]
    async fn a_user_deleted_meanwhile_is_not_found() {
        let target = a_user();
        let mut m = Mocks::new();
        stored(&mut m, target.clone());
        m.users
            .expect_patch()
            .returning(|_, _| Err(StoreError::NotFound));
        let changes = UserChanges {
            is_active: Some(false),
            ..UserChanges::default()
        };
        assert_matches!(
            m.service()
                .admin_update_user(&admin(), target.id, changes)
                .await,
            Err(AdminUpdateError::NotFound)
        );
    }

    #[tokio::test]
    async fn deletes_others_but_not_oneself() {
        let me = admin();
        let mut m = Mocks::new();
        stored(&mut m, me.clone());
        assert_matches!(
            m.service().admin_delete_user(&me, me.id).await,
            Err(AdminDeleteError::CannotDeleteSelf)
        );

        let target = a_user();
        let mut m = Mocks::new();
        stored(&mut m, target.clone());
        let id = target.id;
        m.events.expect_on_before_delete().times(1).return_const(());
        m.users
            .expect_delete()
            .withf(move |d| *d == id)
            .times(1)
            .returning(|_| Ok(()));
        m.events.expect_on_after_delete().times(1).return_const(());
        assert_matches!(m.service().admin_delete_user(&me, id).await, Ok(()));
    }
}

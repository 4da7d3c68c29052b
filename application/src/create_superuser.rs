//! Creating the first administrator, or promoting a user to one: for the
//! operator (the command line, the start-up configuration), never for an
//! HTTP client.

use portcullis_domain::{EmailAddress, PasswordPolicyViolation, User, UserPatch};

use crate::{CreateUserError, InfraError, NewUser, UserService};

/// What [`UserService::create_superuser`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SuperuserOutcome {
    /// A new user was created: active, superuser, verified, role student.
    Created(User),
    /// An existing user was made a superuser (and active).
    Promoted(User),
    /// The user was an active superuser already; nothing changed.
    AlreadySuperuser(User),
}

/// Why [`UserService::create_superuser`] did nothing.
#[derive(Debug, thiserror::Error)]
pub enum CreateSuperuserError {
    /// A user has this address and promotion was not asked for, or another
    /// process created one with it meanwhile: the address as stored (or as
    /// given, then).
    #[error("a user with e-mail {0} already exists")]
    AlreadyExists(EmailAddress),
    /// No user has the address, so one is created, and that needs a
    /// password.
    #[error("no password given")]
    MissingPassword,
    /// The password of a new user breaks the policy.
    #[error("invalid password: {0}")]
    InvalidPassword(PasswordPolicyViolation),
    /// The store or another adapter failed: see [`InfraError`].
    #[error(transparent)]
    Infra(#[from] InfraError),
}

impl UserService {
    /// Creates an active, verified superuser (role student) at `email`, or,
    /// with `promote`, makes the existing user who has it a superuser (and
    /// active). `password` is needed and checked against the policy only
    /// when a user is created; a promoted user keeps theirs.
    ///
    /// Safe to race: the store's unique index decides, so of several
    /// processes creating the same superuser exactly one creates it and
    /// the others get [`CreateSuperuserError::AlreadyExists`]. A promotion
    /// writes only `is_superuser` and `is_active`, never undoing a change
    /// made meanwhile to another column.
    #[tracing::instrument(skip_all, fields(email = %email, promote, user_id = tracing::field::Empty))]
    pub async fn create_superuser(
        &self,
        email: EmailAddress,
        password: Option<&str>,
        promote: bool,
    ) -> Result<SuperuserOutcome, CreateSuperuserError> {
        if let Some(user) = self.ports.users.get_by_email(&email).await? {
            tracing::Span::current().record("user_id", tracing::field::display(user.id));
            if !promote {
                return Err(CreateSuperuserError::AlreadyExists(user.email));
            }
            if user.is_superuser && user.is_active {
                return Ok(SuperuserOutcome::AlreadySuperuser(user));
            }
            let patch = UserPatch {
                is_superuser: Some(true),
                is_active: Some(true),
                ..UserPatch::default()
            };
            let user = self.ports.users.patch(user.id, patch).await?;
            return Ok(SuperuserOutcome::Promoted(user));
        }
        let password = password.ok_or(CreateSuperuserError::MissingPassword)?;
        // A new user: `create_user` with the superuser's flags (active,
        // superuser, verified, student, fields at their defaults).
        let mut new = NewUser::new(email.clone(), password);
        new.is_superuser = true;
        new.is_verified = true;
        match self.create_user(new).await {
            Ok(user) => {
                tracing::Span::current().record("user_id", tracing::field::display(user.id));
                Ok(SuperuserOutcome::Created(user))
            }
            Err(CreateUserError::AlreadyExists) => Err(CreateSuperuserError::AlreadyExists(email)),
            Err(CreateUserError::InvalidPassword(v)) => {
                Err(CreateSuperuserError::InvalidPassword(v))
            }
            Err(CreateUserError::Infra(e)) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use portcullis_domain::{HashError, Role, StoreError};

    use super::*;
    use crate::test_support::*;

    fn superuser() -> User {
        let mut u = a_user();
        u.is_superuser = true;
        u
    }

    /// The store finds `user` when asked for `address`.
    fn known(m: &mut Mocks, address: &str, user: User) {
        m.users
            .expect_get_by_email()
            .withf(email_is(address))
            .times(1)
            .returning(move |_| Ok(Some(user.clone())));
    }

    /// The store applies `patch` to `user` as stored now.
    fn patch_of(m: &mut Mocks, user: User) {
        let id = user.id;
        m.users
            .expect_patch()
            .withf(move |i, p| {
                *i == id
                    && *p
                        == UserPatch {
                            is_superuser: Some(true),
                            is_active: Some(true),
                            ..UserPatch::default()
                        }
            })
            .times(1)
            .returning(move |_, p| {
                let mut u = user.clone();
                p.apply_to(&mut u);
                Ok(u)
            });
    }

    #[tokio::test]
    async fn creates_an_active_verified_superuser_student() {
        let mut m = Mocks::new();
        m.users
            .expect_get_by_email()
            .withf(email_is("Root@example.com"))
            .times(1)
            .returning(|_| Ok(None));
        m.hasher
            .expect_hash()
            .withf(|p| p == "a long password")
            .times(1)
            .returning(|_| Ok("$hash".into()));
        m.users
            .expect_create()
            .withf(|u| {
                u.email.as_str() == "Root@example.com"
                    && u.hashed_password == "$hash"
                    && u.is_active
                    && u.is_superuser
                    && u.is_verified
                    && u.role == Role::Student
            })
            .times(1)
            .returning(Ok);
        let outcome = m
            .service()
            .create_superuser(email("Root@example.com"), Some("a long password"), false)
            .await;
        assert_matches!(outcome, Ok(SuperuserOutcome::Created(ref u)) if u.is_superuser);
    }

    #[tokio::test]
    async fn promote_also_creates_a_missing_user() {
        let mut m = Mocks::new();
        m.users
            .expect_get_by_email()
            .withf(email_is("root@example.com"))
            .returning(|_| Ok(None));
        m.hasher.expect_hash().returning(|_| Ok("$hash".into()));
        m.users.expect_create().times(1).returning(Ok);
        let outcome = m
            .service()
            .create_superuser(email("root@example.com"), Some("a long password"), true)
            .await;
        assert_matches!(outcome, Ok(SuperuserOutcome::Created(_)));
    }

    #[tokio::test]
    async fn an_existing_address_without_promote_is_already_exists_as_stored() {
        let mut m = Mocks::new();
        known(&mut m, "ANN@EXAMPLE.COM", a_user()); // no hash, no write expected
        let outcome = m
            .service()
            .create_superuser(email("ANN@EXAMPLE.COM"), Some("a long password"), false)
            .await;
        assert_matches!(
            outcome,
            Err(CreateSuperuserError::AlreadyExists(ref e)) if e.as_str() == "Ann@example.com"
        );
    }

    #[tokio::test]
    async fn a_lost_creation_race_is_already_exists() {
        let mut m = Mocks::new();
        m.users
            .expect_get_by_email()
            .withf(email_is("root@example.com"))
            .returning(|_| Ok(None));
        m.hasher.expect_hash().returning(|_| Ok("$hash".into()));
        m.users
            .expect_create()
            .times(1)
            .returning(|_| Err(StoreError::Conflict));
        let outcome = m
            .service()
            .create_superuser(email("root@example.com"), Some("a long password"), false)
            .await;
        assert_matches!(
            outcome,
            Err(CreateSuperuserError::AlreadyExists(ref e)) if e.as_str() == "root@example.com"
        );
    }

    #[tokio::test]
    async fn promote_writes_only_the_two_flags_of_an_ordinary_or_inactive_user() {
        let ann = a_user();
        let mut m = Mocks::new();
        known(&mut m, "ann@example.com", ann.clone());
        patch_of(&mut m, ann);
        let outcome = m
            .service()
            .create_superuser(email("ann@example.com"), None, true)
            .await;
        assert_matches!(
            outcome,
            Ok(SuperuserOutcome::Promoted(ref u)) if u.is_superuser && u.is_active && !u.is_verified
        );

        let mut inactive = superuser();
        inactive.is_active = false;
        let mut m = Mocks::new();
        known(&mut m, "ann@example.com", inactive.clone());
        patch_of(&mut m, inactive);
        let outcome = m
            .service()
            .create_superuser(email("ann@example.com"), Some("ignored password"), true)
            .await;
        assert_matches!(outcome, Ok(SuperuserOutcome::Promoted(ref u)) if u.is_active);
    }

    #[tokio::test]
    async fn promoting_an_active_superuser_changes_nothing() {
        let mut m = Mocks::new();
        known(&mut m, "ann@example.com", superuser()); // no patch expected
        let outcome = m
            .service()
            .create_superuser(email("ann@example.com"), None, true)
            .await;
        assert_matches!(outcome, Ok(SuperuserOutcome::AlreadySuperuser(_)));
    }

    #[tokio::test]
    async fn a_new_user_needs_a_password_that_passes_the_policy() {
        let mut m = Mocks::new();
        m.users
            .expect_get_by_email()
            .withf(email_is("root@example.com"))
            .returning(|_| Ok(None));
        let outcome = m
            .service()
            .create_superuser(email("root@example.com"), None, false)
            .await;
        assert_matches!(outcome, Err(CreateSuperuserError::MissingPassword));

        let mut m = Mocks::new();
        m.users
            .expect_get_by_email()
            .withf(email_is("root@example.com"))
            .returning(|_| Ok(None));
        let outcome = m
            .service()
            .create_superuser(email("root@example.com"), Some("short"), false)
            .await;
        assert_matches!(
            outcome,
            Err(CreateSuperuserError::InvalidPassword(
                PasswordPolicyViolation::TooShort { min: 8 }
            ))
        );
    }

    #[tokio::test]
    async fn a_new_superusers_password_obeys_the_deployments_rules() {
        let mut m = Mocks::new(); // no hash, no create expected
        m.users.expect_get_by_email().returning(|_| Ok(None));
        m.refuse_once(
            "a long password",
            |o| o.email.as_str() == "root@example.com" && o.user.is_none(),
            "Administrators need a passphrase",
        );
        let outcome = m
            .service()
            .create_superuser(email("root@example.com"), Some("a long password"), false)
            .await;
        assert_matches!(
            outcome,
            Err(CreateSuperuserError::InvalidPassword(PasswordPolicyViolation::Rejected(ref r)))
                if r == "Administrators need a passphrase"
        );

        let mut m = Mocks::new();
        m.users.expect_get_by_email().returning(|_| Ok(None));
        m.rules.min_length = 16;
        let outcome = m
            .service()
            .create_superuser(email("root@example.com"), Some("a long password"), false)
            .await;
        assert_matches!(
            outcome,
            Err(CreateSuperuserError::InvalidPassword(ref why))
                if why.reason() == "Password should be at least 16 characters"
        );
    }

    #[tokio::test]
    async fn store_and_hasher_failures_are_infra() {
        let mut m = Mocks::new();
        m.users
            .expect_get_by_email()
            .withf(email_is("root@example.com"))
            .returning(|_| Err(outage()));
        let outcome = m
            .service()
            .create_superuser(email("root@example.com"), Some("a long password"), false)
            .await;
        assert_matches!(
            outcome,
            Err(CreateSuperuserError::Infra(InfraError::Unavailable(_)))
        );

        let mut m = Mocks::new();
        m.users
            .expect_get_by_email()
            .withf(email_is("root@example.com"))
            .returning(|_| Ok(None));
        m.hasher
            .expect_hash()
            .returning(|_| Err(HashError::Failed("bad parameters".into())));
        let outcome = m
            .service()
            .create_superuser(email("root@example.com"), Some("a long password"), false)
            .await;
        assert_matches!(
            outcome,
            Err(CreateSuperuserError::Infra(InfraError::Internal(_)))
        );

        let mut m = Mocks::new();
        m.users
            .expect_get_by_email()
            .withf(email_is("root@example.com"))
            .returning(|_| Ok(None));
        m.hasher.expect_hash().returning(|_| Ok("$hash".into()));
        m.users.expect_create().returning(|_| Err(outage()));
        let outcome = m
            .service()
            .create_superuser(email("root@example.com"), Some("a long password"), false)
            .await;
        assert_matches!(
            outcome,
            Err(CreateSuperuserError::Infra(InfraError::Unavailable(_)))
        );

        // The user was deleted between the look-up and the promotion.
        let mut m = Mocks::new();
        known(&mut m, "ann@example.com", a_user());
        m.users
            .expect_patch()
            .returning(|_, _| Err(StoreError::NotFound));
        let outcome = m
            .service()
            .create_superuser(email("ann@example.com"), None, true)
            .await;
        assert_matches!(
            outcome,
            Err(CreateSuperuserError::Infra(InfraError::Internal(_)))
        );
    }
}

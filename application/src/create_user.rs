//! Creating a user as an operator does (seeding, a back office, a host's
//! tests): any role and flags, unlike self-registration. Never reachable by
//! an HTTP client of the contract.

use portcullis_domain::{
    EmailAddress, FieldValues, FieldWriter, PasswordOwner, PasswordPolicyViolation, Role,
    StoreError, User,
};
use secrecy::{ExposeSecret, SecretString};

use crate::{InfraError, UserService};

/// A user to create with [`UserService::create_user`]. The defaults of
/// [`NewUser::new`] are those of a registration: active, not superuser, not
/// verified, `student`.
#[derive(Debug)]
pub struct NewUser {
    /// The address; no other user may have it in any letter case.
    pub email: EmailAddress,
    /// The password, checked against the policy, then hashed.
    pub password: SecretString,
    /// The role.
    pub role: Role,
    /// Whether the user may log in.
    pub is_active: bool,
    /// Whether the user administers every user.
    pub is_superuser: bool,
    /// Whether the address counts as verified.
    pub is_verified: bool,
    /// Values of extra fields; absent ones take their default.
    pub fields: FieldValues,
}

impl NewUser {
    /// An active, unverified `student` at `email` with `password`.
    pub fn new(email: EmailAddress, password: impl Into<SecretString>) -> Self {
        Self {
            email,
            password: password.into(),
            role: Role::Student,
            is_active: true,
            is_superuser: false,
            is_verified: false,
            fields: FieldValues::new(),
        }
    }
}

/// Why [`UserService::create_user`] created nobody.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    /// A user has this address (in any letter case).
    #[error("a user with this e-mail address already exists")]
    AlreadyExists,
    /// The password breaks the policy.
    #[error("invalid password: {0}")]
    InvalidPassword(PasswordPolicyViolation),
    /// The store or another adapter failed: see [`InfraError`].
    #[error(transparent)]
    Infra(#[from] InfraError),
}

impl UserService {
    /// Creates `new` as given (role and flags included): for operators and
    /// tests, not for self-registration, which is
    /// [`register`](UserService::register). The password is checked against
    /// the policy; the store's unique index decides a clash. No hook runs:
    /// nobody registered.
    #[tracing::instrument(skip_all, fields(user_id = tracing::field::Empty))]
    pub async fn create_user(&self, new: NewUser) -> Result<User, CreateUserError> {
        let initial = self.initial_fields(&new.fields, FieldWriter::Admin);
        let owner = PasswordOwner {
            email: &new.email,
            fields: &initial,
            user: None,
        };
        let password = self
            .password_rules
            .check(new.password.expose_secret(), &owner)
            .await
            .map_err(CreateUserError::InvalidPassword)?;
        let hashed = self.ports.hasher.hash(password.expose()).await?;
        let mut user = User::new(new.email, hashed);
        user.role = new.role;
        user.is_active = new.is_active;
        user.is_superuser = new.is_superuser;
        user.is_verified = new.is_verified;
        user.fields = initial;
        match self.ports.users.create(user).await {
            Ok(user) => {
                tracing::Span::current().record("user_id", tracing::field::display(user.id));
                Ok(user)
            }
            Err(StoreError::Conflict) => Err(CreateUserError::AlreadyExists),
            Err(e) => Err(e.into()),
        }
    }

    /// An access token for `user`, as login would issue by the strategy in
    /// force, without a password: for hosts' tests and operator tooling
    /// that already trust the caller. A JWT carries `user`'s session stamp
    /// as given (pass the user as stored); an opaque token is stored. The
    /// token is judged like any other when used (an inactive or deleted
    /// user's is refused, and so is one issued before the user's sessions
    /// were ended).
    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    pub async fn issue_access_token(&self, user: &User) -> Result<SecretString, InfraError> {
        match self.new_access_token(user).await? {
            Some(token) => Ok(token.into()),
            None => Err(InfraError::Internal(
                format!("no access token for {}: no such user", user.id).into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use portcullis_domain::TokenError;

    use super::*;
    use crate::test_support::*;

    fn instructor() -> NewUser {
        let mut new = NewUser::new(email("Ann@example.com"), "a long password");
        new.role = Role::Instructor;
        new.is_verified = true;
        new.is_superuser = true;
        new.is_active = false;
        new
    }

    #[tokio::test]
    async fn creates_the_user_with_its_role_and_flags_and_a_hash() {
        let mut m = Mocks::new();
        m.hasher
            .expect_hash()
            .withf(|p| p == "a long password")
            .times(1)
            .returning(|_| Ok("$hash".into()));
        m.users
            .expect_create()
            .withf(|u| {
                u.email.as_str() == "Ann@example.com"
                    && u.hashed_password == "$hash"
                    && u.role == Role::Instructor
                    && !u.is_active
                    && u.is_superuser
                    && u.is_verified
            })
            .times(1)
            .returning(Ok);
        let user = m.service().create_user(instructor()).await.unwrap();
        assert_eq!(user.role, Role::Instructor);
    }

    #[tokio::test]
    async fn a_host_validator_refusal_creates_nobody() {
        let mut m = Mocks::new(); // no hash, no store call expected
        m.refuse_once(
            "a long password",
            |o| o.email.as_str() == "Ann@example.com" && o.user.is_none(),
            "Not on this site",
        );
        assert_matches!(
            m.service().create_user(instructor()).await,
            Err(CreateUserError::InvalidPassword(PasswordPolicyViolation::Rejected(ref r)))
                if r == "Not on this site"
        );
        let mut m = Mocks::new();
        m.rules.min_length = 16;
        assert_matches!(
            m.service().create_user(instructor()).await,
            Err(CreateUserError::InvalidPassword(ref why))
                if why.reason() == "Password should be at least 16 characters"
        );
    }

    #[tokio::test]
    async fn a_weak_password_creates_nobody_and_hashes_nothing() {
        let m = Mocks::new(); // no call expected
        let new = NewUser::new(email("ann@example.com"), "short");
        assert_matches!(
            m.service().create_user(new).await,
            Err(CreateUserError::InvalidPassword(
                PasswordPolicyViolation::TooShort { min: 8 }
            ))
        );
    }

    #[tokio::test]
    async fn a_taken_address_is_already_exists() {
        let mut m = Mocks::new();
        m.hasher.expect_hash().returning(|_| Ok("$hash".into()));
        m.users
            .expect_create()
            .returning(|_| Err(StoreError::Conflict));
        assert_matches!(
            m.service().create_user(instructor()).await,
            Err(CreateUserError::AlreadyExists)
        );
    }

    #[tokio::test]
    async fn a_store_outage_is_infra() {
        let mut m = Mocks::new();
        m.hasher.expect_hash().returning(|_| Ok("$hash".into()));
        m.users.expect_create().returning(|_| Err(outage()));
        assert_matches!(
            m.service().create_user(instructor()).await,
            Err(CreateUserError::Infra(InfraError::Unavailable(_)))
        );
    }

    #[tokio::test]
    async fn an_access_token_is_issued_for_the_given_user_with_its_stamp() {
        let mut m = Mocks::new();
        let mut user = a_user();
        user.session_stamp = 4;
        let id = user.id;
        m.tokens
            .expect_issue_access()
            .withf(move |u, stamp| *u == id && *stamp == 4)
            .times(1)
            .returning(|_, _| Ok("tok".into()));
        let token = m.service().issue_access_token(&user).await.unwrap();
        assert_eq!(token.expose_secret(), "tok");
    }

    #[tokio::test]
    async fn the_database_strategy_stores_the_token() {
        let mut m = Mocks::new();
        m.policy.auth_strategy = crate::AuthStrategy::Database;
        let user = a_user();
        let id = user.id;
        m.sessions
            .expect_create_access_token()
            .withf(move |r| r.user_id == id && r.token.len() == 43)
            .times(1)
            .returning(|_| Ok(()));
        let token = m.service().issue_access_token(&user).await.unwrap();
        assert_eq!(token.expose_secret().len(), 43);
    }

    #[tokio::test]
    async fn a_token_that_cannot_be_issued_is_internal() {
        let mut m = Mocks::new();
        m.tokens
            .expect_issue_access()
            .returning(|_, _| Err(TokenError::Issue("overflow".into())));
        assert_matches!(
            m.service().issue_access_token(&a_user()).await,
            Err(InfraError::Internal(_))
        );
    }
}

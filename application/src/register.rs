use portcullis_domain::{
    EmailAddress, FieldValues, FieldWriter, PasswordOwner, PasswordPolicyViolation, StoreError,
    User,
};

use crate::{InfraError, UserService};

/// Why a registration was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The password breaks the policy (checked before the e-mail clash).
    #[error("invalid password: {0}")]
    InvalidPassword(PasswordPolicyViolation),
    /// Someone already has this address (case-insensitively).
    #[error("a user with this e-mail already exists")]
    AlreadyExists,
    /// The store or another adapter failed: see [`InfraError`].
    #[error(transparent)]
    Infra(#[from] InfraError),
}

impl UserService {
    /// Registers a new ordinary user: active, not superuser, not verified,
    /// role student, extra fields at their defaults. Nobody promotes
    /// themselves here.
    pub async fn register(
        &self,
        email: EmailAddress,
        password: &str,
    ) -> Result<User, RegisterError> {
        self.register_with_fields(email, password, &FieldValues::new())
            .await
    }

    /// [`register`](Self::register), with values for the user-writable
    /// extra fields; the others (and unknown names) are ignored, absent
    /// ones take their default. The values must fit their fields (the
    /// HTTP adapter checks them).
    #[tracing::instrument(
        name = "register",
        skip_all,
        fields(user_id = tracing::field::Empty)
    )]
    pub async fn register_with_fields(
        &self,
        email: EmailAddress,
        password: &str,
        fields: &FieldValues,
    ) -> Result<User, RegisterError> {
        let initial = self.initial_fields(fields, FieldWriter::User);
        let owner = PasswordOwner {
            email: &email,
            fields: &initial,
            user: None,
        };
        let password = self
            .password_rules
            .check(password, &owner)
            .await
            .map_err(RegisterError::InvalidPassword)?;
        // Cheap early answer; the store's unique index decides races below.
        if self.ports.users.get_by_email(&email).await?.is_some() {
            return Err(RegisterError::AlreadyExists);
        }
        let hashed = self.ports.hasher.hash(password.expose()).await?;
        let mut user = User::new(email, hashed);
        user.fields = initial;
        let user = match self.ports.users.create(user).await {
            Ok(user) => user,
            Err(StoreError::Conflict) => return Err(RegisterError::AlreadyExists),
            Err(e) => return Err(e.into()),
        };
        tracing::Span::current().record("user_id", tracing::field::display(user.id));
        tracing::info!(
            target: crate::AUTH_LOG_TARGET,
            auth_event = "register",
            user_id = %user.id,
            "user registered"
        );
        self.ports.events.on_after_register(&user).await;
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use portcullis_domain::Role;

    #[tokio::test]
    async fn creates_an_unprivileged_user_with_a_hashed_password() {
        let mut m = Mocks::new();
        m.users
            .expect_get_by_email()
            .withf(email_is("Bo@example.com"))
            .returning(|_| Ok(None));
        m.hasher
            .expect_hash()
            .withf(|p| p == "long enough")
            .returning(|_| Ok("$hash".into()));
        m.users.expect_create().returning(Ok);
        m.events
            .expect_on_after_register()
            .times(1)
            .return_const(());
        let user = m
            .service()
            .register(email("Bo@example.com"), "long enough")
            .await
            .unwrap();
        assert_eq!(user.hashed_password, "$hash");
        assert!(user.is_active && !user.is_superuser && !user.is_verified);
        assert_eq!(user.role, Role::Student);
    }

    #[tokio::test]
    async fn checks_the_password_before_the_email_clash() {
        let m = Mocks::new(); // no store call expected
        assert_matches!(
            m.service().register(email("bo@example.com"), "short").await,
            Err(RegisterError::InvalidPassword(
                PasswordPolicyViolation::TooShort { min: 8 }
            ))
        );
        let m = Mocks::new();
        assert_matches!(
            m.service()
                .register(email("bo@example.com"), "xBO@EXAMPLE.COMx")
                .await,
            Err(RegisterError::InvalidPassword(
                PasswordPolicyViolation::ContainsEmail
            ))
        );
    }

    #[tokio::test]
    async fn a_host_validator_refusal_reaches_the_error_before_the_store_is_asked() {
        let mut m = Mocks::new(); // no store or hasher call expected
        m.refuse_once(
            "long enough",
            |o| o.email.as_str() == "bo@example.com" && o.user.is_none() && o.fields.is_empty(),
            "Too common",
        );
        let refused = m
            .service()
            .register(email("bo@example.com"), "long enough")
            .await;
        assert_matches!(
            refused,
            Err(RegisterError::InvalidPassword(PasswordPolicyViolation::Rejected(ref r)))
                if r == "Too common"
        );
    }

    #[tokio::test]
    async fn the_minimum_length_is_the_deployments() {
        let mut m = Mocks::new();
        m.rules.min_length = 12;
        let Err(RegisterError::InvalidPassword(why)) = m
            .service()
            .register(email("bo@example.com"), "long enough")
            .await
        else {
            panic!("an 11-character password passed a 12-character minimum");
        };
        assert_eq!(why, PasswordPolicyViolation::TooShort { min: 12 });
        assert_eq!(why.reason(), "Password should be at least 12 characters");
    }

    #[tokio::test]
    async fn refuses_an_existing_address() {
        let mut m = Mocks::new();
        m.users
            .expect_get_by_email()
            .withf(email_is("ANN@example.com"))
            .returning(|_| Ok(Some(a_user())));
        assert_matches!(
            m.service()
                .register(email("ANN@example.com"), "long enough")
                .await,
            Err(RegisterError::AlreadyExists)
        );
    }

    #[tokio::test]
    async fn a_lost_race_is_already_exists() {
        let mut m = Mocks::new();
        m.users
            .expect_get_by_email()
            .withf(email_is("bo@example.com"))
            .returning(|_| Ok(None));
        m.hasher.expect_hash().returning(|_| Ok("$hash".into()));
        m.users
            .expect_create()
            .returning(|_| Err(StoreError::Conflict));
        assert_matches!(
            m.service()
                .register(email("bo@example.com"), "long enough")
                .await,
            Err(RegisterError::AlreadyExists)
        );
    }

    #[tokio::test]
    async fn a_store_outage_is_infra() {
        let mut m = Mocks::new();
        m.users
            .expect_get_by_email()
            .withf(email_is("bo@example.com"))
            .returning(|_| Err(outage()));
        assert!(matches!(
            m.service()
                .register(email("bo@example.com"), "long enough")
                .await,
            Err(RegisterError::Infra(InfraError::Unavailable(_)))
        ));
    }
}

#[cfg(test)]
mod field_tests {
    use portcullis_domain::FieldValue;

    use super::*;
    use crate::fields::tests::two_fields;
    use crate::test_support::*;

    #[tokio::test]
    async fn registers_user_writable_fields_and_defaults_the_others() {
        let mut m = Mocks::new();
        m.users.expect_get_by_email().returning(|_| Ok(None));
        m.hasher.expect_hash().returning(|_| Ok("$hash".into()));
        m.users
            .expect_create()
            .withf(|u| {
                u.fields.get("nickname") == Some(&FieldValue::String("bo".into()))
                    && u.fields.get("credits") == Some(&FieldValue::Integer(10))
                    && u.fields.iter().count() == 2
            })
            .times(1)
            .returning(Ok);
        m.events.expect_on_after_register().return_const(());
        let mut given = FieldValues::new();
        given.set("nickname", FieldValue::String("bo".into()));
        given.set("credits", FieldValue::Integer(1_000_000));
        let user = m
            .service()
            .with_user_fields(two_fields())
            .register_with_fields(email("bo@example.com"), "long enough", &given)
            .await
            .unwrap();
        assert_eq!(user.fields.get("credits"), Some(&FieldValue::Integer(10)));
    }
}

use portcullis_domain::{User, UserId};

use crate::{InfraError, UserService};

/// Why a bearer token does not identify a usable user.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Bad, expired or foreign token, or its user is gone or inactive.
    #[error("not authenticated")]
    Unauthorized,
    /// The store or another adapter failed: see [`InfraError`].
    #[error(transparent)]
    Infra(#[from] InfraError),
}

impl UserService {
    /// The active user an access token belongs to. Rights come from the
    /// stored user, never from claims in the token.
    #[tracing::instrument(skip_all, fields(user_id = tracing::field::Empty))]
    pub async fn authenticate(&self, access_token: &str) -> Result<User, AuthError> {
        let subject = self
            .ports
            .tokens
            .verify_access(access_token)
            .map_err(|_| AuthError::Unauthorized)?;
        let id = UserId::parse(&subject).map_err(|_| AuthError::Unauthorized)?;
        tracing::Span::current().record("user_id", tracing::field::display(id));
        match self.ports.users.get(id).await? {
            Some(user) if user.is_active => Ok(user),
            _ => Err(AuthError::Unauthorized),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use portcullis_domain::{StoreError, TokenError};

    #[tokio::test]
    async fn accepts_a_valid_token_of_an_active_user() {
        let user = a_user();
        let mut m = Mocks::new();
        let id = user.id;
        m.tokens
            .expect_verify_access()
            .withf(|t| t == "t")
            .returning(move |_| Ok(id.to_string()));
        let u = user.clone();
        m.users
            .expect_get()
            .withf(id_is(id))
            .returning(move |_| Ok(Some(u.clone())));
        assert_eq!(m.service().authenticate("t").await.unwrap(), user);
    }

    #[tokio::test]
    async fn refuses_a_bad_token() {
        let mut m = Mocks::new();
        m.tokens
            .expect_verify_access()
            .returning(|_| Err(TokenError::Invalid));
        assert_matches!(
            m.service().authenticate("t").await,
            Err(AuthError::Unauthorized)
        );
    }

    #[tokio::test]
    async fn refuses_a_subject_that_is_no_uuid() {
        let mut m = Mocks::new();
        m.tokens
            .expect_verify_access()
            .returning(|_| Ok("42".into()));
        assert_matches!(
            m.service().authenticate("t").await,
            Err(AuthError::Unauthorized)
        );
    }

    #[tokio::test]
    async fn refuses_deleted_and_inactive_users() {
        let mut m = Mocks::new();
        let deleted = UserId::random();
        m.tokens
            .expect_verify_access()
            .returning(move |_| Ok(deleted.to_string()));
        m.users
            .expect_get()
            .withf(id_is(deleted))
            .returning(|_| Ok(None));
        assert_matches!(
            m.service().authenticate("t").await,
            Err(AuthError::Unauthorized)
        );

        let mut inactive = a_user();
        inactive.is_active = false;
        let mut m = Mocks::new();
        let id = inactive.id;
        m.tokens
            .expect_verify_access()
            .returning(move |_| Ok(id.to_string()));
        m.users
            .expect_get()
            .withf(id_is(id))
            .returning(move |_| Ok(Some(inactive.clone())));
        assert_matches!(
            m.service().authenticate("t").await,
            Err(AuthError::Unauthorized)
        );
    }

    #[tokio::test]
    async fn reports_a_store_outage() {
        let mut m = Mocks::new();
        let id = UserId::random();
        m.tokens
            .expect_verify_access()
            .returning(move |_| Ok(id.to_string()));
        m.users
            .expect_get()
            .withf(id_is(id))
            .returning(|_| Err(outage()));
        assert_matches!(
            m.service().authenticate("t").await,
            Err(AuthError::Infra(InfraError::Unavailable(
                StoreError::Unavailable(_)
            )))
        );
    }
}

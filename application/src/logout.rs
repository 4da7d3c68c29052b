use portcullis_domain::User;

use crate::{AuthStrategy, InfraError, UserService};

impl UserService {
    /// Logs `user` out of the session `access_token` opened; the caller has
    /// already authenticated the user with that token.
    ///
    /// - `database` strategy: the token is deleted, refused from now on.
    /// - `jwt` strategy: nothing happens. A JWT cannot be revoked alone —
    ///   the token keeps working until it expires, exactly as with FastAPI
    ///   Users' JWT strategy. To end it early, end every session of the user
    ///   ([`end_all_sessions`](Self::end_all_sessions), `DELETE
    ///   /users/me/sessions`) or use the `database` strategy.
    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    pub async fn logout(&self, user: &User, access_token: &str) -> Result<(), InfraError> {
        match self.policy.auth_strategy {
            AuthStrategy::Jwt => {
                tracing::debug!("logout (stateless token, nothing to revoke)");
            }
            AuthStrategy::Database => {
                self.ports
                    .sessions
                    .delete_access_token(access_token)
                    .await?;
                tracing::debug!("logout (access token deleted)");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::AuthStrategy;
    use crate::test_support::*;

    #[tokio::test]
    async fn a_jwt_logout_touches_nothing() {
        // No expectation: any store call fails the test.
        Mocks::new().service().logout(&a_user(), "t").await.unwrap();
    }

    #[tokio::test]
    async fn a_database_logout_deletes_the_token() {
        let mut m = Mocks::new();
        m.policy.auth_strategy = AuthStrategy::Database;
        m.sessions
            .expect_delete_access_token()
            .withf(|t| t == "opaque")
            .times(1)
            .returning(|_| Ok(()));
        m.service().logout(&a_user(), "opaque").await.unwrap();
    }

    #[tokio::test]
    async fn a_database_logout_reports_an_outage() {
        let mut m = Mocks::new();
        m.policy.auth_strategy = AuthStrategy::Database;
        m.sessions
            .expect_delete_access_token()
            .returning(|_| Err(outage()));
        assert_matches!(
            m.service().logout(&a_user(), "opaque").await,
            Err(crate::InfraError::Unavailable(_))
        );
    }
}

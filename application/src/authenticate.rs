use portcullis_domain::{User, UserId};

use crate::{AuthStrategy, InfraError, UserService};

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
    ///
    /// By the strategy in force ([`AuthStrategy`]):
    /// - `jwt`: the token is checked (signature, audience, expiry), then the
    ///   user loaded — one store call, as without revocation: the token's
    ///   `stamp` must equal the loaded user's
    ///   [`session_stamp`](User::session_stamp), or the token was issued
    ///   before the user's sessions were ended (password reset or change,
    ///   deactivation, log out everywhere). A token without the claim (from
    ///   FastAPI Users) counts as stamp 0.
    /// - `database`: the opaque token is looked up, younger than the access
    ///   token lifetime, then its user loaded — two store calls (the token
    ///   and the user are separate rows of separate ports; a join would tie
    ///   the two ports into one). A token that cannot be one of ours (longer
    ///   than 43 characters, not URL-safe) is refused without a call.
    ///
    /// Anything refused is [`AuthError::Unauthorized`], whatever the input.
    #[tracing::instrument(skip_all, fields(user_id = tracing::field::Empty))]
    pub async fn authenticate(&self, access_token: &str) -> Result<User, AuthError> {
        let (id, stamp) = match self.policy.auth_strategy {
            AuthStrategy::Jwt => {
                let claims = self
                    .ports
                    .tokens
                    .verify_access(access_token)
                    .map_err(|_| AuthError::Unauthorized)?;
                let id = UserId::parse(&claims.subject).map_err(|_| AuthError::Unauthorized)?;
                (id, Some(claims.stamp))
            }
            AuthStrategy::Database => {
                let id = self
                    .opaque_token_owner(access_token)
                    .await?
                    .ok_or(AuthError::Unauthorized)?;
                (id, None)
            }
        };
        tracing::Span::current().record("user_id", tracing::field::display(id));
        match self.ports.users.get(id).await? {
            Some(user) if user.is_active && stamp.is_none_or(|s| s == user.session_stamp) => {
                Ok(user)
            }
            _ => Err(AuthError::Unauthorized),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use portcullis_domain::{AccessClaims, StoreError, TokenError};

    #[tokio::test]
    async fn accepts_a_valid_token_of_an_active_user() {
        let user = a_user();
        let mut m = Mocks::new();
        let id = user.id;
        m.tokens
            .expect_verify_access()
            .withf(|t| t == "t")
            .returning(move |_| Ok(claims(id, 0)));
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
        m.tokens.expect_verify_access().returning(|_| {
            Ok(AccessClaims {
                subject: "42".into(),
                stamp: 0,
            })
        });
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
            .returning(move |_| Ok(claims(deleted, 0)));
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
            .returning(move |_| Ok(claims(id, 0)));
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
            .returning(move |_| Ok(claims(id, 0)));
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

    fn claims(id: UserId, stamp: i64) -> AccessClaims {
        AccessClaims {
            subject: id.to_string(),
            stamp,
        }
    }

    #[tokio::test]
    async fn a_jwt_is_accepted_only_with_the_users_current_stamp() {
        for (token_stamp, user_stamp, ok) in [
            (2, 2, true),
            (1, 2, false),
            (0, 1, false),
            (3, 2, false),
            (0, 0, true),
        ] {
            let mut user = a_user();
            user.session_stamp = user_stamp;
            let id = user.id;
            let mut m = Mocks::new();
            m.tokens
                .expect_verify_access()
                .returning(move |_| Ok(claims(id, token_stamp)));
            let u = user.clone();
            m.users
                .expect_get()
                .withf(id_is(id))
                .times(1)
                .returning(move |_| Ok(Some(u.clone())));
            let outcome = m.service().authenticate("t").await;
            assert_eq!(
                outcome.is_ok(),
                ok,
                "token {token_stamp}, user {user_stamp}: {outcome:?}"
            );
        }
    }

    fn database(m: &mut Mocks) {
        m.policy.auth_strategy = AuthStrategy::Database;
        m.policy.access_token_lifetime = std::time::Duration::from_secs(600);
    }

    const OPAQUE: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_01234";

    #[tokio::test]
    async fn an_opaque_token_is_looked_up_within_its_lifetime_then_its_user() {
        let user = a_user();
        let id = user.id;
        let mut m = Mocks::new();
        database(&mut m);
        let mut seq = mockall::Sequence::new();
        m.sessions
            .expect_get_access_token()
            .withf(|t, not_before| {
                let age = test_now().duration_since(*not_before).unwrap();
                t == OPAQUE && age == std::time::Duration::from_secs(600)
            })
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |t, _| {
                Ok(Some(portcullis_domain::AccessTokenRecord {
                    token: t.to_owned(),
                    user_id: id,
                    created_at: test_now(),
                }))
            });
        let u = user.clone();
        m.users
            .expect_get()
            .withf(id_is(id))
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_| Ok(Some(u.clone())));
        assert_eq!(m.service().authenticate(OPAQUE).await.unwrap(), user);
    }

    #[tokio::test]
    async fn an_unknown_or_expired_opaque_token_is_refused() {
        let mut m = Mocks::new();
        database(&mut m);
        m.sessions
            .expect_get_access_token()
            .times(1)
            .returning(|_, _| Ok(None));
        assert_matches!(
            m.service().authenticate(OPAQUE).await,
            Err(AuthError::Unauthorized)
        );
    }

    #[tokio::test]
    async fn what_cannot_be_an_opaque_token_is_refused_without_a_lookup() {
        // No expectation on the store: a lookup fails the test.
        let long = "a".repeat(10_000);
        for token in [
            "",
            "é",
            "a b",
            "a.b.c",
            long.as_str(),
            &format!("{OPAQUE}x"),
        ] {
            let mut m = Mocks::new();
            database(&mut m);
            assert_matches!(
                m.service().authenticate(token).await,
                Err(AuthError::Unauthorized)
            );
        }
    }

    #[tokio::test]
    async fn an_opaque_token_of_an_inactive_user_is_refused_and_an_outage_reported() {
        let mut user = a_user();
        user.is_active = false;
        let id = user.id;
        let mut m = Mocks::new();
        database(&mut m);
        m.sessions.expect_get_access_token().returning(move |t, _| {
            Ok(Some(portcullis_domain::AccessTokenRecord {
                token: t.to_owned(),
                user_id: id,
                created_at: std::time::SystemTime::now(),
            }))
        });
        m.users
            .expect_get()
            .returning(move |_| Ok(Some(user.clone())));
        assert_matches!(
            m.service().authenticate(OPAQUE).await,
            Err(AuthError::Unauthorized)
        );

        let mut m = Mocks::new();
        database(&mut m);
        m.sessions
            .expect_get_access_token()
            .returning(|_, _| Err(outage()));
        assert_matches!(
            m.service().authenticate(OPAQUE).await,
            Err(AuthError::Infra(InfraError::Unavailable(_)))
        );
    }
}

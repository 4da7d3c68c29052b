use portcullis_domain::{AccessClaims, SESSION_STAMP_TIME_FLOOR, User, UserId};

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
    ///   user loaded — one store call, as without revocation — and the
    ///   token must not predate the last end of the user's sessions
    ///   (password reset or change, deactivation, log out everywhere), by
    ///   the user's [`session_stamp`](User::session_stamp):
    ///   - a token with a `stamp` claim: it must equal the user's stamp;
    ///   - a token without one (FastAPI Users', or ours minted while the
    ///     stamp was 0): accepted when the user's stamp is 0, or when the
    ///     stamp is a time (at least [`SESSION_STAMP_TIME_FLOOR`], Unix
    ///     milliseconds) and the token's issue time, in whole seconds, times
    ///     1000, is at or after it: `issued * 1000 >= stamp`. The issue time
    ///     is the token's `iat` if it has one, else its `exp` minus the
    ///     access token lifetime (FastAPI Users mints `exp = now +
    ///     lifetime` and no `iat`). A whole second is the earliest instant
    ///     the token can have been minted in, so a token minted in the same
    ///     second as the revocation but before it is refused — and so is one
    ///     minted in that second after it (the safe side: its client logs in
    ///     again). A small non-zero stamp is a counter from before stamps
    ///     carried time: it refuses every stampless token.
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
                (id, Some(claims))
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
            Some(user)
                if user.is_active
                    && stamp.is_none_or(|claims| self.is_current(&claims, user.session_stamp)) =>
            {
                Ok(user)
            }
            _ => Err(AuthError::Unauthorized),
        }
    }

    /// Whether an access token with `claims` was issued under the session
    /// stamp `stamp` or after it was raised (the rule in
    /// [`authenticate`](Self::authenticate)).
    fn is_current(&self, claims: &AccessClaims, stamp: i64) -> bool {
        if claims.stamp != 0 || stamp == 0 {
            return claims.stamp == stamp;
        }
        if stamp < SESSION_STAMP_TIME_FLOOR {
            return false;
        }
        let lifetime =
            i64::try_from(self.policy.access_token_lifetime.as_secs()).unwrap_or(i64::MAX);
        let issued = claims
            .issued_at
            .unwrap_or_else(|| claims.expires_at.saturating_sub(lifetime));
        issued.saturating_mul(1000) >= stamp
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
                expires_at: i64::MAX,
                issued_at: None,
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
            expires_at: i64::MAX,
            issued_at: None,
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

    /// A revocation at 2023-11-14T22:13:20.250Z, as a time stamp.
    const REVOKED_MS: i64 = 1_700_000_000_250;
    const LIFETIME: i64 = 3600;

    /// Whether a token with `stamp`, `exp` and `iat` is accepted for a user
    /// whose stamp is `user_stamp` (access lifetime [`LIFETIME`]).
    async fn accepted(stamp: i64, exp: i64, iat: Option<i64>, user_stamp: i64) -> bool {
        let mut user = a_user();
        user.session_stamp = user_stamp;
        let id = user.id;
        let mut m = Mocks::new();
        m.policy.access_token_lifetime = std::time::Duration::from_secs(LIFETIME as u64);
        m.tokens.expect_verify_access().returning(move |_| {
            Ok(AccessClaims {
                subject: id.to_string(),
                stamp,
                expires_at: exp,
                issued_at: iat,
            })
        });
        m.users
            .expect_get()
            .withf(id_is(id))
            .times(1)
            .returning(move |_| Ok(Some(user.clone())));
        m.service().authenticate("t").await.is_ok()
    }

    #[tokio::test]
    async fn a_stampless_jwt_issued_at_or_after_a_time_stamp_is_accepted() {
        let second = REVOKED_MS / 1000; // the revocation's own second
        for (exp, iat, ok) in [
            // issue time = exp - lifetime
            (second + 1 + LIFETIME, None, true),
            (second + 3000 + LIFETIME, None, true),
            (second + LIFETIME, None, false), // same second: the safe side
            (second - 1 + LIFETIME, None, false),
            (second - 3000 + LIFETIME, None, false),
            // an `iat` wins over exp - lifetime
            (second + 1 + LIFETIME, Some(second), false),
            (second - 10 + LIFETIME, Some(second + 1), true),
        ] {
            assert_eq!(
                accepted(0, exp, iat, REVOKED_MS).await,
                ok,
                "exp {exp}, iat {iat:?}"
            );
        }
        // A revocation on a whole second: a token of that second is at it.
        let whole = 1_700_000_000_000;
        assert!(accepted(0, 1_700_000_000 + LIFETIME, None, whole).await);
        assert!(!accepted(0, 1_699_999_999 + LIFETIME, None, whole).await);
        // Extremes neither panic nor let anything through.
        assert!(!accepted(0, i64::MIN, None, REVOKED_MS).await);
        assert!(!accepted(0, 0, Some(i64::MIN), REVOKED_MS).await);
        assert!(accepted(0, i64::MAX, None, i64::MAX).await);
    }

    #[tokio::test]
    async fn a_legacy_counter_stamp_refuses_every_stampless_jwt() {
        for user_stamp in [1, 7, SESSION_STAMP_TIME_FLOOR - 1] {
            assert!(
                !accepted(0, i64::MAX, None, user_stamp).await,
                "{user_stamp}"
            );
            assert!(!accepted(0, i64::MAX, Some(i64::MAX), user_stamp).await);
        }
        assert!(accepted(0, i64::MAX, None, SESSION_STAMP_TIME_FLOOR).await);
    }

    #[tokio::test]
    async fn a_stamped_jwt_must_match_a_time_stamp_whatever_its_times() {
        let now = REVOKED_MS / 1000 + 60 + LIFETIME;
        assert!(accepted(REVOKED_MS, now, None, REVOKED_MS).await);
        // Issued under the stamp before: refused even if "minted after".
        assert!(!accepted(REVOKED_MS - 5000, now, None, REVOKED_MS).await);
        assert!(!accepted(7, now, None, REVOKED_MS).await);
        assert!(!accepted(REVOKED_MS, now, None, REVOKED_MS + 1).await);
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

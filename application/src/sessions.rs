//! Sessions: what an access token is (the two strategies), ending every
//! session of a user, and the account-state digest that binds reset and
//! verification tokens.

use std::fmt;
use std::str::FromStr;
use std::time::UNIX_EPOCH;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_domain::{AccessTokenRecord, StoreError, User, UserId, UserPatch};
use sha2::{Digest as _, Sha256};

use crate::auth_log::{AUTH_LOG_TARGET, Revocation};
use crate::{InfraError, UserService};

/// What an access token is (`AUTH_STRATEGY`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum AuthStrategy {
    /// FastAPI Users' `JWTStrategy` (`jwt`, the default): a signed token
    /// that carries the user's session stamp. Checking it costs no store
    /// call beyond loading the user, which happens anyway; a single token
    /// cannot be revoked (logout does nothing), only every token of a user
    /// at once (the stamp).
    #[default]
    Jwt,
    /// FastAPI Users' `DatabaseStrategy` (`database`): an opaque token of 43
    /// URL-safe characters, stored in the `accesstoken` table. Checking it
    /// costs two store calls (the token, then its user); logout deletes it.
    Database,
}

impl AuthStrategy {
    /// The setting's value: `jwt` or `database`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Jwt => "jwt",
            Self::Database => "database",
        }
    }
}

impl fmt::Display for AuthStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An `AUTH_STRATEGY` that is neither `jwt` nor `database`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected jwt or database, got {0:?}")]
pub struct InvalidAuthStrategy(pub String);

impl FromStr for AuthStrategy {
    type Err = InvalidAuthStrategy;

    /// `jwt` or `database`, in any letter case, surrounding blanks ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "jwt" => Ok(Self::Jwt),
            "database" => Ok(Self::Database),
            _ => Err(InvalidAuthStrategy(s.to_owned())),
        }
    }
}

/// Longest opaque token looked up; a real one is 43 characters (the
/// `accesstoken.token` column is VARCHAR(43)). Anything longer is refused
/// without a store call.
const MAX_OPAQUE_TOKEN_LEN: usize = 43;

impl UserService {
    /// A new access token for `user` by the strategy in force: a JWT
    /// carrying the user's session stamp, or an opaque token stored with
    /// `created_at` now. `None` if the user was deleted meanwhile.
    pub(crate) async fn new_access_token(&self, user: &User) -> Result<Option<String>, InfraError> {
        match self.policy.auth_strategy {
            AuthStrategy::Jwt => Ok(Some(
                self.ports
                    .tokens
                    .issue_access(user.id, user.session_stamp)?,
            )),
            AuthStrategy::Database => {
                let record = AccessTokenRecord {
                    token: opaque_token()?,
                    user_id: user.id,
                    created_at: self.ports.clock.now(),
                };
                match self.ports.sessions.create_access_token(&record).await {
                    Ok(()) => Ok(Some(record.token)),
                    Err(StoreError::NotFound) => Ok(None),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// The id of the user an opaque token of the `database` strategy
    /// belongs to, if it exists and has not expired. Anything that cannot
    /// be a token of ours (too long, not URL-safe base64) is refused
    /// without a store call.
    pub(crate) async fn opaque_token_owner(
        &self,
        token: &str,
    ) -> Result<Option<UserId>, InfraError> {
        if token.is_empty()
            || token.len() > MAX_OPAQUE_TOKEN_LEN
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Ok(None);
        }
        let not_before = self
            .ports
            .clock
            .now()
            .checked_sub(self.policy.access_token_lifetime)
            .unwrap_or(UNIX_EPOCH);
        Ok(self
            .ports
            .sessions
            .get_access_token(token, not_before)
            .await?
            .map(|record| record.user_id))
    }

    /// The time a raised session stamp is at least: the service clock's
    /// now, in Unix milliseconds (see [`UserPatch::end_sessions`]).
    pub(crate) fn stamp_now(&self) -> i64 {
        let now = self.ports.clock.now();
        match now.duration_since(std::time::UNIX_EPOCH) {
            Ok(since) => i64::try_from(since.as_millis()).unwrap_or(i64::MAX),
            // Before 1970: no time stamp; the raise is then `old + 1`.
            Err(_) => 0,
        }
    }

    /// Ends every session of `user`, in both strategies: raises their
    /// session stamp (every JWT issued before is refused from now on, and
    /// every reset or verification token dies with it) and deletes their
    /// opaque tokens. What `DELETE /users/me/sessions` does; a password
    /// reset or change and a deactivation do the same as part of their
    /// write. A user deleted meanwhile has no session left: not an error.
    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    pub async fn end_all_sessions(&self, user: &User) -> Result<(), InfraError> {
        let patch = UserPatch {
            end_sessions: Some(self.stamp_now()),
            ..UserPatch::default()
        };
        match self.ports.users.patch(user.id, patch).await {
            Ok(_) | Err(StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        self.forget_access_tokens(user.id, Revocation::EndAllSessions)
            .await
    }

    /// Deletes every opaque token of `user` (the `database` strategy's
    /// rows; in the `jwt` strategy there are normally none, but a store
    /// shared with a service that used the other strategy may hold some),
    /// after a write that raised their stamp, and logs the revocation.
    pub(crate) async fn forget_access_tokens(
        &self,
        user: UserId,
        cause: Revocation,
    ) -> Result<(), InfraError> {
        let deleted = self.ports.sessions.delete_access_tokens_of(user).await?;
        tracing::info!(
            target: AUTH_LOG_TARGET,
            auth_event = "sessions_revoked",
            cause = cause.as_str(),
            user_id = %user,
            access_tokens_deleted = deleted,
            "sessions revoked"
        );
        Ok(())
    }
}

/// A new opaque token: 32 random bytes, base64url without padding — 43
/// characters, as Python's `secrets.token_urlsafe()`.
pub(crate) fn opaque_token() -> Result<String, InfraError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| InfraError::Internal(format!("no randomness for a token: {e}").into()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The `state` claim of reset and verification tokens: the first 16 bytes
/// of SHA-256 over the account's address (lower-cased), password hash,
/// active and verified flags and session stamp, in lower-case hex. A token
/// whose state differs from its user's current one is dead: the password,
/// the address, a flag changed, or the sessions were ended (deactivation
/// ends them, so deactivating then reactivating kills the token too).
pub(crate) fn account_state(user: &User) -> String {
    let mut digest = Sha256::new();
    for part in [
        user.email.as_str().to_lowercase().as_bytes(),
        user.hashed_password.as_bytes(),
    ] {
        // Length-prefixed, so no two accounts' inputs run together alike.
        digest.update((part.len() as u64).to_le_bytes());
        digest.update(part);
    }
    digest.update([u8::from(user.is_active), u8::from(user.is_verified)]);
    digest.update(user.session_stamp.to_le_bytes());
    let hash = digest.finalize();
    hash[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;

    #[test]
    fn the_strategy_is_read_in_any_case_and_anything_else_is_refused() {
        assert_eq!("jwt".parse(), Ok(AuthStrategy::Jwt));
        assert_eq!(" Database ".parse(), Ok(AuthStrategy::Database));
        assert_eq!(
            "cookie".parse::<AuthStrategy>(),
            Err(InvalidAuthStrategy("cookie".into()))
        );
        assert_eq!(AuthStrategy::default(), AuthStrategy::Jwt);
        assert_eq!(AuthStrategy::Database.to_string(), "database");
    }

    #[test]
    fn opaque_tokens_are_43_url_safe_characters_and_differ() {
        let a = opaque_token().unwrap();
        let b = opaque_token().unwrap();
        assert_eq!(a.len(), 43);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
            "{a}"
        );
        assert_ne!(a, b);
    }

    #[test]
    fn the_account_state_changes_with_every_bound_column_and_only_them() {
        let user = a_user();
        let state = account_state(&user);
        assert_eq!(state.len(), 32);
        let mut same = user.clone();
        same.email = email("ANN@EXAMPLE.COM");
        same.role = portcullis_domain::Role::Instructor;
        same.is_superuser = true;
        assert_eq!(account_state(&same), state, "case and other columns");
        let changes: [fn(&mut User); 5] = [
            |u| u.email = email("bob@example.com"),
            |u| u.hashed_password = "$argon2id$new".into(),
            |u| u.is_active = false,
            |u| u.is_verified = true,
            |u| u.session_stamp += 1,
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut changed = user.clone();
            change(&mut changed);
            assert_ne!(account_state(&changed), state, "change {i}");
        }
    }

    #[tokio::test]
    async fn ending_all_sessions_raises_the_stamp_and_deletes_the_tokens() {
        let mut m = Mocks::new();
        let user = a_user();
        m.expect_sessions_ended(user.id, a_user(), 2);
        m.service().end_all_sessions(&user).await.unwrap();
    }

    #[tokio::test]
    async fn ending_the_sessions_of_a_deleted_user_is_no_error() {
        let mut m = Mocks::new();
        m.users
            .expect_patch()
            .returning(|_, _| Err(StoreError::NotFound));
        m.sessions
            .expect_delete_access_tokens_of()
            .times(1)
            .returning(|_| Ok(0));
        m.service().end_all_sessions(&a_user()).await.unwrap();
    }

    #[tokio::test]
    async fn an_outage_while_ending_sessions_is_reported() {
        let mut m = Mocks::new();
        m.users.expect_patch().returning(|_, _| Err(outage()));
        assert_matches!(
            m.service().end_all_sessions(&a_user()).await,
            Err(InfraError::Unavailable(_))
        );
    }
}

use std::time::Duration;

use portcullis_domain::{EmailAddress, ThrottleKind, User};

use crate::auth_log::AUTH_LOG_TARGET;
use crate::throttle::{throttle_key, time_left};
use crate::{InfraError, UserService};

/// Why a login was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown e-mail, wrong password or inactive user: deliberately one
    /// answer, so a caller learns nothing about which.
    #[error("bad credentials")]
    BadCredentials,
    /// The policy requires a verified address and this user has none.
    #[error("user not verified")]
    NotVerified,
    /// The address failed to log in [`LoginLockout::failures`] times
    /// within the window: every login for it is refused, unchecked, until
    /// the window closes — whether the address has an account or not.
    ///
    /// [`LoginLockout::failures`]: crate::LoginLockout::failures
    #[error("too many failed logins for this address")]
    TooManyAttempts {
        /// Time left until the window closes and logins are checked again.
        retry_after: Duration,
    },
    /// The store or another adapter failed: see [`InfraError`].
    #[error(transparent)]
    Infra(#[from] InfraError),
}

impl UserService {
    /// Checks credentials and returns an access token of the strategy in
    /// force ([`AuthStrategy`](crate::AuthStrategy)): a JWT carrying the
    /// user's session stamp, or a new opaque token stored with the time it
    /// was issued. `username` is the
    /// e-mail address as typed; something that is not an address is simply
    /// bad credentials. An unknown user costs the same hash as a known one,
    /// so timing reveals nothing. A hash made with older parameters is
    /// replaced by a fresh one.
    ///
    /// Failed logins are counted per address ([`LoginLockout`]): once an
    /// address has failed [`LoginLockout::failures`] times within the
    /// window, every login for it is [`LoginError::TooManyAttempts`] until
    /// the window closes, refused before the user is even looked up and
    /// without hashing. An unknown address counts and locks exactly as a
    /// known one (the same ledger calls on both paths), so the lock tells
    /// nothing about who has an account. Only a username that is an
    /// address (the one the user would be found by) counts; the count key
    /// is that address lowercased. A correct password clears the count
    /// (written only when there is one, so a normal login writes nothing).
    ///
    /// The username is not logged (people type their password there by
    /// mistake); the user's id is, once known. Every outcome but an outage
    /// is an auth event (`login_ok`, `login_failed`, `login_locked`: see
    /// [`AUTH_LOG_TARGET`]).
    ///
    /// [`LoginLockout`]: crate::LoginLockout
    /// [`LoginLockout::failures`]: crate::LoginLockout::failures
    ///
    /// Each outcome counts in `portcullis_logins_total` (label `outcome`:
    /// [`LoginError::outcome`], `ok` for a token); a lockout counts in
    /// `portcullis_requests_shed_total{reason="login_locked"}` too. A login
    /// dropped before its end (its client gone) counts in neither.
    #[tracing::instrument(skip_all, fields(user_id = tracing::field::Empty))]
    pub async fn login(&self, username: &str, password: &str) -> Result<String, LoginError> {
        let result = self.attempt_login(username, password).await;
        let outcome = result.as_ref().err().map_or("ok", LoginError::outcome);
        metrics::counter!("portcullis_logins_total", "outcome" => outcome).increment(1);
        if let Err(LoginError::TooManyAttempts { .. }) = result {
            metrics::counter!("portcullis_requests_shed_total", "reason" => "login_locked")
                .increment(1);
        }
        result
    }

    /// [`login`](Self::login), uncounted.
    async fn attempt_login(&self, username: &str, password: &str) -> Result<String, LoginError> {
        let lockout = self.policy.login_lockout;
        let key = lockout.is_on().then(|| lockout_key(username)).flatten();
        let mut failures = None;
        if let Some(key) = &key {
            let now = self.ports.clock.now();
            failures = self
                .ports
                .throttle
                .current(ThrottleKind::LoginFailure, key, now, lockout.window)
                .await?;
            if let Some(open) = failures.filter(|w| w.count >= lockout.failures) {
                tracing::info!(
                    target: AUTH_LOG_TARGET,
                    auth_event = "login_locked",
                    "login refused: too many failed logins for the address"
                );
                return Err(LoginError::TooManyAttempts {
                    retry_after: time_left(open, lockout.window, now),
                });
            }
        }
        let user = match self.check_credentials(username, password).await {
            Ok(user) => user,
            Err(LoginError::BadCredentials) => {
                if let Some(key) = &key {
                    let now = self.ports.clock.now();
                    self.ports
                        .throttle
                        .hit(ThrottleKind::LoginFailure, key, now, lockout.window)
                        .await?;
                }
                return Err(LoginError::BadCredentials);
            }
            Err(other) => return Err(other),
        };
        if let (Some(key), Some(_)) = (&key, failures) {
            self.ports
                .throttle
                .clear(ThrottleKind::LoginFailure, key)
                .await?;
        }
        if self.policy.login_requires_verification && !user.is_verified {
            tracing::info!(
                target: AUTH_LOG_TARGET,
                auth_event = "login_failed",
                reason = "not_verified",
                user_id = %user.id,
                "login failed"
            );
            return Err(LoginError::NotVerified);
        }
        let Some(token) = self.new_access_token(&user).await? else {
            // Deleted between the check and the token.
            return Err(LoginError::BadCredentials);
        };
        tracing::info!(
            target: AUTH_LOG_TARGET,
            auth_event = "login_ok",
            user_id = %user.id,
            "login"
        );
        self.ports.events.on_after_login(&user).await;
        Ok(token)
    }

    /// Checks the password of the user `username` names: the user, or
    /// [`LoginError::BadCredentials`] for an unknown username, a wrong
    /// password and an inactive user alike.
    async fn check_credentials(&self, username: &str, password: &str) -> Result<User, LoginError> {
        // The username must be the address itself (any letter case), as
        // FastAPI Users compares it: not a padded or "Name <addr>" form that
        // would only normalise to it.
        let found = match EmailAddress::parse(username) {
            Ok(email) if email.key() == username.to_lowercase() => {
                self.ports.users.get_by_email(&email).await?
            }
            _ => None,
        };
        let Some(mut user) = found else {
            // Same cost, and answer time, as a failed check.
            self.ports.hasher.verify_unknown(password).await?;
            tracing::info!(
                target: AUTH_LOG_TARGET,
                auth_event = "login_failed",
                reason = "bad_credentials",
                "login failed: no such user"
            );
            return Err(LoginError::BadCredentials);
        };
        tracing::Span::current().record("user_id", tracing::field::display(user.id));
        let check = self
            .ports
            .hasher
            .verify_and_update(password, &user.hashed_password)
            .await?;
        if !check.valid || !user.is_active {
            tracing::info!(
                target: AUTH_LOG_TARGET,
                auth_event = "login_failed",
                reason = "bad_credentials",
                user_id = %user.id,
                "login failed"
            );
            return Err(LoginError::BadCredentials);
        }
        if let Some(new_hash) = check.new_hash {
            // Only the hash, and only if it is still the one just checked: a
            // whole-row write of this snapshot could undo a concurrent
            // deactivation or password reset. If it changed meanwhile, the
            // other change wins and the upgrade waits for the next login.
            let replaced = self
                .ports
                .users
                .replace_password_hash(user.id, &user.hashed_password, &new_hash)
                .await?;
            if replaced {
                user.hashed_password = new_hash;
            }
        }
        Ok(user)
    }
}

impl LoginError {
    /// The `outcome` label of `portcullis_logins_total` for this refusal:
    /// `bad_credentials`, `not_verified`, `locked`, `busy` (the password
    /// hasher refused the work) or `error` (the store or another adapter
    /// failed).
    pub fn outcome(&self) -> &'static str {
        match self {
            LoginError::BadCredentials => "bad_credentials",
            LoginError::NotVerified => "not_verified",
            LoginError::TooManyAttempts { .. } => "locked",
            LoginError::Infra(InfraError::Busy) => "busy",
            LoginError::Infra(InfraError::Unavailable(_) | InfraError::Internal(_)) => "error",
        }
    }
}

/// The key failed logins of `username` are counted under: its
/// [`throttle_key`], when `username` is an address as the user lookup takes
/// it (any letter case, nothing around it); `None` otherwise.
fn lockout_key(username: &str) -> Option<String> {
    let email = EmailAddress::parse(username).ok()?;
    (email.key() == username.to_lowercase()).then(|| throttle_key(&email))
}

#[cfg(test)]
mod tests {
    use portcullis_domain::ThrottleWindow;

    use super::*;
    use crate::LoginLockout;
    use crate::test_support::*;

    /// The store finds `user` when asked for `address` (the username given).
    fn known_user(m: &mut Mocks, address: &str, user: User) {
        m.users
            .expect_get_by_email()
            .withf(email_is(address))
            .returning(move |_| Ok(Some(user.clone())));
    }

    #[test]
    fn each_refusal_has_its_outcome_label() {
        for (error, label) in [
            (LoginError::BadCredentials, "bad_credentials"),
            (LoginError::NotVerified, "not_verified"),
            (
                LoginError::TooManyAttempts {
                    retry_after: Duration::from_secs(1),
                },
                "locked",
            ),
            (LoginError::Infra(InfraError::Busy), "busy"),
            (LoginError::Infra(InfraError::from(outage())), "error"),
            (
                LoginError::Infra(InfraError::Internal("bug".into())),
                "error",
            ),
        ] {
            assert_eq!(error.outcome(), label, "{error:?}");
        }
    }

    #[tokio::test]
    async fn issues_a_token_for_good_credentials() {
        let mut m = Mocks::new();
        m.login_failures("ann@example.com", None);
        let mut user = a_user();
        user.session_stamp = 3;
        let id = user.id;
        known_user(&mut m, "ann@EXAMPLE.com", user);
        m.hasher
            .expect_verify_and_update()
            .withf(|p, h| p == "secret pw" && h == "$argon2id$old")
            .returning(|_, _| valid(None));
        m.tokens
            .expect_issue_access()
            .withf(move |u, stamp| *u == id && *stamp == 3)
            .returning(|_, _| Ok("tok".into()));
        m.events.expect_on_after_login().times(1).return_const(());
        assert_eq!(
            m.service()
                .login("ann@EXAMPLE.com", "secret pw")
                .await
                .unwrap(),
            "tok"
        );
    }

    #[tokio::test]
    async fn stores_an_upgraded_hash() {
        let mut m = Mocks::new();
        m.login_failures("ann@example.com", None);
        known_user(&mut m, "ann@example.com", a_user());
        m.hasher
            .expect_verify_and_update()
            .returning(|_, _| valid(Some("$new")));
        m.users
            .expect_replace_password_hash()
            .withf(|_, current, new| current == "$argon2id$old" && new == "$new")
            .times(1)
            .returning(|_, _, _| Ok(true));
        m.tokens
            .expect_issue_access()
            .returning(|_, _| Ok("tok".into()));
        m.events.expect_on_after_login().return_const(());
        assert!(
            m.service()
                .login("ann@example.com", "secret pw")
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn an_upgrade_that_lost_a_race_still_logs_in() {
        // The hash changed between the check and the upgrade (a concurrent
        // reset): the other change wins, nothing else is written.
        let mut m = Mocks::new();
        m.login_failures("ann@example.com", None);
        known_user(&mut m, "ann@example.com", a_user());
        m.hasher
            .expect_verify_and_update()
            .returning(|_, _| valid(Some("$new")));
        m.users
            .expect_replace_password_hash()
            .times(1)
            .returning(|_, _, _| Ok(false));
        m.tokens
            .expect_issue_access()
            .returning(|_, _| Ok("tok".into()));
        m.events.expect_on_after_login().return_const(());
        assert_eq!(
            m.service()
                .login("ann@example.com", "secret pw")
                .await
                .unwrap(),
            "tok"
        );
    }

    #[tokio::test]
    async fn unknown_user_costs_a_failed_check_and_is_bad_credentials() {
        let mut m = Mocks::new();
        m.login_failures("who@example.com", None);
        m.failure_counted("who@example.com");
        m.users
            .expect_get_by_email()
            .withf(email_is("who@example.com"))
            .returning(|_| Ok(None));
        m.hasher
            .expect_verify_unknown()
            .withf(|p| p == "secret pw")
            .times(1)
            .returning(|_| Ok(()));
        assert_matches!(
            m.service().login("who@example.com", "secret pw").await,
            Err(LoginError::BadCredentials)
        );
    }

    #[tokio::test]
    async fn a_username_that_is_no_address_is_bad_credentials_after_a_dummy_check() {
        let mut m = Mocks::new();
        m.hasher
            .expect_verify_unknown()
            .withf(|p| p == "secret pw")
            .times(1)
            .returning(|_| Ok(()));
        assert_matches!(
            m.service().login("not-an-email", "secret pw").await,
            Err(LoginError::BadCredentials)
        );
    }

    #[tokio::test]
    async fn a_username_that_only_normalises_to_an_address_is_bad_credentials() {
        for username in [" ann@example.com", "Ann <ann@example.com>"] {
            let mut m = Mocks::new();
            m.hasher
                .expect_verify_unknown()
                .times(1)
                .returning(|_| Ok(()));
            let outcome = m.service().login(username, "secret pw").await;
            assert!(
                matches!(outcome, Err(LoginError::BadCredentials)),
                "{username:?}: {outcome:?}"
            );
        }
    }

    #[tokio::test]
    async fn wrong_password_is_bad_credentials() {
        let mut m = Mocks::new();
        m.login_failures("ann@example.com", None);
        m.failure_counted("ann@example.com");
        known_user(&mut m, "ann@example.com", a_user());
        m.hasher
            .expect_verify_and_update()
            .returning(|_, _| invalid());
        assert_matches!(
            m.service().login("ann@example.com", "nope nope").await,
            Err(LoginError::BadCredentials)
        );
    }

    #[tokio::test]
    async fn inactive_user_is_bad_credentials_even_with_the_right_password() {
        let mut m = Mocks::new();
        m.login_failures("ann@example.com", None);
        m.failure_counted("ann@example.com");
        let mut user = a_user();
        user.is_active = false;
        known_user(&mut m, "ann@example.com", user);
        m.hasher
            .expect_verify_and_update()
            .returning(|_, _| valid(None));
        assert_matches!(
            m.service().login("ann@example.com", "secret pw").await,
            Err(LoginError::BadCredentials)
        );
    }

    #[tokio::test]
    async fn unverified_user_is_refused_only_when_policy_says_so() {
        let mut m = Mocks::new();
        m.policy.login_requires_verification = true;
        m.login_failures("ann@example.com", None);
        known_user(&mut m, "ann@example.com", a_user());
        m.hasher
            .expect_verify_and_update()
            .returning(|_, _| valid(None));
        assert_matches!(
            m.service().login("ann@example.com", "secret pw").await,
            Err(LoginError::NotVerified)
        );

        let mut m = Mocks::new();
        m.policy.login_requires_verification = true;
        m.login_failures("ann@example.com", None);
        let mut user = a_user();
        user.is_verified = true;
        known_user(&mut m, "ann@example.com", user);
        m.hasher
            .expect_verify_and_update()
            .returning(|_, _| valid(None));
        m.tokens
            .expect_issue_access()
            .returning(|_, _| Ok("tok".into()));
        m.events.expect_on_after_login().return_const(());
        assert!(
            m.service()
                .login("ann@example.com", "secret pw")
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_store_outage_is_infra() {
        let mut m = Mocks::new();
        m.login_failures("ann@example.com", None);
        m.users
            .expect_get_by_email()
            .withf(email_is("ann@example.com"))
            .returning(|_| Err(outage()));
        assert!(matches!(
            m.service().login("ann@example.com", "secret pw").await,
            Err(LoginError::Infra(InfraError::Unavailable(_)))
        ));
    }

    // ----- the failed-login lockout -----

    /// A window of `count` failures that opened `ago` before [`test_now`].
    fn failures(count: u32, ago: Duration) -> Option<ThrottleWindow> {
        Some(window_of(test_now() - ago, count))
    }

    #[tokio::test]
    async fn a_locked_address_is_refused_for_the_rest_of_the_window_without_lookup_or_hashing() {
        // No user lookup, no hasher, no token: any of them would fail the
        // test as unexpected. Right password or not, it is not checked.
        for password in ["secret pw", "wrong one"] {
            let mut m = Mocks::new();
            m.login_failures("ann@example.com", failures(10, Duration::from_secs(5 * 60)));
            assert_matches!(
                m.service().login("Ann@Example.com", password).await,
                Err(LoginError::TooManyAttempts { retry_after })
                    if retry_after == Duration::from_secs(10 * 60)
            );
        }
    }

    #[tokio::test]
    async fn an_unknown_address_locks_exactly_like_a_known_one() {
        let mut m = Mocks::new();
        m.login_failures("who@example.com", failures(12, Duration::from_millis(1)));
        assert_matches!(
            m.service().login("who@example.com", "secret pw").await,
            Err(LoginError::TooManyAttempts { retry_after })
                if retry_after == Duration::from_secs(15 * 60) - Duration::from_millis(1)
        );
    }

    #[tokio::test]
    async fn below_the_limit_the_password_is_checked_and_a_failure_counted() {
        let mut m = Mocks::new();
        m.login_failures("ann@example.com", failures(9, Duration::from_secs(60)));
        m.failure_counted("ann@example.com");
        known_user(&mut m, "ann@example.com", a_user());
        m.hasher
            .expect_verify_and_update()
            .times(1)
            .returning(|_, _| invalid());
        assert_matches!(
            m.service().login("ann@example.com", "nope nope").await,
            Err(LoginError::BadCredentials)
        );
    }

    #[tokio::test]
    async fn the_limit_follows_the_policy() {
        let mut m = Mocks::new();
        m.policy.login_lockout = LoginLockout {
            failures: 3,
            window: Duration::from_secs(60),
        };
        m.login_failures("ann@example.com", failures(3, Duration::from_secs(20)));
        assert_matches!(
            m.service().login("ann@example.com", "secret pw").await,
            Err(LoginError::TooManyAttempts { retry_after })
                if retry_after == Duration::from_secs(40)
        );
    }

    #[tokio::test]
    async fn a_correct_password_clears_an_open_count() {
        let mut m = Mocks::new();
        m.login_failures("ann@example.com", failures(4, Duration::from_secs(60)));
        m.throttle
            .expect_clear()
            .withf(|kind, key| *kind == ThrottleKind::LoginFailure && key == "ann@example.com")
            .times(1)
            .returning(|_, _| Ok(()));
        known_user(&mut m, "ann@example.com", a_user());
        m.hasher
            .expect_verify_and_update()
            .returning(|_, _| valid(None));
        m.tokens
            .expect_issue_access()
            .returning(|_, _| Ok("tok".into()));
        m.events.expect_on_after_login().return_const(());
        assert_eq!(
            m.service()
                .login("ann@example.com", "secret pw")
                .await
                .unwrap(),
            "tok"
        );
    }

    #[tokio::test]
    async fn a_username_that_is_no_address_is_not_counted() {
        // No ledger expectation: any ledger call fails the test.
        for username in ["not-an-email", " ann@example.com"] {
            let mut m = Mocks::new();
            m.hasher
                .expect_verify_unknown()
                .times(1)
                .returning(|_| Ok(()));
            assert_matches!(
                m.service().login(username, "secret pw").await,
                Err(LoginError::BadCredentials)
            );
        }
    }

    #[tokio::test]
    async fn with_the_lockout_off_nothing_is_counted() {
        let mut m = Mocks::new();
        m.policy.login_lockout = LoginLockout::OFF;
        known_user(&mut m, "ann@example.com", a_user());
        m.hasher
            .expect_verify_and_update()
            .returning(|_, _| invalid());
        assert_matches!(
            m.service().login("ann@example.com", "nope nope").await,
            Err(LoginError::BadCredentials)
        );
    }

    #[tokio::test]
    async fn a_ledger_outage_is_infra() {
        let mut m = Mocks::new();
        m.throttle
            .expect_current()
            .returning(|_, _, _, _| Err(outage()));
        assert_matches!(
            m.service().login("ann@example.com", "secret pw").await,
            Err(LoginError::Infra(InfraError::Unavailable(_)))
        );

        let mut m = Mocks::new();
        m.login_failures("who@example.com", None);
        m.users.expect_get_by_email().returning(|_| Ok(None));
        m.hasher.expect_verify_unknown().returning(|_| Ok(()));
        m.throttle
            .expect_hit()
            .returning(|_, _, _, _| Err(outage()));
        assert_matches!(
            m.service().login("who@example.com", "secret pw").await,
            Err(LoginError::Infra(InfraError::Unavailable(_)))
        );
    }

    #[tokio::test]
    async fn the_database_strategy_stores_an_opaque_token_issued_now() {
        let mut m = Mocks::new();
        m.login_failures("ann@example.com", None);
        m.policy.auth_strategy = crate::AuthStrategy::Database;
        let user = a_user();
        let id = user.id;
        known_user(&mut m, "ann@example.com", user);
        m.hasher
            .expect_verify_and_update()
            .returning(|_, _| valid(None));
        let stored = std::sync::Arc::new(std::sync::Mutex::new(None));
        let seen = stored.clone();
        m.sessions
            .expect_create_access_token()
            .times(1)
            .returning(move |r| {
                *seen.lock().unwrap() = Some(r.clone());
                Ok(())
            });
        m.events.expect_on_after_login().times(1).return_const(());
        let token = m
            .service()
            .login("ann@example.com", "secret pw")
            .await
            .unwrap();
        let record = stored.lock().unwrap().clone().unwrap();
        assert_eq!(record.token, token);
        assert_eq!(record.user_id, id);
        assert_eq!(token.len(), 43);
        assert_eq!(
            record.created_at,
            test_now(),
            "issued now, by the service's clock"
        );
    }

    #[tokio::test]
    async fn a_user_deleted_before_the_token_is_stored_is_bad_credentials() {
        let mut m = Mocks::new();
        m.login_failures("ann@example.com", None);
        m.policy.auth_strategy = crate::AuthStrategy::Database;
        known_user(&mut m, "ann@example.com", a_user());
        m.hasher
            .expect_verify_and_update()
            .returning(|_, _| valid(None));
        m.sessions
            .expect_create_access_token()
            .returning(|_| Err(portcullis_domain::StoreError::NotFound));
        assert_matches!(
            m.service().login("ann@example.com", "secret pw").await,
            Err(LoginError::BadCredentials)
        );
    }
}

use secrecy::SecretString;

use crate::{EmailAddress, FieldValues, Role, UserId};

/// A stored user. `hashed_password` is a PHC string and never leaves the
/// server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user's identity, fixed at creation; the `sub` of their tokens.
    pub id: UserId,
    /// The address the user logs in with; no other user has it, in any letter
    /// case.
    pub email: EmailAddress,
    /// The password as a hash string (argon2 or PBKDF2 PHC, or an adopted
    /// bcrypt hash), never the password itself.
    pub hashed_password: String,
    /// Whether the user may log in at all: an inactive user's credentials
    /// and tokens are refused as if the user did not exist.
    pub is_active: bool,
    /// Whether the user administers every user and passes every role guard.
    pub is_superuser: bool,
    /// Whether the user proved they own the address (through the verify
    /// token).
    pub is_verified: bool,
    /// The user's role, for role guards.
    pub role: Role,
    /// The deployment's extra fields ([`UserFields`](crate::UserFields)):
    /// a value for each, by name.
    pub fields: FieldValues,
    /// The session stamp, raised ([`UserPatch::end_sessions`]) whenever
    /// every session of the user must end (password changed or reset,
    /// deactivated, log out everywhere). 0 for a new user (and the database
    /// default, so rows written by FastAPI Users start at 0).
    ///
    /// It carries time: a raise sets it to `max(old + 1, now)`, `now` in
    /// Unix milliseconds, so a stamp of at least [`SESSION_STAMP_TIME_FLOOR`]
    /// is (at least) the instant of the last revocation. Stamps raised
    /// before it carried time are small counters.
    ///
    /// An access token that carries a stamp is accepted only under the same
    /// stamp. One without (FastAPI Users', or Portcullis' own minted while
    /// the stamp was 0) is accepted while the stamp is 0, or when the stamp
    /// is a time and the token was issued at or after it (see
    /// `UserService::authenticate` in `portcullis-application`).
    pub session_stamp: i64,
}

/// The least [`User::session_stamp`] read as a time (Unix milliseconds,
/// 2001-09-09): a smaller non-zero stamp is a counter from before stamps
/// carried time, and proves nothing about when a token was issued.
pub const SESSION_STAMP_TIME_FLOOR: i64 = 1_000_000_000_000;

/// The stamp a raise at `now_ms` (Unix milliseconds) turns `old` into:
/// `max(old + 1, now_ms)`, always above `old` (saturating at `i64::MAX`).
pub fn raised_session_stamp(old: i64, now_ms: i64) -> i64 {
    old.saturating_add(1).max(now_ms)
}

impl User {
    /// A new ordinary user: active, not superuser, not verified, student.
    pub fn new(email: EmailAddress, hashed_password: String) -> Self {
        Self {
            id: UserId::random(),
            email,
            hashed_password,
            is_active: true,
            is_superuser: false,
            is_verified: false,
            role: Role::Student,
            fields: FieldValues::new(),
            session_stamp: 0,
        }
    }

    /// Whether this user passes a guard for `required`: its role or a higher
    /// one, or any superuser.
    pub fn has_role(&self, required: Role) -> bool {
        self.is_superuser || self.role.satisfies(required)
    }
}

/// The changes an administrator may make to a user; `None` leaves a field as
/// it is. The password arrives in plain text and is checked against the policy
/// and hashed by the use case; its `Debug` never shows it.
///
/// ```
/// use portcullis_domain::UserChanges;
/// let changes = UserChanges {
///     password: Some("correct horse".into()),
///     ..UserChanges::default()
/// };
/// assert!(!format!("{changes:?}").contains("correct horse"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    /// A new address. One that is not just another spelling of the current
    /// address resets [`User::is_verified`], unless `is_verified` is given
    /// too.
    pub email: Option<EmailAddress>,
    /// A new password, in plain text (zeroed on drop, hidden from `Debug`;
    /// `secrecy::ExposeSecret` reads it).
    pub password: Option<SecretString>,
    /// Activates or deactivates the user.
    pub is_active: Option<bool>,
    /// Grants or withdraws superuser rights.
    pub is_superuser: Option<bool>,
    /// Marks the address as verified or not.
    pub is_verified: Option<bool>,
    /// A new role.
    pub role: Option<Role>,
    /// New values of extra fields; the others are left as they are.
    pub fields: FieldValues,
}

/// The columns of a stored user to change, for
/// [`UserRepository::patch`](crate::UserRepository::patch); `None` leaves a
/// column as it is. Unlike a whole [`User`], a patch never writes back
/// columns its author did not mean to change, so it cannot undo a concurrent
/// change to another column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserPatch {
    /// A new address (or a new spelling of the current one).
    pub email: Option<EmailAddress>,
    /// A new password hash (a PHC string, never a password).
    pub hashed_password: Option<String>,
    /// Activates or deactivates the user.
    pub is_active: Option<bool>,
    /// Grants or withdraws superuser rights.
    pub is_superuser: Option<bool>,
    /// Marks the address as verified or not.
    pub is_verified: Option<bool>,
    /// A new role.
    pub role: Option<Role>,
    /// New values of extra fields (their columns); the others are left as
    /// they are.
    pub fields: FieldValues,
    /// `Some(now)`, `now` the current time in Unix milliseconds: raises
    /// [`User::session_stamp`] to `max(stamp + 1, now)` in the same write
    /// (from the stored value, atomically), ending every session issued
    /// before it. `None` leaves the stamp alone.
    pub end_sessions: Option<i64>,
}

impl UserPatch {
    /// Whether the patch changes no column at all.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// `user` with this patch applied (what a store holds after it).
    pub fn apply_to(&self, user: &mut User) {
        if let Some(email) = &self.email {
            user.email = email.clone();
        }
        if let Some(hash) = &self.hashed_password {
            user.hashed_password = hash.clone();
        }
        if let Some(v) = self.is_active {
            user.is_active = v;
        }
        if let Some(v) = self.is_superuser {
            user.is_superuser = v;
        }
        if let Some(v) = self.is_verified {
            user.is_verified = v;
        }
        if let Some(v) = self.role {
            user.role = v;
        }
        user.fields.apply(&self.fields);
        if let Some(now) = self.end_sessions {
            user.session_stamp = raised_session_stamp(user.session_stamp, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ending_sessions_raises_the_stamp_to_now_or_by_one() {
        let mut user = User::new(
            EmailAddress::parse("ann@example.com").unwrap(),
            "$argon2id$x".into(),
        );
        let at = |now_ms| UserPatch {
            end_sessions: Some(now_ms),
            ..UserPatch::default()
        };
        at(1_700_000_000_123).apply_to(&mut user);
        assert_eq!(user.session_stamp, 1_700_000_000_123);
        at(1_700_000_000_123).apply_to(&mut user);
        assert_eq!(user.session_stamp, 1_700_000_000_124, "same ms: one more");
        at(5).apply_to(&mut user);
        assert_eq!(user.session_stamp, 1_700_000_000_125, "clock behind");
        UserPatch::default().apply_to(&mut user);
        assert_eq!(user.session_stamp, 1_700_000_000_125);
        assert_eq!(raised_session_stamp(i64::MAX, 0), i64::MAX);
        assert_eq!(raised_session_stamp(3, 0), 4, "a counter stays a counter");
    }

    #[test]
    fn user_changes_never_show_the_password_in_debug() {
        let changes = UserChanges {
            email: Some(EmailAddress::parse("ann@example.com").unwrap()),
            password: Some("correct horse battery".into()),
            ..UserChanges::default()
        };
        let shown = format!("{changes:?}");
        assert!(!shown.contains("correct horse battery"), "{shown}");
        assert!(
            shown.contains("ann@example.com"),
            "the rest is shown: {shown}"
        );
        let shown = format!("{changes:#?}");
        assert!(!shown.contains("correct horse battery"), "{shown}");
    }
}

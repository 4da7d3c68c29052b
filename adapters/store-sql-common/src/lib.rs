//! What the SQL user stores (`portcullis-store-diesel-sqlite`,
//! `portcullis-store-sea-orm-postgres`) share: the columns of FastAPI Users'
//! `user` table, a plain [`UserRow`] of it, and the mapping between a row and
//! the domain's [`User`], with the one typed error for a row another program
//! wrote badly ([`CorruptRow`]); the deployment's extra user fields as
//! columns ([`fields`]); and the failed-login and mail windows of the
//! [`ThrottleLedger`](portcullis_domain::ThrottleLedger), in the table
//! `portcullis_throttle` ([`throttle`]); FastAPI Users' `accesstoken` table
//! (the [`AccessTokenStore`](portcullis_domain::AccessTokenStore)) and the
//! session stamp column ([`sessions`]); FastAPI Users' `oauth_account`
//! table (the [`OAuthAccountStore`](portcullis_domain::OAuthAccountStore))
//! and Portcullis' unique index on it ([`oauth`]).
//!
//! Each store turns its driver's row type (a Diesel `Queryable`, a SeaORM
//! `Model`) into a [`UserRow`] field by field; the rules of the mapping live
//! here once.
//!
//! Depends on the domain (and `uuid`, `thiserror`) only: never on a driver,
//! an ORM or another adapter, so that both stores can use it without
//! dragging in each other's database.
//!
//! ```
//! use portcullis_domain::{EmailAddress, User};
//! use portcullis_store_sql_common::UserRow;
//!
//! let ann = User::new(EmailAddress::parse("Ann@example.com").unwrap(), "$argon2id$…".into());
//! let row = UserRow::from(&ann);
//! assert_eq!(row.role, "student");
//! assert_eq!(User::try_from(row), Ok(ann));
//! ```
#![warn(missing_docs)]

pub mod fields;
pub mod oauth;
pub mod sessions;
pub mod throttle;

use portcullis_domain::{EmailAddress, Role, StoreError, UnknownRole, User, UserId};
use uuid::Uuid;

/// The columns of FastAPI Users' `SQLAlchemyBaseUserTableUUID`: a table
/// without one of them is not one a store can adopt.
pub const FASTAPI_USERS_COLUMNS: [&str; 6] = [
    "id",
    "email",
    "hashed_password",
    "is_active",
    "is_superuser",
    "is_verified",
];

/// The column Portcullis adds to FastAPI Users' table (existing users
/// become students).
pub const ROLE_COLUMN: &str = "role";

/// One row of the `user` table in plain Rust types: what every SQL store
/// reads and writes, whatever its driver calls the row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// `id`: a UUID (native on PostgreSQL, hyphenated lowercase text on
    /// SQLite — [`parse_id`] reads that).
    pub id: Uuid,
    /// `email`: the address as given (local part's case kept, domain
    /// lowercased).
    pub email: String,
    /// `hashed_password`: a PHC string.
    pub hashed_password: String,
    /// `is_active`.
    pub is_active: bool,
    /// `is_superuser`.
    pub is_superuser: bool,
    /// `is_verified`.
    pub is_verified: bool,
    /// `role`: `student`, `instructor` or `admin`.
    pub role: String,
    /// `portcullis_session_stamp` ([`sessions::SESSION_STAMP_COLUMN`]): 0
    /// for a row written without it (the column's default).
    pub session_stamp: i64,
}

/// A stored row that is no [`User`]: another program wrote it badly. The
/// store answers [`StoreError::Unavailable`] (this error as the cause)
/// rather than invent a user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CorruptRow {
    /// The id (stored as text) is not a UUID.
    #[error("stored user id {text:?} is not a UUID")]
    Id {
        /// The id as stored.
        text: String,
        /// What the UUID parser said.
        #[source]
        source: uuid::Error,
    },
    /// The role is none of the known ones.
    #[error("stored role {role:?} of user {id} is not student, instructor or admin")]
    Role {
        /// The user whose row it is.
        id: UserId,
        /// The role as stored.
        role: String,
        /// The domain's refusal.
        #[source]
        source: UnknownRole,
    },
    /// An extra field's column holds a value of another kind than the field
    /// is declared with (another program wrote it).
    #[error("stored value {stored} of user field {field:?} of user {id} does not fit the field")]
    Field {
        /// The user whose row it is.
        id: UserId,
        /// The field.
        field: String,
        /// The value as stored, as JSON.
        stored: String,
    },
    /// A `portcullis_throttle` row counts no event (another program wrote
    /// it).
    #[error("stored count {count} of the {kind} window of {key:?} is not positive")]
    ThrottleCount {
        /// The window's kind, as stored.
        kind: &'static str,
        /// The window's key.
        key: String,
        /// The count as stored.
        count: i32,
    },
    /// An `accesstoken` row's `created_at` is no time in the format
    /// FastAPI Users writes (another program wrote it).
    #[error("stored access token time {text:?} is not YYYY-MM-DD HH:MM:SS[.ffffff]")]
    Timestamp {
        /// The time as stored.
        text: String,
    },
}

impl From<CorruptRow> for StoreError {
    fn from(error: CorruptRow) -> Self {
        StoreError::unavailable(error)
    }
}

/// An id stored as text (SQLite's `CHAR(36)`), as a UUID.
///
/// ```
/// use portcullis_store_sql_common::{CorruptRow, parse_id};
///
/// assert!(parse_id("10e80a18-88e2-496b-9ab7-b1c109d6d5ea").is_ok());
/// assert!(matches!(parse_id("not-a-uuid"), Err(CorruptRow::Id { .. })));
/// ```
pub fn parse_id(text: &str) -> Result<Uuid, CorruptRow> {
    Uuid::parse_str(text).map_err(|source| CorruptRow::Id {
        text: text.to_owned(),
        source,
    })
}

impl From<&User> for UserRow {
    fn from(user: &User) -> Self {
        Self {
            id: *user.id.as_uuid(),
            email: user.email.as_str().to_owned(),
            hashed_password: user.hashed_password.clone(),
            is_active: user.is_active,
            is_superuser: user.is_superuser,
            is_verified: user.is_verified,
            role: user.role.as_str().to_owned(),
            session_stamp: user.session_stamp,
        }
    }
}

impl TryFrom<UserRow> for User {
    type Error = CorruptRow;

    /// The address is taken as stored ([`EmailAddress::from_trusted`]): a
    /// store only holds addresses that were valid when written.
    fn try_from(row: UserRow) -> Result<Self, CorruptRow> {
        let id = UserId::from_uuid(row.id);
        let role = row
            .role
            .parse::<Role>()
            .map_err(|source| CorruptRow::Role {
                id,
                role: row.role.clone(),
                source,
            })?;
        Ok(User {
            id,
            email: EmailAddress::from_trusted(row.email),
            hashed_password: row.hashed_password,
            is_active: row.is_active,
            is_superuser: row.is_superuser,
            is_verified: row.is_verified,
            role,
            fields: portcullis_domain::FieldValues::new(),
            session_stamp: row.session_stamp,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error;

    use super::*;

    fn ann() -> User {
        User {
            is_superuser: true,
            is_verified: true,
            role: Role::Instructor,
            session_stamp: 7,
            ..User::new(
                EmailAddress::parse("Ann.Lee@Example.com").unwrap(),
                "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG"
                    .into(),
            )
        }
    }

    #[test]
    fn every_field_round_trips() {
        for role in Role::ALL {
            for flags in 0..8u8 {
                let user = User {
                    is_active: flags & 1 != 0,
                    is_superuser: flags & 2 != 0,
                    is_verified: flags & 4 != 0,
                    role,
                    ..ann()
                };
                let row = UserRow::from(&user);
                assert_eq!(row.id, *user.id.as_uuid());
                assert_eq!(row.email, "Ann.Lee@example.com");
                assert_eq!(row.role, role.as_str());
                assert_eq!(row.session_stamp, 7);
                assert_eq!(User::try_from(row), Ok(user));
            }
        }
    }

    #[test]
    fn an_unknown_role_is_a_typed_corrupt_row_naming_the_user() {
        let user = ann();
        let row = UserRow {
            role: "emperor".into(),
            ..UserRow::from(&user)
        };
        let err = User::try_from(row).unwrap_err();
        assert_eq!(
            err,
            CorruptRow::Role {
                id: user.id,
                role: "emperor".into(),
                source: UnknownRole
            }
        );
        assert_eq!(
            err.to_string(),
            format!(
                "stored role \"emperor\" of user {} is not student, instructor or admin",
                user.id
            )
        );
        assert!(err.source().is_some());
    }

    #[test]
    fn a_text_id_that_is_no_uuid_is_a_typed_corrupt_row() {
        let err = parse_id("not-a-uuid").unwrap_err();
        assert!(
            matches!(&err, CorruptRow::Id { text, .. } if text == "not-a-uuid"),
            "{err}"
        );
        assert!(err.source().is_some(), "the parser's reason is kept");
        let id = "10e80a18-88e2-496b-9ab7-b1c109d6d5ea";
        assert_eq!(parse_id(id).unwrap().to_string(), id);
    }

    #[test]
    fn a_corrupt_row_makes_the_store_unavailable_with_the_row_as_cause() {
        let err = StoreError::from(parse_id("x").unwrap_err());
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "user store unavailable: stored user id \"x\" is not a UUID"
        );
        let cause = err.source().expect("the corrupt row is the source");
        assert!(cause.downcast_ref::<CorruptRow>().is_some());
        assert!(
            cause.source().is_some(),
            "and the UUID parser's error under it"
        );
    }
}

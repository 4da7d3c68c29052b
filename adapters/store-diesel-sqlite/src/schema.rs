//! The `user` table as Diesel sees it, and the row type.

use diesel::prelude::*;
use diesel::sql_types::Text;
use portcullis_domain::{EmailAddress, Role, StoreError, User, UserId, UserPatch};

diesel::table! {
    /// FastAPI Users' table (its columns in any order: Diesel names them).
    #[sql_name = "user"]
    users (id) {
        /// UUID, hyphenated lowercase text (`CHAR(36)`).
        id -> Text,
        /// The address as given (local part's case kept, domain lowercased).
        email -> Text,
        hashed_password -> Text,
        is_active -> Bool,
        is_superuser -> Bool,
        is_verified -> Bool,
        role -> Text,
    }
}

#[diesel::declare_sql_function]
extern "SQL" {
    /// SQLite's built-in `lower()`: folds ASCII letters only. The expression
    /// of the unique index `ix_user_email_lower`.
    fn lower(text: Text) -> Text;

    /// [`EmailAddress::key`] of a stored address (full Unicode lowercasing),
    /// registered by this crate on each of its connections. Used in queries
    /// only, never in the schema, so other programs can still write the table.
    fn portcullis_email_key(email: Text) -> Text;
}

/// One row of `user`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = users, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct UserRow {
    pub id: String,
    pub email: String,
    pub hashed_password: String,
    pub is_active: bool,
    pub is_superuser: bool,
    pub is_verified: bool,
    pub role: String,
}

impl From<&User> for UserRow {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.to_string(),
            email: user.email.as_str().to_owned(),
            hashed_password: user.hashed_password.clone(),
            is_active: user.is_active,
            is_superuser: user.is_superuser,
            is_verified: user.is_verified,
            role: user.role.as_str().to_owned(),
        }
    }
}

/// The `SET` list of a patch: only the columns that are `Some` (Diesel
/// skips `None` fields of a changeset).
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = users, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct UserPatchRow {
    pub email: Option<String>,
    pub hashed_password: Option<String>,
    pub is_active: Option<bool>,
    pub is_superuser: Option<bool>,
    pub is_verified: Option<bool>,
    pub role: Option<String>,
}

impl From<&UserPatch> for UserPatchRow {
    fn from(patch: &UserPatch) -> Self {
        Self {
            email: patch.email.as_ref().map(|e| e.as_str().to_owned()),
            hashed_password: patch.hashed_password.clone(),
            is_active: patch.is_active,
            is_superuser: patch.is_superuser,
            is_verified: patch.is_verified,
            role: patch.role.map(|r| r.as_str().to_owned()),
        }
    }
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    /// A row another program wrote badly (an id that is no UUID, an unknown
    /// role) makes the store answer `Unavailable` rather than invent a user.
    fn try_from(row: UserRow) -> Result<Self, StoreError> {
        let id = UserId::parse(&row.id).map_err(|_| {
            StoreError::Unavailable(format!("stored user id {:?} is not a UUID", row.id))
        })?;
        let role = row.role.parse::<Role>().map_err(|_| {
            StoreError::Unavailable(format!(
                "stored role {:?} of user {id} is not student, instructor or admin",
                row.role
            ))
        })?;
        Ok(User {
            id,
            email: EmailAddress::from_trusted(row.email),
            hashed_password: row.hashed_password,
            is_active: row.is_active,
            is_superuser: row.is_superuser,
            is_verified: row.is_verified,
            role,
        })
    }
}

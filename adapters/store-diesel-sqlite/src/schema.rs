//! The `user` and `accesstoken` tables as Diesel sees them, and the user
//! row type.

use diesel::prelude::*;
use diesel::sql_types::Text;
use portcullis_domain::{User, UserPatch};
use portcullis_store_sql_common::{CorruptRow, UserRow, parse_id};

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
        /// [`User::session_stamp`]: `BIGINT NOT NULL DEFAULT 0`.
        portcullis_session_stamp -> BigInt,
    }
}

diesel::table! {
    /// FastAPI Users' `accesstoken` table (database sessions), for the one
    /// statement made at every request it authenticates: the lookup of a
    /// token, a statement Diesel prepares once per connection (the others
    /// are `store-sql-common`'s SQL, shared with PostgreSQL).
    accesstoken (token) {
        /// The user's id, text as in `user`.
        user_id -> Text,
        token -> Text,
        /// Text as FastAPI Users writes it (`YYYY-MM-DD HH:MM:SS.ffffff`,
        /// UTC), which sorts as the times do.
        created_at -> Text,
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

/// One row of `user` as Diesel reads and writes it: the id as text. The
/// mapping to a [`User`] is the SQL stores' shared [`UserRow`]'s.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct SqliteUserRow {
    pub id: String,
    pub email: String,
    pub hashed_password: String,
    pub is_active: bool,
    pub is_superuser: bool,
    pub is_verified: bool,
    pub role: String,
    pub portcullis_session_stamp: i64,
}

impl From<&User> for SqliteUserRow {
    fn from(user: &User) -> Self {
        let row = UserRow::from(user);
        Self {
            // Hyphenated lowercase, as FastAPI Users stores it.
            id: row.id.to_string(),
            email: row.email,
            hashed_password: row.hashed_password,
            is_active: row.is_active,
            is_superuser: row.is_superuser,
            is_verified: row.is_verified,
            role: row.role,
            portcullis_session_stamp: row.session_stamp,
        }
    }
}

impl TryFrom<SqliteUserRow> for User {
    type Error = CorruptRow;

    /// A row another program wrote badly (an id that is no UUID, an unknown
    /// role) is a [`CorruptRow`] rather than an invented user.
    fn try_from(row: SqliteUserRow) -> Result<Self, CorruptRow> {
        User::try_from(UserRow {
            id: parse_id(&row.id)?,
            email: row.email,
            hashed_password: row.hashed_password,
            is_active: row.is_active,
            is_superuser: row.is_superuser,
            is_verified: row.is_verified,
            role: row.role,
            session_stamp: row.portcullis_session_stamp,
        })
    }
}

/// The `SET` list of a patch: only the columns that are `Some` (Diesel
/// skips `None` fields of a changeset). `end_sessions` is not a column
/// value: the store adds `raise_session_stamp` to the statement.
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

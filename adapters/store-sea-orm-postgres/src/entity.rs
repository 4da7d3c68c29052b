//! The `user` table as SeaORM sees it, and the conversions to and from the
//! domain's [`User`] (through the SQL stores' shared [`UserRow`]).

use portcullis_domain::{FieldSpec, FieldType, FieldValue, User, UserFields, UserPatch};
use portcullis_store_sql_common::fields::{FIELDS_COLUMN, values_from_json};
use portcullis_store_sql_common::{CorruptRow, UserRow};
use sea_orm::entity::prelude::*;
use sea_orm::{FromQueryResult, QueryResult};

/// One row of FastAPI Users' `user` table (plus `role`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user")]
pub struct Model {
    /// Native `UUID`, as FastAPI Users' `GUID` type stores it on PostgreSQL.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The address as given (local part's case kept, domain lowercased).
    pub email: String,
    pub hashed_password: String,
    pub is_active: bool,
    pub is_superuser: bool,
    pub is_verified: bool,
    /// `student`, `instructor` or `admin`.
    pub role: String,
    /// [`User::session_stamp`]: `BIGINT NOT NULL DEFAULT 0` (0 for a row
    /// FastAPI Users inserted).
    pub portcullis_session_stamp: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl From<&User> for Model {
    fn from(user: &User) -> Self {
        let row = UserRow::from(user);
        Self {
            id: row.id,
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

impl From<Model> for UserRow {
    fn from(model: Model) -> Self {
        Self {
            id: model.id,
            email: model.email,
            hashed_password: model.hashed_password,
            is_active: model.is_active,
            is_superuser: model.is_superuser,
            is_verified: model.is_verified,
            role: model.role,
            session_stamp: model.portcullis_session_stamp,
        }
    }
}

impl TryFrom<Model> for User {
    type Error = CorruptRow;

    /// A row another program wrote badly (an unknown role) is a
    /// [`CorruptRow`] rather than an invented user.
    fn try_from(model: Model) -> Result<Self, CorruptRow> {
        User::try_from(UserRow::from(model))
    }
}

/// Only the columns `patch` names, `Set`; every other one `NotSet`: the
/// `SET` list of a patch. `end_sessions` is no value: the store adds the
/// stamp's `max(stamp + 1, now)` expression to the same `UPDATE`.
pub(crate) fn patch_changes(patch: &UserPatch) -> ActiveModel {
    use sea_orm::ActiveValue::{NotSet, Set};
    fn set<T: Into<sea_orm::Value>>(value: Option<T>) -> sea_orm::ActiveValue<T> {
        value.map_or(NotSet, Set)
    }
    ActiveModel {
        id: NotSet,
        email: set(patch.email.as_ref().map(|e| e.as_str().to_owned())),
        hashed_password: set(patch.hashed_password.clone()),
        is_active: set(patch.is_active),
        is_superuser: set(patch.is_superuser),
        is_verified: set(patch.is_verified),
        role: set(patch.role.map(|r| r.as_str().to_owned())),
        portcullis_session_stamp: NotSet,
    }
}

/// A row as a lookup reads it: the [`Model`] and the extra fields' JSON
/// object text (the column [`FIELDS_COLUMN`]).
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub model: Model,
    pub fields: String,
}

impl FromQueryResult for Stored {
    fn from_query_result(res: &QueryResult, pre: &str) -> Result<Self, DbErr> {
        Ok(Self {
            model: Model::from_query_result(res, pre)?,
            fields: res.try_get(pre, FIELDS_COLUMN)?,
        })
    }
}

impl Stored {
    /// A row of the read lane's statement (its columns in [`Column`]'s
    /// order, then the fields' JSON object).
    pub(crate) fn from_row(
        row: &sea_orm::sqlx::postgres::PgRow,
    ) -> Result<Self, crate::read_lane::LaneError> {
        use sea_orm::sqlx::Row as _;
        Ok(Self {
            model: Model {
                id: row.try_get(0)?,
                email: row.try_get(1)?,
                hashed_password: row.try_get(2)?,
                is_active: row.try_get(3)?,
                is_superuser: row.try_get(4)?,
                is_verified: row.try_get(5)?,
                role: row.try_get(6)?,
                portcullis_session_stamp: row.try_get(7)?,
            },
            fields: row.try_get(8)?,
        })
    }

    /// The user, with a value for each field of `fields`.
    pub(crate) fn into_user(self, fields: &UserFields) -> Result<User, CorruptRow> {
        let mut user = User::try_from(self.model)?;
        user.fields = values_from_json(fields, user.id, &self.fields)?;
        Ok(user)
    }
}

/// `value` of field `spec` as a bound parameter, typed as its column is
/// (a `NULL` too: PostgreSQL refuses a text `NULL` for an integer column).
/// An integer is sent as `int4` when it fits (it does: values are checked
/// against the field first).
pub(crate) fn field_value(spec: &FieldSpec, value: FieldValue) -> sea_orm::Value {
    match (value, spec.ty) {
        (FieldValue::Null, FieldType::String { .. }) => None::<String>.into(),
        (FieldValue::Null, FieldType::Integer) => None::<i32>.into(),
        (FieldValue::Null, FieldType::Boolean) => None::<bool>.into(),
        (FieldValue::String(s), _) => s.into(),
        (FieldValue::Integer(i), _) => i32::try_from(i).map_or_else(|_| i.into(), Into::into),
        (FieldValue::Boolean(b), _) => b.into(),
    }
}

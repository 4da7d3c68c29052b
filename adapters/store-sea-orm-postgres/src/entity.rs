//! The `user` table as SeaORM sees it, and the conversions to and from the
//! domain's [`User`] (through the SQL stores' shared [`UserRow`]).

use portcullis_domain::{User, UserPatch};
use portcullis_store_sql_common::{CorruptRow, UserRow};
use sea_orm::entity::prelude::*;

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
/// `SET` list of a patch.
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
    }
}

//! The `user` table as SeaORM sees it, and the conversions to and from the
//! domain's [`User`].

use portcullis_domain::{EmailAddress, Role, StoreError, User, UserId, UserPatch};
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
        Self {
            id: *user.id.as_uuid(),
            email: user.email.as_str().to_owned(),
            hashed_password: user.hashed_password.clone(),
            is_active: user.is_active,
            is_superuser: user.is_superuser,
            is_verified: user.is_verified,
            role: user.role.as_str().to_owned(),
        }
    }
}

/// Every column but the id, set from `user`: the `SET` list of an update.
pub(crate) fn changes(user: &User) -> ActiveModel {
    use sea_orm::ActiveValue::{NotSet, Set};
    ActiveModel {
        id: NotSet,
        email: Set(user.email.as_str().to_owned()),
        hashed_password: Set(user.hashed_password.clone()),
        is_active: Set(user.is_active),
        is_superuser: Set(user.is_superuser),
        is_verified: Set(user.is_verified),
        role: Set(user.role.as_str().to_owned()),
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

impl TryFrom<Model> for User {
    type Error = StoreError;

    /// A row another program wrote badly (an unknown role) makes the store
    /// answer `Unavailable` rather than invent a user.
    fn try_from(row: Model) -> Result<Self, StoreError> {
        let id = UserId::from_uuid(row.id);
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

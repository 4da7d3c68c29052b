//! A user as every route renders it.

use portcullis_domain::User;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// A user as the contract renders it; `hashed_password` never leaves.
#[derive(Debug, Serialize, ToSchema)]
// `deny_unknown_fields` only tells the OpenAPI schema that a user has no
// other keys (nothing deserialises a `UserBody`).
#[serde(deny_unknown_fields)]
#[schema(as = UserRead)]
pub struct UserBody {
    /// The canonical lowercase hyphenated UUID.
    #[schema(value_type = uuid::Uuid)]
    pub id: String,
    /// The address the user logs in with, its domain lowercased.
    #[schema(format = Email, examples("ann@example.com"))]
    pub email: String,
    /// Whether the user may log in; an inactive user's credentials and tokens are refused.
    pub is_active: bool,
    /// Whether the user administers every user and passes every role guard.
    pub is_superuser: bool,
    /// Whether the user proved they own the address (through a verify token).
    pub is_verified: bool,
    /// The user's role: `student`, `instructor` or `admin`, lowest to highest.
    #[schema(value_type = crate::openapi::schemas::Role)]
    pub role: &'static str,
    /// The deployment's extra fields, at the top level as FastAPI Users
    /// renders custom fields (the document adds them to `UserRead`).
    #[serde(flatten)]
    #[schema(ignore)]
    pub fields: Map<String, Value>,
}

impl From<&User> for UserBody {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.to_string(),
            email: u.email.as_str().to_owned(),
            is_active: u.is_active,
            is_superuser: u.is_superuser,
            is_verified: u.is_verified,
            role: u.role.as_str(),
            fields: u
                .fields
                .iter()
                .map(|(name, value)| (name.to_owned(), crate::request::field_to_json(value)))
                .collect(),
        }
    }
}

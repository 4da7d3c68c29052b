use portcullis_domain::User;
use serde::Serialize;
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
    #[schema(format = Email, examples("ann@example.com"))]
    pub email: String,
    pub is_active: bool,
    pub is_superuser: bool,
    pub is_verified: bool,
    #[schema(value_type = crate::openapi::Role)]
    pub role: &'static str,
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
        }
    }
}

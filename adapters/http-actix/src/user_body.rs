use portcullis_domain::User;
use serde::Serialize;

/// A user as the contract renders it; `hashed_password` never leaves.
#[derive(Debug, Serialize)]
pub struct UserBody {
    pub id: String,
    pub email: String,
    pub is_active: bool,
    pub is_superuser: bool,
    pub is_verified: bool,
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

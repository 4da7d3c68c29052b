use crate::{EmailAddress, Role, UserId};

/// A stored user. `hashed_password` is a PHC string and never leaves the
/// server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: EmailAddress,
    pub hashed_password: String,
    pub is_active: bool,
    pub is_superuser: bool,
    pub is_verified: bool,
    pub role: Role,
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
/// and hashed by the use case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserChanges {
    pub email: Option<EmailAddress>,
    pub password: Option<String>,
    pub is_active: Option<bool>,
    pub is_superuser: Option<bool>,
    pub is_verified: Option<bool>,
    pub role: Option<Role>,
}

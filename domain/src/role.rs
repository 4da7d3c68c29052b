use std::fmt;
use std::str::FromStr;

/// A user's role. Roles are ordered: `Student < Instructor < Admin`; a guard
/// for role R admits R and every higher role (and every superuser).
///
/// ```
/// use portcullis_domain::Role;
/// assert!(Role::Admin > Role::Instructor && Role::Instructor > Role::Student);
/// assert_eq!("instructor".parse::<Role>().unwrap(), Role::Instructor);
/// assert!("Admin".parse::<Role>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Role {
    /// The default role of a new user.
    #[default]
    Student,
    /// Above student.
    Instructor,
    /// The highest role.
    Admin,
}

/// The text is not one of `student`, `instructor`, `admin`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("role must be one of student, instructor, admin")]
pub struct UnknownRole;

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 3] = [Role::Student, Role::Instructor, Role::Admin];

    /// The role's name as stored and rendered.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Role::Student => "student",
            Role::Instructor => "instructor",
            Role::Admin => "admin",
        }
    }

    /// Whether a user holding `self` satisfies a requirement of `required`.
    pub fn satisfies(self, required: Role) -> bool {
        self >= required
    }
}

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or(UnknownRole)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

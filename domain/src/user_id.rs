use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// A user's identifier: a random (v4) UUID, rendered as the canonical
/// lowercase hyphenated string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(Uuid);

/// The text given is not a UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid user id")]
pub struct InvalidUserId;

impl UserId {
    /// A fresh random identifier.
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }

    /// Wraps an existing UUID.
    pub const fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// The inner UUID.
    pub const fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    /// Parses a UUID in any of the usual spellings: hyphenated or not, upper
    /// or lower case (as FastAPI Users accepts in a path).
    ///
    /// ```
    /// use portcullis_domain::UserId;
    /// let a: UserId = "0F8FAD5B-D9CB-469F-A165-70867728950E".parse().unwrap();
    /// let b: UserId = "0f8fad5bd9cb469fa16570867728950e".parse().unwrap();
    /// assert_eq!(a, b);
    /// assert_eq!(a.to_string(), "0f8fad5b-d9cb-469f-a165-70867728950e");
    /// assert!("nope".parse::<UserId>().is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Self, InvalidUserId> {
        Uuid::parse_str(text.trim())
            .map(Self)
            .map_err(|_| InvalidUserId)
    }
}

impl FromStr for UserId {
    type Err = InvalidUserId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

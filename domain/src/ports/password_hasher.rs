use async_trait::async_trait;

/// The hasher could not do its work (bad configuration, a poisoned worker).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(pub String);

/// The outcome of checking a secret against a stored hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Whether the secret matches.
    pub valid: bool,
    /// A new hash of the secret when the stored one was made with another
    /// algorithm or other parameters than the configured ones; the caller
    /// stores it. Always `None` when `valid` is false.
    pub new_hash: Option<String>,
}

/// Hashes secrets into PHC strings and checks them.
///
/// CPU-heavy: implementations MUST run the work off the async executor and
/// bound how many run at once.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// A fresh salted hash of `secret` with the configured algorithm.
    async fn hash(&self, secret: &str) -> Result<String, HashError>;
    /// Checks `secret` against `hash`, which may be any supported PHC string
    /// (argon2 or pbkdf2). A malformed or unsupported hash is simply not
    /// valid.
    async fn verify_and_update(&self, secret: &str, hash: &str) -> Result<Verification, HashError>;
}

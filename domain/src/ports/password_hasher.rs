use async_trait::async_trait;

/// Why the hasher did not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// The hasher could not do its work (bad configuration, a poisoned
    /// worker, no randomness): a bug or a broken machine.
    #[error("password hashing failed: {0}")]
    Failed(String),
    /// The hasher is saturated: every slot is taken and its queue is full, or
    /// the wait for a slot timed out. Nothing was computed; the caller may
    /// try again shortly.
    #[error("password hasher busy")]
    Busy,
}

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
    /// Checks `secret` against `hash`, which may be any supported hash string
    /// (argon2 or pbkdf2 PHC, bcrypt, as the implementation documents). A
    /// malformed or unsupported hash is simply not valid.
    async fn verify_and_update(&self, secret: &str, hash: &str) -> Result<Verification, HashError>;
    /// Spends what a failed [`verify_and_update`](Self::verify_and_update)
    /// costs, for a login whose address has no account, so that the answer
    /// time does not tell which addresses exist. Implementations that pad
    /// failed verifications (to the cost of the slowest stored parameters)
    /// MUST pad this the same way.
    ///
    /// The default hashes `secret` once with the configured parameters.
    async fn verify_unknown(&self, secret: &str) -> Result<(), HashError> {
        self.hash(secret).await.map(drop)
    }
}

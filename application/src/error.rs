use portcullis_domain::{HashError, StoreError, TokenError};

/// A failure of the machinery rather than of the request: the store is
/// down, or an adapter broke. Callers answer "try again later" (store) or
/// "server error" (a bug), and never show the cause to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InfraError {
    /// The user store cannot be reached.
    #[error("user store unavailable: {0}")]
    Unavailable(String),
    /// Something that should not happen did.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for InfraError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(cause) => Self::Unavailable(cause.to_string()),
            other => Self::Internal(format!("unexpected store answer: {other}")),
        }
    }
}

impl From<HashError> for InfraError {
    fn from(e: HashError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<TokenError> for InfraError {
    fn from(e: TokenError) -> Self {
        Self::Internal(e.to_string())
    }
}

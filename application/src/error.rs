use std::error::Error;

use portcullis_domain::{HashError, StoreError, TokenError};

/// A failure of the machinery rather than of the request: the store is
/// down, or an adapter broke. Callers answer "try again later" (store) or
/// "server error" (a bug), and never show the cause to the client.
///
/// The port's error is kept as the [`source`](Error::source), not
/// flattened into the message, so a log can show the whole chain:
///
/// ```
/// use std::error::Error;
/// use portcullis_application::InfraError;
/// use portcullis_domain::StoreError;
///
/// let e = InfraError::from(StoreError::Unavailable("connection refused".into()));
/// assert!(matches!(e, InfraError::Unavailable(_)));
/// assert_eq!(e.to_string(), "user store unavailable");
/// assert!(e.source().unwrap().to_string().contains("connection refused"));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum InfraError {
    /// The user store cannot be reached; the operation may be retried.
    #[error("user store unavailable")]
    Unavailable(#[source] StoreError),
    /// The password hasher is saturated (every slot taken and its queue
    /// full, or the wait for a slot timed out): nothing was done, the
    /// operation may be retried shortly.
    #[error("password hasher busy")]
    Busy,
    /// Something that should not happen did: an adapter failed or answered
    /// what its contract rules out.
    #[error("internal error")]
    Internal(#[source] Box<dyn Error + Send + Sync>),
}

impl From<StoreError> for InfraError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable { .. } => Self::Unavailable(e),
            // `Conflict` or `NotFound` where the use case expects neither.
            other => Self::Internal(Box::new(other)),
        }
    }
}

impl From<HashError> for InfraError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => Self::Busy,
            HashError::Failed(_) => Self::Internal(Box::new(e)),
        }
    }
}

impl From<TokenError> for InfraError {
    fn from(e: TokenError) -> Self {
        Self::Internal(Box::new(e))
    }
}

/// Lets `?` turn a port's error into the `Infra` case of a use-case error
/// (through [`InfraError`]'s `From`), so a use case names only the port
/// errors it decides on (`Conflict`, `NotFound`, …) and matches those first.
macro_rules! infra_from_port_errors {
    ($($error:ty),+ $(,)?) => {$(
        impl From<portcullis_domain::StoreError> for $error {
            fn from(e: portcullis_domain::StoreError) -> Self {
                Self::Infra(e.into())
            }
        }
        impl From<portcullis_domain::HashError> for $error {
            fn from(e: portcullis_domain::HashError) -> Self {
                Self::Infra(e.into())
            }
        }
        impl From<portcullis_domain::TokenError> for $error {
            fn from(e: portcullis_domain::TokenError) -> Self {
                Self::Infra(e.into())
            }
        }
    )+};
}
pub(crate) use infra_from_port_errors;

#[cfg(test)]
mod tests {
    use super::*;

    fn cause<'a>(e: &'a InfraError) -> &'a (dyn Error + 'static) {
        e.source().expect("the port error is kept as the source")
    }

    #[test]
    fn a_store_outage_is_unavailable_and_keeps_the_store_error() {
        let e = InfraError::from(crate::test_support::outage());
        let InfraError::Unavailable(inner) = &e else {
            panic!("{e:?}")
        };
        assert!(matches!(inner, StoreError::Unavailable(_)));
        assert_eq!(cause(&e).to_string(), inner.to_string());
    }

    #[test]
    fn other_port_errors_are_internal_and_keep_their_value() {
        let e = InfraError::from(StoreError::Conflict);
        assert!(matches!(e, InfraError::Internal(_)));
        assert!(matches!(
            cause(&e).downcast_ref::<StoreError>(),
            Some(StoreError::Conflict)
        ));

        let e = InfraError::from(HashError::Failed("bad parameters".into()));
        assert!(matches!(e, InfraError::Internal(_)));
        assert!(cause(&e).downcast_ref::<HashError>().is_some());

        let e = InfraError::from(TokenError::Issue("expiry overflows".into()));
        assert!(matches!(e, InfraError::Internal(_)));
        assert!(cause(&e).downcast_ref::<TokenError>().is_some());
    }

    #[test]
    fn a_busy_hasher_is_busy_not_internal() {
        let e = InfraError::from(HashError::Busy);
        assert!(matches!(e, InfraError::Busy), "{e:?}");
        assert!(e.source().is_none());
    }
}

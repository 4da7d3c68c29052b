use super::{ThrottleLedger, UserRepository};

/// Everything a store keeps: the users ([`UserRepository`]) and the
/// failed-login and mail counts ([`ThrottleLedger`]), in one place, so that
/// every instance on one database shares both and nobody can wire a store
/// without its ledger.
///
/// Implemented for every type that implements both ports; used as
/// `Arc<dyn Store>`, which coerces to `Arc<dyn UserRepository>` and
/// `Arc<dyn ThrottleLedger>` (trait upcasting).
///
/// ```
/// use std::sync::Arc;
/// use portcullis_domain::{Store, ThrottleLedger, UserRepository};
///
/// fn split(store: Arc<dyn Store>) -> (Arc<dyn UserRepository>, Arc<dyn ThrottleLedger>) {
///     (store.clone(), store)
/// }
/// ```
pub trait Store: UserRepository + ThrottleLedger {}

impl<T: UserRepository + ThrottleLedger + ?Sized> Store for T {}

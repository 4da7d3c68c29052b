use super::{AccessTokenStore, ThrottleLedger, UserRepository};

/// Everything a store keeps: the users ([`UserRepository`]), the
/// failed-login and mail counts ([`ThrottleLedger`]) and the opaque access
/// tokens of the `database` strategy ([`AccessTokenStore`], FastAPI Users'
/// `accesstoken` table), in one place, so that every instance on one
/// database shares all three and nobody can wire a store without its ledger
/// or its sessions.
///
/// Implemented for every type that implements the three ports; used as
/// `Arc<dyn Store>`, which coerces to `Arc<dyn UserRepository>`,
/// `Arc<dyn ThrottleLedger>` and `Arc<dyn AccessTokenStore>` (trait
/// upcasting).
///
/// ```
/// use std::sync::Arc;
/// use portcullis_domain::{AccessTokenStore, Store, ThrottleLedger, UserRepository};
///
/// fn split(
///     store: Arc<dyn Store>,
/// ) -> (Arc<dyn UserRepository>, Arc<dyn ThrottleLedger>, Arc<dyn AccessTokenStore>) {
///     (store.clone(), store.clone(), store)
/// }
/// ```
pub trait Store: UserRepository + ThrottleLedger + AccessTokenStore {}

impl<T: UserRepository + ThrottleLedger + AccessTokenStore + ?Sized> Store for T {}

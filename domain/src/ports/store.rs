use super::{AccessTokenStore, OAuthAccountStore, ThrottleLedger, UserRepository};

/// Everything a store keeps: the users ([`UserRepository`]), the
/// failed-login and mail counts ([`ThrottleLedger`]), the opaque access
/// tokens of the `database` strategy ([`AccessTokenStore`], FastAPI Users'
/// `accesstoken` table) and the provider accounts of social login
/// ([`OAuthAccountStore`], FastAPI Users' `oauth_account` table), in one
/// place, so that every instance on one database shares all four and
/// nobody can wire a store without its ledger, its sessions or its linked
/// accounts.
///
/// Implemented for every type that implements the four ports; used as
/// `Arc<dyn Store>`, which coerces to `Arc<dyn UserRepository>`,
/// `Arc<dyn ThrottleLedger>`, `Arc<dyn AccessTokenStore>` and
/// `Arc<dyn OAuthAccountStore>` (trait upcasting).
///
/// ```
/// use std::sync::Arc;
/// use portcullis_domain::{
///     AccessTokenStore, OAuthAccountStore, Store, ThrottleLedger, UserRepository,
/// };
///
/// fn split(
///     store: Arc<dyn Store>,
/// ) -> (
///     Arc<dyn UserRepository>,
///     Arc<dyn ThrottleLedger>,
///     Arc<dyn AccessTokenStore>,
///     Arc<dyn OAuthAccountStore>,
/// ) {
///     (store.clone(), store.clone(), store.clone(), store)
/// }
/// ```
pub trait Store: UserRepository + ThrottleLedger + AccessTokenStore + OAuthAccountStore {}

impl<T: UserRepository + ThrottleLedger + AccessTokenStore + OAuthAccountStore + ?Sized> Store
    for T
{
}

//! Running several sets of hooks in order, each shielded from the others'
//! failures.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::FutureExt;
use portcullis_domain::{User, UserChanges, UserEvents};

/// Hooks that call each of several [`UserEvents`] in turn — typically the
/// built-in mailing hooks, then a host application's own. A hook that panics
/// is logged and skipped: the operation it follows has already happened and
/// stays as it is, and the hooks after it still run.
///
/// A set of hooks overrides only the methods it needs; the others keep their
/// do-nothing defaults:
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// use async_trait::async_trait;
/// use portcullis_application::HookChain;
/// use portcullis_domain::{EmailAddress, User, UserEvents};
///
/// /// A host's hooks: count sign-ups.
/// #[derive(Default)]
/// struct SignUps(AtomicUsize);
///
/// #[async_trait]
/// impl UserEvents for SignUps {
///     async fn on_after_register(&self, _user: &User) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
///
/// let sign_ups = Arc::new(SignUps::default());
/// let hooks = HookChain::new().then(sign_ups.clone());
/// let ann = User::new(EmailAddress::parse("ann@example.com").unwrap(), "$argon2id$…".into());
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// // The register use case calls this once the user is stored.
/// hooks.on_after_register(&ann).await;
/// hooks.on_after_login(&ann).await; // not overridden: nothing happens
/// # });
/// assert_eq!(sign_ups.0.load(Ordering::Relaxed), 1);
/// ```
#[derive(Clone, Default)]
pub struct HookChain {
    hooks: Vec<Arc<dyn UserEvents>>,
}

impl HookChain {
    /// An empty chain.
    pub fn new() -> Self {
        Self::default()
    }

    /// The chain with `hooks` appended.
    pub fn then(mut self, hooks: Arc<dyn UserEvents>) -> Self {
        self.hooks.push(hooks);
        self
    }

    /// How many sets of hooks the chain calls.
    pub fn len(&self) -> usize {
        self.hooks.len()
    }

    /// Whether the chain calls nothing.
    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }
}

/// Runs a hook's future to its end, turning a panic into a logged error.
///
/// `AssertUnwindSafe`: after a panic the hook's future is dropped and
/// never polled again, and nothing it borrowed (the user, the token) is
/// left half-changed, since hooks only read it.
async fn shielded(hook: &'static str, future: impl Future<Output = ()>) {
    if AssertUnwindSafe(future).catch_unwind().await.is_err() {
        tracing::error!(
            hook,
            "a user event hook panicked; the operation it follows stands"
        );
    }
}

macro_rules! each {
    ($self:ident, $name:literal, |$h:ident| $call:expr) => {
        for $h in &$self.hooks {
            shielded($name, $call).await;
        }
    };
}

#[async_trait]
impl UserEvents for HookChain {
    async fn on_after_register(&self, user: &User) {
        each!(self, "on_after_register", |h| h.on_after_register(user));
    }
    async fn on_after_login(&self, user: &User) {
        each!(self, "on_after_login", |h| h.on_after_login(user));
    }
    async fn on_after_forgot_password(&self, user: &User, token: &str) {
        each!(self, "on_after_forgot_password", |h| h
            .on_after_forgot_password(user, token));
    }
    async fn on_after_reset_password(&self, user: &User) {
        each!(self, "on_after_reset_password", |h| h
            .on_after_reset_password(user));
    }
    async fn on_after_request_verify(&self, user: &User, token: &str) {
        each!(self, "on_after_request_verify", |h| h
            .on_after_request_verify(user, token));
    }
    async fn on_after_verify(&self, user: &User) {
        each!(self, "on_after_verify", |h| h.on_after_verify(user));
    }
    async fn on_after_update(&self, user: &User, changes: &UserChanges) {
        each!(self, "on_after_update", |h| h
            .on_after_update(user, changes));
    }
    async fn on_before_delete(&self, user: &User) {
        each!(self, "on_before_delete", |h| h.on_before_delete(user));
    }
    async fn on_after_delete(&self, user: &User) {
        each!(self, "on_after_delete", |h| h.on_after_delete(user));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::test_support::a_user;

    #[derive(Default)]
    struct Log(Mutex<Vec<&'static str>>);

    struct Named(&'static str, Arc<Log>);

    #[async_trait]
    impl UserEvents for Named {
        async fn on_after_register(&self, _user: &User) {
            self.1.0.lock().unwrap().push(self.0);
        }
    }

    struct Panics;

    #[async_trait]
    impl UserEvents for Panics {
        async fn on_after_register(&self, _user: &User) {
            panic!("host hook failed");
        }
    }

    #[tokio::test]
    async fn calls_every_hook_in_order_and_survives_a_panicking_one() {
        let log = Arc::new(Log::default());
        let chain = HookChain::new()
            .then(Arc::new(Named("mail", log.clone())))
            .then(Arc::new(Panics))
            .then(Arc::new(Named("host", log.clone())));
        chain.on_after_register(&a_user()).await;
        assert_eq!(*log.0.lock().unwrap(), vec!["mail", "host"]);
        // hooks a set does not override are its defaults: nothing happens
        chain.on_after_login(&a_user()).await;
        assert_eq!(chain.len(), 3);
    }
}

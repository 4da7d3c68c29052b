use async_trait::async_trait;

use crate::{User, UserChanges};

/// Hooks called around the use cases, as FastAPI Users' `on_after_*`
/// methods. Every method has a do-nothing default: an implementation
/// overrides only what it needs. Hooks cannot fail the operation they follow:
/// they return nothing, and must log their own troubles.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait UserEvents: Send + Sync {
    /// A user registered.
    async fn on_after_register(&self, _user: &User) {}
    /// A user logged in.
    async fn on_after_login(&self, _user: &User) {}
    /// An active user asked for a reset token; `token` must reach them.
    async fn on_after_forgot_password(&self, _user: &User, _token: &str) {}
    /// A user reset their password.
    async fn on_after_reset_password(&self, _user: &User) {}
    /// An active, unverified user asked for a verify token; `token` must
    /// reach them.
    async fn on_after_request_verify(&self, _user: &User, _token: &str) {}
    /// A user verified their address.
    async fn on_after_verify(&self, _user: &User) {}
    /// A user was updated (by themselves or an administrator).
    async fn on_after_update(&self, _user: &User, _changes: &UserChanges) {}
    /// A user is about to be deleted.
    async fn on_before_delete(&self, _user: &User) {}
    /// A user was deleted.
    async fn on_after_delete(&self, _user: &User) {}
}

/// Hooks that do nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEvents;

impl UserEvents for NoEvents {}

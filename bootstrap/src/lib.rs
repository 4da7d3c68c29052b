//! Portcullis: user registration, login, password reset and e-mail
//! verification for actix-web services, speaking the HTTP API of Python's
//! FastAPI Users.
//!
//! This crate is the one a host depends on. It assembles Portcullis (the
//! [`PortcullisBuilder`]), mounts its routes in a host's `App`
//! ([`mount`]), guards the host's own routes ([`http`]'s extractors), and
//! re-exports what embedding needs: the use cases ([`UserService`],
//! [`application`]), the user and the hooks ([`domain`]), the stores
//! ([`store`]), hashing ([`password`]) and mail ([`mail`]) settings. The
//! crates behind them are implementation details a host never names.
//! [`prelude`] holds the names most hosts use.
//!
//! Cargo features choose what is compiled in:
//!
//! | feature | brings | default |
//! |---|---|---|
//! | `sqlite` | the SQLite store (Diesel, the system's libsqlite3) | yes |
//! | `postgres` | the PostgreSQL store (SeaORM, sqlx) | no |
//! | `cli` | the `portcullis` binary's command line, `.env`, prompt, log output | yes |
//! | `oauth` | social login (`OAUTH_PROVIDERS`, `PortcullisBuilder::oauth_*`): oauth2, openidconnect, reqwest | yes |
//! | `testing` | `portcullis::testing`: an in-memory Portcullis for hosts' tests | no |
//!
//! The memory store is always there. A host on PostgreSQL only, without
//! social login:
//! `portcullis = { version = "…", default-features = false, features = ["postgres"] }`.
//! A build without `oauth` still reads and checks the `OAUTH_*` settings,
//! but refuses to start ([`StartError::OAuth`]) when `OAUTH_PROVIDERS` names
//! a provider.
//!
//! ```no_run
//! use actix_web::{App, HttpResponse, HttpServer, web};
//! use portcullis::prelude::*;
//!
//! async fn notes(CurrentUser(user): CurrentUser) -> HttpResponse {
//!     HttpResponse::Ok().body(format!("notes of {}", user.email))
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let service = PortcullisBuilder::new()
//!     .store(std::sync::Arc::new(MemoryUserStore::new()))
//!     .token_secrets(
//!         "an access token secret of 32+ bytes!",
//!         "a reset token secret of 32+ bytes!!!",
//!         "a verify token secret of 32+ bytes!!",
//!     )
//!     .build()?;
//! HttpServer::new(move || {
//!     App::new()
//!         .configure(mount(service.clone(), "/api"))
//!         .route("/notes", web::get().to(notes))
//! })
//! .bind(("127.0.0.1", 8000))?
//! .run()
//! .await?;
//! # Ok(())
//! # }
//! ```
//!
//! The `portcullis` binary (`serve`, `migrate`, `create-superuser`,
//! `check-config` ([`check_config`])) is one
//! caller of this library: configuration from the environment
//! ([`Config`]), the adapters it names ([`build_service`]), the server
//! ([`start`]).
#![warn(missing_docs)]

mod app;
mod builder;
mod check;
mod config;
mod log_format;
mod metered_store;
mod metrics_endpoint;
mod purge;
pub mod store;
mod superuser;
#[cfg(feature = "testing")]
pub mod testing;
mod user_fields;

pub use app::{StartError, build_service, ensure_first_superuser, prepare, serve, start};
/// For implementing [`UserEvents`](domain::UserEvents) and
/// [`PasswordValidator`](domain::PasswordValidator):
/// `#[portcullis::async_trait]`.
pub use async_trait::async_trait;
pub use builder::{BuildError, PortcullisBuilder};
pub use check::{
    CHECK_TIMEOUT, Check, CheckReport, Outcome, SMTP_CHECK_STEP_TIMEOUT, check_config,
};
pub use config::{
    Config, ConfigError, DEFAULT_DATABASE_MAX_CONNECTIONS, DEFAULT_DATABASE_URL, Secret,
};
pub use log_format::{InvalidLogFormat, LogFormat};
pub use metrics_endpoint::METRICS;
#[cfg(feature = "cli")]
pub use metrics_endpoint::serve_metrics;
#[doc(no_inline)]
pub use portcullis_application::{AuthStrategy, UserService};
#[doc(no_inline)]
pub use portcullis_http_actix::{configure, mount};
pub use purge::{
    PURGE_INTERVAL, purge_expired, purge_expired_access_tokens, purge_throttle_windows,
    spawn_purge, throttle_retention,
};
pub use store::{
    SchemaStatus, migrate, migrate_with_fields, open_store, open_store_with,
    open_store_with_fields, schema_status,
};
pub use superuser::{SuperuserError, SuperuserOutcome, create_superuser};
pub use user_fields::{fields_of, parse_user_fields, user_fields_of};

/// The HTTP side: `mount` and `configure`,
/// the guard extractors ([`CurrentUser`](http::CurrentUser),
/// [`VerifiedUser`](http::VerifiedUser), [`Superuser`](http::Superuser),
/// [`RequireRole`](http::RequireRole) with
/// [`StudentUser`](http::StudentUser), [`InstructorUser`](http::InstructorUser),
/// [`AdminUser`](http::AdminUser)), the OpenAPI document and Swagger UI,
/// and the contract's error bodies.
pub mod http {
    #[doc(inline)]
    pub use portcullis_http_actix::*;
}

/// The use cases ([`UserService`]), each with its
/// own error enum, and the [`HookChain`](application::HookChain).
pub mod application {
    #[doc(inline)]
    pub use portcullis_application::*;
}

/// The user ([`User`](domain::User), [`Role`](domain::Role),
/// [`EmailAddress`](domain::EmailAddress), …) and the ports, among them
/// [`UserEvents`](domain::UserEvents), the hooks a host overrides,
/// [`PasswordValidator`](domain::PasswordValidator), a host's own password
/// rule, and [`Mailer`](domain::Mailer).
pub mod domain {
    #[doc(inline)]
    pub use portcullis_domain::*;
}

/// Password hashing settings (argon2id or PBKDF2-SHA256) and the hasher.
pub mod password {
    #[doc(inline)]
    pub use portcullis_password::*;
}

/// Social login providers (`OAUTH_PROVIDERS`): [`ProviderSettings`](oauth::ProviderSettings)
/// for [`PortcullisBuilder::oauth_provider`], the GitHub and Google presets,
/// [`Timeouts`](oauth::Timeouts), and (feature `oauth`) the adapter that
/// speaks to them, [`HttpOAuthProvider`](oauth::HttpOAuthProvider).
#[cfg(feature = "oauth")]
pub mod oauth {
    #[doc(inline)]
    pub use portcullis_oauth::*;
}

/// Social login providers (`OAUTH_PROVIDERS`): what a provider is
/// ([`ProviderSettings`](oauth::ProviderSettings), the GitHub and Google
/// presets, [`Timeouts`](oauth::Timeouts)), as
/// [`Config`]'s `oauth` holds them. This build has no `oauth` feature: no
/// adapter speaks to providers, and a configuration naming one refuses to
/// start.
#[cfg(not(feature = "oauth"))]
pub mod oauth {
    #[doc(inline)]
    pub use portcullis_oauth_settings::*;
}

/// Mail: SMTP and log mailers, their settings, the mail templates.
pub mod mail {
    #[doc(inline)]
    pub use portcullis_mail::*;
}

/// The names most hosts need, in one `use portcullis::prelude::*;`.
pub mod prelude {
    pub use crate::domain::{
        EmailAddress, PasswordOwner, PasswordValidator, Role, User, UserChanges, UserEvents, UserId,
    };
    pub use crate::http::{
        AdminUser, ClientAddress, CurrentUser, InstructorUser, RequireRole, StudentUser, Superuser,
        VerifiedUser, configure, mount,
    };
    pub use crate::store::MemoryUserStore;
    #[cfg(feature = "postgres")]
    pub use crate::store::PostgresUserStore;
    #[cfg(feature = "sqlite")]
    pub use crate::store::SqliteUserStore;
    pub use crate::{PortcullisBuilder, async_trait};
    pub use portcullis_application::UserService;
}

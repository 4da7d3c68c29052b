//! The Portcullis server: reads the configuration, picks the adapters the
//! configuration names among those compiled in, and serves the HTTP
//! contract. The only crate that knows every adapter.
//!
//! A host application assembles Portcullis in code with
//! [`PortcullisBuilder`] and mounts its routes with
//! [`portcullis_http_actix`]; `portcullis serve` is one caller of both.
#![warn(missing_docs)]

mod app;
mod builder;
mod config;
mod superuser;

pub use app::{
    StartError, build_service, ensure_first_superuser, migrate, open_store, open_store_with,
    prepare, serve, start,
};
pub use builder::{BuildError, PortcullisBuilder};
pub use config::{
    Config, ConfigError, DEFAULT_DATABASE_MAX_CONNECTIONS, DEFAULT_DATABASE_URL, Secret,
};
pub use superuser::{SuperuserError, SuperuserOutcome, create_superuser};

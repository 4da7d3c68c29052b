//! The Portcullis server: reads the configuration, picks the adapters the
//! configuration names among those compiled in, and serves the HTTP
//! contract. The only crate that knows every adapter.

mod app;
mod builder;
mod config;

pub use app::{
    StartError, build_service, ensure_first_superuser, open_store, prepare, serve, start,
};
pub use builder::{BuildError, PortcullisBuilder};
pub use config::{Config, ConfigError, DEFAULT_DATABASE_URL, Secret};

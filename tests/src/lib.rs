//! Cross-crate tests live in `tests/`.
//!
//! * [`oauth_provider`]: a throwaway OAuth 2.0 / OpenID Connect provider
//!   (authorize, token, userinfo, discovery, JWKS) with fault knobs, for the
//!   social-login suite.
//! * [`smtp_sink`]: a real SMTP server that keeps what it receives.
//! * [`store_contract`]: the store contract suite every `UserRepository`
//!   passes (run by `tests/store_contract.rs`).
//! * [`test_app`]: starts a whole Portcullis server on a free port, with
//!   its mail going to an [`smtp_sink::SmtpSink`], and talks to it over
//!   HTTP (zero2prod style).
//! * `postgres` (feature `postgres`): fresh databases on the PostgreSQL
//!   server `PORTCULLIS_TEST_POSTGRES_URL` names.

pub mod oauth_provider;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod smtp_sink;
pub mod store_contract;
pub mod test_app;

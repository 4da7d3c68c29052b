//! Portcullis social-login adapter: the
//! [`OAuthProvider`](portcullis_domain::OAuthProvider) port for GitHub,
//! Google, any OpenID Connect provider (discovery, ID token checked against
//! the JWKS) and any plain OAuth 2.0 provider (authorize, token and
//! user-info URLs), with the `oauth2` and `openidconnect` crates over
//! `reqwest` (rustls on ring: the TLS stack sqlx already brings).
//!
//! Always PKCE S256 (the verifier comes from the caller). Every call to a
//! provider is bounded ([`Timeouts`]: connect, then the whole request), and
//! redirects are not followed, so an unresponsive provider is
//! [`OAuthProviderError::Unavailable`](portcullis_domain::OAuthProviderError)
//! within a few seconds, never a hang.
#![warn(missing_docs)]

mod provider;

pub use portcullis_oauth_settings::{
    GITHUB_API_URL, GITHUB_AUTHORIZE_URL, GITHUB_TOKEN_URL, GOOGLE_ISSUER, ProviderKind,
    ProviderSettings, Timeouts,
};
pub use provider::HttpOAuthProvider;

//! What one social-login provider is: its kind, endpoints, client
//! credentials, scopes and timeouts. Plain data with no HTTP client, so that
//! `portcullis` reads and checks `OAUTH_*` settings even when it is built
//! without its `oauth` feature (which brings `portcullis-oauth`, the
//! provider adapter over `oauth2`, `openidconnect` and `reqwest`).
#![warn(missing_docs)]

use std::time::Duration;

/// GitHub's authorize endpoint.
pub const GITHUB_AUTHORIZE_URL: &str = "https://github.com/login/oauth/authorize";
/// GitHub's token endpoint (answers JSON when asked with `Accept:
/// application/json`, as `oauth2` does).
pub const GITHUB_TOKEN_URL: &str = "https://github.com/login/oauth/access_token";
/// GitHub's REST API: `/user` and `/user/emails`.
pub const GITHUB_API_URL: &str = "https://api.github.com";
/// Google's OpenID Connect issuer.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";

/// How a provider is spoken to (`OAUTH_<NAME>_KIND`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderKind {
    /// GitHub: OAuth 2.0, then `GET {api}/user` for the id and
    /// `GET {api}/user/emails` for the primary verified address. The URLs
    /// are GitHub's ([`ProviderKind::github`]) unless a test points them
    /// elsewhere.
    GitHub {
        /// The authorize endpoint.
        authorize_url: String,
        /// The token endpoint.
        token_url: String,
        /// The REST API's base URL.
        api_url: String,
    },
    /// OpenID Connect: discovery at `{issuer}/.well-known/openid-configuration`
    /// (fetched on first use, kept once read), the ID token checked against
    /// the provider's JWKS (signature, issuer, audience, expiry, nonce); its
    /// `sub`, `email`, `email_verified`, else the user-info endpoint's.
    /// Google is this with [`GOOGLE_ISSUER`].
    Oidc {
        /// The issuer URL.
        issuer: String,
    },
    /// Plain OAuth 2.0: the user-info JSON gives `sub` or `id` (string or
    /// number), `email`, and optionally `email_verified` (boolean or
    /// `"true"`).
    OAuth2 {
        /// The authorize endpoint.
        authorize_url: String,
        /// The token endpoint.
        token_url: String,
        /// The user-info endpoint (`GET`, bearer token).
        userinfo_url: String,
    },
}

impl ProviderKind {
    /// GitHub's preset.
    pub fn github() -> Self {
        Self::GitHub {
            authorize_url: GITHUB_AUTHORIZE_URL.into(),
            token_url: GITHUB_TOKEN_URL.into(),
            api_url: GITHUB_API_URL.into(),
        }
    }

    /// Google's preset: OpenID Connect at [`GOOGLE_ISSUER`].
    pub fn google() -> Self {
        Self::Oidc {
            issuer: GOOGLE_ISSUER.into(),
        }
    }

    /// The scopes asked for when none are configured: `user:email` (GitHub),
    /// `openid email profile` (OpenID Connect), none (OAuth 2.0).
    pub fn default_scopes(&self) -> Vec<String> {
        let scopes: &[&str] = match self {
            Self::GitHub { .. } => &["user:email"],
            Self::Oidc { .. } => &["openid", "email", "profile"],
            Self::OAuth2 { .. } => &[],
        };
        scopes.iter().map(|s| (*s).to_owned()).collect()
    }
}

/// How long a call to a provider may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// To open the connection (TCP and TLS).
    pub connect: Duration,
    /// The whole request, connection included, until the body is read.
    pub request: Duration,
}

impl Default for Timeouts {
    /// 5 s to connect, 10 s in all.
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(10),
        }
    }
}

/// One provider's configuration (`OAUTH_<NAME>_*`).
#[derive(Clone)]
pub struct ProviderSettings {
    /// The provider's name (`oauth_name` of its accounts, the route segment).
    pub name: String,
    /// How it is spoken to.
    pub kind: ProviderKind,
    /// `OAUTH_<NAME>_CLIENT_ID`.
    pub client_id: String,
    /// `OAUTH_<NAME>_CLIENT_SECRET` (empty: a public client).
    pub client_secret: String,
    /// `OAUTH_<NAME>_SCOPES`; empty: [`ProviderKind::default_scopes`].
    pub scopes: Vec<String>,
    /// `OAUTH_<NAME>_REDIRECT_URL`; `None`: the callback route's own URL.
    pub redirect_url: Option<String>,
    /// Bounds on every call to the provider.
    pub timeouts: Timeouts,
}

impl std::fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSettings")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .field("redirect_url", &self.redirect_url)
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

impl ProviderSettings {
    /// A provider named `name` of `kind` with these credentials, the
    /// kind's default scopes, the callback route's own URL as redirect URL
    /// and the default [`Timeouts`].
    pub fn new(
        name: impl Into<String>,
        kind: ProviderKind,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            kind,
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            scopes: Vec::new(),
            redirect_url: None,
            timeouts: Timeouts::default(),
        }
    }

    /// The scopes asked for when the request names none.
    pub fn effective_scopes(&self) -> Vec<String> {
        if self.scopes.is_empty() {
            self.kind.default_scopes()
        } else {
            self.scopes.clone()
        }
    }
}

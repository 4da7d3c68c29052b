use async_trait::async_trait;

/// What a provider told about the account that just logged in (social
/// login), after the authorization code was exchanged.
///
/// `Debug` leaves the provider tokens out.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderIdentity {
    /// The provider's access token.
    pub access_token: String,
    /// When it expires (Unix seconds), if the provider said.
    pub expires_at: Option<i64>,
    /// The provider's refresh token, if it gave one.
    pub refresh_token: Option<String>,
    /// The account's id at the provider (`sub` or `id`).
    pub account_id: String,
    /// The account's e-mail address, if the provider gave one.
    pub email: Option<String>,
    /// Whether the provider asserts the address is verified (`false` when
    /// it does not say).
    pub email_verified: bool,
}

impl std::fmt::Debug for ProviderIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderIdentity")
            .field("expires_at", &self.expires_at)
            .field("account_id", &self.account_id)
            .field("email_verified", &self.email_verified)
            .finish_non_exhaustive()
    }
}

/// A provider could not complete the exchange.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthProviderError {
    /// The provider refused (an OAuth error answer such as `invalid_grant`,
    /// an ID token that does not check out); the reason, safe to show.
    #[error("the provider refused: {0}")]
    Refused(String),
    /// The provider could not be reached, did not answer in time, or
    /// answered something unreadable or a server error; the cause, for the
    /// log.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
}

/// One configured social-login provider (`OAUTH_PROVIDERS`): builds its
/// authorization URL and exchanges an authorization code for the account's
/// identity. Always with PKCE S256: the caller derives `pkce_verifier`
/// (43–128 unreserved characters) for the flow and passes the same one to
/// both calls.
///
/// Contract: no call waits on the provider longer than the adapter's bounded
/// timeouts; an unreachable or silent provider is
/// [`OAuthProviderError::Unavailable`], never a hang.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait OAuthProvider: Send + Sync {
    /// The provider's name as configured (`github`, `google`, …): the
    /// `oauth_name` of its accounts.
    fn name(&self) -> &str;

    /// The URL to send the browser to: the provider's authorize endpoint
    /// with the client id, `redirect_url`, `state`, the `scopes` (the
    /// configured ones when `None`) and the S256 challenge of
    /// `pkce_verifier`. Discovery (OpenID Connect) may need the network.
    async fn authorization_url(
        &self,
        redirect_url: &str,
        state: &str,
        scopes: Option<Vec<String>>,
        pkce_verifier: &str,
    ) -> Result<String, OAuthProviderError>;

    /// Exchanges `code` (with the same `redirect_url` and `pkce_verifier`)
    /// and reads the account's id and e-mail.
    async fn exchange(
        &self,
        code: &str,
        redirect_url: &str,
        pkce_verifier: &str,
    ) -> Result<ProviderIdentity, OAuthProviderError>;
}

/// What an OAuth state token carries (FastAPI Users' claims: `csrftoken`,
/// and `sub` for the associate flow).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthState {
    /// The CSRF token, also set in the `fastapiusersoauthcsrf` cookie.
    pub csrf_token: String,
    /// The user being associated (associate flow), as a string; `None` for
    /// the login flow.
    pub subject: Option<String>,
}

/// An OAuth state token was refused or could not be issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthStateError {
    /// Not a valid state token (signature, audience, form).
    #[error("invalid state token")]
    Invalid,
    /// A valid state token past its expiry.
    #[error("expired state token")]
    Expired,
    /// A token could not be issued; the cause, for the log.
    #[error("could not issue state token: {0}")]
    Issue(String),
}

/// Signs and checks OAuth state tokens (HS256 with `OAUTH_STATE_SECRET`,
/// audience `fastapi-users:oauth-state`, one hour: FastAPI Users' own), and
/// derives a flow's PKCE verifier from its CSRF token with that secret.
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait OAuthStateCodec: Send + Sync {
    /// A state token carrying `state`.
    fn issue_state(&self, state: &OAuthState) -> Result<String, OAuthStateError>;
    /// The claims of a valid state token.
    fn verify_state(&self, token: &str) -> Result<OAuthState, OAuthStateError>;
    /// The PKCE verifier of the flow whose CSRF token is `csrf_token`: a
    /// keyed digest (43 base64url characters), so that it needs no storage
    /// and cannot be computed from the state the browser carries.
    fn pkce_verifier(&self, csrf_token: &str) -> String;
}

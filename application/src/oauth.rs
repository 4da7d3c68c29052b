//! Social login (FastAPI Users' OAuth router and OAuth associate router):
//! authorize and callback per configured provider, and linking a provider
//! account to the current user.
//!
//! The flow: [`UserService::oauth_authorize`] makes a CSRF token (for the
//! `fastapiusersoauthcsrf` cookie), a state token carrying it (FastAPI
//! Users' claims, see [`OAuthStateCodec`]) and the provider's authorization
//! URL with PKCE S256 (the verifier derived from the CSRF token with the
//! state secret, so nothing is stored between the two requests). The
//! callback ([`UserService::oauth_callback`]) checks the state and the
//! cookie, exchanges the code, and logs in, associates or creates the user.

use std::collections::BTreeMap;
use std::sync::Arc;

use portcullis_domain::{
    EmailAddress, OAuthAccount, OAuthAccountStore, OAuthProvider, OAuthProviderError, OAuthState,
    OAuthStateCodec, OAuthStateError, ProviderIdentity, StoreError, User, UserId,
};
use subtle::ConstantTimeEq;

use crate::auth_log::AUTH_LOG_TARGET;
use crate::sessions::opaque_token;
use crate::{InfraError, UserService};

/// Policy switches of social login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OAuthPolicy {
    /// Link a provider account to the existing user with its address, when
    /// the provider asserts the address is verified
    /// (`OAUTH_ASSOCIATE_BY_EMAIL`, default `false`).
    pub associate_by_email: bool,
    /// `is_verified` of users created by a social login
    /// (`OAUTH_VERIFIED_BY_DEFAULT`, default `false`).
    pub verified_by_default: bool,
}

/// What social login works with: the configured providers, the accounts
/// store, the state codec and the policy. Given to
/// [`UserService::with_oauth`].
#[derive(Clone)]
pub struct OAuth {
    providers: BTreeMap<String, (Arc<dyn OAuthProvider>, Option<String>)>,
    accounts: Arc<dyn OAuthAccountStore>,
    state: Arc<dyn OAuthStateCodec>,
    policy: OAuthPolicy,
}

impl OAuth {
    /// Social login over `accounts` (normally the user store itself) and
    /// `state`, with no provider yet (see [`with_provider`](Self::with_provider)).
    pub fn new(
        accounts: Arc<dyn OAuthAccountStore>,
        state: Arc<dyn OAuthStateCodec>,
        policy: OAuthPolicy,
    ) -> Self {
        Self {
            providers: BTreeMap::new(),
            accounts,
            state,
            policy,
        }
    }

    /// The same, with `provider` under its [`name`](OAuthProvider::name)
    /// (replacing one of the same name), sending the browser back to
    /// `redirect_url` (`OAUTH_<NAME>_REDIRECT_URL`; `None`: the callback
    /// route's own URL, which the HTTP adapter passes to the use cases).
    pub fn with_provider(
        mut self,
        provider: Arc<dyn OAuthProvider>,
        redirect_url: Option<String>,
    ) -> Self {
        self.providers
            .insert(provider.name().to_owned(), (provider, redirect_url));
        self
    }

    /// The names of the configured providers, in order.
    pub fn provider_names(&self) -> impl Iterator<Item = &str> {
        self.providers.keys().map(String::as_str)
    }

    /// The policy in force.
    pub fn policy(&self) -> OAuthPolicy {
        self.policy
    }

    fn provider(&self, name: &str) -> Option<&(Arc<dyn OAuthProvider>, Option<String>)> {
        self.providers.get(name)
    }
}

/// The answer of an authorize route: where to send the browser, and the
/// CSRF token to set in the `fastapiusersoauthcsrf` cookie.
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthAuthorization {
    /// The provider's authorization URL (with state and PKCE challenge).
    pub authorization_url: String,
    /// The CSRF token the state carries; the cookie's value.
    pub csrf_token: String,
}

impl std::fmt::Debug for OAuthAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthAuthorization").finish_non_exhaustive()
    }
}

/// What an OAuth callback request brings.
#[derive(Clone, Copy)]
pub struct OAuthCallback<'a> {
    /// The `code` query parameter.
    pub code: &'a str,
    /// The `state` query parameter.
    pub state: &'a str,
    /// The `fastapiusersoauthcsrf` cookie, if sent.
    pub csrf_cookie: Option<&'a str>,
    /// The callback route's own URL: the redirect URL sent to the token
    /// endpoint unless the provider has one configured (the same as the
    /// authorize step's).
    pub callback_url: &'a str,
}

impl std::fmt::Debug for OAuthCallback<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthCallback").finish_non_exhaustive()
    }
}

/// Why an OAuth authorize step failed.
#[derive(Debug, thiserror::Error)]
pub enum OAuthAuthorizeError {
    /// No provider of that name is configured (a 404 for the routes).
    #[error("unknown OAuth provider")]
    UnknownProvider,
    /// The provider's discovery document could not be read.
    #[error(transparent)]
    Provider(OAuthProviderError),
    /// The store or another adapter failed: see [`InfraError`].
    #[error(transparent)]
    Infra(#[from] InfraError),
}

/// Why an OAuth callback was refused (FastAPI Users' codes).
#[derive(Debug, thiserror::Error)]
pub enum OAuthCallbackError {
    /// No provider of that name is configured.
    #[error("unknown OAuth provider")]
    UnknownProvider,
    /// The state is not a valid state token (`ACCESS_TOKEN_DECODE_ERROR`).
    #[error("invalid state token")]
    StateInvalid,
    /// The state token expired (`ACCESS_TOKEN_ALREADY_EXPIRED`).
    #[error("expired state token")]
    StateExpired,
    /// The CSRF cookie is missing or does not match the state
    /// (`OAUTH_INVALID_STATE`).
    #[error("CSRF cookie missing or not matching the state")]
    CsrfMismatch,
    /// Associate flow: the state was issued to another user (FastAPI Users'
    /// bare 400).
    #[error("the state belongs to another user")]
    WrongUser,
    /// The provider gave no usable e-mail address
    /// (`OAUTH_NOT_AVAILABLE_EMAIL`).
    #[error("no e-mail address from the provider")]
    NoEmail,
    /// A user already has this address and may not be associated, or
    /// (associate flow) the provider account belongs to another user
    /// (`OAUTH_USER_ALREADY_EXISTS`).
    #[error("a user with this e-mail address or account already exists")]
    UserAlreadyExists,
    /// The user is inactive (`LOGIN_BAD_CREDENTIALS`).
    #[error("bad credentials")]
    BadCredentials,
    /// The policy requires a verified address and this user has none
    /// (`LOGIN_USER_NOT_VERIFIED`).
    #[error("user not verified")]
    NotVerified,
    /// The provider refused the code, or could not be reached.
    #[error(transparent)]
    Provider(OAuthProviderError),
    /// The store or another adapter failed: see [`InfraError`].
    #[error(transparent)]
    Infra(#[from] InfraError),
}

impl From<StoreError> for OAuthCallbackError {
    fn from(e: StoreError) -> Self {
        Self::Infra(e.into())
    }
}

impl From<StoreError> for OAuthAuthorizeError {
    fn from(e: StoreError) -> Self {
        Self::Infra(e.into())
    }
}

impl From<OAuthStateError> for InfraError {
    fn from(e: OAuthStateError) -> Self {
        Self::Internal(Box::new(e))
    }
}

/// A successful social login: the user and their new access token.
#[derive(Clone)]
pub struct OAuthLogin {
    /// Who logged in.
    pub user: User,
    /// A new access token of the strategy in force (as a password login).
    pub access_token: String,
}

impl std::fmt::Debug for OAuthLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthLogin")
            .field("user", &self.user.id)
            .finish_non_exhaustive()
    }
}

impl UserService {
    /// The same use cases with social login (default: none; the OAuth use
    /// cases then answer `UnknownProvider`).
    pub fn with_oauth(mut self, oauth: OAuth) -> Self {
        self.oauth = Some(Arc::new(oauth));
        self
    }

    /// The names of the configured social-login providers.
    pub fn oauth_provider_names(&self) -> Vec<String> {
        self.oauth
            .as_ref()
            .map(|o| o.provider_names().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// Whether `name` is a configured social-login provider.
    pub fn has_oauth_provider(&self, name: &str) -> bool {
        self.oauth
            .as_ref()
            .is_some_and(|o| o.provider(name).is_some())
    }

    /// The provider `name`, and the redirect URL to use: its configured
    /// one, else `own_callback_url`.
    fn oauth_provider<'a>(
        &'a self,
        name: &str,
        own_callback_url: &'a str,
    ) -> Option<(&'a OAuth, &'a Arc<dyn OAuthProvider>, &'a str)> {
        let oauth = self.oauth.as_deref()?;
        let (provider, redirect) = oauth.provider(name)?;
        Some((
            oauth,
            provider,
            redirect.as_deref().unwrap_or(own_callback_url),
        ))
    }

    /// `GET /auth/{name}/authorize`: a CSRF token, a state token carrying
    /// it, and the provider's authorization URL for the provider's
    /// configured redirect URL, else `callback_url` (the callback route's
    /// own URL), `scopes` (the configured ones when `None`) and PKCE S256.
    #[tracing::instrument(skip_all, fields(provider = provider))]
    pub async fn oauth_authorize(
        &self,
        provider: &str,
        callback_url: &str,
        scopes: Option<Vec<String>>,
    ) -> Result<OAuthAuthorization, OAuthAuthorizeError> {
        self.authorize_for(provider, None, callback_url, scopes)
            .await
    }

    /// `GET /auth/associate/{name}/authorize`: as
    /// [`oauth_authorize`](Self::oauth_authorize), the state also naming
    /// `user` (claim `sub`).
    #[tracing::instrument(skip_all, fields(provider = provider, user_id = %user.id))]
    pub async fn oauth_associate_authorize(
        &self,
        provider: &str,
        user: &User,
        callback_url: &str,
        scopes: Option<Vec<String>>,
    ) -> Result<OAuthAuthorization, OAuthAuthorizeError> {
        self.authorize_for(provider, Some(user.id), callback_url, scopes)
            .await
    }

    async fn authorize_for(
        &self,
        provider: &str,
        user: Option<UserId>,
        callback_url: &str,
        scopes: Option<Vec<String>>,
    ) -> Result<OAuthAuthorization, OAuthAuthorizeError> {
        let (oauth, client, redirect_url) = self
            .oauth_provider(provider, callback_url)
            .ok_or(OAuthAuthorizeError::UnknownProvider)?;
        let csrf_token = opaque_token()?;
        let state = oauth
            .state
            .issue_state(&OAuthState {
                csrf_token: csrf_token.clone(),
                subject: user.map(|id| id.to_string()),
            })
            .map_err(InfraError::from)?;
        let verifier = oauth.state.pkce_verifier(&csrf_token);
        let authorization_url = client
            .authorization_url(redirect_url, &state, scopes, &verifier)
            .await
            .map_err(OAuthAuthorizeError::Provider)?;
        Ok(OAuthAuthorization {
            authorization_url,
            csrf_token,
        })
    }

    /// What both callbacks start with: the provider (else
    /// [`OAuthCallbackError::UnknownProvider`]), `callback` with the redirect
    /// URL the authorize step used, and its state, checked
    /// ([`Self::oauth_check_state`]).
    fn oauth_callback_start<'a>(
        &'a self,
        provider: &str,
        callback: OAuthCallback<'a>,
    ) -> Result<CallbackStart<'a>, OAuthCallbackError> {
        let (oauth, client, redirect_url) = self
            .oauth_provider(provider, callback.callback_url)
            .ok_or(OAuthCallbackError::UnknownProvider)?;
        let callback = OAuthCallback {
            callback_url: redirect_url,
            ..callback
        };
        let state = Self::oauth_check_state(oauth, callback)?;
        Ok((oauth, client, callback, state))
    }

    /// Checks the state token and the CSRF cookie: the state's claims.
    fn oauth_check_state(
        oauth: &OAuth,
        callback: OAuthCallback<'_>,
    ) -> Result<OAuthState, OAuthCallbackError> {
        let state = oauth
            .state
            .verify_state(callback.state)
            .map_err(|e| match e {
                OAuthStateError::Expired => OAuthCallbackError::StateExpired,
                OAuthStateError::Invalid | OAuthStateError::Issue(_) => {
                    OAuthCallbackError::StateInvalid
                }
            })?;
        let cookie = callback.csrf_cookie.unwrap_or("");
        if cookie.is_empty()
            || state.csrf_token.is_empty()
            || !bool::from(cookie.as_bytes().ct_eq(state.csrf_token.as_bytes()))
        {
            return Err(OAuthCallbackError::CsrfMismatch);
        }
        Ok(state)
    }

    /// Exchanges the code (PKCE verifier from the state's CSRF token): the
    /// provider's identity and its e-mail address, parsed.
    async fn oauth_exchange(
        oauth: &OAuth,
        client: &Arc<dyn OAuthProvider>,
        state: &OAuthState,
        callback: OAuthCallback<'_>,
    ) -> Result<(ProviderIdentity, EmailAddress), OAuthCallbackError> {
        let verifier = oauth.state.pkce_verifier(&state.csrf_token);
        let identity = client
            .exchange(callback.code, callback.callback_url, &verifier)
            .await
            .map_err(|e| {
                tracing::info!(
                    target: AUTH_LOG_TARGET,
                    auth_event = "oauth_failed",
                    provider = client.name(),
                    reason = "provider",
                    error = %e,
                    "social login failed at the provider"
                );
                OAuthCallbackError::Provider(e)
            })?;
        let email = identity
            .email
            .as_deref()
            .and_then(|raw| EmailAddress::parse(raw).ok())
            .ok_or(OAuthCallbackError::NoEmail)?;
        Ok((identity, email))
    }

    /// `GET /auth/{name}/callback`: checks the state and the CSRF cookie,
    /// exchanges the code, then logs in the user of a known provider
    /// account (its tokens updated), or associates the provider account
    /// with the existing user of that address (only when
    /// [`OAuthPolicy::associate_by_email`] and the provider asserts the
    /// address is verified; else [`OAuthCallbackError::UserAlreadyExists`]),
    /// or creates an active user with a random unusable password
    /// (`is_verified` = [`OAuthPolicy::verified_by_default`], the
    /// after-register hook runs). An inactive user is
    /// [`OAuthCallbackError::BadCredentials`]. Auth events: `register`,
    /// `oauth_associated`, `login_ok` (with `provider`), `login_failed`.
    #[tracing::instrument(skip_all, fields(provider = provider, user_id = tracing::field::Empty))]
    pub async fn oauth_callback(
        &self,
        provider: &str,
        callback: OAuthCallback<'_>,
    ) -> Result<OAuthLogin, OAuthCallbackError> {
        let (oauth, client, callback, state) = self.oauth_callback_start(provider, callback)?;
        let (identity, email) = Self::oauth_exchange(oauth, client, &state, callback).await?;
        let account = account_of(provider, &identity, &email);

        let user = match oauth
            .accounts
            .get_oauth_account(provider, &identity.account_id)
            .await?
        {
            Some(known) => {
                let updated = OAuthAccount {
                    id: known.id,
                    user_id: known.user_id,
                    ..account
                };
                match oauth.accounts.update_oauth_account(&updated).await {
                    Ok(()) | Err(StoreError::NotFound) => {}
                    Err(e) => return Err(e.into()),
                }
                match self.ports.users.get(known.user_id).await? {
                    Some(user) => user,
                    // Deleted meanwhile (its accounts with it).
                    None => return Err(OAuthCallbackError::BadCredentials),
                }
            }
            None => match self.ports.users.get_by_email(&email).await? {
                Some(existing) => {
                    if !(oauth.policy.associate_by_email && identity.email_verified) {
                        tracing::info!(
                            target: AUTH_LOG_TARGET,
                            auth_event = "oauth_failed",
                            provider,
                            reason = "user_already_exists",
                            "social login refused: the address has an account"
                        );
                        return Err(OAuthCallbackError::UserAlreadyExists);
                    }
                    self.link(
                        oauth,
                        OAuthAccount {
                            user_id: existing.id,
                            ..account
                        },
                    )
                    .await?;
                    tracing::info!(
                        target: AUTH_LOG_TARGET,
                        auth_event = "oauth_associated",
                        provider,
                        user_id = %existing.id,
                        "provider account associated by e-mail"
                    );
                    existing
                }
                None => {
                    let user = self
                        .create_oauth_user(email, oauth.policy.verified_by_default)
                        .await?;
                    self.link(
                        oauth,
                        OAuthAccount {
                            user_id: user.id,
                            ..account
                        },
                    )
                    .await?;
                    tracing::info!(
                        target: AUTH_LOG_TARGET,
                        auth_event = "register",
                        provider,
                        user_id = %user.id,
                        "user registered by social login"
                    );
                    self.ports.events.on_after_register(&user).await;
                    user
                }
            },
        };
        tracing::Span::current().record("user_id", tracing::field::display(user.id));
        if !user.is_active {
            tracing::info!(
                target: AUTH_LOG_TARGET,
                auth_event = "login_failed",
                reason = "bad_credentials",
                provider,
                user_id = %user.id,
                "social login failed: inactive user"
            );
            return Err(OAuthCallbackError::BadCredentials);
        }
        if self.policy.login_requires_verification && !user.is_verified {
            tracing::info!(
                target: AUTH_LOG_TARGET,
                auth_event = "login_failed",
                reason = "not_verified",
                provider,
                user_id = %user.id,
                "social login failed"
            );
            return Err(OAuthCallbackError::NotVerified);
        }
        let Some(access_token) = self.new_access_token(&user).await? else {
            return Err(OAuthCallbackError::BadCredentials);
        };
        metrics::counter!("portcullis_logins_total", "outcome" => "ok").increment(1);
        tracing::info!(
            target: AUTH_LOG_TARGET,
            auth_event = "login_ok",
            provider,
            user_id = %user.id,
            "social login"
        );
        self.ports.events.on_after_login(&user).await;
        Ok(OAuthLogin { user, access_token })
    }

    /// `GET /auth/associate/{name}/callback`: as
    /// [`oauth_callback`](Self::oauth_callback)'s checks, the state also
    /// naming `user` ([`OAuthCallbackError::WrongUser`] otherwise), then
    /// links the provider account to `user` (its tokens updated if it is
    /// already theirs; [`OAuthCallbackError::UserAlreadyExists`] if it is
    /// another user's). The user, as stored.
    #[tracing::instrument(skip_all, fields(provider = provider, user_id = %user.id))]
    pub async fn oauth_associate_callback(
        &self,
        provider: &str,
        user: &User,
        callback: OAuthCallback<'_>,
    ) -> Result<User, OAuthCallbackError> {
        let (oauth, client, callback, state) = self.oauth_callback_start(provider, callback)?;
        if state.subject.as_deref() != Some(user.id.to_string().as_str()) {
            return Err(OAuthCallbackError::WrongUser);
        }
        let (identity, email) = Self::oauth_exchange(oauth, client, &state, callback).await?;
        let account = account_of(provider, &identity, &email);
        match oauth
            .accounts
            .get_oauth_account(provider, &identity.account_id)
            .await?
        {
            Some(known) if known.user_id != user.id => {
                tracing::info!(
                    target: AUTH_LOG_TARGET,
                    auth_event = "oauth_failed",
                    provider,
                    reason = "account_of_another_user",
                    user_id = %user.id,
                    "association refused: the provider account belongs to another user"
                );
                return Err(OAuthCallbackError::UserAlreadyExists);
            }
            Some(known) => {
                let updated = OAuthAccount {
                    id: known.id,
                    user_id: known.user_id,
                    ..account
                };
                oauth.accounts.update_oauth_account(&updated).await?;
            }
            None => {
                self.link(
                    oauth,
                    OAuthAccount {
                        user_id: user.id,
                        ..account
                    },
                )
                .await?;
            }
        }
        tracing::info!(
            target: AUTH_LOG_TARGET,
            auth_event = "oauth_associated",
            provider,
            user_id = %user.id,
            "provider account associated"
        );
        Ok(user.clone())
    }

    /// Stores a new link; a concurrent link of the same provider account
    /// is [`OAuthCallbackError::UserAlreadyExists`].
    async fn link(&self, oauth: &OAuth, account: OAuthAccount) -> Result<(), OAuthCallbackError> {
        match oauth.accounts.add_oauth_account(&account).await {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict) => Err(OAuthCallbackError::UserAlreadyExists),
            // The user was deleted meanwhile.
            Err(StoreError::NotFound) => Err(OAuthCallbackError::BadCredentials),
            Err(e) => Err(e.into()),
        }
    }

    /// A new active user for `email`, with a random password nobody knows
    /// (hashed like any other, so the row is FastAPI Users' own).
    async fn create_oauth_user(
        &self,
        email: EmailAddress,
        verified: bool,
    ) -> Result<User, OAuthCallbackError> {
        let password = opaque_token()?;
        let hashed = self
            .ports
            .hasher
            .hash(&password)
            .await
            .map_err(InfraError::from)?;
        let mut user = User::new(email, hashed);
        user.is_verified = verified;
        user.fields =
            self.initial_fields(&Default::default(), portcullis_domain::FieldWriter::User);
        match self.ports.users.create(user).await {
            Ok(user) => Ok(user),
            Err(StoreError::Conflict) => Err(OAuthCallbackError::UserAlreadyExists),
            Err(e) => Err(e.into()),
        }
    }
}

/// [`UserService::oauth_callback_start`]'s: the provider's settings and
/// client, the callback with its redirect URL, and the checked state.
type CallbackStart<'a> = (
    &'a OAuth,
    &'a Arc<dyn OAuthProvider>,
    OAuthCallback<'a>,
    OAuthState,
);

/// The account row for `identity` at `provider` (a new id; the caller sets
/// the user).
fn account_of(provider: &str, identity: &ProviderIdentity, email: &EmailAddress) -> OAuthAccount {
    OAuthAccount {
        id: uuid::Uuid::new_v4(),
        // Set by the caller.
        user_id: UserId::from_uuid(uuid::Uuid::nil()),
        oauth_name: provider.to_owned(),
        access_token: identity.access_token.clone(),
        expires_at: identity.expires_at,
        refresh_token: identity.refresh_token.clone(),
        account_id: identity.account_id.clone(),
        account_email: email.as_str().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use portcullis_domain::{MockOAuthAccountStore, MockOAuthProvider, MockOAuthStateCodec};

    use super::*;
    use crate::test_support::*;

    const CSRF: &str = "csrf-token";
    const VERIFIER: &str = "verifier-of-csrf-token";
    const OWN_CALLBACK: &str = "http://api.test/api/auth/acme/callback";

    /// The OAuth mocks: a provider `acme`, its accounts and the state codec.
    struct OAuthMocks {
        provider: MockOAuthProvider,
        accounts: MockOAuthAccountStore,
        state: MockOAuthStateCodec,
        policy: OAuthPolicy,
        redirect_url: Option<String>,
    }

    impl OAuthMocks {
        fn new() -> Self {
            let mut provider = MockOAuthProvider::new();
            provider.expect_name().return_const("acme".to_owned());
            let mut state = MockOAuthStateCodec::new();
            state
                .expect_pkce_verifier()
                .withf(|csrf| csrf == CSRF)
                .return_const(VERIFIER.to_owned());
            Self {
                provider,
                accounts: MockOAuthAccountStore::new(),
                state,
                policy: OAuthPolicy::default(),
                redirect_url: None,
            }
        }

        /// The state token `the-state` verifies as `result`.
        fn state_reads(&mut self, result: Result<OAuthState, OAuthStateError>) {
            self.state
                .expect_verify_state()
                .withf(|t| t == "the-state")
                .return_once(move |_| result);
        }

        /// The provider exchanges the code (with the flow's verifier and
        /// the callback URL) for `identity`, once.
        fn exchange_gives(&mut self, identity: Result<ProviderIdentity, OAuthProviderError>) {
            self.provider
                .expect_exchange()
                .withf(|code, redirect, verifier| {
                    code == "the-code" && redirect == OWN_CALLBACK && verifier == VERIFIER
                })
                .times(1)
                .return_once(move |_, _, _| identity);
        }

        fn service(self, m: Mocks) -> UserService {
            m.service().with_oauth(
                OAuth::new(Arc::new(self.accounts), Arc::new(self.state), self.policy)
                    .with_provider(Arc::new(self.provider), self.redirect_url),
            )
        }
    }

    fn login_state() -> Result<OAuthState, OAuthStateError> {
        Ok(OAuthState {
            csrf_token: CSRF.into(),
            subject: None,
        })
    }

    fn identity(email: Option<&str>, verified: bool) -> ProviderIdentity {
        ProviderIdentity {
            access_token: "provider-access".into(),
            expires_at: Some(1_700_003_600),
            refresh_token: Some("provider-refresh".into()),
            account_id: "acct-1".into(),
            email: email.map(str::to_owned),
            email_verified: verified,
        }
    }

    fn callback(csrf: Option<&str>) -> OAuthCallback<'_> {
        OAuthCallback {
            code: "the-code",
            state: "the-state",
            csrf_cookie: csrf,
            callback_url: OWN_CALLBACK,
        }
    }

    fn stored_account(user: UserId) -> OAuthAccount {
        OAuthAccount {
            id: uuid::Uuid::from_u128(7),
            user_id: user,
            oauth_name: "acme".into(),
            access_token: "old".into(),
            expires_at: None,
            refresh_token: None,
            account_id: "acct-1".into(),
            account_email: "old@example.com".into(),
        }
    }

    /// A token is issued and the login hook runs once.
    fn expect_login(m: &mut Mocks) {
        m.tokens
            .expect_issue_access()
            .times(1)
            .returning(|_, _| Ok("tok".into()));
        m.events.expect_on_after_login().times(1).return_const(());
    }

    #[tokio::test]
    async fn authorize_signs_a_state_with_a_fresh_csrf_token_and_asks_with_pkce() {
        let mut o = OAuthMocks::new();
        o.state = MockOAuthStateCodec::new();
        o.state
            .expect_issue_state()
            .withf(|s| s.csrf_token.len() == 43 && s.subject.is_none())
            .times(2)
            .returning(|s| Ok(format!("state-of-{}", s.csrf_token)));
        o.state
            .expect_pkce_verifier()
            .times(2)
            .returning(|csrf| format!("v-{csrf}"));
        o.provider
            .expect_authorization_url()
            .withf(|redirect, state, scopes, verifier| {
                redirect == OWN_CALLBACK
                    && state.starts_with("state-of-")
                    && verifier == format!("v-{}", &state["state-of-".len()..])
                    && scopes.as_deref() == Some(&["email".to_owned()][..])
            })
            .times(2)
            .returning(|_, state, _, _| Ok(format!("https://acme.test/authorize?state={state}")));
        let service = o.service(Mocks::new());
        let a = service
            .oauth_authorize("acme", OWN_CALLBACK, Some(vec!["email".into()]))
            .await
            .unwrap();
        assert_eq!(
            a.authorization_url,
            format!(
                "https://acme.test/authorize?state=state-of-{}",
                a.csrf_token
            )
        );
        let b = service
            .oauth_authorize("acme", OWN_CALLBACK, Some(vec!["email".into()]))
            .await
            .unwrap();
        assert_ne!(a.csrf_token, b.csrf_token, "a fresh CSRF token per flow");
    }

    #[tokio::test]
    async fn a_configured_redirect_url_wins_over_the_callback_route() {
        let mut o = OAuthMocks::new();
        o.redirect_url = Some("https://front.test/oauth".into());
        o.state = MockOAuthStateCodec::new();
        o.state.expect_issue_state().returning(|_| Ok("s".into()));
        o.state
            .expect_pkce_verifier()
            .return_const(VERIFIER.to_owned());
        o.provider
            .expect_authorization_url()
            .withf(|redirect, _, scopes, _| {
                redirect == "https://front.test/oauth" && scopes.is_none()
            })
            .times(1)
            .returning(|_, _, _, _| Ok("https://acme.test/a".into()));
        o.service(Mocks::new())
            .oauth_authorize("acme", OWN_CALLBACK, None)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn an_unknown_provider_is_unknown_and_touches_nothing() {
        let service = OAuthMocks::new().service(Mocks::new());
        assert_matches!(
            service.oauth_authorize("nope", OWN_CALLBACK, None).await,
            Err(OAuthAuthorizeError::UnknownProvider)
        );
        assert_matches!(
            service.oauth_callback("nope", callback(Some(CSRF))).await,
            Err(OAuthCallbackError::UnknownProvider)
        );
        assert_matches!(
            Mocks::new()
                .service()
                .oauth_authorize("acme", OWN_CALLBACK, None)
                .await,
            Err(OAuthAuthorizeError::UnknownProvider)
        );
    }

    #[tokio::test]
    async fn a_bad_state_or_csrf_cookie_is_refused_before_the_provider_is_asked() {
        for (state, csrf, expected) in [
            (Err(OAuthStateError::Invalid), Some(CSRF), "invalid"),
            (Err(OAuthStateError::Expired), Some(CSRF), "expired"),
            (login_state(), None, "csrf"),
            (login_state(), Some(""), "csrf"),
            (login_state(), Some("other"), "csrf"),
            (
                Ok(OAuthState {
                    csrf_token: String::new(),
                    subject: None,
                }),
                Some(""),
                "csrf",
            ),
        ] {
            let mut o = OAuthMocks::new();
            o.state_reads(state);
            // No exchange, no store call expected.
            let got = o
                .service(Mocks::new())
                .oauth_callback("acme", callback(csrf))
                .await;
            match (expected, got) {
                ("invalid", Err(OAuthCallbackError::StateInvalid))
                | ("expired", Err(OAuthCallbackError::StateExpired))
                | ("csrf", Err(OAuthCallbackError::CsrfMismatch)) => {}
                (expected, got) => panic!("{expected}: {got:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_known_account_logs_its_user_in_and_its_tokens_are_updated() {
        let user = a_user();
        let id = user.id;
        let mut o = OAuthMocks::new();
        o.state_reads(login_state());
        o.exchange_gives(Ok(identity(Some("Ann@Example.com"), false)));
        o.accounts
            .expect_get_oauth_account()
            .withf(|name, account| name == "acme" && account == "acct-1")
            .returning(move |_, _| Ok(Some(stored_account(id))));
        o.accounts
            .expect_update_oauth_account()
            .withf(move |a| {
                a.id == uuid::Uuid::from_u128(7)
                    && a.user_id == id
                    && a.access_token == "provider-access"
                    && a.refresh_token.as_deref() == Some("provider-refresh")
                    && a.expires_at == Some(1_700_003_600)
                    && a.account_email == "Ann@example.com"
            })
            .times(1)
            .returning(|_| Ok(()));
        let mut m = Mocks::new();
        let stored = user.clone();
        m.users
            .expect_get()
            .withf(id_is(id))
            .returning(move |_| Ok(Some(stored.clone())));
        expect_login(&mut m);
        let login = o
            .service(m)
            .oauth_callback("acme", callback(Some(CSRF)))
            .await
            .unwrap();
        assert_eq!(login.user.id, id);
        assert_eq!(login.access_token, "tok");
    }

    #[tokio::test]
    async fn an_address_with_an_account_is_refused_unless_association_is_on_and_verified() {
        for (associate, verified) in [(false, true), (false, false), (true, false)] {
            let mut o = OAuthMocks::new();
            o.policy.associate_by_email = associate;
            o.state_reads(login_state());
            o.exchange_gives(Ok(identity(Some("ann@example.com"), verified)));
            o.accounts
                .expect_get_oauth_account()
                .returning(|_, _| Ok(None));
            let mut m = Mocks::new();
            m.users
                .expect_get_by_email()
                .withf(email_is("ann@example.com"))
                .returning(|_| Ok(Some(a_user())));
            // No add, no create, no token.
            assert_matches!(
                o.service(m)
                    .oauth_callback("acme", callback(Some(CSRF)))
                    .await,
                Err(OAuthCallbackError::UserAlreadyExists)
            );
        }
    }

    #[tokio::test]
    async fn a_verified_address_is_associated_when_association_is_on() {
        let user = a_user();
        let id = user.id;
        let mut o = OAuthMocks::new();
        o.policy.associate_by_email = true;
        o.state_reads(login_state());
        o.exchange_gives(Ok(identity(Some("ann@example.com"), true)));
        o.accounts
            .expect_get_oauth_account()
            .returning(|_, _| Ok(None));
        o.accounts
            .expect_add_oauth_account()
            .withf(move |a| a.user_id == id && a.oauth_name == "acme" && a.account_id == "acct-1")
            .times(1)
            .returning(|_| Ok(()));
        let mut m = Mocks::new();
        m.users
            .expect_get_by_email()
            .returning(move |_| Ok(Some(user.clone())));
        expect_login(&mut m);
        let login = o
            .service(m)
            .oauth_callback("acme", callback(Some(CSRF)))
            .await
            .unwrap();
        assert_eq!(login.user.id, id);
    }

    #[tokio::test]
    async fn a_new_address_creates_an_active_user_with_an_unusable_password() {
        for verified_by_default in [false, true] {
            let mut o = OAuthMocks::new();
            o.policy.verified_by_default = verified_by_default;
            o.state_reads(login_state());
            o.exchange_gives(Ok(identity(Some("new@example.com"), true)));
            o.accounts
                .expect_get_oauth_account()
                .returning(|_, _| Ok(None));
            o.accounts
                .expect_add_oauth_account()
                .withf(|a| a.account_email == "new@example.com")
                .times(1)
                .returning(|_| Ok(()));
            let mut m = Mocks::new();
            m.users.expect_get_by_email().returning(|_| Ok(None));
            m.hasher
                .expect_hash()
                .withf(|p| p.len() == 43)
                .times(1)
                .returning(|_| Ok("$random-hash".into()));
            m.users
                .expect_create()
                .withf(move |u| {
                    u.email.as_str() == "new@example.com"
                        && u.hashed_password == "$random-hash"
                        && u.is_active
                        && !u.is_superuser
                        && u.is_verified == verified_by_default
                })
                .times(1)
                .returning(Ok);
            m.events
                .expect_on_after_register()
                .times(1)
                .return_const(());
            expect_login(&mut m);
            let login = o
                .service(m)
                .oauth_callback("acme", callback(Some(CSRF)))
                .await
                .unwrap();
            assert_eq!(login.user.is_verified, verified_by_default);
        }
    }

    #[tokio::test]
    async fn an_inactive_user_is_bad_credentials_and_gets_no_token() {
        let mut user = a_user();
        user.is_active = false;
        let id = user.id;
        let mut o = OAuthMocks::new();
        o.state_reads(login_state());
        o.exchange_gives(Ok(identity(Some("ann@example.com"), true)));
        o.accounts
            .expect_get_oauth_account()
            .returning(move |_, _| Ok(Some(stored_account(id))));
        o.accounts
            .expect_update_oauth_account()
            .returning(|_| Ok(()));
        let mut m = Mocks::new();
        m.users
            .expect_get()
            .returning(move |_| Ok(Some(user.clone())));
        assert_matches!(
            o.service(m)
                .oauth_callback("acme", callback(Some(CSRF)))
                .await,
            Err(OAuthCallbackError::BadCredentials)
        );
    }

    #[tokio::test]
    async fn no_or_an_unusable_address_is_no_email() {
        for email in [None, Some("not an address")] {
            let mut o = OAuthMocks::new();
            o.state_reads(login_state());
            o.exchange_gives(Ok(identity(email, true)));
            assert_matches!(
                o.service(Mocks::new())
                    .oauth_callback("acme", callback(Some(CSRF)))
                    .await,
                Err(OAuthCallbackError::NoEmail)
            );
        }
    }

    #[tokio::test]
    async fn a_provider_failure_is_passed_on() {
        for failure in [
            OAuthProviderError::Refused("invalid_grant".into()),
            OAuthProviderError::Unavailable("timed out".into()),
        ] {
            let mut o = OAuthMocks::new();
            o.state_reads(login_state());
            o.exchange_gives(Err(failure.clone()));
            match o
                .service(Mocks::new())
                .oauth_callback("acme", callback(Some(CSRF)))
                .await
            {
                Err(OAuthCallbackError::Provider(e)) => assert_eq!(e, failure),
                other => panic!("{other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_store_outage_is_infra() {
        let mut o = OAuthMocks::new();
        o.state_reads(login_state());
        o.exchange_gives(Ok(identity(Some("ann@example.com"), true)));
        o.accounts
            .expect_get_oauth_account()
            .returning(|_, _| Err(outage()));
        assert_matches!(
            o.service(Mocks::new())
                .oauth_callback("acme", callback(Some(CSRF)))
                .await,
            Err(OAuthCallbackError::Infra(InfraError::Unavailable(_)))
        );
    }

    fn associate_state(user: UserId) -> Result<OAuthState, OAuthStateError> {
        Ok(OAuthState {
            csrf_token: CSRF.into(),
            subject: Some(user.to_string()),
        })
    }

    #[tokio::test]
    async fn associate_refuses_a_state_issued_to_someone_else() {
        let user = a_user();
        for subject in [None, Some(UserId::random().to_string())] {
            let mut o = OAuthMocks::new();
            o.state_reads(Ok(OAuthState {
                csrf_token: CSRF.into(),
                subject,
            }));
            assert_matches!(
                o.service(Mocks::new())
                    .oauth_associate_callback("acme", &user, callback(Some(CSRF)))
                    .await,
                Err(OAuthCallbackError::WrongUser)
            );
        }
    }

    #[tokio::test]
    async fn associate_links_a_new_account_and_refuses_another_users() {
        let user = a_user();
        let id = user.id;
        let mut o = OAuthMocks::new();
        o.state_reads(associate_state(id));
        o.exchange_gives(Ok(identity(Some("elsewhere@example.com"), false)));
        o.accounts
            .expect_get_oauth_account()
            .returning(|_, _| Ok(None));
        o.accounts
            .expect_add_oauth_account()
            .withf(move |a| a.user_id == id && a.account_email == "elsewhere@example.com")
            .times(1)
            .returning(|_| Ok(()));
        let linked = o
            .service(Mocks::new())
            .oauth_associate_callback("acme", &user, callback(Some(CSRF)))
            .await
            .unwrap();
        assert_eq!(linked.id, id);

        let mut o = OAuthMocks::new();
        o.state_reads(associate_state(id));
        o.exchange_gives(Ok(identity(Some("elsewhere@example.com"), false)));
        o.accounts
            .expect_get_oauth_account()
            .returning(|_, _| Ok(Some(stored_account(UserId::random()))));
        // No add, no update.
        assert_matches!(
            o.service(Mocks::new())
                .oauth_associate_callback("acme", &user, callback(Some(CSRF)))
                .await,
            Err(OAuthCallbackError::UserAlreadyExists)
        );
    }

    #[tokio::test]
    async fn associate_authorize_names_the_user_in_the_state() {
        let user = a_user();
        let id = user.id.to_string();
        let mut o = OAuthMocks::new();
        o.state = MockOAuthStateCodec::new();
        o.state
            .expect_issue_state()
            .withf(move |s| s.subject.as_deref() == Some(id.as_str()))
            .times(1)
            .returning(|_| Ok("s".into()));
        o.state
            .expect_pkce_verifier()
            .return_const(VERIFIER.to_owned());
        o.provider
            .expect_authorization_url()
            .times(1)
            .returning(|_, _, _, _| Ok("https://acme.test/a".into()));
        o.service(Mocks::new())
            .oauth_associate_authorize("acme", &user, OWN_CALLBACK, None)
            .await
            .unwrap();
    }
}

//! [`HttpOAuthProvider`]: the port over `oauth2` / `openidconnect`.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use oauth2::basic::{BasicClient, BasicTokenResponse};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    ErrorResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope,
    TokenResponse as _, TokenUrl,
};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{IssuerUrl, Nonce, TokenResponse as _};
use portcullis_domain::{OAuthProvider, OAuthProviderError, ProviderIdentity};
use serde_json::Value;
use tokio::sync::OnceCell;

use portcullis_oauth_settings::{ProviderKind, ProviderSettings};

/// A configured provider, spoken to over HTTPS (or HTTP, for a test
/// provider) with bounded timeouts.
pub struct HttpOAuthProvider {
    settings: ProviderSettings,
    http: ProviderHttp,
    /// The OpenID Connect discovery document and JWKS, once read.
    discovered: OnceCell<CoreProviderMetadata>,
}

impl std::fmt::Debug for HttpOAuthProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpOAuthProvider")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The HTTP client oauth2 and openidconnect speak through (token endpoint,
/// discovery, JWKS): reqwest's, except that a 5xx answer is an error before
/// oauth2 reads it — a provider's outage, even with an RFC 6749 JSON error
/// body such as `{"error": "server_error"}`, is not a refusal.
struct ProviderHttp(reqwest::Client);

impl<'c> oauth2::AsyncHttpClient<'c> for ProviderHttp {
    type Error = oauth2::HttpClientError<reqwest::Error>;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<oauth2::HttpResponse, Self::Error>>
                + Send
                + Sync
                + 'c,
        >,
    >;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let response = self.0.call(request).await?;
            server_error_as_error(response)
        })
    }
}

/// A 5xx answer as [`oauth2::HttpClientError::Other`]; any other as is.
fn server_error_as_error(
    response: oauth2::HttpResponse,
) -> Result<oauth2::HttpResponse, oauth2::HttpClientError<reqwest::Error>> {
    let status = response.status();
    if status.is_server_error() {
        Err(oauth2::HttpClientError::Other(format!(
            "the provider answered {status}"
        )))
    } else {
        Ok(response)
    }
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> OAuthProviderError {
    OAuthProviderError::Unavailable(format!("{what}: {e}"))
}

impl HttpOAuthProvider {
    /// A provider with `settings`; its URLs are checked here (a bad one is
    /// the error's text).
    pub fn new(settings: ProviderSettings) -> Result<Self, String> {
        match &settings.kind {
            ProviderKind::GitHub {
                authorize_url,
                token_url,
                api_url,
            } => {
                check_url(authorize_url)?;
                check_url(token_url)?;
                check_url(api_url)?;
            }
            ProviderKind::Oidc { issuer } => {
                IssuerUrl::new(issuer.clone()).map_err(|e| format!("{issuer}: {e}"))?;
            }
            ProviderKind::OAuth2 {
                authorize_url,
                token_url,
                userinfo_url,
            } => {
                check_url(authorize_url)?;
                check_url(token_url)?;
                check_url(userinfo_url)?;
            }
        }
        let http = reqwest::Client::builder()
            .connect_timeout(settings.timeouts.connect)
            .timeout(settings.timeouts.request)
            // The token endpoint must not send us elsewhere (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self {
            settings,
            http: ProviderHttp(http),
            discovered: OnceCell::new(),
        })
    }

    /// The configured settings.
    pub fn settings(&self) -> &ProviderSettings {
        &self.settings
    }

    fn client_id(&self) -> ClientId {
        ClientId::new(self.settings.client_id.clone())
    }

    fn client_secret(&self) -> Option<ClientSecret> {
        (!self.settings.client_secret.is_empty())
            .then(|| ClientSecret::new(self.settings.client_secret.clone()))
    }

    fn basic_client(
        &self,
        authorize_url: &str,
        token_url: &str,
    ) -> Result<
        BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>,
        OAuthProviderError,
    > {
        let auth =
            AuthUrl::new(authorize_url.to_owned()).map_err(|e| unavailable("authorize URL", e))?;
        let token = TokenUrl::new(token_url.to_owned()).map_err(|e| unavailable("token URL", e))?;
        let client = BasicClient::new(self.client_id())
            .set_auth_uri(auth)
            .set_token_uri(token);
        Ok(match self.client_secret() {
            Some(secret) => client.set_client_secret(secret),
            None => client,
        })
    }

    async fn metadata(&self) -> Result<&CoreProviderMetadata, OAuthProviderError> {
        let ProviderKind::Oidc { issuer } = &self.settings.kind else {
            return Err(unavailable("discovery", "not an OpenID Connect provider"));
        };
        self.discovered
            .get_or_try_init(|| async {
                let issuer =
                    IssuerUrl::new(issuer.clone()).map_err(|e| unavailable("issuer", e))?;
                CoreProviderMetadata::discover_async(issuer, &self.http)
                    .await
                    .map_err(|e| unavailable("OpenID Connect discovery", error_chain(&e)))
            })
            .await
    }

    fn oidc_client(
        &self,
        metadata: &CoreProviderMetadata,
    ) -> CoreClient<
        EndpointSet,
        EndpointNotSet,
        EndpointNotSet,
        EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    > {
        CoreClient::from_provider_metadata(metadata.clone(), self.client_id(), self.client_secret())
    }

    fn scopes(&self, asked: Option<Vec<String>>) -> Vec<Scope> {
        asked
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| self.settings.effective_scopes())
            .into_iter()
            .map(Scope::new)
            .collect()
    }

    /// `GET url` with the bearer token: the JSON body.
    async fn get_json(&self, url: &str, access_token: &str) -> Result<Value, OAuthProviderError> {
        let response = self
            .http
            .0
            .get(url)
            .bearer_auth(access_token)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| unavailable("user info", error_chain(&e)))?;
        let status = response.status();
        if status.is_server_error() {
            return Err(unavailable("user info", format!("status {status}")));
        }
        if !status.is_success() {
            return Err(OAuthProviderError::Refused(format!(
                "the provider's user info answered {status}"
            )));
        }
        response
            .json()
            .await
            .map_err(|e| unavailable("user info", error_chain(&e)))
    }

    async fn github_identity(
        &self,
        api_url: &str,
        token: &BasicTokenResponse,
    ) -> Result<ProviderIdentity, OAuthProviderError> {
        let access = token.access_token().secret();
        let api = api_url.trim_end_matches('/');
        let profile = self.get_json(&format!("{api}/user"), access).await?;
        let account_id =
            id_of(&profile, &["id"]).ok_or_else(|| unavailable("GitHub user", "no id"))?;
        let emails = self.get_json(&format!("{api}/user/emails"), access).await?;
        let primary = emails.as_array().and_then(|list| {
            list.iter().find(|e| {
                e.get("primary").and_then(Value::as_bool) == Some(true)
                    && e.get("verified").and_then(Value::as_bool) == Some(true)
            })
        });
        let (email, email_verified) =
            match primary.and_then(|e| e.get("email")).and_then(Value::as_str) {
                Some(email) => (Some(email.to_owned()), true),
                None => (
                    profile
                        .get("email")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    false,
                ),
            };
        Ok(identity_of(token, account_id, email, email_verified))
    }

    async fn userinfo_identity(
        &self,
        userinfo_url: &str,
        token: &BasicTokenResponse,
    ) -> Result<ProviderIdentity, OAuthProviderError> {
        let info = self
            .get_json(userinfo_url, token.access_token().secret())
            .await?;
        let account_id = id_of(&info, &["sub", "id"])
            .ok_or_else(|| unavailable("user info", "neither `sub` nor `id`"))?;
        let email = info.get("email").and_then(Value::as_str).map(str::to_owned);
        Ok(identity_of(token, account_id, email, verified_claim(&info)))
    }

    async fn exchange_basic(
        &self,
        authorize_url: &str,
        token_url: &str,
        code: &str,
        redirect_url: &str,
        pkce_verifier: &str,
    ) -> Result<BasicTokenResponse, OAuthProviderError> {
        let client = self.basic_client(authorize_url, token_url)?;
        let redirect = redirect_url_of(redirect_url)?;
        client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_redirect_uri(Cow::Owned(redirect))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(token_error)
    }
}

fn check_url(url: &str) -> Result<(), String> {
    url::Url::parse(url)
        .map(|_| ())
        .map_err(|e| format!("{url}: {e}"))
}

fn redirect_url_of(url: &str) -> Result<RedirectUrl, OAuthProviderError> {
    RedirectUrl::new(url.to_owned())
        .map_err(|e| OAuthProviderError::Refused(format!("redirect URL: {e}")))
}

/// The error and its sources, for the log.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The provider's OAuth error answer is a refusal; anything else (no
/// answer, a timeout, a 5xx, an unreadable body) is an outage.
fn token_error<RE, T>(e: RequestTokenError<RE, T>) -> OAuthProviderError
where
    RE: std::error::Error + 'static,
    T: ErrorResponse + 'static,
{
    match e {
        RequestTokenError::ServerResponse(answer) => {
            OAuthProviderError::Refused(format!("token endpoint: {answer}"))
        }
        other => unavailable("token endpoint", error_chain(&other)),
    }
}

/// `sub` or `id` (the first present), a string or a number.
fn id_of(info: &Value, names: &[&str]) -> Option<String> {
    names.iter().find_map(|name| match info.get(*name)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// `email_verified`: `true` or `"true"`; anything else is unverified.
fn verified_claim(info: &Value) -> bool {
    match info.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn identity_of<T: oauth2::TokenResponse>(
    token: &T,
    account_id: String,
    email: Option<String>,
    email_verified: bool,
) -> ProviderIdentity {
    ProviderIdentity {
        access_token: token.access_token().secret().clone(),
        expires_at: token
            .expires_in()
            .and_then(|d| i64::try_from(d.as_secs()).ok())
            .map(|secs| now_unix().saturating_add(secs)),
        refresh_token: token.refresh_token().map(|t| t.secret().clone()),
        account_id,
        email,
        email_verified,
    }
}

#[async_trait]
impl OAuthProvider for HttpOAuthProvider {
    fn name(&self) -> &str {
        &self.settings.name
    }

    async fn authorization_url(
        &self,
        redirect_url: &str,
        state: &str,
        scopes: Option<Vec<String>>,
        pkce_verifier: &str,
    ) -> Result<String, OAuthProviderError> {
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(
            pkce_verifier.to_owned(),
        ));
        let redirect = redirect_url_of(redirect_url)?;
        let state = CsrfToken::new(state.to_owned());
        let scopes = self.scopes(scopes);
        let url = match &self.settings.kind {
            ProviderKind::GitHub {
                authorize_url,
                token_url,
                ..
            }
            | ProviderKind::OAuth2 {
                authorize_url,
                token_url,
                ..
            } => {
                let client = self.basic_client(authorize_url, token_url)?;
                client
                    .authorize_url(|| state)
                    .add_scopes(scopes)
                    .set_redirect_uri(Cow::Owned(redirect))
                    .set_pkce_challenge(challenge)
                    .url()
                    .0
            }
            ProviderKind::Oidc { .. } => {
                let metadata = self.metadata().await?;
                let client = self.oidc_client(metadata);
                // The nonce is the PKCE challenge: bound to this flow, and
                // public anyway (it is in this URL).
                let nonce = Nonce::new(challenge.as_str().to_owned());
                client
                    .authorize_url(
                        CoreAuthenticationFlow::AuthorizationCode,
                        || state,
                        || nonce,
                    )
                    .add_scopes(scopes.into_iter().filter(|s| s.as_str() != "openid"))
                    .set_redirect_uri(Cow::Owned(redirect))
                    .set_pkce_challenge(challenge)
                    .url()
                    .0
            }
        };
        Ok(url.to_string())
    }

    async fn exchange(
        &self,
        code: &str,
        redirect_url: &str,
        pkce_verifier: &str,
    ) -> Result<ProviderIdentity, OAuthProviderError> {
        match &self.settings.kind {
            ProviderKind::GitHub {
                authorize_url,
                token_url,
                api_url,
            } => {
                let token = self
                    .exchange_basic(authorize_url, token_url, code, redirect_url, pkce_verifier)
                    .await?;
                self.github_identity(api_url, &token).await
            }
            ProviderKind::OAuth2 {
                authorize_url,
                token_url,
                userinfo_url,
            } => {
                let token = self
                    .exchange_basic(authorize_url, token_url, code, redirect_url, pkce_verifier)
                    .await?;
                self.userinfo_identity(userinfo_url, &token).await
            }
            ProviderKind::Oidc { .. } => {
                let metadata = self.metadata().await?;
                let client = self.oidc_client(metadata);
                let verifier = PkceCodeVerifier::new(pkce_verifier.to_owned());
                let nonce = Nonce::new(
                    PkceCodeChallenge::from_code_verifier_sha256(&verifier)
                        .as_str()
                        .to_owned(),
                );
                let token = client
                    .exchange_code(AuthorizationCode::new(code.to_owned()))
                    .map_err(|e| unavailable("token endpoint", e))?
                    .set_redirect_uri(Cow::Owned(redirect_url_of(redirect_url)?))
                    .set_pkce_verifier(verifier)
                    .request_async(&self.http)
                    .await
                    .map_err(token_error)?;
                let id_token = token.id_token().ok_or_else(|| {
                    OAuthProviderError::Refused("the provider sent no ID token".into())
                })?;
                let claims = id_token
                    .claims(&client.id_token_verifier(), &nonce)
                    .map_err(|e| OAuthProviderError::Refused(format!("ID token: {e}")))?;
                let account_id = claims.subject().as_str().to_owned();
                let mut email = claims.email().map(|e| e.as_str().to_owned());
                let mut email_verified = claims.email_verified().unwrap_or(false);
                if email.is_none()
                    && let Some(userinfo) = metadata.userinfo_endpoint()
                {
                    let info = self
                        .get_json(userinfo.as_str(), token.access_token().secret())
                        .await?;
                    // Only the ID token's subject's answer counts.
                    if id_of(&info, &["sub"]).as_deref() == Some(account_id.as_str()) {
                        email = info.get("email").and_then(Value::as_str).map(str::to_owned);
                        email_verified = verified_claim(&info);
                    }
                }
                Ok(ProviderIdentity {
                    access_token: token.access_token().secret().clone(),
                    expires_at: token
                        .expires_in()
                        .and_then(|d| i64::try_from(d.as_secs()).ok())
                        .map(|secs| now_unix().saturating_add(secs)),
                    refresh_token: token.refresh_token().map(|t| t.secret().clone()),
                    account_id,
                    email,
                    email_verified,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use portcullis_oauth_settings::Timeouts;

    fn answer(status: u16) -> oauth2::HttpResponse {
        oauth2::http::Response::builder()
            .status(status)
            .body(br#"{"error": "server_error"}"#.to_vec())
            .unwrap()
    }

    #[test]
    fn a_5xx_is_an_error_before_oauth2_reads_it_and_a_4xx_is_left_to_oauth2() {
        for status in [500, 502, 503] {
            let e = server_error_as_error(answer(status)).unwrap_err();
            assert!(
                matches!(&e, oauth2::HttpClientError::Other(text) if text.contains(&status.to_string())),
                "{status}: {e:?}"
            );
        }
        for status in [200, 400, 401] {
            let kept = server_error_as_error(answer(status)).unwrap();
            assert_eq!(kept.status().as_u16(), status);
        }
        // And so the token endpoint's 5xx is an outage, its 4xx a refusal.
        let outage: RequestTokenError<_, oauth2::basic::BasicErrorResponse> =
            RequestTokenError::Request(server_error_as_error(answer(500)).unwrap_err());
        assert!(matches!(
            token_error(outage),
            OAuthProviderError::Unavailable(_)
        ));
    }

    #[test]
    fn the_account_id_is_sub_or_id_as_a_string_or_a_number() {
        assert_eq!(
            id_of(&json!({"sub": "s-1", "id": 2}), &["sub", "id"]).as_deref(),
            Some("s-1")
        );
        assert_eq!(
            id_of(&json!({"id": 583231}), &["sub", "id"]).as_deref(),
            Some("583231")
        );
        assert_eq!(
            id_of(&json!({"sub": "", "id": "x"}), &["sub", "id"]).as_deref(),
            Some("x")
        );
        assert_eq!(
            id_of(&json!({"sub": null, "id": true}), &["sub", "id"]),
            None
        );
    }

    #[test]
    fn only_a_true_email_verified_counts() {
        for (info, verified) in [
            (json!({"email_verified": true}), true),
            (json!({"email_verified": "TRUE"}), true),
            (json!({"email_verified": false}), false),
            (json!({"email_verified": "yes"}), false),
            (json!({}), false),
        ] {
            assert_eq!(verified_claim(&info), verified, "{info}");
        }
    }

    #[test]
    fn a_bad_url_is_refused_when_the_provider_is_made() {
        let settings = |kind| ProviderSettings::new("p", kind, "id", "");
        let e = HttpOAuthProvider::new(settings(ProviderKind::OAuth2 {
            authorize_url: "https://p.test/a".into(),
            token_url: "not a url".into(),
            userinfo_url: "https://p.test/u".into(),
        }))
        .unwrap_err();
        assert!(e.contains("not a url"), "{e}");
        assert!(HttpOAuthProvider::new(settings(ProviderKind::github())).is_ok());
        assert!(HttpOAuthProvider::new(settings(ProviderKind::google())).is_ok());
        assert_eq!(
            Timeouts::default().request,
            std::time::Duration::from_secs(10)
        );
    }

    #[tokio::test]
    async fn the_authorization_url_carries_state_scopes_redirect_and_the_s256_challenge() {
        let mut settings = ProviderSettings::new("gh", ProviderKind::github(), "client-1", "s");
        settings.scopes = vec!["read:user".into(), "user:email".into()];
        let provider = HttpOAuthProvider::new(settings).unwrap();
        let verifier = "v".repeat(43);
        let url = provider
            .authorization_url("https://app.test/cb", "the-state", None, &verifier)
            .await
            .unwrap();
        let url = url::Url::parse(&url).unwrap();
        assert_eq!(
            url.as_str().split('?').next(),
            Some(crate::GITHUB_AUTHORIZE_URL)
        );
        let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(query["client_id"], "client-1");
        assert_eq!(query["state"], "the-state");
        assert_eq!(query["redirect_uri"], "https://app.test/cb");
        assert_eq!(query["scope"], "read:user user:email");
        assert_eq!(query["response_type"], "code");
        assert_eq!(query["code_challenge_method"], "S256");
        let challenge =
            PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(verifier));
        assert_eq!(query["code_challenge"], challenge.as_str());
        // Scopes of the request win.
        let url = provider
            .authorization_url(
                "https://app.test/cb",
                "s",
                Some(vec!["repo".into()]),
                &"v".repeat(43),
            )
            .await
            .unwrap();
        assert!(
            url.contains("scope=repo&") || url.ends_with("scope=repo"),
            "{url}"
        );
    }
}

//! A throwaway OAuth 2.0 / OpenID Connect provider for the social-login
//! tests (issue 14), served in process on `127.0.0.1:0`.
//!
//! [`OAuthProvider::start`] serves, on a free port, what Portcullis talks
//! to when a user logs in with a provider:
//!
//! * `GET /authorize`: checks `client_id` ([`CLIENT_ID`]), `redirect_uri`
//!   (any `http(s)` URL, or exactly the one [`OAuthProvider::expect_redirect_uri`]
//!   set), `response_type=code`, `code_challenge_method=S256` and a
//!   `code_challenge`; grants the [`Identity`] set beforehand
//!   ([`OAuthProvider::set_identity`]) and answers `302` to
//!   `redirect_uri?code=…&state=…`. A bad `client_id` or `redirect_uri` is a
//!   `400` JSON page (nowhere safe to redirect to); any other mistake
//!   redirects with `error=invalid_request` and an `error_description`.
//! * `POST /token` (form): `grant_type=authorization_code`, `code` (single
//!   use), `redirect_uri` (the authorization's), `code_verifier`
//!   (`BASE64URL(SHA-256(verifier))` must be the authorization's
//!   challenge) and the client's credentials, HTTP Basic (`oauth2`'s
//!   default: both parts form-urlencoded) or `client_id`/`client_secret` in
//!   the form. Answers `{"access_token", "token_type": "Bearer",
//!   "expires_in": 3600, "refresh_token"}` (+ `"id_token"` for
//!   [`Flavour::Oidc`]), or RFC 6749's errors (`400 invalid_grant`,
//!   `401 invalid_client`, …).
//! * `GET /userinfo` (`Authorization: Bearer`): the identity's JSON, `sub`
//!   or `id` ([`IdKey`]), `email` when it has one, `email_verified` when
//!   set.
//! * [`Flavour::Oidc`] only: `GET /.well-known/openid-configuration`
//!   (issuer = [`OAuthProvider::issuer`], the base URL without a trailing
//!   slash) and `GET /jwks` (one RSA key, `kid` [`KEY_ID`]); the token
//!   answer carries an RS256 ID token (`iss`, `aud` = [`CLIENT_ID`], `sub`,
//!   `email`, `email_verified`, `exp`, `iat`, `nonce` when the authorization
//!   had one).
//!
//! Knobs: [`OAuthProvider::set_fault`] makes one endpoint answer `500`,
//! never answer (the connection held open until the provider is dropped)
//! or answer late; [`OAuthProvider::requests`] lists what it received
//! (query, form and `Authorization`), so a test can assert the PKCE
//! verifier and the client credentials were sent;
//! [`OAuthProvider::follow`] plays the browser: it `GET`s an
//! `authorization_url` and returns where the provider sends the user back
//! (Portcullis' callback with `code` and `state`).
//!
//! ```no_run
//! # async fn demo() {
//! use portcullis_tests::oauth_provider::{Flavour, Identity, OAuthProvider};
//!
//! let provider = OAuthProvider::start(Flavour::OAuth2).await;
//! provider.set_identity(Identity::new("4242").email("ann@example.com").verified(true));
//! let vars = provider.env_vars("acme"); // OAUTH_PROVIDERS=acme, OAUTH_ACME_KIND=oauth2, …
//! // … start Portcullis with `vars`, GET /api/auth/acme/authorize …
//! # let authorization_url = String::new();
//! let back = provider.follow(&authorization_url).await;
//! assert!(back.code.is_some());
//! // … GET back.location with the CSRF cookie …
//! # let _ = vars;
//! # }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use josekit::jwk::Jwk;
use josekit::jws::{JwsSigner as _, JwsVerifier as _, RS256};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::test_app::now;

/// The client id the provider knows (`OAUTH_<NAME>_CLIENT_ID`).
pub const CLIENT_ID: &str = "portcullis-test-client";
/// The client's secret (`OAUTH_<NAME>_CLIENT_SECRET`).
pub const CLIENT_SECRET: &str = "portcullis test secret/+=&";
/// The `kid` of the provider's signing key in its JWKS and ID tokens.
pub const KEY_ID: &str = "portcullis-test-key";
/// `expires_in` of every access token the provider issues (seconds).
pub const ACCESS_TOKEN_LIFETIME: i64 = 3600;
/// Lifetime of the ID tokens (seconds).
pub const ID_TOKEN_LIFETIME: i64 = 600;
/// How long a hung request is held at most (the provider's drop releases
/// it earlier).
const HANG_AT_MOST: Duration = Duration::from_secs(600);

/// Which kind of provider to serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// Plain OAuth 2.0: authorize, token, userinfo (`OAUTH_<NAME>_KIND=oauth2`).
    OAuth2,
    /// OpenID Connect: the same plus discovery, a JWKS and ID tokens
    /// (`OAUTH_<NAME>_KIND=oidc`).
    Oidc,
    /// GitHub's API instead of `/userinfo`: `GET /user` (`id` a number,
    /// `email` the public address when the identity's is verified, else
    /// `null`) and `GET /user/emails` (the identity's address as the
    /// primary one, `verified` as [`Identity::email_verified`] says, plus a
    /// verified secondary address `secondary-<subject>@users.example`);
    /// the base URL is the API URL (`ProviderKind::GitHub`'s `api_url`).
    GitHub,
}

/// One of the provider's endpoints, to aim a [`Fault`] at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET /.well-known/openid-configuration`.
    Discovery,
    /// `GET /jwks`.
    Jwks,
    /// `GET /authorize`.
    Authorize,
    /// `POST /token`.
    Token,
    /// `GET /userinfo`.
    Userinfo,
    /// `GET /user` ([`Flavour::GitHub`]).
    GitHubUser,
    /// `GET /user/emails` ([`Flavour::GitHub`]).
    GitHubEmails,
}

impl Endpoint {
    /// The endpoint's path.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Discovery => "/.well-known/openid-configuration",
            Endpoint::Jwks => "/jwks",
            Endpoint::Authorize => "/authorize",
            Endpoint::Token => "/token",
            Endpoint::Userinfo => "/userinfo",
            Endpoint::GitHubUser => "/user",
            Endpoint::GitHubEmails => "/user/emails",
        }
    }
}

/// What an endpoint does instead of its job (see
/// [`OAuthProvider::set_fault`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// `500 {"error": "server_error", "error_description": …}`.
    ServerError,
    /// This status and JSON body.
    Status(u16, Value),
    /// Reads the request and never answers: the connection stays open until
    /// the client gives up or the provider is dropped.
    Hang,
    /// Waits this long, then does its job.
    Delay(Duration),
}

/// Which key of the user-info JSON carries the account id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IdKey {
    /// `"sub": "<subject>"` (OpenID Connect, Google).
    #[default]
    Sub,
    /// `"id": "<subject>"`.
    Id,
    /// `"id": <subject as a number>` (GitHub); the subject must be digits.
    NumericId,
}

/// The account an authorization grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The account id at the provider (`sub` / `id`).
    pub subject: String,
    /// The account's address; `None`: the provider gives none.
    pub email: Option<String>,
    /// `email_verified`; `None`: not said at all.
    pub email_verified: Option<bool>,
    /// How the user-info JSON names the id.
    pub id_key: IdKey,
}

impl Identity {
    /// An account with this id, no address, nothing said about
    /// verification, the id as `sub`.
    pub fn new(subject: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            email: None,
            email_verified: None,
            id_key: IdKey::Sub,
        }
    }

    /// With this address.
    #[must_use]
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Saying `email_verified: verified`.
    #[must_use]
    pub fn verified(mut self, verified: bool) -> Self {
        self.email_verified = Some(verified);
        self
    }

    /// With the id under this key of the user-info JSON.
    #[must_use]
    pub fn id_key(mut self, id_key: IdKey) -> Self {
        self.id_key = id_key;
        self
    }

    /// The user-info JSON of this identity.
    pub fn userinfo(&self) -> Value {
        let mut body = serde_json::Map::new();
        match self.id_key {
            IdKey::Sub => {
                body.insert("sub".into(), json!(self.subject));
            }
            IdKey::Id => {
                body.insert("id".into(), json!(self.subject));
            }
            IdKey::NumericId => {
                let id: u64 = self
                    .subject
                    .parse()
                    .unwrap_or_else(|_| panic!("IdKey::NumericId needs digits: {}", self.subject));
                body.insert("id".into(), json!(id));
            }
        }
        if let Some(email) = &self.email {
            body.insert("email".into(), json!(email));
        }
        if let Some(verified) = self.email_verified {
            body.insert("email_verified".into(), json!(verified));
        }
        body.insert("name".into(), json!(format!("Test user {}", self.subject)));
        Value::Object(body)
    }
}

/// One request the provider received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// Which endpoint (`None`: a path the provider does not serve).
    pub endpoint: Option<Endpoint>,
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query's pairs, decoded, in order.
    pub query: Vec<(String, String)>,
    /// A form body's pairs, decoded, in order (empty for other bodies).
    pub form: Vec<(String, String)>,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
}

impl RecordedRequest {
    /// The first value of `name` in the query.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        first(&self.query, name)
    }

    /// The first value of `name` in the form.
    pub fn form_param(&self, name: &str) -> Option<&str> {
        first(&self.form, name)
    }

    /// The (client id, secret) of an `Authorization: Basic` header, each
    /// form-urldecoded as RFC 6749 §2.3.1 wants.
    pub fn basic_credentials(&self) -> Option<(String, String)> {
        let encoded = self.authorization.as_deref()?.strip_prefix("Basic ")?;
        let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        Some((form_decode(id)?, form_decode(secret)?))
    }
}

/// Where an authorization sent the browser back (see
/// [`OAuthProvider::follow`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    /// The whole `Location`: the callback URL with its query.
    pub location: String,
    /// `code`, when the authorization was granted.
    pub code: Option<String>,
    /// `state`, as the authorization request carried it.
    pub state: Option<String>,
    /// `error`, when it was refused.
    pub error: Option<String>,
}

/// A grant waiting for its token request.
#[derive(Clone, Debug)]
struct Grant {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    nonce: Option<String>,
    identity: Identity,
    used: bool,
}

/// What the provider knows and has been told.
struct State {
    flavour: Flavour,
    base_url: String,
    identity: Mutex<Identity>,
    redirect_uri: Mutex<Option<String>>,
    faults: Mutex<HashMap<Endpoint, Fault>>,
    grants: Mutex<HashMap<String, Grant>>,
    access_tokens: Mutex<HashMap<String, Identity>>,
    issued: Mutex<Vec<Value>>,
    refusals: Mutex<Vec<String>>,
    requests: Mutex<Vec<RecordedRequest>>,
    signing_key: Jwk,
    foreign_key: Jwk,
    sign_with_foreign_key: Mutex<bool>,
    released: Notify,
    arrived: Notify,
}

/// Locks `mutex`, whether or not a panicking test poisoned it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running provider; see the [module docs](self). Dropping it releases
/// the requests held by [`Fault::Hang`] and stops the server.
pub struct OAuthProvider {
    state: Arc<State>,
    handle: actix_web::dev::ServerHandle,
    client: awc::Client,
}

impl std::fmt::Debug for OAuthProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthProvider")
            .field("flavour", &self.state.flavour)
            .field("base_url", &self.state.base_url)
            .finish_non_exhaustive()
    }
}

impl OAuthProvider {
    /// Starts a provider of this flavour on `127.0.0.1:0`, on the current
    /// actix runtime, granting `Identity::new("provider-user-1")` with
    /// `user1@provider.example` (verified) until told otherwise.
    ///
    /// # Panics
    /// When it cannot bind or make its RSA key.
    pub async fn start(flavour: Flavour) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        let base_url = format!("http://127.0.0.1:{port}");
        let signing_key = rsa_key(KEY_ID);
        // Same kid, other key: an ID token signed with it does not verify.
        let foreign_key = rsa_key(KEY_ID);
        let state = Arc::new(State {
            flavour,
            base_url,
            identity: Mutex::new(
                Identity::new("provider-user-1")
                    .email("user1@provider.example")
                    .verified(true),
            ),
            redirect_uri: Mutex::new(None),
            faults: Mutex::new(HashMap::new()),
            grants: Mutex::new(HashMap::new()),
            access_tokens: Mutex::new(HashMap::new()),
            issued: Mutex::new(Vec::new()),
            refusals: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            signing_key,
            foreign_key,
            sign_with_foreign_key: Mutex::new(false),
            released: Notify::new(),
            arrived: Notify::new(),
        });
        let data = web::Data::from(Arc::clone(&state));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route(Endpoint::Discovery.path(), web::get().to(discovery))
                .route(Endpoint::Jwks.path(), web::get().to(jwks))
                .route(Endpoint::Authorize.path(), web::get().to(authorize))
                .route(Endpoint::Token.path(), web::post().to(token))
                .route(Endpoint::Userinfo.path(), web::get().to(userinfo))
                .route(Endpoint::Userinfo.path(), web::post().to(userinfo))
                .route(Endpoint::GitHubUser.path(), web::get().to(github_user))
                .route(Endpoint::GitHubEmails.path(), web::get().to(github_emails))
                .default_service(web::to(not_found))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(0)
        .listen(listener)
        .expect("the provider listens")
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Self {
            state,
            handle,
            client: awc::Client::builder()
                .timeout(Duration::from_secs(30))
                .disable_redirects()
                .finish(),
        }
    }

    /// Its flavour.
    pub fn flavour(&self) -> Flavour {
        self.state.flavour
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.state.base_url
    }

    /// The OpenID issuer: the base URL (what `iss` and discovery say).
    pub fn issuer(&self) -> &str {
        self.base_url()
    }

    /// The URL of an endpoint.
    pub fn url(&self, endpoint: Endpoint) -> String {
        format!("{}{}", self.state.base_url, endpoint.path())
    }

    /// The configuration that points Portcullis at this provider under
    /// `name` (lowercase): `OAUTH_PROVIDERS`, `OAUTH_<NAME>_KIND`
    /// (`oauth2` with the three URLs, or `oidc` with the issuer), the client
    /// id and secret. Add `OAUTH_STATE_SECRET` and the rest yourself.
    ///
    /// # Panics
    /// For [`Flavour::GitHub`], whose URLs cannot be configured.
    pub fn env_vars(&self, name: &str) -> Vec<(String, String)> {
        let upper = name.to_ascii_uppercase();
        let var = |suffix: &str| format!("OAUTH_{upper}_{suffix}");
        let mut vars = vec![
            ("OAUTH_PROVIDERS".to_owned(), name.to_owned()),
            (var("CLIENT_ID"), CLIENT_ID.to_owned()),
            (var("CLIENT_SECRET"), CLIENT_SECRET.to_owned()),
        ];
        match self.state.flavour {
            Flavour::OAuth2 => {
                vars.push((var("KIND"), "oauth2".to_owned()));
                vars.push((var("AUTHORIZE_URL"), self.url(Endpoint::Authorize)));
                vars.push((var("TOKEN_URL"), self.url(Endpoint::Token)));
                vars.push((var("USERINFO_URL"), self.url(Endpoint::Userinfo)));
            }
            Flavour::Oidc => {
                vars.push((var("KIND"), "oidc".to_owned()));
                vars.push((var("ISSUER"), self.issuer().to_owned()));
            }
            Flavour::GitHub => panic!(
                "the github kind's URLs are GitHub's own, not settings: \
                 use ProviderKind::GitHub with this provider's URLs in code"
            ),
        }
        vars
    }

    /// The account the next authorizations grant.
    pub fn set_identity(&self, identity: Identity) {
        *lock(&self.state.identity) = identity;
    }

    /// Accepts only this `redirect_uri` from now on (else any `http(s)`
    /// URL).
    pub fn expect_redirect_uri(&self, uri: impl Into<String>) {
        *lock(&self.state.redirect_uri) = Some(uri.into());
    }

    /// Makes `endpoint` misbehave until [`clear_fault`](Self::clear_fault).
    pub fn set_fault(&self, endpoint: Endpoint, fault: Fault) {
        lock(&self.state.faults).insert(endpoint, fault);
    }

    /// Makes `endpoint` do its job again (and releases requests it holds).
    pub fn clear_fault(&self, endpoint: Endpoint) {
        lock(&self.state.faults).remove(&endpoint);
        self.state.released.notify_waiters();
    }

    /// Signs the next ID tokens with a key that is not in the JWKS (same
    /// `kid`), so that they do not verify.
    pub fn sign_with_foreign_key(&self, foreign: bool) {
        *lock(&self.state.sign_with_foreign_key) = foreign;
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state.requests).clone()
    }

    /// The requests received at `endpoint`, in order.
    pub fn requests_to(&self, endpoint: Endpoint) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.endpoint == Some(endpoint))
            .collect()
    }

    /// Waits until `endpoint` has received at least `count` requests;
    /// `false` if that did not happen within `within`.
    pub async fn wait_for_requests(
        &self,
        endpoint: Endpoint,
        count: usize,
        within: Duration,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let arrived = self.state.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if self.requests_to(endpoint).len() >= count {
                return true;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return self.requests_to(endpoint).len() >= count;
            }
        }
    }

    /// Every successful token answer so far (the whole JSON), in order.
    pub fn issued_tokens(&self) -> Vec<Value> {
        lock(&self.state.issued).clone()
    }

    /// Every token request refused so far, as `"<error>: <description>"`
    /// (`"invalid_grant: PKCE verification failed"`), in order.
    pub fn token_refusals(&self) -> Vec<String> {
        lock(&self.state.refusals).clone()
    }

    /// The `access_token` of the last successful token answer.
    pub fn last_access_token(&self) -> Option<String> {
        self.issued_tokens()
            .last()
            .and_then(|t| t["access_token"].as_str().map(str::to_owned))
    }

    /// The provider's public key as a JWK (what `/jwks` lists).
    pub fn public_jwk(&self) -> Jwk {
        public_half(&self.state.signing_key)
    }

    /// Plays the browser at `authorization_url`: `GET`s it and returns where
    /// the provider redirects (`302 Location`).
    ///
    /// # Panics
    /// Unless the answer is a redirect (e.g. a `400` for a wrong
    /// `client_id`; use [`get`](Self::get) to look at those).
    pub async fn follow(&self, authorization_url: &str) -> Redirect {
        let (status, headers, body) = self.get(authorization_url).await;
        assert_eq!(
            status, 302,
            "the provider redirects the browser back; got {status}: {body}"
        );
        let location = headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("a 302 without Location: {headers:?}"))
            .to_owned();
        let query = parse_query(location.split_once('?').map_or("", |(_, q)| q));
        Redirect {
            code: first(&query, "code").map(str::to_owned),
            state: first(&query, "state").map(str::to_owned),
            error: first(&query, "error").map(str::to_owned),
            location,
        }
    }

    /// `GET url` without following redirects: status, headers, body text.
    ///
    /// # Panics
    /// When the request cannot be sent.
    pub async fn get(&self, url: &str) -> (u16, awc::http::header::HeaderMap, String) {
        let mut res = self
            .client
            .get(url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let body = res
            .body()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: reading the body: {e}"));
        (
            res.status().as_u16(),
            res.headers().clone(),
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    /// `GET url` with `Authorization: Bearer token`: status, headers, body
    /// text.
    ///
    /// # Panics
    /// When the request cannot be sent.
    pub async fn get_with_bearer(
        &self,
        url: &str,
        token: &str,
    ) -> (u16, awc::http::header::HeaderMap, String) {
        let mut res = self
            .client
            .get(url)
            .insert_header(("authorization", format!("Bearer {token}")))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let body = res
            .body()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: reading the body: {e}"));
        (
            res.status().as_u16(),
            res.headers().clone(),
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    /// `POST url` with a form and optional `Authorization` header: status
    /// and JSON body (`Null` when not JSON).
    ///
    /// # Panics
    /// When the request cannot be sent.
    pub async fn post_form(
        &self,
        url: &str,
        authorization: Option<&str>,
        form: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut req = self.client.post(url);
        if let Some(authorization) = authorization {
            req = req.insert_header(("authorization", authorization));
        }
        let mut res = req
            .send_form(&form)
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let body = res
            .body()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: reading the body: {e}"));
        (
            res.status().as_u16(),
            serde_json::from_slice(&body).unwrap_or(Value::Null),
        )
    }
}

impl Drop for OAuthProvider {
    fn drop(&mut self) {
        lock(&self.state.faults).clear();
        self.state.released.notify_waiters();
        if tokio::runtime::Handle::try_current().is_ok() {
            let stop = self.handle.stop(false);
            actix_web::rt::spawn(stop);
        }
    }
}

/// The PKCE S256 challenge of a verifier: `BASE64URL(SHA-256(verifier))`.
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(openssl::sha::sha256(verifier.as_bytes()))
}

/// The header and claims of an ID token if its RS256 signature verifies
/// with `jwk`; `None` otherwise.
pub fn verify_rs256(token: &str, jwk: &Jwk) -> Option<(Value, Value)> {
    let (input, signature) = token.rsplit_once('.')?;
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    let verifier = RS256.verifier_from_jwk(jwk).ok()?;
    verifier.verify(input.as_bytes(), &signature).ok()?;
    let (header, claims) = input.split_once('.')?;
    let part = |p: &str| -> Option<Value> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()
    };
    Some((part(header)?, part(claims)?))
}

/// The public half of `key`, with its `kid`, `use` and `alg` (which
/// josekit's `to_public_key` leaves out).
fn public_half(key: &Jwk) -> Jwk {
    let mut public = key.to_public_key().expect("the public half of an RSA key");
    for (name, value) in [
        ("kid", key.key_id()),
        ("use", key.key_use()),
        ("alg", key.algorithm()),
    ] {
        if let Some(value) = value {
            public
                .set_parameter(name, Some(json!(value)))
                .expect("a JWK parameter");
        }
    }
    public
}

fn rsa_key(kid: &str) -> Jwk {
    let mut key = Jwk::generate_rsa_key(2048).expect("an RSA key");
    key.set_key_id(kid);
    key.set_key_use("sig");
    key.set_algorithm("RS256");
    key
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    openssl::rand::rand_bytes(&mut bytes).expect("random bytes");
    URL_SAFE_NO_PAD.encode(bytes)
}

fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space);
/// `None` on a broken escape or non-UTF-8.
fn form_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Encodes text for a query component.
fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The pairs of a query string or form body.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((form_decode(k)?, form_decode(v)?))
        })
        .collect()
}

fn endpoint_of(path: &str) -> Option<Endpoint> {
    [
        Endpoint::Discovery,
        Endpoint::Jwks,
        Endpoint::Authorize,
        Endpoint::Token,
        Endpoint::Userinfo,
        Endpoint::GitHubUser,
        Endpoint::GitHubEmails,
    ]
    .into_iter()
    .find(|e| e.path() == path)
}

/// Records the request and plays the endpoint's fault, if any: `Some` is
/// the answer to give instead of the endpoint's own.
async fn arrive(
    state: &State,
    req: &HttpRequest,
    body: &[u8],
) -> (RecordedRequest, Option<HttpResponse>) {
    // The fault is read before the request is recorded: a test that saw the
    // request arrive and then clears a `Hang` finds it held (released with
    // 503), never answered as if no fault had been set.
    let endpoint = endpoint_of(req.path());
    let fault = endpoint.and_then(|e| Some((e, lock(&state.faults).get(&e).cloned()?)));
    let recorded = record(state, endpoint, req, body);
    (recorded, play_fault(state, fault).await)
}

/// Records the request (at `endpoint`); returns the record.
fn record(
    state: &State,
    endpoint: Option<Endpoint>,
    req: &HttpRequest,
    body: &[u8],
) -> RecordedRequest {
    let is_form = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let form = if is_form {
        parse_query(&String::from_utf8_lossy(body))
    } else {
        Vec::new()
    };
    let recorded = RecordedRequest {
        endpoint,
        method: req.method().to_string(),
        path: req.path().to_owned(),
        query: parse_query(req.query_string()),
        form,
        authorization: req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    lock(&state.requests).push(recorded.clone());
    state.arrived.notify_waiters();
    recorded
}

/// Plays `fault`, the one set for the request's endpoint when it arrived:
/// `Some` is the answer to give instead of the endpoint's own.
async fn play_fault(state: &State, fault: Option<(Endpoint, Fault)>) -> Option<HttpResponse> {
    let (endpoint, fault) = fault?;
    match fault {
        Fault::ServerError => Some(HttpResponse::InternalServerError().json(json!({
            "error": "server_error",
            "error_description": "the test provider was told to fail",
        }))),
        Fault::Status(status, body) => Some(
            HttpResponse::build(StatusCode::from_u16(status).expect("a valid status")).json(body),
        ),
        Fault::Hang => {
            let deadline = tokio::time::Instant::now() + HANG_AT_MOST;
            loop {
                let released = state.released.notified();
                tokio::pin!(released);
                released.as_mut().enable();
                if lock(&state.faults).get(&endpoint) != Some(&Fault::Hang)
                    || tokio::time::timeout_at(deadline, released).await.is_err()
                {
                    break;
                }
            }
            Some(HttpResponse::ServiceUnavailable().json(json!({
                "error": "temporarily_unavailable",
                "error_description": "released after hanging",
            })))
        }
        Fault::Delay(delay) => {
            tokio::time::sleep(delay).await;
            None
        }
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(("cache-control", "no-store"))
        .json(json!({ "error": error, "error_description": description }))
}

async fn not_found(state: web::Data<State>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let _ = arrive(&state, &req, &body).await;
    HttpResponse::NotFound().json(json!({ "error": "not_found" }))
}

async fn discovery(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    if let (_, Some(answer)) = arrive(&state, &req, &[]).await {
        return answer;
    }
    if state.flavour != Flavour::Oidc {
        return HttpResponse::NotFound().json(json!({ "error": "not_found" }));
    }
    let base = &state.base_url;
    HttpResponse::Ok().json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}{}", Endpoint::Authorize.path()),
        "token_endpoint": format!("{base}{}", Endpoint::Token.path()),
        "userinfo_endpoint": format!("{base}{}", Endpoint::Userinfo.path()),
        "jwks_uri": format!("{base}{}", Endpoint::Jwks.path()),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code"],
        "claims_supported": ["sub", "email", "email_verified", "name"],
    }))
}

async fn jwks(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    if let (_, Some(answer)) = arrive(&state, &req, &[]).await {
        return answer;
    }
    if state.flavour != Flavour::Oidc {
        return HttpResponse::NotFound().json(json!({ "error": "not_found" }));
    }
    let public = public_half(&state.signing_key);
    let key: &serde_json::Map<String, Value> = public.as_ref();
    HttpResponse::Ok().json(json!({ "keys": [key] }))
}

async fn authorize(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    if let (_, Some(answer)) = arrive(&state, &req, &[]).await {
        return answer;
    }
    let query = parse_query(req.query_string());
    let param = |name: &str| first(&query, name);
    if param("client_id") != Some(CLIENT_ID) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            "unknown client_id",
        );
    }
    let Some(redirect_uri) = param("redirect_uri") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "redirect_uri missing",
        );
    };
    let redirect_ok = match lock(&state.redirect_uri).as_deref() {
        Some(expected) => redirect_uri == expected,
        None => redirect_uri.starts_with("http://") || redirect_uri.starts_with("https://"),
    };
    if !redirect_ok {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "redirect_uri not registered",
        );
    }
    let back = |pairs: Vec<(&str, &str)>| {
        let mut location = redirect_uri.to_owned();
        location.push(if location.contains('?') { '&' } else { '?' });
        let mut pairs = pairs;
        if let Some(state) = param("state") {
            pairs.push(("state", state));
        }
        let encoded: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", form_encode(v)))
            .collect();
        location.push_str(&encoded.join("&"));
        HttpResponse::Found()
            .insert_header(("location", location))
            .finish()
    };
    let refuse = |description: &str| {
        back(vec![
            ("error", "invalid_request"),
            ("error_description", description),
        ])
    };
    if param("response_type") != Some("code") {
        return refuse("response_type must be code");
    }
    if param("code_challenge_method") != Some("S256") {
        return refuse("code_challenge_method must be S256");
    }
    let Some(challenge) = param("code_challenge").filter(|c| !c.is_empty()) else {
        return refuse("code_challenge missing");
    };
    if state.flavour == Flavour::Oidc
        && !param("scope").is_some_and(|s| s.split(' ').any(|s| s == "openid"))
    {
        return refuse("scope must include openid");
    }
    let code = random_token();
    let grant = Grant {
        client_id: CLIENT_ID.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        code_challenge: challenge.to_owned(),
        nonce: param("nonce").map(str::to_owned),
        identity: lock(&state.identity).clone(),
        used: false,
    };
    lock(&state.grants).insert(code.clone(), grant);
    back(vec![("code", &code)])
}

async fn token(state: web::Data<State>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let (recorded, fault) = arrive(&state, &req, &body).await;
    if let Some(answer) = fault {
        return answer;
    }
    match grant_tokens(&state, &recorded) {
        Ok(answer) => {
            lock(&state.issued).push(answer.clone());
            HttpResponse::Ok()
                .insert_header(("cache-control", "no-store"))
                .json(answer)
        }
        Err((status, error, description)) => {
            lock(&state.refusals).push(format!("{error}: {description}"));
            oauth_error(status, error, description)
        }
    }
}

/// A token request's refusal: status, RFC 6749 `error`, description.
type Refusal = (StatusCode, &'static str, &'static str);

/// The token answer to `recorded`, or why it is refused.
fn grant_tokens(state: &State, recorded: &RecordedRequest) -> Result<Value, Refusal> {
    let form = &recorded.form;
    let param = |name: &str| first(form, name);

    // The client: HTTP Basic, or the form.
    let (client_id, secret) = match recorded.basic_credentials() {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (
            param("client_id").map(str::to_owned),
            param("client_secret").map(str::to_owned),
        ),
    };
    if client_id.as_deref() != Some(CLIENT_ID) || secret.as_deref() != Some(CLIENT_SECRET) {
        return Err((
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        ));
    }
    if param("grant_type") != Some("authorization_code") {
        return Err((
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only authorization_code",
        ));
    }
    let Some(code) = param("code") else {
        return Err((StatusCode::BAD_REQUEST, "invalid_request", "code missing"));
    };
    // Single use: the first attempt spends the code, whatever its outcome.
    let grant = {
        let mut grants = lock(&state.grants);
        match grants.get_mut(code) {
            Some(grant) if !grant.used => {
                grant.used = true;
                Some(grant.clone())
            }
            _ => None,
        }
    };
    let Some(grant) = grant else {
        return Err((
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "unknown or used code",
        ));
    };
    if grant.client_id != CLIENT_ID {
        return Err((
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "code of another client",
        ));
    }
    if param("redirect_uri") != Some(grant.redirect_uri.as_str()) {
        return Err((
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "redirect_uri does not match the authorization's",
        ));
    }
    let Some(verifier) = param("code_verifier") else {
        return Err((
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "code_verifier missing",
        ));
    };
    if s256_challenge(verifier) != grant.code_challenge {
        return Err((
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "PKCE verification failed",
        ));
    }

    let access_token = random_token();
    lock(&state.access_tokens).insert(access_token.clone(), grant.identity.clone());
    let mut answer = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_LIFETIME,
        "refresh_token": random_token(),
    });
    if state.flavour == Flavour::Oidc {
        answer["id_token"] = json!(id_token(state, &grant));
        answer["scope"] = json!("openid email profile");
    }
    Ok(answer)
}

fn id_token(state: &State, grant: &Grant) -> String {
    let issued_at = now();
    let identity = &grant.identity;
    let mut claims = json!({
        "iss": state.base_url,
        "aud": CLIENT_ID,
        "sub": identity.subject,
        "iat": issued_at,
        "exp": issued_at + ID_TOKEN_LIFETIME,
    });
    if let Some(email) = &identity.email {
        claims["email"] = json!(email);
    }
    if let Some(verified) = identity.email_verified {
        claims["email_verified"] = json!(verified);
    }
    if let Some(nonce) = &grant.nonce {
        claims["nonce"] = json!(nonce);
    }
    let header = json!({ "alg": "RS256", "typ": "JWT", "kid": KEY_ID });
    let encode = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("JSON"));
    let input = format!("{}.{}", encode(&header), encode(&claims));
    let key = if *lock(&state.sign_with_foreign_key) {
        &state.foreign_key
    } else {
        &state.signing_key
    };
    let signer = RS256.signer_from_jwk(key).expect("an RS256 signer");
    let signature = signer.sign(input.as_bytes()).expect("RS256 signing");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

async fn userinfo(state: web::Data<State>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    if let (_, Some(answer)) = arrive(&state, &req, &body).await {
        return answer;
    }
    match bearer_identity(&state, &req) {
        Some(identity) => HttpResponse::Ok().json(identity.userinfo()),
        None => invalid_token(),
    }
}

/// The identity behind the request's bearer token (GitHub also takes
/// `token …`), if it is one the provider issued.
fn bearer_identity(state: &State, req: &HttpRequest) -> Option<Identity> {
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
                .or_else(|| v.strip_prefix("token "))
        })
        .map(str::trim)?;
    lock(&state.access_tokens).get(bearer).cloned()
}

/// The answer to a missing or unknown bearer token.
fn invalid_token() -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header(("www-authenticate", "Bearer error=\"invalid_token\""))
        .json(json!({ "error": "invalid_token" }))
}

async fn github_user(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    if let (_, Some(answer)) = arrive(&state, &req, &[]).await {
        return answer;
    }
    if state.flavour != Flavour::GitHub {
        return HttpResponse::NotFound().json(json!({ "error": "not_found" }));
    }
    match bearer_identity(&state, &req) {
        Some(identity) => {
            let id: u64 = identity
                .subject
                .parse()
                .unwrap_or_else(|_| panic!("a GitHub id is a number: {}", identity.subject));
            // The public address: only a verified primary one here.
            let public = identity
                .email
                .as_ref()
                .filter(|_| identity.email_verified == Some(true));
            HttpResponse::Ok().json(json!({
                "id": id,
                "login": format!("user{id}"),
                "email": public,
            }))
        }
        None => invalid_token(),
    }
}

async fn github_emails(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    if let (_, Some(answer)) = arrive(&state, &req, &[]).await {
        return answer;
    }
    if state.flavour != Flavour::GitHub {
        return HttpResponse::NotFound().json(json!({ "error": "not_found" }));
    }
    match bearer_identity(&state, &req) {
        Some(identity) => {
            let mut emails = vec![json!({
                "email": format!("secondary-{}@users.example", identity.subject),
                "primary": false,
                "verified": true,
                "visibility": null,
            })];
            if let Some(email) = &identity.email {
                emails.push(json!({
                    "email": email,
                    "primary": true,
                    "verified": identity.email_verified == Some(true),
                    "visibility": "private",
                }));
            }
            HttpResponse::Ok().json(emails)
        }
        None => invalid_token(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFIER: &str = "a-verifier-of-the-test-suite-0123456789-abcdefghijklmnopqrstuvwxyz";

    fn authorization_url(provider: &OAuthProvider, challenge: &str, nonce: Option<&str>) -> String {
        let scope = match provider.flavour() {
            Flavour::OAuth2 | Flavour::GitHub => "email",
            Flavour::Oidc => "openid email",
        };
        let mut url = format!(
            "{}?response_type=code&client_id={}&redirect_uri={}&scope={}&state=st-1\
             &code_challenge={challenge}&code_challenge_method=S256",
            provider.url(Endpoint::Authorize),
            form_encode(CLIENT_ID),
            form_encode("http://127.0.0.1:1/api/auth/test/callback"),
            form_encode(scope),
        );
        if let Some(nonce) = nonce {
            url.push_str(&format!("&nonce={nonce}"));
        }
        url
    }

    fn basic() -> String {
        format!(
            "Basic {}",
            STANDARD.encode(format!(
                "{}:{}",
                form_encode(CLIENT_ID),
                form_encode(CLIENT_SECRET)
            ))
        )
    }

    async fn exchange(provider: &OAuthProvider, code: &str, verifier: &str) -> (u16, Value) {
        provider
            .post_form(
                &provider.url(Endpoint::Token),
                Some(&basic()),
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", "http://127.0.0.1:1/api/auth/test/callback"),
                    ("code_verifier", verifier),
                ],
            )
            .await
    }

    #[test]
    fn s256_is_rfc_7636_appendix_b() {
        assert_eq!(
            s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn form_decoding_reads_what_oauth2_writes() {
        assert_eq!(form_decode("a+b%2F%2B%3D%26").as_deref(), Some("a b/+=&"));
        assert_eq!(form_decode("%zz"), None);
        assert_eq!(
            form_decode(&form_encode(CLIENT_SECRET)).as_deref(),
            Some(CLIENT_SECRET)
        );
    }

    #[actix_web::test]
    async fn the_whole_flow_grants_the_identity_set() {
        let provider = OAuthProvider::start(Flavour::OAuth2).await;
        provider.set_identity(
            Identity::new("1234")
                .email("ann@example.com")
                .id_key(IdKey::NumericId),
        );
        let back = provider
            .follow(&authorization_url(
                &provider,
                &s256_challenge(VERIFIER),
                None,
            ))
            .await;
        assert_eq!(back.state.as_deref(), Some("st-1"));
        assert_eq!(back.error, None);
        assert!(
            back.location
                .starts_with("http://127.0.0.1:1/api/auth/test/callback?code="),
            "{}",
            back.location
        );
        let code = back.code.expect("a code");
        let (status, body) = exchange(&provider, &code, VERIFIER).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], ACCESS_TOKEN_LIFETIME);
        assert!(body["refresh_token"].is_string());
        assert!(body.get("id_token").is_none(), "plain OAuth 2.0: {body}");
        let access = body["access_token"].as_str().expect("a token");
        assert_eq!(provider.last_access_token().as_deref(), Some(access));

        let token_request = &provider.requests_to(Endpoint::Token)[0];
        assert_eq!(token_request.form_param("code_verifier"), Some(VERIFIER));
        assert_eq!(
            token_request.basic_credentials(),
            Some((CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned()))
        );

        let (status, _, info) = provider
            .get_with_bearer(&provider.url(Endpoint::Userinfo), access)
            .await;
        assert_eq!(status, 200);
        let info: Value = serde_json::from_str(&info).expect("JSON");
        assert_eq!(
            info,
            json!({"id": 1234, "email": "ann@example.com", "name": "Test user 1234"})
        );
        let (status, _, _) = provider
            .get_with_bearer(&provider.url(Endpoint::Userinfo), "not-a-token")
            .await;
        assert_eq!(status, 401);
    }

    #[actix_web::test]
    async fn a_wrong_verifier_is_refused_and_spends_the_code() {
        let provider = OAuthProvider::start(Flavour::OAuth2).await;
        let url = authorization_url(&provider, &s256_challenge(VERIFIER), None);
        let code = provider.follow(&url).await.code.expect("a code");
        let (status, body) = exchange(
            &provider,
            &code,
            "another-verifier-0123456789-0123456789-abc",
        )
        .await;
        assert_eq!((status, &body["error"]), (400, &json!("invalid_grant")));
        assert_eq!(body["error_description"], "PKCE verification failed");
        assert_eq!(
            provider.token_refusals(),
            ["invalid_grant: PKCE verification failed"]
        );
        let (status, body) = exchange(&provider, &code, VERIFIER).await;
        assert_eq!((status, &body["error"]), (400, &json!("invalid_grant")));
        assert!(provider.issued_tokens().is_empty());
    }

    #[actix_web::test]
    async fn a_code_is_single_use() {
        let provider = OAuthProvider::start(Flavour::OAuth2).await;
        let url = authorization_url(&provider, &s256_challenge(VERIFIER), None);
        let code = provider.follow(&url).await.code.expect("a code");
        assert_eq!(exchange(&provider, &code, VERIFIER).await.0, 200);
        let (status, body) = exchange(&provider, &code, VERIFIER).await;
        assert_eq!((status, &body["error"]), (400, &json!("invalid_grant")));
        assert_eq!(provider.issued_tokens().len(), 1);
    }

    #[actix_web::test]
    async fn client_credentials_are_checked_in_either_place() {
        let provider = OAuthProvider::start(Flavour::OAuth2).await;
        let url = authorization_url(&provider, &s256_challenge(VERIFIER), None);
        let token_url = provider.url(Endpoint::Token);
        let callback = "http://127.0.0.1:1/api/auth/test/callback";

        let code = provider.follow(&url).await.code.expect("a code");
        let wrong = format!("Basic {}", STANDARD.encode(format!("{CLIENT_ID}:nope")));
        let (status, body) = provider
            .post_form(
                &token_url,
                Some(&wrong),
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", callback),
                    ("code_verifier", VERIFIER),
                ],
            )
            .await;
        assert_eq!((status, &body["error"]), (401, &json!("invalid_client")));

        // A refused client does not spend the code; in the form it passes.
        let (status, body) = provider
            .post_form(
                &token_url,
                None,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", callback),
                    ("code_verifier", VERIFIER),
                    ("client_id", CLIENT_ID),
                    ("client_secret", CLIENT_SECRET),
                ],
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    #[actix_web::test]
    async fn authorize_insists_on_pkce_s256_and_the_client() {
        let provider = OAuthProvider::start(Flavour::OAuth2).await;
        let good = authorization_url(&provider, &s256_challenge(VERIFIER), None);

        let plain = good.replace("code_challenge_method=S256", "code_challenge_method=plain");
        let back = provider.follow(&plain).await;
        assert_eq!(back.error.as_deref(), Some("invalid_request"));
        assert_eq!(back.code, None);
        assert_eq!(back.state.as_deref(), Some("st-1"));

        let without = good.replace("&code_challenge=", "&other=");
        assert_eq!(
            provider.follow(&without).await.error.as_deref(),
            Some("invalid_request")
        );

        let stranger = good.replace(&form_encode(CLIENT_ID), "stranger");
        let (status, _, body) = provider.get(&stranger).await;
        assert_eq!(status, 400, "{body}");

        provider.expect_redirect_uri("https://app.example/callback");
        let (status, _, body) = provider.get(&good).await;
        assert_eq!(status, 400, "{body}");
    }

    #[actix_web::test]
    async fn the_id_token_verifies_against_the_jwks() {
        let provider = OAuthProvider::start(Flavour::Oidc).await;
        provider.set_identity(
            Identity::new("oidc-7")
                .email("bo@example.com")
                .verified(false),
        );

        let (status, _, discovery) = provider.get(&provider.url(Endpoint::Discovery)).await;
        assert_eq!(status, 200);
        let discovery: Value = serde_json::from_str(&discovery).expect("JSON");
        assert_eq!(discovery["issuer"], provider.issuer());
        let jwks_uri = discovery["jwks_uri"].as_str().expect("jwks_uri");
        let (status, _, jwks) = provider.get(jwks_uri).await;
        assert_eq!(status, 200);
        let jwks: Value = serde_json::from_str(&jwks).expect("JSON");
        let key = jwks["keys"][0].as_object().expect("one key").clone();
        assert_eq!(key.get("kid"), Some(&json!(KEY_ID)));
        assert!(key.get("d").is_none(), "the JWKS holds no private part");
        let jwk = Jwk::from_map(key).expect("a JWK");

        let url = authorization_url(&provider, &s256_challenge(VERIFIER), Some("n-0S6"));
        let code = provider.follow(&url).await.code.expect("a code");
        let (status, body) = exchange(&provider, &code, VERIFIER).await;
        assert_eq!(status, 200, "{body}");
        let id_token = body["id_token"].as_str().expect("an ID token");
        let (header, claims) = verify_rs256(id_token, &jwk).expect("it verifies");
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["kid"], KEY_ID);
        assert_eq!(claims["iss"], provider.issuer());
        assert_eq!(claims["aud"], CLIENT_ID);
        assert_eq!(claims["sub"], "oidc-7");
        assert_eq!(claims["email"], "bo@example.com");
        assert_eq!(claims["email_verified"], false);
        assert_eq!(claims["nonce"], "n-0S6");
        let iat = claims["iat"].as_i64().expect("iat");
        assert_eq!(claims["exp"].as_i64(), Some(iat + ID_TOKEN_LIFETIME));

        provider.sign_with_foreign_key(true);
        let code = provider.follow(&url).await.code.expect("a code");
        let (_, body) = exchange(&provider, &code, VERIFIER).await;
        let forged = body["id_token"].as_str().expect("an ID token");
        assert_eq!(verify_rs256(forged, &jwk), None);
    }

    #[actix_web::test]
    async fn the_github_flavour_serves_user_and_emails() {
        let provider = OAuthProvider::start(Flavour::GitHub).await;
        provider.set_identity(
            Identity::new("583231")
                .email("octo@example.com")
                .verified(true),
        );
        let url = authorization_url(&provider, &s256_challenge(VERIFIER), None);
        let code = provider.follow(&url).await.code.expect("a code");
        let (status, body) = exchange(&provider, &code, VERIFIER).await;
        assert_eq!(status, 200, "{body}");
        let access = body["access_token"].as_str().expect("a token");
        let (status, _, user) = provider
            .get_with_bearer(&provider.url(Endpoint::GitHubUser), access)
            .await;
        assert_eq!(status, 200);
        let user: Value = serde_json::from_str(&user).expect("JSON");
        assert_eq!(
            user,
            json!({"id": 583231, "login": "user583231", "email": "octo@example.com"})
        );
        let (status, _, emails) = provider
            .get_with_bearer(&provider.url(Endpoint::GitHubEmails), access)
            .await;
        assert_eq!(status, 200);
        let emails: Value = serde_json::from_str(&emails).expect("JSON");
        assert_eq!(emails[1]["email"], "octo@example.com");
        assert_eq!(emails[1]["primary"], true);
        assert_eq!(emails[1]["verified"], true);
        assert_eq!(emails[0]["primary"], false);
        let (status, _, _) = provider
            .get_with_bearer(&provider.url(Endpoint::GitHubEmails), "nope")
            .await;
        assert_eq!(status, 401);
    }

    #[actix_web::test]
    async fn oidc_authorize_wants_the_openid_scope() {
        let provider = OAuthProvider::start(Flavour::Oidc).await;
        let url = authorization_url(&provider, &s256_challenge(VERIFIER), None)
            .replace("scope=openid%20email", "scope=email");
        assert_eq!(
            provider.follow(&url).await.error.as_deref(),
            Some("invalid_request")
        );
        let plain = OAuthProvider::start(Flavour::OAuth2).await;
        let (status, _, _) = plain.get(&plain.url(Endpoint::Discovery)).await;
        assert_eq!(status, 404, "plain OAuth 2.0 has no discovery");
    }

    #[actix_web::test]
    async fn faults_answer_500_or_late_and_hung_requests_are_released() {
        let provider = OAuthProvider::start(Flavour::OAuth2).await;
        let userinfo = provider.url(Endpoint::Userinfo);

        provider.set_fault(Endpoint::Userinfo, Fault::ServerError);
        let (status, _, body) = provider.get(&userinfo).await;
        assert_eq!(status, 500);
        assert!(body.contains("server_error"), "{body}");

        provider.set_fault(Endpoint::Userinfo, Fault::Delay(Duration::from_millis(50)));
        assert_eq!(provider.get(&userinfo).await.0, 401, "late, then its job");

        provider.set_fault(Endpoint::Userinfo, Fault::Hang);
        let client = awc::Client::builder()
            .timeout(Duration::from_millis(300))
            .finish();
        let hung = client.get(&userinfo).send().await;
        assert!(
            matches!(hung, Err(awc::error::SendRequestError::Timeout)),
            "a hung endpoint never answers: {hung:?}"
        );
        assert!(
            provider
                .wait_for_requests(Endpoint::Userinfo, 3, Duration::from_secs(5))
                .await
        );

        // A request held when the fault is cleared is released (503).
        let held = {
            let url = userinfo.clone();
            actix_web::rt::spawn(async move {
                let client = awc::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .finish();
                client.get(&url).send().await.map(|r| r.status().as_u16())
            })
        };
        assert!(
            provider
                .wait_for_requests(Endpoint::Userinfo, 4, Duration::from_secs(5))
                .await
        );
        provider.clear_fault(Endpoint::Userinfo);
        let status = held.await.expect("joined").expect("an answer");
        assert_eq!(status, 503);
        assert_eq!(provider.get(&userinfo).await.0, 401);
    }
}

//! Social login end to end (issue 14): FastAPI Users' OAuth router and
//! OAuth associate router, over real HTTP, against the throwaway provider
//! of `portcullis_tests::oauth_provider` (plain OAuth 2.0, and OpenID
//! Connect with discovery and a JWKS), on the store `PORTCULLIS_TEST_STORE`
//! names (`scripts/test` runs it on memory, SQLite and PostgreSQL).
//!
//! Codes and bodies as FastAPI Users' `router/oauth.py` answers them:
//! `400 {"detail": "OAUTH_INVALID_STATE"}` (CSRF cookie missing or not the
//! state's), `ACCESS_TOKEN_DECODE_ERROR` / `ACCESS_TOKEN_ALREADY_EXPIRED`
//! (the state token), `OAUTH_NOT_AVAILABLE_EMAIL`,
//! `OAUTH_USER_ALREADY_EXISTS`, `LOGIN_BAD_CREDENTIALS` (inactive user),
//! and the bare `400 {"detail": "Bad Request"}` of an associate state issued
//! to another user.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use awc::http::Method;
use portcullis::PortcullisBuilder;
use portcullis::domain::{OAuthAccount, User, UserEvents, UserId};
use portcullis::oauth::{ProviderKind, ProviderSettings, Timeouts};
use portcullis::password::HasherConfig;
use portcullis::{AuthStrategy, async_trait};
use portcullis_tests::oauth_provider::{
    CLIENT_ID, CLIENT_SECRET, Endpoint, Fault, Flavour, IdKey, Identity, OAuthProvider,
    parse_query, s256_challenge,
};
use portcullis_tests::test_app::{
    Body, FRONTEND_URL, JWT_SECRET, PASSWORD, RESET_SECRET, SUPERUSER_EMAIL, SUPERUSER_PASSWORD,
    TestApp, TestDatabase, TestResponse, VERIFY_SECRET, assert_user, decode_jwt, hs256_jwt,
    hs256_signed_with, now, serve_built, sink_and_mailer, spawn_app_with,
};
use serde_json::{Value, json};

/// `OAUTH_STATE_SECRET` of every app here.
const STATE_SECRET: &str = "test-oauth-state-secret-0123456789abcdef-0123456789abcdef-012";
/// The provider's name in `OAUTH_PROVIDERS`.
const NAME: &str = "acme";
/// FastAPI Users' CSRF cookie.
const CSRF_COOKIE: &str = "fastapiusersoauthcsrf";
/// The audience of state tokens.
const STATE_AUDIENCE: &str = "fastapi-users:oauth-state";
/// How long to wait for the provider to see a request.
const PROVIDER_WAIT: Duration = Duration::from_secs(10);

/// How an app of this suite is set up beyond its provider.
struct Setup {
    associate_by_email: bool,
    verified_by_default: bool,
    cookie_secure: bool,
    scopes: Vec<String>,
    events: Option<Arc<dyn UserEvents>>,
    /// `TRUSTED_PROXIES`.
    trusted_proxies: &'static str,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            associate_by_email: false,
            verified_by_default: false,
            cookie_secure: true,
            scopes: Vec::new(),
            events: None,
            trusted_proxies: "",
        }
    }
}

/// A Portcullis app with the default [`Setup`] and one provider, `acme`,
/// pointing at a fresh throwaway provider of `flavour`.
async fn spawn(flavour: Flavour) -> (TestApp, OAuthProvider) {
    spawn_with(flavour, Setup::default()).await
}

/// A Portcullis app assembled as a host does (`PortcullisBuilder`), on a
/// fresh database of the store `PORTCULLIS_TEST_STORE` names (the auth
/// strategy `PORTCULLIS_TEST_AUTH_STRATEGY` names), with the harness's
/// secrets, mail sink and first superuser, and one provider, `acme`,
/// pointing at a fresh throwaway provider of `flavour` with the adapter's
/// default timeouts. ([`configured_from_the_environment`] goes through
/// `OAUTH_*` instead.)
async fn spawn_with(flavour: Flavour, setup: Setup) -> (TestApp, OAuthProvider) {
    let provider = OAuthProvider::start(flavour).await;
    let database = TestDatabase::fresh();
    let store = portcullis::open_store(&database.url)
        .await
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", database.url));
    let (sink, mailer) = sink_and_mailer().await;
    let kind = match flavour {
        Flavour::OAuth2 => ProviderKind::OAuth2 {
            authorize_url: provider.url(Endpoint::Authorize),
            token_url: provider.url(Endpoint::Token),
            userinfo_url: provider.url(Endpoint::Userinfo),
        },
        Flavour::Oidc => ProviderKind::Oidc {
            issuer: provider.issuer().to_owned(),
        },
        Flavour::GitHub => ProviderKind::GitHub {
            authorize_url: provider.url(Endpoint::Authorize),
            token_url: provider.url(Endpoint::Token),
            api_url: provider.base_url().to_owned(),
        },
    };
    let strategy = match std::env::var("PORTCULLIS_TEST_AUTH_STRATEGY").as_deref() {
        Ok("database") => AuthStrategy::Database,
        _ => AuthStrategy::Jwt,
    };
    let mut builder = PortcullisBuilder::new()
        .store(Arc::clone(&store))
        .oauth_accounts(store)
        .hasher_config(HasherConfig {
            argon2_memory_kib: 8192,
            argon2_iterations: 1,
            ..HasherConfig::default()
        })
        .token_secrets(JWT_SECRET, RESET_SECRET, VERIFY_SECRET)
        .auth_strategy(strategy)
        .frontend_url(FRONTEND_URL)
        .mailer(mailer)
        .auth_rate_limit_per_minute(0)
        .cookie_secure(setup.cookie_secure)
        .trusted_proxies(
            setup
                .trusted_proxies
                .parse()
                .expect("a TRUSTED_PROXIES list"),
        )
        .oauth_state_secret(STATE_SECRET)
        .oauth_associate_by_email(setup.associate_by_email)
        .oauth_verified_by_default(setup.verified_by_default)
        .oauth_provider(ProviderSettings {
            name: NAME.to_owned(),
            kind,
            client_id: CLIENT_ID.to_owned(),
            client_secret: CLIENT_SECRET.to_owned(),
            scopes: setup.scopes,
            redirect_url: None,
            timeouts: Timeouts::default(),
        });
    if let Some(events) = setup.events {
        builder = builder.events(events);
    }
    let service = builder.build().expect("the service builds");
    portcullis::ensure_first_superuser(&service, SUPERUSER_EMAIL, SUPERUSER_PASSWORD)
        .await
        .expect("the first superuser");
    let app = serve_built(service, sink, database);
    // The redirect URL defaults to the callback route's own URL.
    provider.expect_redirect_uri(app.url(&format!("/auth/{NAME}/callback")));
    (app, provider)
}

/// What an authorize step gave.
#[derive(Debug)]
struct Authorized {
    authorization_url: String,
    /// The CSRF cookie's value.
    csrf: String,
    /// The whole `Set-Cookie` header of the CSRF cookie.
    set_cookie: String,
}

impl Authorized {
    /// The query of the authorization URL.
    fn query(&self) -> Vec<(String, String)> {
        parse_query(
            self.authorization_url
                .split_once('?')
                .map_or("", |(_, q)| q),
        )
    }

    fn param(&self, name: &str) -> Option<String> {
        self.query()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// `GET path` (an authorize route) with an optional bearer token; asserts
/// `200 {"authorization_url": …}` and a CSRF cookie.
async fn authorize_at(app: &TestApp, path: &str, token: Option<&str>) -> Authorized {
    let res = app.send(Method::GET, path, token, Body::Empty).await;
    let body = res.expect_json(200);
    let keys: Vec<&String> = body.as_object().expect("an object").keys().collect();
    assert_eq!(keys, ["authorization_url"], "{body}");
    let authorization_url = body["authorization_url"]
        .as_str()
        .expect("a string")
        .to_owned();
    let set_cookie = csrf_set_cookie(&res);
    let csrf = set_cookie
        .strip_prefix(&format!("{CSRF_COOKIE}="))
        .and_then(|rest| rest.split(';').next())
        .expect("a value")
        .to_owned();
    Authorized {
        authorization_url,
        csrf,
        set_cookie,
    }
}

/// `GET /auth/acme/authorize`.
async fn authorize(app: &TestApp) -> Authorized {
    authorize_at(app, &format!("/auth/{NAME}/authorize"), None).await
}

/// `GET /auth/associate/acme/authorize` as the holder of `token`.
async fn associate_authorize(app: &TestApp, token: &str) -> Authorized {
    authorize_at(
        app,
        &format!("/auth/associate/{NAME}/authorize"),
        Some(token),
    )
    .await
}

/// The `Set-Cookie` header of the CSRF cookie; panics without one.
fn csrf_set_cookie(res: &TestResponse) -> String {
    res.headers
        .get_all("set-cookie")
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{CSRF_COOKIE}=")))
        .unwrap_or_else(|| panic!("no {CSRF_COOKIE} cookie in {:?}", res.headers))
        .to_owned()
}

/// The attributes of a `Set-Cookie` header, lowercased, without the
/// name=value pair, sorted.
fn cookie_attributes(set_cookie: &str) -> Vec<String> {
    let mut attributes: Vec<String> = set_cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .filter(|a| !a.is_empty())
        .collect();
    attributes.sort();
    attributes
}

/// `GET url` (a callback with its query) with the CSRF cookie when given
/// and a bearer token when given.
async fn callback_at(
    app: &TestApp,
    url: &str,
    csrf: Option<&str>,
    token: Option<&str>,
) -> TestResponse {
    let cookie = csrf.map(|c| format!("{CSRF_COOKIE}={c}"));
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if let Some(cookie) = &cookie {
        headers.push(("cookie", cookie));
    }
    if let Some(auth) = &auth {
        headers.push(("authorization", auth));
    }
    app.send_to(Method::GET, url, &headers, Body::Empty).await
}

/// The callback URL with this code and state.
fn callback_url(app: &TestApp, code: &str, state: &str) -> String {
    format!(
        "{}?code={}&state={}",
        app.url(&format!("/auth/{NAME}/callback")),
        encode(code),
        encode(state)
    )
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A whole social login as a browser does it: authorize, the provider,
/// back to the callback with the CSRF cookie.
async fn social_login(app: &TestApp, provider: &OAuthProvider) -> TestResponse {
    let authorized = authorize(app).await;
    let back = provider.follow(&authorized.authorization_url).await;
    assert!(back.code.is_some(), "the provider granted: {back:?}");
    callback_at(app, &back.location, Some(&authorized.csrf), None).await
}

/// Asserts a bearer login answer and returns its access token.
#[track_caller]
fn bearer_token(res: &TestResponse) -> String {
    let body = res.expect_json(200);
    assert_eq!(body["token_type"], "bearer", "{body}");
    let keys: Vec<&String> = body.as_object().expect("an object").keys().collect();
    assert_eq!(keys.len(), 2, "access_token and token_type only: {body}");
    body["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no access_token in {body}"))
        .to_owned()
}

/// `GET /users/me` with `token`: the user JSON.
async fn me(app: &TestApp, token: &str) -> Value {
    app.me(token).await.expect_json(200)
}

/// The provider accounts stored for `user_id`, read through a second
/// connection to the app's database; `None` on memory, which cannot be
/// looked into from outside.
async fn stored_accounts(app: &TestApp, user_id: &str) -> Option<Vec<OAuthAccount>> {
    if app.database.store() == "memory" {
        return None;
    }
    let store = portcullis::open_store(&app.database.url)
        .await
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", app.database.url));
    let user = UserId::parse(user_id).expect("a user id");
    Some(
        store
            .oauth_accounts_of(user)
            .await
            .expect("the store answers"),
    )
}

/// Asserts the one account stored for `user_id` (where the store can be
/// looked into) is the provider's `account_id` with the provider's last
/// tokens.
async fn assert_linked(
    app: &TestApp,
    provider: &OAuthProvider,
    user_id: &str,
    account_id: &str,
    email: &str,
) {
    let issued = provider.issued_tokens();
    let last = issued.last().expect("the provider issued tokens");
    assert_linked_with(app, last, user_id, account_id, email).await;
}

/// [`assert_linked`] with the provider's token answer `last` (an earlier
/// one than its last).
async fn assert_linked_with(
    app: &TestApp,
    last: &Value,
    user_id: &str,
    account_id: &str,
    email: &str,
) {
    let Some(accounts) = stored_accounts(app, user_id).await else {
        return;
    };
    assert_eq!(accounts.len(), 1, "{accounts:?}");
    let account = &accounts[0];
    assert_eq!(account.user_id.to_string(), user_id);
    assert_eq!(account.oauth_name, NAME);
    assert_eq!(account.account_id, account_id);
    assert_eq!(account.account_email, email);
    assert_eq!(account.access_token, last["access_token"].as_str().unwrap());
    assert_eq!(
        account.refresh_token.as_deref(),
        last["refresh_token"].as_str()
    );
    let expires_at = account.expires_at.expect("the provider said expires_in");
    let expected = now() + 3600;
    assert!(
        (expected - 120..=expected + 5).contains(&expires_at),
        "expires_at {expires_at} is about now + expires_in ({expected})"
    );
}

/// Asserts the answer to a provider's refusal (its OAuth error answer, an
/// ID token that does not check out): `400 {"detail":
/// "OAUTH_PROVIDER_ERROR"}` (the provider's words go to the log only).
#[track_caller]
fn expect_provider_refused(res: &TestResponse) {
    res.expect_code("OAUTH_PROVIDER_ERROR");
}

/// Asserts the answer to a provider that could not be reached, did not
/// answer in time or failed (5xx): `502 {"detail":
/// "OAUTH_PROVIDER_UNAVAILABLE"}`.
#[track_caller]
fn expect_provider_unavailable(res: &TestResponse) {
    assert_eq!(
        res.expect_json(502),
        json!({"detail": "OAUTH_PROVIDER_UNAVAILABLE"})
    );
}

// ----- authorize -----

/// Headers by which a client would name another host and scheme.
const FORWARDED_ELSEWHERE: [(&str, &str); 3] = [
    ("x-forwarded-host", "evil.example"),
    ("x-forwarded-proto", "https"),
    ("forwarded", "host=evil.example;proto=https"),
];

#[actix_web::test]
async fn forwarded_headers_name_the_redirect_host_only_from_a_trusted_proxy() {
    // From a peer that is not a trusted proxy (none is, by default), the
    // default redirect URL is the request's own host: a client cannot make
    // the provider send the code to evil.example.
    let (app, provider) = spawn(Flavour::OAuth2).await;
    let own = app.url(&format!("/auth/{NAME}/callback"));
    for header in FORWARDED_ELSEWHERE {
        let res = app
            .send_with(
                Method::GET,
                &format!("/auth/{NAME}/authorize"),
                &[header],
                Body::Empty,
            )
            .await;
        let url = res.expect_json(200)["authorization_url"]
            .as_str()
            .expect("a string")
            .to_owned();
        let authorized = Authorized {
            authorization_url: url,
            csrf: String::new(),
            set_cookie: String::new(),
        };
        assert_eq!(
            authorized.param("redirect_uri").as_deref(),
            Some(own.as_str()),
            "{header:?}"
        );
    }
    // All at once, through a whole login: the provider is sent back to the
    // app itself.
    let res = app
        .send_with(
            Method::GET,
            &format!("/auth/{NAME}/authorize"),
            &FORWARDED_ELSEWHERE,
            Body::Empty,
        )
        .await;
    let url = res.expect_json(200)["authorization_url"]
        .as_str()
        .expect("a string")
        .to_owned();
    let back = provider.follow(&url).await;
    assert!(back.code.is_some(), "{back:?}");

    // Behind a trusted proxy (the test client's own address), they count.
    let (app, provider) = spawn_with(
        Flavour::OAuth2,
        Setup {
            trusted_proxies: "127.0.0.1, ::1",
            ..Setup::default()
        },
    )
    .await;
    let proxied = format!(
        "https://app.example{}",
        own.split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
            .expect("a path")
    );
    provider.expect_redirect_uri(proxied.clone());
    let res = app
        .send_with(
            Method::GET,
            &format!("/auth/{NAME}/authorize"),
            &[
                ("x-forwarded-host", "app.example"),
                ("x-forwarded-proto", "https"),
            ],
            Body::Empty,
        )
        .await;
    let url = res.expect_json(200)["authorization_url"]
        .as_str()
        .expect("a string")
        .to_owned();
    let authorized = Authorized {
        authorization_url: url,
        csrf: String::new(),
        set_cookie: String::new(),
    };
    assert_eq!(authorized.param("redirect_uri"), Some(proxied));
}

#[actix_web::test]
async fn authorize_gives_the_provider_url_a_csrf_cookie_and_pkce() {
    let (app, provider) = spawn(Flavour::OAuth2).await;
    let authorized = authorize(&app).await;

    assert!(
        authorized
            .authorization_url
            .starts_with(&format!("{}?", provider.url(Endpoint::Authorize))),
        "{}",
        authorized.authorization_url
    );
    assert_eq!(authorized.param("response_type").as_deref(), Some("code"));
    assert_eq!(authorized.param("client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(
        authorized.param("redirect_uri"),
        Some(app.url(&format!("/auth/{NAME}/callback")))
    );
    assert_eq!(
        authorized.param("code_challenge_method").as_deref(),
        Some("S256")
    );
    let challenge = authorized.param("code_challenge").expect("a challenge");
    assert_eq!(challenge.len(), 43, "BASE64URL(SHA-256): {challenge}");

    // The state: FastAPI Users' HS256 state token carrying the CSRF token.
    let state = authorized.param("state").expect("a state");
    assert!(hs256_signed_with(&state, STATE_SECRET), "{state}");
    let (header, claims) = decode_jwt(&state);
    assert_eq!(header["alg"], "HS256");
    assert_eq!(claims["aud"], json!(STATE_AUDIENCE));
    assert_eq!(claims["csrftoken"], json!(authorized.csrf));
    let exp = claims["exp"].as_i64().expect("exp in whole seconds");
    assert!(
        (now() + 3590..=now() + 3600).contains(&exp),
        "1 h: {claims}"
    );
    assert!(claims.get("sub").is_none(), "no user in a login state");

    // The cookie: FastAPI Users' attributes, Secure by default.
    assert!(
        authorized.csrf.len() >= 43,
        "token_urlsafe(32): {}",
        authorized.csrf
    );
    assert_eq!(
        cookie_attributes(&authorized.set_cookie),
        [
            "httponly",
            "max-age=3600",
            "path=/",
            "samesite=lax",
            "secure"
        ],
        "{}",
        authorized.set_cookie
    );

    // Two authorizations: two CSRF tokens, two challenges.
    let again = authorize(&app).await;
    assert_ne!(again.csrf, authorized.csrf);
    assert_ne!(again.param("code_challenge"), Some(challenge));
}

#[actix_web::test]
async fn the_csrf_cookie_is_not_secure_with_cookie_secure_false() {
    let (app, _provider) = spawn_with(
        Flavour::OAuth2,
        Setup {
            cookie_secure: false,
            ..Setup::default()
        },
    )
    .await;
    let authorized = authorize(&app).await;
    assert_eq!(
        cookie_attributes(&authorized.set_cookie),
        ["httponly", "max-age=3600", "path=/", "samesite=lax"],
        "{}",
        authorized.set_cookie
    );
}

#[actix_web::test]
async fn authorize_asks_for_the_scopes_given() {
    let (app, _provider) = spawn_with(
        Flavour::OAuth2,
        Setup {
            scopes: vec!["email".into(), "profile".into()],
            ..Setup::default()
        },
    )
    .await;
    let configured = authorize(&app).await;
    assert_eq!(configured.param("scope").as_deref(), Some("email profile"));

    let asked = authorize_at(
        &app,
        &format!("/auth/{NAME}/authorize?scopes=read&scopes=write"),
        None,
    )
    .await;
    assert_eq!(asked.param("scope").as_deref(), Some("read write"));
}

#[actix_web::test]
async fn an_unknown_provider_is_404() {
    let (app, _provider) = spawn(Flavour::OAuth2).await;
    app.get("/auth/nope/authorize").await.expect_404();
    app.get("/auth/nope/callback?code=c&state=s")
        .await
        .expect_404();
}

// ----- callback: new users, known accounts -----

#[actix_web::test]
async fn a_new_account_creates_an_unverified_user_and_logs_in() {
    let (app, provider) = spawn(Flavour::OAuth2).await;
    provider.set_identity(
        Identity::new("4242")
            .email("newcomer@example.com")
            .verified(true)
            .id_key(IdKey::NumericId),
    );
    let authorized = authorize(&app).await;
    let back = provider.follow(&authorized.authorization_url).await;
    let res = callback_at(&app, &back.location, Some(&authorized.csrf), None).await;
    let token = bearer_token(&res);

    let user = me(&app, &token).await;
    // OAUTH_VERIFIED_BY_DEFAULT is false: the provider's word is not taken.
    assert_user(&user, "newcomer@example.com", true, false, false, "student");
    app.database.assert_holds("newcomer@example.com").await;

    // PKCE: the verifier sent to the provider is the challenge's; the
    // client authenticated with HTTP Basic (oauth2's default).
    let token_requests = provider.requests_to(Endpoint::Token);
    assert_eq!(token_requests.len(), 1);
    let exchange = &token_requests[0];
    let verifier = exchange.form_param("code_verifier").expect("a verifier");
    assert_eq!(
        Some(s256_challenge(verifier)),
        authorized.param("code_challenge")
    );
    assert!(
        (43..=128).contains(&verifier.len()),
        "RFC 7636 verifier: {verifier}"
    );
    assert_eq!(
        exchange.form_param("grant_type"),
        Some("authorization_code")
    );
    assert_eq!(exchange.form_param("code"), back.code.as_deref());
    assert_eq!(
        exchange.basic_credentials(),
        Some((CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned()))
    );
    assert_eq!(exchange.form_param("client_secret"), None, "not sent twice");

    // The user info was read with the provider's access token.
    let userinfo = provider.requests_to(Endpoint::Userinfo);
    assert_eq!(userinfo.len(), 1);
    assert_eq!(
        userinfo[0].authorization,
        Some(format!("Bearer {}", provider.last_access_token().unwrap()))
    );

    let id = TestApp::id_of(&user);
    assert_linked(&app, &provider, &id, "4242", "newcomer@example.com").await;

    // The random password it got is nobody's: no password logs in.
    app.login("newcomer@example.com", PASSWORD)
        .await
        .expect_code("LOGIN_BAD_CREDENTIALS");
}

#[actix_web::test]
async fn oauth_verified_by_default_makes_new_users_verified() {
    let (app, provider) = spawn_with(
        Flavour::OAuth2,
        Setup {
            verified_by_default: true,
            ..Setup::default()
        },
    )
    .await;
    provider.set_identity(Identity::new("sub-1").email("trusted@example.com"));
    let token = bearer_token(&social_login(&app, &provider).await);
    let user = me(&app, &token).await;
    assert_user(&user, "trusted@example.com", true, false, true, "student");
}

#[actix_web::test]
async fn a_known_account_logs_in_and_its_provider_tokens_are_updated() {
    let (app, provider) = spawn(Flavour::OAuth2).await;
    provider.set_identity(
        Identity::new("acct-9")
            .email("returning@example.com")
            .id_key(IdKey::Id),
    );
    let first = bearer_token(&social_login(&app, &provider).await);
    let user = me(&app, &first).await;
    let id = TestApp::id_of(&user);
    let first_provider_token = provider.last_access_token().expect("issued");

    // The provider now says another address: the account id decides.
    provider.set_identity(
        Identity::new("acct-9")
            .email("renamed@example.com")
            .id_key(IdKey::Id),
    );
    let second = bearer_token(&social_login(&app, &provider).await);
    let again = me(&app, &second).await;
    assert_eq!(again, user, "the same user, unchanged");
    assert_ne!(provider.last_access_token().unwrap(), first_provider_token);
    assert_linked(&app, &provider, &id, "acct-9", "renamed@example.com").await;
}

#[actix_web::test]
async fn the_cookie_transport_callback_sets_the_session_cookie() {
    let (app, provider) = spawn(Flavour::OAuth2).await;
    let callback = app.url(&format!("/auth/cookie/{NAME}/callback"));
    provider.expect_redirect_uri(callback.clone());
    provider.set_identity(Identity::new("jar-1").email("jar@example.com"));
    let authorized = authorize_at(&app, &format!("/auth/cookie/{NAME}/authorize"), None).await;
    assert_eq!(authorized.param("redirect_uri"), Some(callback));
    let back = provider.follow(&authorized.authorization_url).await;
    let res = callback_at(&app, &back.location, Some(&authorized.csrf), None).await;
    // As POST /auth/cookie/login answers: 204, the session cookie.
    res.expect_empty(204);
    let session = res
        .headers
        .get_all("set-cookie")
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("fastapiusersauth="))
        .unwrap_or_else(|| panic!("no session cookie in {:?}", res.headers))
        .to_owned();
    assert!(
        cookie_attributes(&session).contains(&"httponly".to_owned()),
        "{session}"
    );
    let pair = session.split(';').next().unwrap().to_owned();
    let user = app
        .send_with(Method::GET, "/users/me", &[("cookie", &pair)], Body::Empty)
        .await
        .expect_json(200);
    assert_user(&user, "jar@example.com", true, false, false, "student");
}

#[actix_web::test]
async fn a_callback_without_a_code_is_a_bare_400_and_a_provider_error_is_named() {
    // httpx-oauth's OAuth2AuthorizeCallback: `400 {"detail": error}`, or
    // FastAPI's phrase when there is no error either.
    let (app, provider) = spawn(Flavour::OAuth2).await;
    let authorized = authorize(&app).await;
    let state = authorized.param("state").expect("a state");
    let base = app.url(&format!("/auth/{NAME}/callback"));
    let denied = format!("{base}?error=access_denied&state={}", encode(&state));
    assert_eq!(
        callback_at(&app, &denied, Some(&authorized.csrf), None)
            .await
            .expect_json(400),
        json!({"detail": "access_denied"})
    );
    let no_code = format!("{base}?state={}", encode(&state));
    assert_eq!(
        callback_at(&app, &no_code, Some(&authorized.csrf), None)
            .await
            .expect_json(400),
        json!({"detail": "Bad Request"})
    );
    assert!(provider.requests_to(Endpoint::Token).is_empty());
}

// ----- callback: the state and the CSRF cookie -----

#[actix_web::test]
async fn a_tampered_state_is_access_token_decode_error() {
    let (app, provider) = spawn(Flavour::OAuth2).await;
    let authorized = authorize(&app).await;
    let back = provider.follow(&authorized.authorization_url).await;
    let code = back.code.clone().expect("a code");
    let state = back.state.clone().expect("a state");

    // Its claims changed, signature kept.
    let (_, mut claims) = decode_jwt(&state);
    claims["csrftoken"] = json!("someone-else");
    let parts: Vec<&str> = state.split('.').collect();
    let payload = portcullis_tests::test_app::b64url_encode(&serde_json::to_vec(&claims).unwrap());
    let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
    // Signed with another secret; signed with the access-token secret; not
    // a JWT at all; the wrong audience.
    let other_secret = hs256_jwt(&claims, "another-secret-0123456789abcdef-0123456789abcdef");
    let mut wrong_aud = claims.clone();
    wrong_aud["aud"] = json!(["fastapi-users:auth"]);
    let wrong_aud = hs256_jwt(&wrong_aud, STATE_SECRET);

    for bad in [tampered, other_secret, "not-a-jwt".to_owned(), wrong_aud] {
        let res = callback_at(
            &app,
            &callback_url(&app, &code, &bad),
            Some(&authorized.csrf),
            None,
        )
        .await;
        res.expect_code("ACCESS_TOKEN_DECODE_ERROR");
    }
    // Refused before the code was spent: the provider saw no exchange.
    assert!(provider.requests_to(Endpoint::Token).is_empty());
}

#[actix_web::test]
async fn an_expired_state_is_access_token_already_expired() {
    let (app, provider) = spawn(Flavour::OAuth2).await;
    let authorized = authorize(&app).await;
    let back = provider.follow(&authorized.authorization_url).await;
    let expired = hs256_jwt(
        &json!({
            "csrftoken": authorized.csrf,
            "aud": STATE_AUDIENCE,
            "exp": now() - 30,
        }),
        STATE_SECRET,
    );
    let res = callback_at(
        &app,
        &callback_url(&app, back.code.as_deref().unwrap(), &expired),
        Some(&authorized.csrf),
        None,
    )
    .await;
    res.expect_code("ACCESS_TOKEN_ALREADY_EXPIRED");
    assert!(provider.requests_to(Endpoint::Token).is_empty());
}

#[actix_web::test]
async fn a_missing_or_foreign_csrf_cookie_is_oauth_invalid_state() {
    let (app, provider) = spawn(Flavour::OAuth2).await;
    let authorized = authorize(&app).await;
    let back = provider.follow(&authorized.authorization_url).await;

    callback_at(&app, &back.location, None, None)
        .await
        .expect_code("OAUTH_INVALID_STATE");
    callback_at(&app, &back.location, Some(""), None)
        .await
        .expect_code("OAUTH_INVALID_STATE");
    // Another flow's cookie (the attacker's own authorization).
    let other = authorize(&app).await;
    callback_at(&app, &back.location, Some(&other.csrf), None)
        .await
        .expect_code("OAUTH_INVALID_STATE");
    // A valid state without a CSRF token in it.
    let no_csrf = hs256_jwt(
        &json!({"aud": STATE_AUDIENCE, "exp": now() + 600}),
        STATE_SECRET,
    );
    callback_at(
        &app,
        &callback_url(&app, back.code.as_deref().unwrap(), &no_csrf),
        Some(&authorized.csrf),
        None,
    )
    .await
    .expect_code("OAUTH_INVALID_STATE");
    assert!(provider.requests_to(Endpoint::Token).is_empty());

    // The right cookie still works: nothing was spent.
    let token =
        bearer_token(&callback_at(&app, &back.location, Some(&authorized.csrf), None).await);
    me(&app, &token).await;
}

#[actix_web::test]
async fn the_provider_checks_pkce_and_a_code_of_another_flow_fails() {
    let (app, provider) = spawn(Flavour::OAuth2).await;
    provider.set_identity(
        Identity::new("victim-1")
            .email("victim@example.com")
            .verified(true),
    );
    // The victim's code, injected into the attacker's own flow (their
    // state and cookie): the verifier is the attacker flow's, not the
    // challenge the code was issued for.
    let victim = authorize(&app).await;
    let victim_code = provider
        .follow(&victim.authorization_url)
        .await
        .code
        .expect("a code");
    let attacker = authorize(&app).await;
    let attacker_state = attacker.param("state").expect("a state");
    let res = callback_at(
        &app,
        &callback_url(&app, &victim_code, &attacker_state),
        Some(&attacker.csrf),
        None,
    )
    .await;
    expect_provider_refused(&res);
    assert_eq!(
        provider.token_refusals(),
        ["invalid_grant: PKCE verification failed"]
    );

    let exchange = &provider.requests_to(Endpoint::Token)[0];
    let sent = exchange.form_param("code_verifier").expect("a verifier");
    assert_eq!(
        Some(s256_challenge(sent)),
        attacker.param("code_challenge"),
        "the verifier of the flow the state belongs to"
    );
    assert!(provider.issued_tokens().is_empty(), "no token was issued");
    assert!(provider.requests_to(Endpoint::Userinfo).is_empty());
    // Nobody was created: the address is free.
    app.register_ok("victim@example.com", PASSWORD).await;
}

// ----- callback: addresses -----

#[actix_web::test]
async fn an_address_of_an_existing_user_is_refused_without_association() {
    let (app, provider) = spawn(Flavour::OAuth2).await;
    let (user, password_token) = app.new_user("taken@example.com").await;
    provider.set_identity(
        Identity::new("gh-1")
            .email("taken@example.com")
            .verified(true),
    );
    social_login(&app, &provider)
        .await
        .expect_code("OAUTH_USER_ALREADY_EXISTS");
    // Differently cased, the same address.
    provider.set_identity(
        Identity::new("gh-1")
            .email("TAKEN@example.com")
            .verified(true),
    );
    social_login(&app, &provider)
        .await
        .expect_code("OAUTH_USER_ALREADY_EXISTS");
    assert_eq!(me(&app, &password_token).await, user);
    if let Some(accounts) = stored_accounts(&app, &TestApp::id_of(&user)).await {
        assert!(accounts.is_empty(), "{accounts:?}");
    }
}

#[actix_web::test]
async fn associate_by_email_links_a_verified_address_to_the_existing_user() {
    let (app, provider) = spawn_with(
        Flavour::OAuth2,
        Setup {
            associate_by_email: true,
            ..Setup::default()
        },
    )
    .await;
    let (user, _) = app.new_user("linked@example.com").await;
    provider.set_identity(
        Identity::new("g-77")
            .email("linked@example.com")
            .verified(true),
    );
    let token = bearer_token(&social_login(&app, &provider).await);
    assert_eq!(
        me(&app, &token).await,
        user,
        "logged in as the existing user"
    );
    let id = TestApp::id_of(&user);
    assert_linked(&app, &provider, &id, "g-77", "linked@example.com").await;
    // The password still works.
    app.login_token("linked@example.com", PASSWORD).await;
}

#[actix_web::test]
async fn associate_by_email_refuses_an_address_the_provider_did_not_verify() {
    let (app, provider) = spawn_with(
        Flavour::OAuth2,
        Setup {
            associate_by_email: true,
            ..Setup::default()
        },
    )
    .await;
    let (user, _) = app.new_user("victim@example.com").await;
    for identity in [
        Identity::new("evil-1")
            .email("victim@example.com")
            .verified(false),
        // Not said at all is not verified.
        Identity::new("evil-2").email("victim@example.com"),
    ] {
        provider.set_identity(identity);
        social_login(&app, &provider)
            .await
            .expect_code("OAUTH_USER_ALREADY_EXISTS");
    }
    if let Some(accounts) = stored_accounts(&app, &TestApp::id_of(&user)).await {
        assert!(accounts.is_empty(), "{accounts:?}");
    }
}

#[actix_web::test]
async fn no_address_from_the_provider_is_oauth_not_available_email() {
    let (app, provider) = spawn(Flavour::OAuth2).await;
    provider.set_identity(Identity::new("mute-1"));
    social_login(&app, &provider)
        .await
        .expect_code("OAUTH_NOT_AVAILABLE_EMAIL");
}

#[actix_web::test]
async fn an_inactive_user_is_login_bad_credentials() {
    let (app, provider) = spawn(Flavour::OAuth2).await;
    provider.set_identity(Identity::new("idle-1").email("idle@example.com"));
    let token = bearer_token(&social_login(&app, &provider).await);
    let id = TestApp::id_of(&me(&app, &token).await);
    app.admin_patch(&id, &json!({"is_active": false}))
        .await
        .expect_json(200);
    social_login(&app, &provider)
        .await
        .expect_code("LOGIN_BAD_CREDENTIALS");
}

// ----- the provider failing -----

#[actix_web::test]
async fn a_provider_answering_500_is_a_502_and_its_refusal_a_400() {
    let (app, provider) = spawn(Flavour::OAuth2).await;
    for endpoint in [Endpoint::Token, Endpoint::Userinfo] {
        // A 5xx (here with an RFC 6749 error body) is the provider's
        // outage, not its refusal: 502.
        provider.set_fault(endpoint, Fault::ServerError);
        expect_provider_unavailable(&social_login(&app, &provider).await);
        provider.clear_fault(endpoint);
    }
    // A provider's refusal of the code (its 400) is not an outage.
    provider.set_fault(
        Endpoint::Token,
        Fault::Status(400, json!({"error": "invalid_grant"})),
    );
    expect_provider_refused(&social_login(&app, &provider).await);
    provider.clear_fault(Endpoint::Token);
    // It recovers.
    bearer_token(&social_login(&app, &provider).await);
}

#[actix_web::test]
async fn a_provider_that_never_answers_is_a_502_not_a_hang() {
    let (app, provider) = spawn(Flavour::OAuth2).await;
    for (endpoint, seen) in [(Endpoint::Token, 1), (Endpoint::Userinfo, 1)] {
        provider.set_fault(endpoint, Fault::Hang);
        let res = social_login(&app, &provider).await;
        assert!(
            provider
                .wait_for_requests(endpoint, seen, PROVIDER_WAIT)
                .await,
            "Portcullis asked {endpoint:?}"
        );
        expect_provider_unavailable(&res);
        provider.clear_fault(endpoint);
    }
}

#[actix_web::test]
async fn a_slow_provider_within_the_timeouts_is_fine() {
    let (app, provider) = spawn(Flavour::OAuth2).await;
    provider.set_fault(Endpoint::Token, Fault::Delay(Duration::from_millis(300)));
    provider.set_fault(Endpoint::Userinfo, Fault::Delay(Duration::from_millis(300)));
    bearer_token(&social_login(&app, &provider).await);
}

#[actix_web::test]
async fn an_unreachable_provider_is_a_502() {
    // A provider that is gone: its port refuses connections.
    let (app, provider) = spawn(Flavour::OAuth2).await;
    let authorized = authorize(&app).await;
    let back = provider.follow(&authorized.authorization_url).await;
    drop(provider);
    // Wait until the port is closed for real.
    let url = back.location.clone();
    let port_closed = async {
        loop {
            let probe = awc::Client::builder()
                .timeout(Duration::from_secs(2))
                .finish();
            // The provider's base URL is in the authorization URL.
            let base = authorized
                .authorization_url
                .split("/authorize")
                .next()
                .unwrap()
                .to_owned();
            if probe.get(format!("{base}/jwks")).send().await.is_err() {
                break;
            }
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(PROVIDER_WAIT, port_closed)
        .await
        .expect("the provider stops");
    expect_provider_unavailable(&callback_at(&app, &url, Some(&authorized.csrf), None).await);
}

// ----- associate -----

#[actix_web::test]
async fn associate_links_a_provider_account_to_the_current_user() {
    let (app, provider) = spawn(Flavour::OAuth2).await;
    provider.expect_redirect_uri(app.url(&format!("/auth/associate/{NAME}/callback")));
    let (user, token) = app.new_user("ann@example.com").await;
    let id = TestApp::id_of(&user);
    provider.set_identity(
        Identity::new("ann-at-acme")
            .email("ann.other@example.com")
            .verified(false),
    );

    let authorized = associate_authorize(&app, &token).await;
    assert_eq!(
        authorized.param("redirect_uri"),
        Some(app.url(&format!("/auth/associate/{NAME}/callback")))
    );
    let (_, claims) = decode_jwt(&authorized.param("state").unwrap());
    assert_eq!(claims["sub"], json!(id), "the state names the user");
    assert_eq!(claims["csrftoken"], json!(authorized.csrf));

    let back = provider.follow(&authorized.authorization_url).await;
    let res = callback_at(&app, &back.location, Some(&authorized.csrf), Some(&token)).await;
    assert_eq!(res.expect_json(200), user, "the user, unchanged");
    assert_linked(&app, &provider, &id, "ann-at-acme", "ann.other@example.com").await;

    // From now on that provider account logs Ann in.
    provider.expect_redirect_uri(app.url(&format!("/auth/{NAME}/callback")));
    let social = bearer_token(&social_login(&app, &provider).await);
    assert_eq!(me(&app, &social).await, user);
}

#[actix_web::test]
async fn associate_needs_a_logged_in_user() {
    let (app, provider) = spawn(Flavour::OAuth2).await;
    app.get(&format!("/auth/associate/{NAME}/authorize"))
        .await
        .expect_401();
    let (_, token) = app.new_user("bo@example.com").await;
    let authorized = associate_authorize(&app, &token).await;
    provider.expect_redirect_uri(app.url(&format!("/auth/associate/{NAME}/callback")));
    let back = provider.follow(&authorized.authorization_url).await;
    callback_at(&app, &back.location, Some(&authorized.csrf), None)
        .await
        .expect_401();
}

#[actix_web::test]
async fn associate_refuses_an_account_of_another_user_and_a_state_of_another_user() {
    let (app, provider) = spawn(Flavour::OAuth2).await;
    // Cy signs up with the provider account.
    provider.set_identity(
        Identity::new("shared-1")
            .email("cy@example.com")
            .verified(true),
    );
    let cy_token = bearer_token(&social_login(&app, &provider).await);
    let cy = me(&app, &cy_token).await;
    let cy_tokens = provider.issued_tokens().last().cloned().expect("issued");

    // Di tries to link the same provider account to herself.
    provider.expect_redirect_uri(app.url(&format!("/auth/associate/{NAME}/callback")));
    let (di, di_token) = app.new_user("di@example.com").await;
    let authorized = associate_authorize(&app, &di_token).await;
    let back = provider.follow(&authorized.authorization_url).await;
    callback_at(
        &app,
        &back.location,
        Some(&authorized.csrf),
        Some(&di_token),
    )
    .await
    .expect_code("OAUTH_USER_ALREADY_EXISTS");
    if let Some(accounts) = stored_accounts(&app, &TestApp::id_of(&di)).await {
        assert!(accounts.is_empty(), "{accounts:?}");
    }
    // Cy's link is untouched (Di's provider tokens were not stored).
    assert_linked_with(
        &app,
        &cy_tokens,
        &TestApp::id_of(&cy),
        "shared-1",
        "cy@example.com",
    )
    .await;

    // A state issued to Di, used by Cy: FastAPI Users' bare 400.
    provider.set_identity(Identity::new("other-2").email("x@example.com"));
    let authorized = associate_authorize(&app, &di_token).await;
    let back = provider.follow(&authorized.authorization_url).await;
    let res = callback_at(
        &app,
        &back.location,
        Some(&authorized.csrf),
        Some(&cy_token),
    )
    .await;
    assert_eq!(res.expect_json(400), json!({"detail": "Bad Request"}));
}

// ----- OpenID Connect -----

#[actix_web::test]
async fn oidc_discovers_the_provider_and_checks_the_id_token() {
    let (app, provider) = spawn(Flavour::Oidc).await;
    provider.set_identity(
        Identity::new("oidc-sub-1")
            .email("olga@example.com")
            .verified(true),
    );
    let authorized = authorize(&app).await;
    assert!(
        provider
            .wait_for_requests(Endpoint::Discovery, 1, PROVIDER_WAIT)
            .await
    );
    let scope = authorized.param("scope").expect("a scope");
    assert!(scope.split(' ').any(|s| s == "openid"), "{scope}");
    assert!(authorized.param("nonce").is_some(), "a nonce is sent");
    assert_eq!(
        authorized.param("code_challenge_method").as_deref(),
        Some("S256")
    );

    let back = provider.follow(&authorized.authorization_url).await;
    let token =
        bearer_token(&callback_at(&app, &back.location, Some(&authorized.csrf), None).await);
    let user = me(&app, &token).await;
    assert_user(&user, "olga@example.com", true, false, false, "student");
    assert!(
        !provider.requests_to(Endpoint::Jwks).is_empty(),
        "the ID token was checked against the JWKS"
    );
    let exchange = &provider.requests_to(Endpoint::Token)[0];
    assert_eq!(
        Some(s256_challenge(
            exchange.form_param("code_verifier").unwrap()
        )),
        authorized.param("code_challenge")
    );
    assert_linked(
        &app,
        &provider,
        &TestApp::id_of(&user),
        "oidc-sub-1",
        "olga@example.com",
    )
    .await;
}

#[actix_web::test]
async fn oidc_refuses_an_id_token_the_jwks_does_not_sign() {
    let (app, provider) = spawn(Flavour::Oidc).await;
    provider.set_identity(
        Identity::new("oidc-sub-2")
            .email("forged@example.com")
            .verified(true),
    );
    provider.sign_with_foreign_key(true);
    expect_provider_refused(&social_login(&app, &provider).await);
    // Nobody was created: the address is free.
    app.register_ok("forged@example.com", PASSWORD).await;
}

#[actix_web::test]
async fn oidc_with_discovery_down_is_a_502_at_authorize() {
    let (app, provider) = spawn(Flavour::Oidc).await;
    provider.set_fault(Endpoint::Discovery, Fault::ServerError);
    expect_provider_unavailable(&app.get(&format!("/auth/{NAME}/authorize")).await);
    provider.clear_fault(Endpoint::Discovery);
    authorize(&app).await;
}

// ----- GitHub -----

#[actix_web::test]
async fn github_gives_the_primary_verified_address_of_user_emails() {
    let (app, provider) = spawn(Flavour::GitHub).await;
    provider.set_identity(
        Identity::new("583231")
            .email("octo@example.com")
            .verified(true),
    );
    let token = bearer_token(&social_login(&app, &provider).await);
    let user = me(&app, &token).await;
    assert_user(&user, "octo@example.com", true, false, false, "student");
    let access = format!("Bearer {}", provider.last_access_token().unwrap());
    for endpoint in [Endpoint::GitHubUser, Endpoint::GitHubEmails] {
        let seen = provider.requests_to(endpoint);
        assert_eq!(seen.len(), 1, "{endpoint:?}");
        assert_eq!(seen[0].authorization.as_deref(), Some(access.as_str()));
    }
    assert!(provider.requests_to(Endpoint::Userinfo).is_empty());
    assert_linked(
        &app,
        &provider,
        &TestApp::id_of(&user),
        "583231",
        "octo@example.com",
    )
    .await;

    // No verified primary address and no public one: no address.
    provider.set_identity(
        Identity::new("1001")
            .email("unsure@example.com")
            .verified(false),
    );
    social_login(&app, &provider)
        .await
        .expect_code("OAUTH_NOT_AVAILABLE_EMAIL");
}

// ----- hooks -----

/// Records the hooks a social login runs, as `"register <id>"` and
/// `"login <id>"`.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<String>>,
}

impl Recorder {
    fn events(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn push(&self, event: String) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event);
    }

    /// Waits until `expected` were recorded (hooks may finish just after
    /// the answer); returns what was.
    async fn wait_for(&self, expected: &[String]) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + PROVIDER_WAIT;
        while self.events() != expected && tokio::time::Instant::now() < deadline {
            actix_web::rt::time::sleep(Duration::from_millis(10)).await;
        }
        self.events()
    }
}

#[async_trait]
impl UserEvents for Recorder {
    async fn on_after_register(&self, user: &User) {
        self.push(format!("register {}", user.id));
    }

    async fn on_after_login(&self, user: &User) {
        self.push(format!("login {}", user.id));
    }
}

#[actix_web::test]
async fn a_social_sign_up_runs_the_after_register_and_after_login_hooks() {
    let recorder = Arc::new(Recorder::default());
    let (app, provider) = spawn_with(
        Flavour::OAuth2,
        Setup {
            events: Some(Arc::clone(&recorder) as Arc<dyn UserEvents>),
            ..Setup::default()
        },
    )
    .await;
    provider.set_identity(Identity::new("hooked-1").email("hooked@example.com"));
    let token = bearer_token(&social_login(&app, &provider).await);
    let id = TestApp::id_of(&me(&app, &token).await);
    let signed_up = [format!("register {id}"), format!("login {id}")];
    assert_eq!(recorder.wait_for(&signed_up).await, signed_up);

    // A known account: logged in, not registered again.
    bearer_token(&social_login(&app, &provider).await);
    let again = [
        format!("register {id}"),
        format!("login {id}"),
        format!("login {id}"),
    ];
    assert_eq!(recorder.wait_for(&again).await, again);

    // A refused callback runs none.
    provider.set_identity(Identity::new("mute-2"));
    social_login(&app, &provider)
        .await
        .expect_code("OAUTH_NOT_AVAILABLE_EMAIL");
    assert_eq!(recorder.events(), again);
}

// ----- configuration -----

#[actix_web::test]
async fn configured_from_the_environment() {
    // OAUTH_PROVIDERS, OAUTH_ACME_KIND=oauth2 and its three URLs, the
    // client, OAUTH_STATE_SECRET, and the policy and cookie settings.
    let provider = OAuthProvider::start(Flavour::OAuth2).await;
    let mut vars = provider.env_vars(NAME);
    vars.extend(
        [
            ("OAUTH_STATE_SECRET", STATE_SECRET),
            ("OAUTH_VERIFIED_BY_DEFAULT", "true"),
            ("OAUTH_ACME_SCOPES", "email profile"),
            ("COOKIE_SECURE", "false"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let app = spawn_app_with(vars).await;
    provider.expect_redirect_uri(app.url(&format!("/auth/{NAME}/callback")));
    provider.set_identity(Identity::new("env-1").email("env@example.com"));

    let authorized = authorize(&app).await;
    assert_eq!(authorized.param("scope").as_deref(), Some("email profile"));
    assert_eq!(
        cookie_attributes(&authorized.set_cookie),
        ["httponly", "max-age=3600", "path=/", "samesite=lax"],
        "{}",
        authorized.set_cookie
    );
    assert!(hs256_signed_with(
        &authorized.param("state").unwrap(),
        STATE_SECRET
    ));
    let back = provider.follow(&authorized.authorization_url).await;
    let token =
        bearer_token(&callback_at(&app, &back.location, Some(&authorized.csrf), None).await);
    let user = me(&app, &token).await;
    assert_user(&user, "env@example.com", true, false, true, "student");
    app.database.assert_holds("env@example.com").await;
    assert_linked(
        &app,
        &provider,
        &TestApp::id_of(&user),
        "env-1",
        "env@example.com",
    )
    .await;

    // And the OpenID Connect kind, by its issuer.
    let oidc = OAuthProvider::start(Flavour::Oidc).await;
    let mut vars = oidc.env_vars(NAME);
    vars.push(("OAUTH_STATE_SECRET".into(), STATE_SECRET.into()));
    let app = spawn_app_with(vars).await;
    oidc.expect_redirect_uri(app.url(&format!("/auth/{NAME}/callback")));
    oidc.set_identity(
        Identity::new("env-2")
            .email("env2@example.com")
            .verified(true),
    );
    let token = bearer_token(&social_login(&app, &oidc).await);
    assert_user(
        &me(&app, &token).await,
        "env2@example.com",
        true,
        false,
        false,
        "student",
    );
}

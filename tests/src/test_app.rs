//! A whole Portcullis server per test, zero2prod style.
//!
//! [`spawn_app`] binds `127.0.0.1:0`, starts an [`SmtpSink`], builds a
//! [`Config`] with the in-memory store, fixed secrets (see [`JWT_SECRET`],
//! [`RESET_SECRET`], [`VERIFY_SECRET`], so tests can forge tokens), mail to
//! the sink, [`FRONTEND_URL`], a first superuser and cheap argon2
//! parameters, starts the server on the runtime of the test and returns a
//! [`TestApp`] to talk to it over real HTTP.
//!
//! ```no_run
//! use portcullis_tests::test_app::spawn_app;
//!
//! #[actix_web::test]
//! async fn health_is_ok() {
//!     let app = spawn_app().await;
//!     let res = app.get_raw("/health").await;
//!     assert_eq!(res.status, 200);
//! }
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use awc::http::Method;
use awc::http::header::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jws::{HS256, HS384, HS512, JwsSigner, JwsVerifier};
use std::sync::Arc;

use portcullis::mail::{BackgroundMailer, SmtpMailer, SmtpSettings, SmtpTls};
use portcullis::{Config, UserService};
use serde_json::{Value, json};

use crate::smtp_sink::{ReceivedMail, SmtpSink};

/// `JWT_SECRET_KEY` of every test app (access tokens). The secrets are 64
/// bytes long so that tests can also sign HS384/HS512 tokens with them
/// (an HMAC key must be at least as long as the hash for josekit).
pub const JWT_SECRET: &str = "test-jwt-secret-0123456789abcdef-0123456789abcdef-0123456789abcd";
/// `AUTH_RESET_PASSWORD_TOKEN_SECRET` of every test app.
pub const RESET_SECRET: &str = "test-reset-secret-0123456789abcdef-0123456789abcdef-0123456789ab";
/// `AUTH_VERIFICATION_TOKEN_SECRET` of every test app.
pub const VERIFY_SECRET: &str = "test-verify-secret-0123456789abcdef-0123456789abcdef-0123456789a";
/// `FRONTEND_URL` of every test app: the base of the links in mails.
pub const FRONTEND_URL: &str = "http://frontend.example.com";
/// The first superuser (`FIRST_SUPERUSER_EMAIL`).
pub const SUPERUSER_EMAIL: &str = "root@example.com";
/// Its password (`FIRST_SUPERUSER_PASSWORD`).
pub const SUPERUSER_PASSWORD: &str = "root-password-123";
/// A password that passes the policy for any test address.
pub const PASSWORD: &str = "correct horse battery";
/// The default API prefix.
pub const API_PREFIX: &str = "/api";

/// Audience of access tokens.
pub const AUTH_AUDIENCE: &str = "fastapi-users:auth";
/// Audience of reset-password tokens.
pub const RESET_AUDIENCE: &str = "fastapi-users:reset";
/// Audience of verify tokens.
pub const VERIFY_AUDIENCE: &str = "fastapi-users:verify";

/// The link prefix of reset-password mails.
pub const RESET_LINK: &str = "http://frontend.example.com/reset-password?token=";
/// The link prefix of verification mails.
pub const VERIFY_LINK: &str = "http://frontend.example.com/verify?token=";

/// How long to wait for a mail that should arrive.
pub const MAIL_WAIT: Duration = Duration::from_secs(10);
/// How long to watch for a mail that must not arrive.
pub const NO_MAIL_WAIT: Duration = Duration::from_millis(750);

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub address: String,
    pub port: u16,
    /// Where the routes are mounted (`/api` unless `API_PREFIX` says
    /// otherwise).
    pub api_prefix: String,
    /// Every mail the server sends ends up here.
    pub sink: SmtpSink,
    pub client: awc::Client,
    /// The database behind the app, removed when the app is dropped.
    pub database: TestDatabase,
}

/// The store an app runs on, chosen by `PORTCULLIS_TEST_STORE`: `memory`
/// (the default), `sqlite` (a fresh database file per app, in the
/// temporary folder, removed afterwards) or `postgres` (a fresh database per
/// app on the server `PORTCULLIS_TEST_POSTGRES_URL` names, dropped
/// afterwards; needs the `postgres` feature). The black-box suite is the
/// same on every store: `scripts/test` runs it once per store.
#[derive(Debug)]
pub struct TestDatabase {
    /// What `DATABASE_URL` is set to.
    pub url: String,
    file: Option<std::path::PathBuf>,
    #[cfg(feature = "postgres")]
    postgres: Option<crate::postgres::PgDatabase>,
}

impl TestDatabase {
    /// A fresh database of the store `PORTCULLIS_TEST_STORE` names.
    ///
    /// # Panics
    /// On a store name this harness does not know.
    pub fn fresh() -> Self {
        let store = std::env::var("PORTCULLIS_TEST_STORE").unwrap_or_else(|_| "memory".into());
        match store.as_str() {
            "" | "memory" => Self::at("memory://".into(), None),
            "sqlite" => {
                let file = std::env::temp_dir()
                    .join(format!("portcullis-test-{}.db", uuid::Uuid::new_v4()));
                Self::at(format!("sqlite://{}", file.display()), Some(file))
            }
            #[cfg(feature = "postgres")]
            "postgres" => {
                let database = crate::postgres::PgDatabase::create();
                let mut this = Self::at(database.url.clone(), None);
                this.postgres = Some(database);
                this
            }
            #[cfg(not(feature = "postgres"))]
            "postgres" => panic!(
                "PORTCULLIS_TEST_STORE=postgres: these tests were built without PostgreSQL; \
                 run them with --features portcullis-tests/postgres under scripts/with-postgres"
            ),
            other => {
                panic!("PORTCULLIS_TEST_STORE={other:?}: expected memory, sqlite or postgres")
            }
        }
    }

    /// The store this is: `memory`, `sqlite` or `postgres`, from the
    /// scheme of [`url`](Self::url).
    pub fn store(&self) -> &'static str {
        match self.url.split_once(':').map(|(scheme, _)| scheme) {
            Some("sqlite") => "sqlite",
            Some("postgres" | "postgresql") => "postgres",
            _ => "memory",
        }
    }

    /// Panics unless the store `PORTCULLIS_TEST_STORE` names is the one
    /// the server was configured with, and (for SQLite) its file exists:
    /// what every [`spawn_app_with`] checks once the server started.
    #[track_caller]
    pub fn assert_named_store(&self) {
        let named = std::env::var("PORTCULLIS_TEST_STORE").unwrap_or_default();
        let named = if named.is_empty() {
            "memory"
        } else {
            named.as_str()
        };
        assert_eq!(
            self.store(),
            named,
            "PORTCULLIS_TEST_STORE={named}, but the app runs on {}",
            self.url
        );
        if let Some(file) = &self.file {
            assert!(
                file.is_file(),
                "the server did not create its SQLite database {}",
                file.display()
            );
        }
    }

    /// Panics unless the user `email` is in this database as another
    /// connection to it sees it: proof that the server (which stored the
    /// user) really keeps its users here. Memory has nothing to look into.
    pub async fn assert_holds(&self, email: &str) {
        if self.store() == "memory" {
            return;
        }
        let store = portcullis::open_store(&self.url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.url));
        let address = portcullis_domain::EmailAddress::parse(email).expect("an address");
        let found = store
            .get_by_email(&address)
            .await
            .expect("the store answers");
        assert!(found.is_some(), "{email} is not in {}", self.url);
    }

    /// No database of the harness's own: for an app a test assembles on a
    /// store it made itself (`url` is only recorded).
    pub fn external(url: impl Into<String>) -> Self {
        Self::at(url.into(), None)
    }

    fn at(url: String, file: Option<std::path::PathBuf>) -> Self {
        Self {
            url,
            file,
            #[cfg(feature = "postgres")]
            postgres: None,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(file) = &self.file {
            for suffix in ["", "-wal", "-shm"] {
                let mut path = file.clone().into_os_string();
                path.push(suffix);
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

impl std::fmt::Debug for TestApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApp")
            .field("address", &self.address)
            .field("api_prefix", &self.api_prefix)
            .finish_non_exhaustive()
    }
}

/// A whole answer: status, headers and the body bytes.
#[derive(Debug, Clone)]
pub struct TestResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl TestResponse {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "the {} answer is not JSON ({e}): {:?}",
                self.status,
                self.text()
            )
        })
    }

    /// The value of a header, if present and text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// The media type of `Content-Type`, lowercased, without parameters.
    pub fn media_type(&self) -> Option<String> {
        self.header("content-type").map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
    }

    /// Asserts the status and `Content-Type: application/json`, and returns
    /// the JSON body.
    #[track_caller]
    pub fn expect_json(&self, status: u16) -> Value {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            self.text()
        );
        assert_eq!(
            self.media_type().as_deref(),
            Some("application/json"),
            "a JSON answer must say Content-Type: application/json (status {}, body {})",
            self.status,
            self.text()
        );
        self.json()
    }

    /// Asserts `400 {"detail": code}`.
    #[track_caller]
    pub fn expect_code(&self, code: &str) {
        assert_eq!(self.expect_json(400), json!({ "detail": code }));
    }

    /// Asserts `400 {"detail": {"code": code, "reason": reason}}`.
    #[track_caller]
    pub fn expect_code_reason(&self, code: &str, reason: &str) {
        assert_eq!(
            self.expect_json(400),
            json!({ "detail": { "code": code, "reason": reason } })
        );
    }

    /// Asserts `401 {"detail": "Unauthorized"}`.
    #[track_caller]
    pub fn expect_401(&self) {
        assert_eq!(self.expect_json(401), json!({ "detail": "Unauthorized" }));
    }

    /// Asserts `403 {"detail": "Forbidden"}`.
    #[track_caller]
    pub fn expect_403(&self) {
        assert_eq!(self.expect_json(403), json!({ "detail": "Forbidden" }));
    }

    /// Asserts `404 {"detail": "Not Found"}`.
    #[track_caller]
    pub fn expect_404(&self) {
        assert_eq!(self.expect_json(404), json!({ "detail": "Not Found" }));
    }

    /// Asserts `405 {"detail": "Method Not Allowed"}`.
    #[track_caller]
    pub fn expect_405(&self) {
        assert_eq!(
            self.expect_json(405),
            json!({ "detail": "Method Not Allowed" })
        );
    }

    /// Asserts a 422 and returns its `detail` list.
    #[track_caller]
    pub fn expect_422(&self) -> Vec<Value> {
        let body = self.expect_json(422);
        let Some(Value::Array(detail)) = body.get("detail").cloned() else {
            panic!("a 422 body is {{\"detail\": [...]}}, got {body}");
        };
        assert!(!detail.is_empty(), "a 422 names at least one problem");
        for entry in &detail {
            for key in ["type", "loc", "msg"] {
                assert!(entry.get(key).is_some(), "422 entry without {key}: {entry}");
            }
            assert!(entry["loc"].is_array(), "loc is a list: {entry}");
        }
        detail
    }

    /// Asserts a 422 whose only problem has this `type` at this `loc`.
    #[track_caller]
    pub fn expect_422_at(&self, kind: &str, loc: Value) -> Value {
        let detail = self.expect_422();
        assert_eq!(detail.len(), 1, "one problem expected: {detail:?}");
        assert_eq!(detail[0]["type"], json!(kind), "{:?}", detail[0]);
        assert_eq!(detail[0]["loc"], loc, "{:?}", detail[0]);
        detail[0].clone()
    }

    /// Asserts the status and an empty body.
    #[track_caller]
    pub fn expect_empty(&self, status: u16) {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            self.text()
        );
        assert!(
            self.body.is_empty(),
            "the body must be empty, got {:?}",
            self.text()
        );
    }

    /// Asserts the status and the JSON body `null`.
    #[track_caller]
    pub fn expect_null(&self, status: u16) {
        assert_eq!(self.expect_json(status), Value::Null);
    }
}

/// What to send as the body of a request.
#[derive(Debug, Clone)]
pub enum Body {
    /// No body, no `Content-Type`.
    Empty,
    /// `application/json`.
    Json(Value),
    /// `application/x-www-form-urlencoded`, encoded from the pairs.
    Form(Vec<(String, String)>),
    /// These bytes with this `Content-Type` (`None`: no header).
    Raw {
        content_type: Option<String>,
        bytes: Vec<u8>,
    },
}

impl Body {
    /// A form body from pairs.
    pub fn form(pairs: &[(&str, &str)]) -> Self {
        Body::Form(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    /// Raw bytes with a content type.
    pub fn raw(content_type: &str, bytes: impl Into<Vec<u8>>) -> Self {
        Body::Raw {
            content_type: Some(content_type.to_owned()),
            bytes: bytes.into(),
        }
    }
}

/// Starts a test app with the default test configuration.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(Vec::<(&str, &str)>::new()).await
}

/// Starts a test app; `extra_vars` are added to (and override) the default
/// test configuration, e.g. `[("LOGIN_REQUIRES_VERIFICATION", "true")]`.
///
/// # Panics
/// When the configuration is refused or the server cannot start.
pub async fn spawn_app_with<K, V>(extra_vars: impl IntoIterator<Item = (K, V)>) -> TestApp
where
    K: Into<String>,
    V: Into<String>,
{
    spawn_app_on(TestDatabase::fresh(), extra_vars).await
}

/// Starts a test app as [`spawn_app_with`] does, on `database`.
///
/// # Panics
/// When the configuration is refused or the server cannot start.
pub async fn spawn_app_on<K, V>(
    database: TestDatabase,
    extra_vars: impl IntoIterator<Item = (K, V)>,
) -> TestApp
where
    K: Into<String>,
    V: Into<String>,
{
    let sink = SmtpSink::start().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local address").port();

    let mut vars: Vec<(String, String)> = [
        ("DATABASE_URL", database.url.clone()),
        ("JWT_SECRET_KEY", JWT_SECRET.to_owned()),
        ("AUTH_RESET_PASSWORD_TOKEN_SECRET", RESET_SECRET.to_owned()),
        ("AUTH_VERIFICATION_TOKEN_SECRET", VERIFY_SECRET.to_owned()),
        ("SMTP_HOST", "127.0.0.1".to_owned()),
        ("SMTP_PORT", sink.port().to_string()),
        ("SMTP_TLS", "none".to_owned()),
        ("MAIL_FROM", "Portcullis <noreply@example.com>".to_owned()),
        ("FRONTEND_URL", FRONTEND_URL.to_owned()),
        ("FIRST_SUPERUSER_EMAIL", SUPERUSER_EMAIL.to_owned()),
        ("FIRST_SUPERUSER_PASSWORD", SUPERUSER_PASSWORD.to_owned()),
        ("ARGON2_MEMORY_KIB", "8192".to_owned()),
        ("ARGON2_ITERATIONS", "1".to_owned()),
        // The suites send far more than 30 POSTs under /auth/ a minute,
        // all from 127.0.0.1. `http_rate_limit.rs` unsets it (`""`) to
        // test the real default.
        ("RATE_LIMIT_AUTH_PER_MINUTE", "0".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    // `PORTCULLIS_TEST_AUTH_STRATEGY=database` runs a suite on the
    // `database` strategy (scripts/test does, once); a suite's own
    // `AUTH_STRATEGY` wins.
    if let Ok(strategy) = std::env::var("PORTCULLIS_TEST_AUTH_STRATEGY")
        && !strategy.is_empty()
    {
        vars.push(("AUTH_STRATEGY".to_owned(), strategy));
    }
    for (k, v) in extra_vars {
        let (k, v) = (k.into(), v.into());
        vars.retain(|(key, _)| *key != k);
        vars.push((k, v));
    }

    let config = Config::from_vars(vars).expect("the test configuration is valid");
    let api_prefix = config.api_prefix.clone();
    let server = portcullis::start(config, listener)
        .await
        .expect("the server starts");
    actix_web::rt::spawn(server);
    database.assert_named_store();

    let client = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .disable_redirects()
        .finish();
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        api_prefix,
        sink,
        client,
        database,
    }
}

/// The harness's mail for a service a test assembles in code (as a host
/// does, with `PortcullisBuilder`): a sink, and a mailer sending to it over
/// plain SMTP, off the request path. Hand the sink to [`serve_built`].
pub async fn sink_and_mailer() -> (SmtpSink, Arc<dyn portcullis::domain::Mailer>) {
    let sink = SmtpSink::start().await;
    let smtp = SmtpSettings::new(
        "127.0.0.1",
        Some(sink.port()),
        SmtpTls::None,
        "Portcullis <noreply@example.com>",
    );
    let mailer = SmtpMailer::new(smtp).expect("the SMTP settings are valid");
    (sink, Arc::new(BackgroundMailer::new(Arc::new(mailer))))
}

/// Serves `service` (built around [`sink_and_mailer`]'s mailer) under
/// `/api` on a free port, as [`spawn_app_on`] serves its own.
pub fn serve_built(service: UserService, sink: SmtpSink, database: TestDatabase) -> TestApp {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local address").port();
    let server = portcullis::serve(service, "/api", listener).expect("the server starts");
    actix_web::rt::spawn(server);
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        api_prefix: "/api".into(),
        sink,
        client: awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .disable_redirects()
            .finish(),
        database,
    }
}

impl TestApp {
    /// Another instance on this app's database (another server, as a
    /// second process behind a load balancer would be, with a mail sink of
    /// its own), configured as [`spawn_app_with`] with `extra_vars`; `None`
    /// on the memory store, which instances cannot share. This app must
    /// outlive it (it owns the database).
    pub async fn spawn_sibling<K, V>(
        &self,
        extra_vars: impl IntoIterator<Item = (K, V)>,
    ) -> Option<TestApp>
    where
        K: Into<String>,
        V: Into<String>,
    {
        if self.database.store() == "memory" {
            return None;
        }
        Some(
            spawn_app_on(
                TestDatabase::external(self.database.url.clone()),
                extra_vars,
            )
            .await,
        )
    }

    /// The URL of `path` under the API prefix (`"/auth/register"`).
    pub fn url(&self, path: &str) -> String {
        let prefix = self.api_prefix.trim_end_matches('/');
        format!("{}{prefix}{path}", self.address)
    }

    /// The URL of `path` at the root (`"/health"`).
    pub fn raw_url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Sends a request to a full URL and reads the whole answer.
    pub async fn send_to(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> TestResponse {
        let mut req = self.client.request(method.clone(), url);
        for (name, value) in headers {
            req = req.insert_header((*name, *value));
        }
        let sent = match body {
            Body::Empty => req.send().await,
            Body::Json(value) => req.send_json(&value).await,
            Body::Form(pairs) => req.send_form(&pairs).await,
            Body::Raw {
                content_type,
                bytes,
            } => {
                if let Some(ct) = content_type {
                    req = req.insert_header(("content-type", ct));
                }
                req.send_body(bytes).await
            }
        };
        let mut res = sent.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let body = res
            .body()
            .limit(10 * 1024 * 1024)
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: reading the body: {e}"));
        TestResponse {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            body: body.to_vec(),
        }
    }

    /// Sends a request to `path` under the API prefix, with a bearer token
    /// when given.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Body,
    ) -> TestResponse {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("authorization", a)])
            .unwrap_or_default();
        self.send_to(method, &self.url(path), &headers, body).await
    }

    /// Sends a request to `path` under the API prefix with exactly these
    /// headers (e.g. a `Cookie`, an `Origin`).
    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> TestResponse {
        self.send_to(method, &self.url(path), headers, body).await
    }

    /// `POST /auth/cookie/login` with a form.
    pub async fn cookie_login(&self, username: &str, password: &str) -> TestResponse {
        self.post_form(
            "/auth/cookie/login",
            &[("username", username), ("password", password)],
        )
        .await
    }

    /// Logs in with the cookie transport and returns the cookie's value
    /// (the access token); panics unless 204 with a `Set-Cookie` of
    /// `cookie_name`.
    pub async fn cookie_login_token(
        &self,
        username: &str,
        password: &str,
        cookie_name: &str,
    ) -> String {
        let res = self.cookie_login(username, password).await;
        res.expect_empty(204);
        let set = res
            .header("set-cookie")
            .unwrap_or_else(|| panic!("no Set-Cookie in {:?}", res.headers));
        set.strip_prefix(&format!("{cookie_name}="))
            .and_then(|rest| rest.split(';').next())
            .unwrap_or_else(|| panic!("no {cookie_name} cookie in {set:?}"))
            .to_owned()
    }

    /// `GET` of a path at the root (outside the API prefix).
    pub async fn get_raw(&self, path: &str) -> TestResponse {
        self.send_to(Method::GET, &self.raw_url(path), &[], Body::Empty)
            .await
    }

    /// `GET path` without a token.
    pub async fn get(&self, path: &str) -> TestResponse {
        self.send(Method::GET, path, None, Body::Empty).await
    }

    /// `GET path` with a bearer token.
    pub async fn get_with_token(&self, path: &str, token: &str) -> TestResponse {
        self.send(Method::GET, path, Some(token), Body::Empty).await
    }

    /// `GET path` with this exact `Authorization` header value.
    pub async fn get_with_authorization(&self, path: &str, authorization: &str) -> TestResponse {
        self.send_to(
            Method::GET,
            &self.url(path),
            &[("authorization", authorization)],
            Body::Empty,
        )
        .await
    }

    /// `POST path` with a JSON body, no token.
    pub async fn post_json(&self, path: &str, body: &Value) -> TestResponse {
        self.send(Method::POST, path, None, Body::Json(body.clone()))
            .await
    }

    /// `POST path` with raw bytes and a content type, no token.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: &str) -> TestResponse {
        self.send(
            Method::POST,
            path,
            None,
            Body::raw(content_type, body.as_bytes()),
        )
        .await
    }

    /// `POST path` with a form body, no token.
    pub async fn post_form(&self, path: &str, pairs: &[(&str, &str)]) -> TestResponse {
        self.send(Method::POST, path, None, Body::form(pairs)).await
    }

    /// `PATCH path` with a JSON body and a token.
    pub async fn patch_json(&self, path: &str, token: Option<&str>, body: &Value) -> TestResponse {
        self.send(Method::PATCH, path, token, Body::Json(body.clone()))
            .await
    }

    /// `DELETE path` with a token.
    pub async fn delete(&self, path: &str, token: Option<&str>) -> TestResponse {
        self.send(Method::DELETE, path, token, Body::Empty).await
    }

    // ----- the routes -----

    /// `POST /auth/register`.
    pub async fn register(&self, email: &str, password: &str) -> TestResponse {
        self.post_json(
            "/auth/register",
            &json!({ "email": email, "password": password }),
        )
        .await
    }

    /// Registers and returns the user JSON; panics unless 201.
    pub async fn register_ok(&self, email: &str, password: &str) -> Value {
        self.register(email, password).await.expect_json(201)
    }

    /// `POST /auth/jwt/login` with a form.
    pub async fn login(&self, username: &str, password: &str) -> TestResponse {
        self.post_form(
            "/auth/jwt/login",
            &[("username", username), ("password", password)],
        )
        .await
    }

    /// Logs in and returns the access token; panics unless 200.
    pub async fn login_token(&self, username: &str, password: &str) -> String {
        let body = self.login(username, password).await.expect_json(200);
        body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access_token in {body}"))
            .to_owned()
    }

    /// An access token of the first superuser.
    pub async fn superuser_token(&self) -> String {
        self.login_token(SUPERUSER_EMAIL, SUPERUSER_PASSWORD).await
    }

    /// Registers `email` with [`PASSWORD`], logs in; returns (user, token).
    pub async fn new_user(&self, email: &str) -> (Value, String) {
        let user = self.register_ok(email, PASSWORD).await;
        let token = self.login_token(email, PASSWORD).await;
        (user, token)
    }

    /// The id of a user JSON.
    pub fn id_of(user: &Value) -> String {
        user["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {user}"))
            .to_owned()
    }

    /// `GET /users/me` with a token.
    pub async fn me(&self, token: &str) -> TestResponse {
        self.get_with_token("/users/me", token).await
    }

    /// `GET /users/{id}` as the first superuser.
    pub async fn admin_get(&self, id: &str) -> TestResponse {
        let token = self.superuser_token().await;
        self.get_with_token(&format!("/users/{id}"), &token).await
    }

    /// `PATCH /users/{id}` as the first superuser.
    pub async fn admin_patch(&self, id: &str, body: &Value) -> TestResponse {
        let token = self.superuser_token().await;
        self.patch_json(&format!("/users/{id}"), Some(&token), body)
            .await
    }

    /// `POST /auth/forgot-password`.
    pub async fn forgot_password(&self, email: &str) -> TestResponse {
        self.post_json("/auth/forgot-password", &json!({ "email": email }))
            .await
    }

    /// `POST /auth/reset-password`.
    pub async fn reset_password(&self, token: &str, password: &str) -> TestResponse {
        self.post_json(
            "/auth/reset-password",
            &json!({ "token": token, "password": password }),
        )
        .await
    }

    /// `POST /auth/request-verify-token`.
    pub async fn request_verify_token(&self, email: &str) -> TestResponse {
        self.post_json("/auth/request-verify-token", &json!({ "email": email }))
            .await
    }

    /// `POST /auth/verify`.
    pub async fn verify(&self, token: &str) -> TestResponse {
        self.post_json("/auth/verify", &json!({ "token": token }))
            .await
    }

    // ----- mail -----

    /// Waits for the next mail to `to`; panics after [`MAIL_WAIT`].
    pub async fn mail_to(&self, to: &str) -> ReceivedMail {
        self.sink
            .wait_for_mail_to(to, MAIL_WAIT)
            .await
            .unwrap_or_else(|| panic!("no mail to {to} within {MAIL_WAIT:?}"))
    }

    /// Whether no mail to `to` arrives within [`NO_MAIL_WAIT`].
    pub async fn no_mail_to(&self, to: &str) -> bool {
        self.sink.wait_for_mail_to(to, NO_MAIL_WAIT).await.is_none()
    }

    /// The token of the next reset-password mail to `to`.
    pub async fn reset_token_from_mail(&self, to: &str) -> String {
        let mail = self.mail_to(to).await;
        mail.token_after("/reset-password?token=")
            .unwrap_or_else(|| panic!("no reset link in the mail: {}", mail.data))
    }

    /// The token of the next verification mail to `to`.
    pub async fn verify_token_from_mail(&self, to: &str) -> String {
        let mail = self.mail_to(to).await;
        mail.token_after("/verify?token=")
            .unwrap_or_else(|| panic!("no verify link in the mail: {}", mail.data))
    }

    /// Asks for a reset (202 `null`) and returns the mailed token.
    pub async fn reset_token_for(&self, email: &str) -> String {
        self.forgot_password(email).await.expect_null(202);
        self.reset_token_from_mail(email).await
    }

    /// Asks for verification (202 `null`) and returns the mailed token.
    pub async fn verify_token_for(&self, email: &str) -> String {
        self.request_verify_token(email).await.expect_null(202);
        self.verify_token_from_mail(email).await
    }
}

// ----- tokens -----

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    i64::try_from(secs).expect("a sane clock")
}

/// Unpadded base64url, as in a compact JWS.
pub fn b64url_encode(input: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(input)
}

/// Decodes unpadded base64url strictly (what a compact JWS holds); `None`
/// when malformed, padded or not in canonical form.
pub fn b64url_decode(input: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(input).ok()
}

/// How to sign a forged token (independently of what its header claims).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    /// No signature: `header.payload.`
    None,
    Hs256,
    Hs384,
    Hs512,
}

/// A compact JWS of `header` and `claims`, signed as `signing` says with
/// `secret`. The header is sent as given: it may lie about the algorithm.
pub fn forge_jwt(header: &Value, claims: &Value, secret: &str, signing: Signing) -> String {
    let header = b64url_encode(&serde_json::to_vec(header).expect("JSON"));
    let claims = b64url_encode(&serde_json::to_vec(claims).expect("JSON"));
    let input = format!("{header}.{claims}");
    let signature = match signing {
        Signing::None => Vec::new(),
        Signing::Hs256 => sign(&HS256.signer_from_bytes(secret).expect("key"), &input),
        Signing::Hs384 => sign(&HS384.signer_from_bytes(secret).expect("key"), &input),
        Signing::Hs512 => sign(&HS512.signer_from_bytes(secret).expect("key"), &input),
    };
    format!("{input}.{}", b64url_encode(&signature))
}

fn sign(signer: &dyn JwsSigner, input: &str) -> Vec<u8> {
    signer.sign(input.as_bytes()).expect("HMAC signing")
}

/// A well-formed HS256 token as the server mints them: header
/// `{"alg":"HS256","typ":"JWT"}`, these claims, signed with `secret`.
pub fn hs256_jwt(claims: &Value, secret: &str) -> String {
    forge_jwt(
        &json!({"alg": "HS256", "typ": "JWT"}),
        claims,
        secret,
        Signing::Hs256,
    )
}

/// An access token for `user_id`, valid for `lifetime_secs` from now
/// (negative: already expired), signed with [`JWT_SECRET`].
pub fn access_token_for(user_id: &str, lifetime_secs: i64) -> String {
    hs256_jwt(
        &json!({
            "sub": user_id,
            "aud": [AUTH_AUDIENCE],
            "exp": now() + lifetime_secs,
        }),
        JWT_SECRET,
    )
}

/// The header and claims of a compact JWS, without checking anything.
pub fn decode_jwt(token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWS has three parts: {token}");
    let part = |p: &str| -> Value {
        let bytes = b64url_decode(p).unwrap_or_else(|| panic!("not base64url: {p}"));
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {p}"))
    };
    (part(parts[0]), part(parts[1]))
}

/// Whether `token` carries a valid HS256 signature made with `secret`.
pub fn hs256_signed_with(token: &str, secret: &str) -> bool {
    let Some((input, signature)) = token.rsplit_once('.') else {
        return false;
    };
    let Some(signature) = b64url_decode(signature) else {
        return false;
    };
    let verifier: Box<dyn JwsVerifier> = Box::new(HS256.verifier_from_bytes(secret).expect("key"));
    verifier.verify(input.as_bytes(), &signature).is_ok()
}

/// Whether `text` is a canonical (lowercase, hyphenated) UUID.
pub fn is_canonical_uuid(text: &str) -> bool {
    uuid::Uuid::parse_str(text).is_ok_and(|u| u.hyphenated().to_string() == text)
}

/// Asserts a user JSON: exactly the six keys of the contract, with these
/// values (the id only checked to be a canonical UUID).
#[track_caller]
pub fn assert_user(
    user: &Value,
    email: &str,
    is_active: bool,
    is_superuser: bool,
    is_verified: bool,
    role: &str,
) {
    let Some(object) = user.as_object() else {
        panic!("a user is a JSON object, got {user}");
    };
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "email",
            "id",
            "is_active",
            "is_superuser",
            "is_verified",
            "role"
        ],
        "a user has exactly these keys: {user}"
    );
    let id = user["id"].as_str().unwrap_or_default();
    assert!(is_canonical_uuid(id), "id is a canonical UUID: {user}");
    assert_eq!(
        user,
        &json!({
            "id": id,
            "email": email,
            "is_active": is_active,
            "is_superuser": is_superuser,
            "is_verified": is_verified,
            "role": role,
        })
    );
}

/// Asserts a freshly registered user: active, not superuser, not verified,
/// student.
#[track_caller]
pub fn assert_plain_user(user: &Value, email: &str) {
    assert_user(user, email, true, false, false, "student");
}

//! The log of a real `portcullis` process: with `LOG_FORMAT=json` every line
//! is a JSON object, every request has exactly one line (method, route
//! pattern, status, latency, client address, request id) whose id the
//! response carries as `X-Request-Id`, the auth events name the user by
//! id, and no password, token, hash or secret used in a full run reaches
//! the log. The text format has its request lines too; a bad `LOG_FORMAT`
//! is refused naming the variable.

mod process_support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portcullis_domain::UserRepository;
use portcullis_store_diesel_sqlite::SqliteUserStore;
use portcullis_tests::smtp_sink::SmtpSink;
use process_support::{TempDir, free_port};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const JWT_SECRET: &str = "logs-test-jwt-secret-0123456789abcdef0123";
const RESET_SECRET: &str = "logs-test-reset-secret-0123456789abcdef01";
const VERIFY_SECRET: &str = "logs-test-verify-secret-0123456789abcdef0";
const SMTP_PASSWORD: &str = "smtp-password-in-the-clear-9f3b";
const PASSWORD: &str = "first password of ann 41c";
const WRONG_PASSWORD: &str = "not the password of ann 7d2";
const NEW_PASSWORD: &str = "second password of ann 0e8";
const THIRD_PASSWORD: &str = "third password of ann 5a6";
const LOCKED_PASSWORD: &str = "guessing at who 88b1";
const SANE_ID: &str = "trace-4f9a.01_Z";
const INSANE_ID: &str = "two words;{\"x\":1}";

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn portcullis(database_url: &str, port: u16) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .env("PORT", port.to_string())
        .env("JWT_SECRET_KEY", JWT_SECRET)
        .env("AUTH_RESET_PASSWORD_TOKEN_SECRET", RESET_SECRET)
        .env("AUTH_VERIFICATION_TOKEN_SECRET", VERIFY_SECRET)
        .env("ARGON2_MEMORY_KIB", "8192")
        .env("ARGON2_ITERATIONS", "1")
        .env("RATE_LIMIT_AUTH_PER_MINUTE", "0")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null());
    cmd
}

/// One request of the run, as the client saw it.
#[derive(Debug)]
struct Sent {
    method: &'static str,
    route: &'static str,
    status: u16,
    /// The response's `X-Request-Id`.
    request_id: String,
}

/// Sends requests to the server and remembers each.
struct Client {
    base: String,
    http: awc::Client,
    sent: Vec<Sent>,
}

impl Client {
    fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            http: awc::Client::default(),
            sent: Vec::new(),
        }
    }

    /// Sends `req` (for `route`, the pattern the server should log), with
    /// `body` if any; the status and the JSON body (`Null` if none).
    async fn send(
        &mut self,
        method: &'static str,
        route: &'static str,
        path: &str,
        build: impl FnOnce(awc::ClientRequest) -> awc::ClientRequest,
        body: Body<'_>,
    ) -> (u16, Value, String) {
        let req = build(
            self.http
                .request(method.parse().unwrap(), format!("{}{path}", self.base)),
        );
        let mut res = match body {
            Body::None => req.send().await,
            Body::Json(json) => req.send_json(&json).await,
            Body::Form(form) => req.send_form(&form).await,
        }
        .unwrap();
        let status = res.status().as_u16();
        let request_id = res
            .headers()
            .get("x-request-id")
            .unwrap_or_else(|| panic!("{method} {path}: no X-Request-Id"))
            .to_str()
            .unwrap()
            .to_owned();
        let bytes = res.body().await.unwrap();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        self.sent.push(Sent {
            method,
            route,
            status,
            request_id: request_id.clone(),
        });
        (status, json, request_id)
    }

    async fn login(&mut self, username: &str, password: &str) -> (u16, Value, String) {
        self.send(
            "POST",
            "/api/auth/jwt/login",
            "/api/auth/jwt/login",
            |r| r,
            Body::Form(vec![("username", username), ("password", password)]),
        )
        .await
    }

    async fn post_json(&mut self, route: &'static str, json: Value) -> (u16, Value, String) {
        self.send("POST", route, route, |r| r, Body::Json(json))
            .await
    }
}

enum Body<'a> {
    None,
    Json(Value),
    Form(Vec<(&'a str, &'a str)>),
}

fn bearer(token: &str) -> impl FnOnce(awc::ClientRequest) -> awc::ClientRequest + '_ {
    move |r| r.bearer_auth(token)
}

/// Waits until the server answers `/health`: one answered request, on a
/// client of its own (a refused connection reaches no log).
async fn wait_healthy(client: &Client, child: &mut Child) {
    let started = Instant::now();
    loop {
        if awc::Client::default()
            .get(format!("{}/health", client.base))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("portcullis exited at start: {status}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "portcullis did not answer within 20 s"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts `cmd` with its standard error and output in files of `dir`.
fn spawn(mut cmd: Command, dir: &Path) -> Child {
    cmd.stdout(std::fs::File::create(dir.join("stdout.log")).unwrap())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .spawn()
        .unwrap()
}

/// The token in the next mail to `to` after `marker`.
async fn token_in_mail(sink: &SmtpSink, to: &str, marker: &str) -> String {
    loop {
        let mail = sink
            .wait_for_mail_to(to, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("no mail with {marker:?} to {to} within 10 s"));
        if let Some(token) = mail.token_after(marker) {
            return token;
        }
    }
}

/// The stored password hash of `email`.
async fn hash_of(database: &str, email: &str) -> String {
    let store = SqliteUserStore::open(database).await.unwrap();
    let email = portcullis_domain::EmailAddress::parse(email).unwrap();
    store
        .get_by_email(&email)
        .await
        .unwrap()
        .unwrap()
        .hashed_password
}

/// Every line of `file`, each parsed as a JSON object.
fn json_lines(file: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(file).unwrap();
    text.lines()
        .map(|line| match serde_json::from_str::<Value>(line) {
            Ok(value) if value.is_object() => value,
            _ => panic!("{}: not a JSON object: {line:?}", file.display()),
        })
        .collect()
}

/// The auth events called `name`.
fn auth_events<'a>(lines: &'a [Value], name: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| l["target"] == "portcullis::auth" && l["auth_event"] == name)
        .collect()
}

/// The request id of the request an event happened in.
fn request_id_of(event: &Value) -> &str {
    event["spans"]
        .as_array()
        .and_then(|spans| spans.iter().find(|s| s["name"] == "request"))
        .and_then(|span| span["request_id"].as_str())
        .unwrap_or_else(|| panic!("no request span: {event}"))
}

#[actix_web::test]
async fn a_full_run_logs_json_lines_one_per_request_with_auth_events_and_no_secret() {
    let dir = TempDir::new("logs");
    let database = format!("sqlite://{}", dir.0.join("users.db").display());
    let sink = SmtpSink::start().await;
    let port = free_port();
    let mut cmd = portcullis(&database, port);
    cmd.env("LOG_FORMAT", "json")
        .env("SMTP_HOST", "127.0.0.1")
        .env("SMTP_PORT", sink.port().to_string())
        // Plain text on purpose: the sink here speaks no TLS.
        .env("SMTP_TLS", "none")
        .env("SMTP_USERNAME", "portcullis")
        .env("SMTP_PASSWORD", SMTP_PASSWORD)
        .env("FRONTEND_URL", "http://frontend.example.com")
        .env("LOGIN_LOCKOUT_FAILURES", "2");
    let child = spawn(cmd, &dir.0);
    let mut server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let mut client = Client::new(&server.base);
    wait_healthy(&client, &mut server.child).await;

    // A sane id is kept, anything else replaced.
    let (status, _, kept) = client
        .send(
            "GET",
            "/health",
            "/health",
            |r| r.insert_header(("X-Request-Id", SANE_ID)),
            Body::None,
        )
        .await;
    assert_eq!((status, kept.as_str()), (200, SANE_ID));
    let (status, _, replaced) = client
        .send(
            "GET",
            "/health",
            "/health",
            |r| r.insert_header(("X-Request-Id", INSANE_ID)),
            Body::None,
        )
        .await;
    assert_eq!(status, 200);
    assert_ne!(replaced, INSANE_ID);
    assert!(uuid::Uuid::parse_str(&replaced).is_ok(), "{replaced}");

    // Register, fail to log in, log in, who am I.
    let (status, ann, register_id) = client
        .post_json(
            "/api/auth/register",
            json!({"email": "ann@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 201, "{ann}");
    let ann_id = ann["id"].as_str().unwrap().to_owned();
    let mut hashes = vec![hash_of(&database, "ann@example.com").await];
    let (status, _, failed_id) = client.login("ann@example.com", WRONG_PASSWORD).await;
    assert_eq!(status, 400);
    let (status, body, login_id) = client.login("ann@example.com", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let mut tokens = vec![body["access_token"].as_str().unwrap().to_owned()];
    let (status, me, _) = client
        .send(
            "GET",
            "/api/users/me",
            "/api/users/me",
            bearer(&tokens[0]),
            Body::None,
        )
        .await;
    assert_eq!((status, me["id"].as_str()), (200, Some(ann_id.as_str())));
    let (status, _, _) = client
        .send(
            "GET",
            "/api/users/{id}",
            &format!("/api/users/{ann_id}"),
            bearer(&tokens[0]),
            Body::None,
        )
        .await;
    assert_eq!(status, 403, "ann is no superuser");

    // Forgot and reset, the token from the mail.
    let (status, _, _) = client
        .post_json(
            "/api/auth/forgot-password",
            json!({"email": "ann@example.com"}),
        )
        .await;
    assert_eq!(status, 202);
    let reset_token = token_in_mail(&sink, "ann@example.com", "/reset-password?token=").await;
    let (status, body, _) = client
        .post_json(
            "/api/auth/reset-password",
            json!({"token": reset_token, "password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    hashes.push(hash_of(&database, "ann@example.com").await);
    let (status, body, _) = client.login("ann@example.com", NEW_PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    tokens.push(body["access_token"].as_str().unwrap().to_owned());

    // Request verification and verify.
    let (status, _, _) = client
        .post_json(
            "/api/auth/request-verify-token",
            json!({"email": "ann@example.com"}),
        )
        .await;
    assert_eq!(status, 202);
    let verify_token = token_in_mail(&sink, "ann@example.com", "/verify?token=").await;
    let (status, body, _) = client
        .post_json("/api/auth/verify", json!({"token": verify_token}))
        .await;
    assert_eq!((status, &body["is_verified"]), (200, &json!(true)));

    // Change the password (ends every session), log in, log out everywhere.
    let (status, body, _) = client
        .send(
            "PATCH",
            "/api/users/me",
            "/api/users/me",
            bearer(&tokens[1]),
            Body::Json(json!({"password": THIRD_PASSWORD})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    hashes.push(hash_of(&database, "ann@example.com").await);
    let (status, body, _) = client.login("ann@example.com", THIRD_PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    tokens.push(body["access_token"].as_str().unwrap().to_owned());
    let (status, _, logout_everywhere_id) = client
        .send(
            "DELETE",
            "/api/users/me/sessions",
            "/api/users/me/sessions",
            bearer(&tokens[2]),
            Body::None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _, _) = client
        .send(
            "GET",
            "/api/users/me",
            "/api/users/me",
            bearer(&tokens[2]),
            Body::None,
        )
        .await;
    assert_eq!(status, 401, "the session ended");

    // An address locked after two failures; an unknown path.
    for _ in 0..2 {
        assert_eq!(
            client.login("who@example.com", LOCKED_PASSWORD).await.0,
            400
        );
    }
    let (status, _, locked_id) = client.login("who@example.com", LOCKED_PASSWORD).await;
    assert_eq!(status, 429);
    let (status, _, _) = client
        .send(
            "GET",
            "unmatched",
            "/no/such/path?token=in-a-query-string",
            |r| r,
            Body::None,
        )
        .await;
    assert_eq!(status, 404);

    // Every line is written before its response is sent: the log is
    // complete now.
    drop(server);
    let stdout = json_lines(&dir.0.join("stdout.log"));
    let lines = json_lines(&dir.0.join("stderr.log"));
    assert!(stdout.is_empty(), "nothing on standard output: {stdout:?}");
    let raw = std::fs::read_to_string(dir.0.join("stderr.log")).unwrap();

    // One request line per request, with the response's id.
    let requests: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "portcullis::request")
        .collect();
    let start_up_check: Vec<_> = requests
        .iter()
        .filter(|l| {
            !client
                .sent
                .iter()
                .any(|s| l["request_id"].as_str() == Some(s.request_id.as_str()))
        })
        .collect();
    assert!(
        start_up_check.len() == 1
            && start_up_check[0]["route"] == "/health"
            && start_up_check[0]["status"] == 200,
        "besides the run's, one line: the start-up health check: {start_up_check:?}"
    );
    assert_eq!(
        requests.len(),
        client.sent.len() + 1,
        "one line per request: {requests:#?}"
    );
    for sent in &client.sent {
        let line: Vec<_> = requests
            .iter()
            .filter(|l| l["request_id"].as_str() == Some(sent.request_id.as_str()))
            .collect();
        assert_eq!(line.len(), 1, "{sent:?}: {line:?}");
        let line = line[0];
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(line["message"], "request", "{line}");
        assert_eq!(line["method"], sent.method, "{line}");
        assert_eq!(line["route"], sent.route, "{line}");
        assert_eq!(line["status"], sent.status, "{line}");
        assert_eq!(line["client_address"], "127.0.0.1", "{line}");
        assert!(
            line["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
            "{line}"
        );
        assert!(line["timestamp"].is_string(), "{line}");
    }
    assert!(!raw.contains("two words"), "the insane id is not logged");
    assert!(
        !raw.contains("in-a-query-string"),
        "no query string is logged"
    );

    // The auth events, by the user's id, in the request they belong to.
    for (name, request) in [
        ("register", Some(&register_id)),
        ("login_ok", Some(&login_id)),
        ("login_failed", Some(&failed_id)),
        ("reset_requested", None),
        ("password_reset", None),
        ("verify_requested", None),
        ("verify", None),
    ] {
        let events = auth_events(&lines, name);
        assert!(
            events.iter().any(|e| e["user_id"] == ann_id.as_str()
                && request.is_none_or(|id| request_id_of(e) == id)),
            "{name} of ann: {events:?}"
        );
    }
    for cause in ["password_reset", "password_change", "end_all_sessions"] {
        let events = auth_events(&lines, "sessions_revoked");
        assert!(
            events
                .iter()
                .any(|e| e["user_id"] == ann_id.as_str() && e["cause"] == cause),
            "sessions revoked by {cause}: {events:?}"
        );
    }
    let revoked = auth_events(&lines, "sessions_revoked");
    assert!(
        revoked
            .iter()
            .any(|e| request_id_of(e) == logout_everywhere_id),
        "{revoked:?}"
    );
    let locked = auth_events(&lines, "login_locked");
    assert_eq!(locked.len(), 1, "{locked:?}");
    assert_eq!(request_id_of(locked[0]), locked_id);

    // No password, token, hash or secret of the run, nor the login's
    // address, is anywhere in the log.
    let mut secrets: Vec<String> = [
        PASSWORD,
        WRONG_PASSWORD,
        NEW_PASSWORD,
        THIRD_PASSWORD,
        LOCKED_PASSWORD,
        JWT_SECRET,
        RESET_SECRET,
        VERIFY_SECRET,
        SMTP_PASSWORD,
        &reset_token,
        &verify_token,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    secrets.extend(tokens.iter().cloned());
    // Each token's signature and each hash's digest alone, too.
    for token in tokens.iter().chain([&reset_token, &verify_token]) {
        secrets.push(token.rsplit('.').next().unwrap().to_owned());
    }
    for hash in &hashes {
        secrets.push(hash.clone());
        secrets.push(hash.rsplit('$').next().unwrap().to_owned());
    }
    for secret in &secrets {
        assert!(secret.len() >= 16, "a meaningful needle: {secret:?}");
        assert!(!raw.contains(secret.as_str()), "{secret:?} is in the log");
    }
    for address in ["who@example.com", "ann@example.com"] {
        assert!(!raw.contains(address), "{address} is in the log");
    }
}

#[actix_web::test]
async fn the_text_format_has_request_lines_too() {
    let dir = TempDir::new("logs");
    let port = free_port();
    // LOG_FORMAT unset: text.
    let child = spawn(portcullis("memory://", port), &dir.0);
    let mut server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let mut client = Client::new(&server.base);
    wait_healthy(&client, &mut server.child).await;
    let (status, _, id) = client
        .send(
            "GET",
            "/health",
            "/health",
            |r| r.insert_header(("X-Request-Id", SANE_ID)),
            Body::None,
        )
        .await;
    assert_eq!((status, id.as_str()), (200, SANE_ID));
    let (status, _, id) = client
        .post_json(
            "/api/auth/register",
            json!({"email": "ann@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 201);
    drop(server);
    let text = std::fs::read_to_string(dir.0.join("stderr.log")).unwrap();
    assert!(!text.contains('\u{1b}'), "no colours in a file: {text}");
    let health = text
        .lines()
        .find(|l| {
            l.contains(&format!(" request_id={SANE_ID}")) && l.contains("portcullis::request")
        })
        .unwrap_or_else(|| panic!("no request line for {SANE_ID}: {text}"));
    for field in [
        "INFO",
        "method=GET",
        "route=\"/health\"",
        "status=200",
        "latency_ms=",
        "client_address=127.0.0.1",
    ] {
        assert!(health.contains(field), "{field} in {health}");
    }
    let register = text
        .lines()
        .find(|l| l.contains("portcullis::request") && l.contains(&format!(" request_id={id}")))
        .unwrap_or_else(|| panic!("no request line for {id}: {text}"));
    assert!(
        register.contains("method=POST")
            && register.contains("route=\"/api/auth/register\"")
            && register.contains("status=201"),
        "{register}"
    );
    assert!(
        text.lines().any(|l| l.contains("portcullis::auth")
            && l.contains("auth_event=\"register\"")
            && l.contains(&format!("request{{request_id={id}}}"))),
        "the register event in its request: {text}"
    );
    assert!(!text.contains(PASSWORD));
}

#[test]
fn an_unknown_log_format_is_refused_naming_the_variable() {
    let mut cmd = portcullis("memory://", free_port());
    cmd.env("LOG_FORMAT", "yaml");
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "portcullis: configuration: LOG_FORMAT: cannot read \"yaml\": expected text or json"
        ),
        "{stderr}"
    );
}

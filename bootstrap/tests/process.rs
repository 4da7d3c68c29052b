//! The `portcullis` binary as a process: start-up failures are clear
//! messages, a SIGKILL in the middle of a registration load loses no user
//! that got a 201 nor corrupts the SQLite database, a SIGTERM lets the
//! request in flight finish and exits 0, `.env` and the environment
//! configure it (the environment winning), mails go to the log without
//! SMTP, and the CLI promotes users.

mod process_support;

use std::cell::Cell;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use portcullis_domain::UserRepository;
use portcullis_store_diesel_sqlite::SqliteUserStore;
use process_support::{TempDir, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const PASSWORD: &str = "a long enough password";

fn portcullis(database_url: &str, port: u16) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .env("PORT", port.to_string())
        .env("JWT_SECRET_KEY", "process-test-jwt-secret-0123456789abcdef")
        .env(
            "AUTH_RESET_PASSWORD_TOKEN_SECRET",
            "process-test-reset-secret-0123456789abc",
        )
        .env(
            "AUTH_VERIFICATION_TOKEN_SECRET",
            "process-test-verify-secret-0123456789ab",
        )
        .env("ARGON2_MEMORY_KIB", "8192")
        .env("ARGON2_ITERATIONS", "1")
        // These tests flood /auth/ from one address on purpose.
        .env("RATE_LIMIT_AUTH_PER_MINUTE", "0")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    cmd
}

fn run_to_end(mut cmd: Command) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if started.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            panic!("portcullis did not stop within 20 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_database_in_a_missing_folder_stops_start_up_with_a_clear_message() {
    let out = run_to_end(portcullis("sqlite:///no/such/folder/users.db", free_port()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("folder /no/such/folder does not exist"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_file_that_is_not_a_database_stops_start_up_with_a_clear_message() {
    let dir = TempDir::new("process");
    let file = dir.0.join("users.db");
    std::fs::write(&file, b"these bytes are not an SQLite database, not at all").unwrap();
    let out = run_to_end(portcullis(
        &format!("sqlite://{}", file.display()),
        free_port(),
    ));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("file is not a database"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // and the file is left as it was
    assert_eq!(
        std::fs::read(&file).unwrap(),
        b"these bytes are not an SQLite database, not at all"
    );
}

#[test]
fn a_folder_given_as_database_and_an_unknown_scheme_are_refused_clearly() {
    let dir = TempDir::new("process");
    let out = run_to_end(portcullis(
        &format!("sqlite://{}", dir.0.display()),
        free_port(),
    ));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("this is a folder, not a database file"),
        "{stderr}"
    );

    let out = run_to_end(portcullis("mysql://localhost/users", free_port()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unsupported DATABASE_URL"), "{stderr}");
}

#[test]
fn a_short_secret_is_refused_at_start_naming_the_variable() {
    let mut cmd = portcullis("memory://", free_port());
    cmd.env("JWT_SECRET_KEY", "too-short");
    let out = run_to_end(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("JWT_SECRET_KEY is 9 bytes long"),
        "{stderr}"
    );
}

#[test]
fn a_bad_password_min_length_stops_start_up_naming_the_variable() {
    for bad in ["0", "eight", "4097"] {
        let mut cmd = portcullis("memory://", free_port());
        cmd.env("PASSWORD_MIN_LENGTH", bad);
        let out = run_to_end(cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(
            stderr.contains("portcullis: configuration: PASSWORD_MIN_LENGTH: "),
            "{bad}: {stderr}"
        );
    }
}

#[test]
fn create_superuser_obeys_password_min_length() {
    let mut cmd = cli(
        "memory://",
        &["create-superuser", "--email", "root@example.com"],
    );
    cmd.env("PASSWORD_MIN_LENGTH", "20");
    // 19 characters
    let out = run_with_stdin(cmd, "a long password 123\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("password refused: Password should be at least 20 characters"),
        "{stderr}"
    );
    let mut cmd = cli(
        "memory://",
        &["create-superuser", "--email", "root@example.com"],
    );
    cmd.env("PASSWORD_MIN_LENGTH", "20");
    // 20 characters
    let out = run_with_stdin(cmd, "a long password 1234\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("created superuser root@example.com"));
}

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

async fn start(database: &Path) -> Server {
    let port = free_port();
    let mut cmd = portcullis(&format!("sqlite://{}", database.display()), port);
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    wait_healthy(server).await
}

/// Starts `cmd` (a `serve` listening on `port`) with its standard error
/// written to `log`, and waits until it answers.
async fn start_logged(mut cmd: Command, port: u16, log: &Path) -> Server {
    let file = std::fs::File::create(log).unwrap();
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::from(file))
        .spawn()
        .unwrap();
    wait_healthy(Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    })
    .await
}

/// The log once it contains `needle`; panics with it after 10 s.
async fn wait_for_log(log: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the log within 10 s:\n{text}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_healthy(server: Server) -> Server {
    let client = awc::Client::default();
    let started = Instant::now();
    loop {
        if let Ok(res) = client.get(format!("{}/health", server.base)).send().await
            && res.status() == 200
        {
            return server;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "server did not come up"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn sigkill_during_a_registration_load_loses_no_acknowledged_user() {
    let dir = TempDir::new("process");
    let database = dir.0.join("users.db");
    let mut server = start(&database).await;

    // 8 clients register distinct users as fast as they can; each keeps the
    // addresses that were answered 201 and says how it stopped.
    const ACKS_BEFORE_KILL: usize = 16;
    let acks = Rc::new(Cell::new(0usize));
    let base = Rc::new(server.base.clone());
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let (base, acks) = (Rc::clone(&base), Rc::clone(&acks));
            actix_web::rt::spawn(async move {
                let client = awc::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .finish();
                let mut acknowledged = Vec::new();
                for i in 0..10_000 {
                    let email = format!("client{c}-user{i}@example.com");
                    let res = client
                        .post(format!("{base}/api/auth/register"))
                        .send_json(&serde_json::json!({"email": email, "password": PASSWORD}))
                        .await;
                    match res {
                        Ok(res) if res.status() == 201 => {
                            acknowledged.push(email);
                            acks.set(acks.get() + 1);
                        }
                        Ok(res) => panic!("{email}: unexpected {}", res.status()),
                        // the server is gone
                        Err(_) => return (acknowledged, true),
                    }
                }
                (acknowledged, false)
            })
        })
        .collect();

    // Kill once the load is running (N users acknowledged), while the
    // clients' next registrations are in flight.
    let deadline = Instant::now() + Duration::from_secs(30);
    while acks.get() < ACKS_BEFORE_KILL {
        assert!(
            Instant::now() < deadline,
            "only {} acknowledged in 30 s",
            acks.get()
        );
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();

    let mut acknowledged = Vec::new();
    for client in clients {
        let (acked, cut_off) = client.await.unwrap();
        assert!(cut_off, "every client was still registering at the kill");
        acknowledged.extend(acked);
    }
    assert!(
        acknowledged.len() >= ACKS_BEFORE_KILL,
        "the load ran ({} users acknowledged)",
        acknowledged.len()
    );

    // The database is sound after the crash...
    {
        let store = SqliteUserStore::open(&format!("sqlite://{}", database.display()))
            .await
            .unwrap();
        assert_eq!(
            store.integrity_check().await.unwrap(),
            vec!["ok".to_owned()]
        );
        for email in &acknowledged {
            let email = portcullis_domain::EmailAddress::parse(email).unwrap();
            assert!(
                store.get_by_email(&email).await.unwrap().is_some(),
                "{email} lost"
            );
        }
    }

    // ...and after a restart every acknowledged user can log in.
    let server = start(&database).await;
    let client = awc::Client::default();
    for email in &acknowledged {
        let res = client
            .post(format!("{}/api/auth/jwt/login", server.base))
            .send_form(&[("username", email.as_str()), ("password", PASSWORD)])
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{email} cannot log in after the restart");
    }
    eprintln!(
        "SIGKILL test: {} acknowledged registrations, all present and able to log in",
        acknowledged.len()
    );
}

fn run_with_stdin(mut cmd: Command, stdin: &str) -> Output {
    use std::io::Write;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn cli(database_url: &str, args: &[&str]) -> Command {
    let mut cmd = portcullis(database_url, free_port());
    cmd.args(args);
    cmd
}

#[test]
fn the_cli_migrates_and_creates_and_promotes_superusers_on_sqlite() {
    let dir = TempDir::new("process");
    let url = format!("sqlite://{}", dir.0.join("users.db").display());

    let out = run_to_end(cli(&url, &["migrate"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("applied migrations"));
    let out = run_to_end(cli(&url, &["migrate"]));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("schema up to date"));

    // a password that fails the policy is refused, nothing is created
    let out = run_with_stdin(
        cli(&url, &["create-superuser", "--email", "root@example.com"]),
        "short\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Password should be at least 8 characters")
    );

    // from standard input, as scripts do
    let out = run_with_stdin(
        cli(&url, &["create-superuser", "--email", "Root@Example.com"]),
        "a long enough password\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("created superuser Root@example.com"));

    // again: a clear message that offers --promote
    let out = run_with_stdin(
        cli(&url, &["create-superuser", "--email", "root@example.com"]),
        "a long enough password\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists; pass --promote"));

    // --promote makes an existing ordinary user a superuser
    let store_url = url.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let service = portcullis::build_service(
            &portcullis::Config::from_vars([
                ("DATABASE_URL", store_url.as_str()),
                ("JWT_SECRET_KEY", "process-test-jwt-secret-0123456789abcdef"),
                (
                    "AUTH_RESET_PASSWORD_TOKEN_SECRET",
                    "process-test-reset-secret-0123456789abc",
                ),
                (
                    "AUTH_VERIFICATION_TOKEN_SECRET",
                    "process-test-verify-secret-0123456789ab",
                ),
                ("ARGON2_MEMORY_KIB", "8192"),
                ("ARGON2_ITERATIONS", "1"),
            ])
            .unwrap(),
        )
        .await
        .unwrap();
        let ann = portcullis_domain::EmailAddress::parse("ann@example.com").unwrap();
        service.register(ann, "ann's long password").await.unwrap();
    });
    let out = run_with_stdin(
        cli(
            &url,
            &[
                "create-superuser",
                "--email",
                "ANN@example.com",
                "--promote",
            ],
        ),
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("promoted ann@example.com"));
    runtime.block_on(async {
        let store = SqliteUserStore::open(&url).await.unwrap();
        let ann = portcullis_domain::EmailAddress::parse("ann@example.com").unwrap();
        assert!(
            store
                .get_by_email(&ann)
                .await
                .unwrap()
                .unwrap()
                .is_superuser
        );
    });
}

#[test]
fn every_command_says_what_it_does_and_which_environment_it_reads() {
    for (args, expected) in [
        (
            vec!["--help"],
            vec!["serve", "migrate", "create-superuser", "DATABASE_URL"],
        ),
        (
            vec!["serve", "--help"],
            vec![
                "Serve the HTTP API",
                "JWT_SECRET_KEY",
                "SMTP_HOST",
                "SMTP_CA_FILE",
                "PASSWORD_MIN_LENGTH",
                "USER_FIELDS",
            ],
        ),
        (
            vec!["migrate", "--help"],
            vec!["migrations", "DATABASE_URL", "USER_FIELDS"],
        ),
        (
            vec!["create-superuser", "--help"],
            vec![
                "--email",
                "--promote",
                "without echo",
                "DATABASE_URL",
                "PASSWORD_MIN_LENGTH",
            ],
        ),
    ] {
        let out = run_to_end(cli("memory://", &args));
        assert!(out.status.success(), "{args:?}");
        let help = String::from_utf8_lossy(&out.stdout);
        for word in expected {
            assert!(
                help.contains(word),
                "`portcullis {}` lacks {word:?}:\n{help}",
                args.join(" ")
            );
        }
    }
}

fn sqlite_url(file: &Path) -> String {
    format!("sqlite://{}", file.display())
}

/// Waits until the process has exited; panics after 20 s.
fn wait_for_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the process did not exit in 20 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads one HTTP/1.1 head (up to the blank line) from a raw socket.
fn read_head(stream: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).unwrap();
        assert_eq!(n, 1, "the connection closed after {head:?}");
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

#[actix_web::test]
async fn sigterm_lets_the_request_in_flight_finish_then_exits_0() {
    use std::io::{Read, Write};
    let dir = TempDir::new("process");
    let database = dir.0.join("users.db");
    let log = dir.0.join("stderr.log");
    let port = free_port();
    let mut cmd = portcullis(&sqlite_url(&database), port);
    // Hashing the password takes over a second: the request is still
    // running when actix first checks (after 1 s) whether its workers are
    // done, so a shutdown that does not wait for it drops it.
    cmd.env("RUST_LOG", "warn,actix_server=info")
        .env("ARGON2_ITERATIONS", "250");
    let mut server = start_logged(cmd, port, &log).await;

    // A registration whose body is sent only after the SIGTERM: the server
    // has the request (it answered `100 Continue`) when it is told to stop.
    let body =
        serde_json::json!({"email": "inflight@example.com", "password": PASSWORD}).to_string();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    write!(
        stream,
        "POST /api/auth/register HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    let head = read_head(&mut stream);
    assert!(head.starts_with("HTTP/1.1 100 Continue"), "{head}");

    let pid = server.child.id().to_string();
    let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(kill.success());
    wait_for_log(&log, "SIGTERM").await;
    // The shutdown is under way: new connections are refused.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "still accepting 10 s after SIGTERM"
        );
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the process waits for the request in flight"
    );

    stream.write_all(body.as_bytes()).unwrap();
    let started = Instant::now();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    eprintln!(
        "the request in flight took {:?} after the SIGTERM",
        started.elapsed()
    );
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert!(
        answer.contains(r#""email":"inflight@example.com""#),
        "{answer}"
    );

    let status = wait_for_exit(&mut server.child);
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(0), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    let store = SqliteUserStore::open(&sqlite_url(&database)).await.unwrap();
    let email = portcullis_domain::EmailAddress::parse("inflight@example.com").unwrap();
    assert!(store.get_by_email(&email).await.unwrap().is_some());
}

/// The token after `marker` in `text` (the run of base64url and `.`).
fn token_after(text: &str, marker: &str) -> Option<String> {
    let start = text.find(marker)? + marker.len();
    let token: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    (!token.is_empty()).then_some(token)
}

async fn post_json(base: &str, path: &str, body: serde_json::Value) -> u16 {
    awc::Client::default()
        .post(format!("{base}/api{path}"))
        .send_json(&body)
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn login_status(base: &str, email: &str, password: &str) -> u16 {
    awc::Client::default()
        .post(format!("{base}/api/auth/jwt/login"))
        .send_form(&[("username", email), ("password", password)])
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Without `SMTP_HOST` mails go to the log: the reset link is there, and
/// it works.
#[actix_web::test]
async fn without_smtp_the_reset_mail_is_logged_with_a_working_link() {
    let dir = TempDir::new("process");
    let log = dir.0.join("stderr.log");
    let port = free_port();
    let mut cmd = portcullis("memory://", port);
    cmd.env("RUST_LOG", "info")
        .env("FRONTEND_URL", "http://frontend.example.com");
    let server = start_logged(cmd, port, &log).await;
    let text = wait_for_log(&log, "SMTP_HOST is not set").await;
    assert!(text.contains("mails are written to the log"), "{text}");

    let ann = serde_json::json!({"email": "Ann@example.com", "password": PASSWORD});
    assert_eq!(post_json(&server.base, "/auth/register", ann).await, 201);
    let forgot = serde_json::json!({"email": "ann@example.com"});
    assert_eq!(
        post_json(&server.base, "/auth/forgot-password", forgot).await,
        202
    );
    let link = "http://frontend.example.com/reset-password?token=";
    let text = wait_for_log(&log, link).await;
    assert!(text.contains("Ann@example.com"), "the recipient: {text}");
    let token = token_after(&text, link).unwrap();
    let reset = serde_json::json!({"token": token, "password": "a brand new password"});
    assert_eq!(
        post_json(&server.base, "/auth/reset-password", reset).await,
        200
    );
    assert_eq!(
        login_status(&server.base, "ann@example.com", "a brand new password").await,
        200
    );
}

/// `.env` in the working directory configures the server; a variable of
/// the real environment wins over the same one in `.env`.
#[actix_web::test]
async fn dot_env_is_read_and_the_real_environment_wins() {
    let dir = TempDir::new("process");
    let database = dir.0.join("from-dotenv.db");
    let log = dir.0.join("stderr.log");
    let (port, dotenv_port) = (free_port(), free_port());
    std::fs::write(
        dir.0.join(".env"),
        format!(
            "DATABASE_URL={}\nPORT={dotenv_port}\nFRONTEND_URL=http://dotenv.example.com\n\
             JWT_SECRET_KEY=dotenv-test-jwt-secret-0123456789abcdef\n\
             AUTH_RESET_PASSWORD_TOKEN_SECRET=dotenv-test-reset-secret-0123456789abc\n\
             AUTH_VERIFICATION_TOKEN_SECRET=dotenv-test-verify-secret-0123456789ab\n\
             ARGON2_MEMORY_KIB=8192\nARGON2_ITERATIONS=1\n",
            sqlite_url(&database)
        ),
    )
    .unwrap();
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORT", port.to_string())
        .env("FRONTEND_URL", "http://env.example.com")
        .env("RUST_LOG", "info")
        .current_dir(&dir.0)
        .stdin(Stdio::null());
    let server = start_logged(cmd, port, &log).await;
    // PORT: the environment's; DATABASE_URL: only in .env, used.
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", dotenv_port)).is_err(),
        "nothing listens on the .env port"
    );
    assert!(database.exists(), "the .env database was created");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains("is not set: using a random secret"),
        "the secrets come from .env: {text}"
    );

    let ann = serde_json::json!({"email": "ann@example.com", "password": PASSWORD});
    assert_eq!(post_json(&server.base, "/auth/register", ann).await, 201);
    let forgot = serde_json::json!({"email": "ann@example.com"});
    assert_eq!(
        post_json(&server.base, "/auth/forgot-password", forgot).await,
        202
    );
    // FRONTEND_URL: in both, the environment's.
    let text = wait_for_log(&log, "http://env.example.com/reset-password?token=").await;
    assert!(!text.contains("dotenv.example.com"), "{text}");
    drop(server);
    let store = SqliteUserStore::open(&sqlite_url(&database)).await.unwrap();
    let email = portcullis_domain::EmailAddress::parse("ann@example.com").unwrap();
    assert!(store.get_by_email(&email).await.unwrap().is_some());
}

/// `PASSWORD_HASHER` and `ARGON2_PARALLELISM` reach the hasher of the
/// server: the stored hashes say so.
#[actix_web::test]
async fn the_hasher_settings_of_the_environment_shape_the_stored_hashes() {
    let dir = TempDir::new("process");
    type Case = (&'static str, &'static str, fn(&str) -> bool);
    let cases: [Case; 2] = [
        ("PASSWORD_HASHER", "pbkdf2", |h| {
            h.starts_with("$pbkdf2-sha256$")
        }),
        ("ARGON2_PARALLELISM", "2", |h| {
            h.starts_with("$argon2id$") && h.contains(",p=2$")
        }),
    ];
    for (var, value, expected) in cases {
        let database = dir.0.join(format!("{var}.db"));
        let port = free_port();
        let mut cmd = portcullis(&sqlite_url(&database), port);
        cmd.env(var, value);
        let log = dir.0.join(format!("{var}.log"));
        let server = start_logged(cmd, port, &log).await;
        let ann = serde_json::json!({"email": "ann@example.com", "password": PASSWORD});
        assert_eq!(post_json(&server.base, "/auth/register", ann).await, 201);
        assert_eq!(
            login_status(&server.base, "ann@example.com", PASSWORD).await,
            200
        );
        drop(server);
        let store = SqliteUserStore::open(&sqlite_url(&database)).await.unwrap();
        let email = portcullis_domain::EmailAddress::parse("ann@example.com").unwrap();
        let hash = store
            .get_by_email(&email)
            .await
            .unwrap()
            .unwrap()
            .hashed_password;
        assert!(expected(&hash), "{var}={value}: {hash}");
    }
}

/// Promoting a deactivated user makes an administrator who can act: the
/// promoted user is a superuser and active again (its verification is left
/// as it was).
#[test]
fn promoting_an_inactive_user_makes_an_active_superuser() {
    let dir = TempDir::new("process");
    let url = sqlite_url(&dir.0.join("users.db"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ann = portcullis_domain::EmailAddress::parse("ann@example.com").unwrap();
    runtime.block_on(async {
        let out = run_to_end(cli(&url, &["migrate"]));
        assert!(out.status.success());
        let store = SqliteUserStore::open(&url).await.unwrap();
        let user = portcullis_domain::User::new(
            ann.clone(),
            "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG".into(),
        );
        let user = store.create(user).await.unwrap();
        let deactivate = portcullis_domain::UserPatch {
            is_active: Some(false),
            ..Default::default()
        };
        let user = store.patch(user.id, deactivate).await.unwrap();
        assert!(!user.is_active && !user.is_superuser && !user.is_verified);
    });
    let out = run_with_stdin(
        cli(
            &url,
            &[
                "create-superuser",
                "--email",
                "Ann@Example.com",
                "--promote",
            ],
        ),
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("promoted ann@example.com"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    runtime.block_on(async {
        let store = SqliteUserStore::open(&url).await.unwrap();
        let user = store.get_by_email(&ann).await.unwrap().unwrap();
        assert!(user.is_superuser, "promoted");
        assert!(user.is_active, "active again");
        assert!(!user.is_verified, "verification untouched");
    });
}

#[test]
fn a_bad_user_fields_declaration_stops_start_up_naming_the_field() {
    for (declaration, words) in [
        ("{not json", "USER_FIELDS: user field \"USER_FIELDS\""),
        (
            r#"{"email": {"type": "string", "nullable": true}}"#,
            "\"email\"",
        ),
        (
            r#"{"age": {"type": "float", "default": 1}}"#,
            "\"age\": unsupported type",
        ),
    ] {
        let mut cmd = portcullis("memory://", free_port());
        cmd.env("USER_FIELDS", declaration);
        let out = run_to_end(cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{declaration}: {stderr}");
        assert!(
            stderr.contains("portcullis: configuration: USER_FIELDS: ") && stderr.contains(words),
            "{declaration}: {stderr}"
        );
    }
}

#[test]
fn migrate_adds_user_field_columns_and_refuses_a_column_of_another_type() {
    let dir = TempDir::new("process");
    let url = format!("sqlite://{}", dir.0.join("users.db").display());
    let mut cmd = cli(&url, &["migrate"]);
    cmd.env(
        "USER_FIELDS",
        r#"{"credits": {"type": "string", "nullable": true}}"#,
    );
    let out = run_to_end(cmd);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The same column declared as an integer now: start-up is refused, by name.
    let mut cmd = cli(&url, &["migrate"]);
    cmd.env(
        "USER_FIELDS",
        r#"{"credits": {"type": "integer", "default": 0}}"#,
    );
    let out = run_to_end(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("\"credits\"") && stderr.contains("integer"),
        "{stderr}"
    );
    // …and so is serving.
    let mut cmd = portcullis(&url, free_port());
    cmd.env(
        "USER_FIELDS",
        r#"{"credits": {"type": "integer", "default": 0}}"#,
    );
    let out = run_to_end(cmd);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"credits\""));
}

/// The binary's HTTP hardening: CORS for `CORS_ORIGINS`, the security
/// headers on every answer (`no-store` under `/auth/`), and a stalled body
/// cut off with 408 and the connection closed.
#[actix_web::test]
async fn the_binary_grants_cors_sends_the_security_headers_and_cuts_off_a_stalled_body() {
    use std::io::{Read as _, Write as _};

    let dir = TempDir::new("process");
    let port = free_port();
    let mut cmd = portcullis(&sqlite_url(&dir.0.join("hardening.db")), port);
    cmd.env("CORS_ORIGINS", "https://app.example.com");
    let server = start_logged(cmd, port, &dir.0.join("stderr.log")).await;
    let client = awc::Client::default();

    let preflight = client
        .request(
            awc::http::Method::OPTIONS,
            format!("{}/api/auth/jwt/login", server.base),
        )
        .insert_header(("origin", "https://app.example.com"))
        .insert_header(("access-control-request-method", "POST"))
        .send()
        .await
        .unwrap();
    let header = |res: &awc::ClientResponse<_>, name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(preflight.status(), 200);
    assert_eq!(
        header(&preflight, "access-control-allow-origin").as_deref(),
        Some("https://app.example.com")
    );
    assert_eq!(
        header(&preflight, "access-control-allow-credentials").as_deref(),
        Some("true")
    );

    let health = client
        .get(format!("{}/health", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&health, "x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert_eq!(
        header(&health, "referrer-policy").as_deref(),
        Some("no-referrer")
    );
    let login = client
        .post(format!("{}/api/auth/jwt/login", server.base))
        .insert_header(("origin", "https://app.example.com"))
        .send_form(&[("username", "nobody@example.com"), ("password", "wrong")])
        .await
        .unwrap();
    assert_eq!(login.status(), 400);
    assert_eq!(header(&login, "cache-control").as_deref(), Some("no-store"));
    assert_eq!(
        header(&login, "access-control-allow-origin").as_deref(),
        Some("https://app.example.com")
    );

    // Headers and half a body, then nothing.
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(
            b"POST /api/auth/register HTTP/1.1\r\nHost: 127.0.0.1\r\n\
              Content-Type: application/json\r\nContent-Length: 60\r\n\r\n{\"email\": \"half",
        )
        .unwrap();
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .expect("the server answers and closes within 30 s");
    assert!(
        answer.starts_with("HTTP/1.1 408 "),
        "after {:?}: {answer:?}",
        started.elapsed()
    );
    assert!(
        answer.ends_with(r#"{"detail":"Request Timeout"}"#),
        "{answer:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "{:?}",
        started.elapsed()
    );
}

//! The `portcullis` binary as a process: start-up failures are clear
//! messages, and a SIGKILL in the middle of a registration load loses no
//! user that got a 201 nor corrupts the SQLite database.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use portcullis_domain::UserRepository;
use portcullis_store_diesel_sqlite::SqliteUserStore;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const PASSWORD: &str = "a long enough password";

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("portcullis-process-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
    let dir = TempDir::new();
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
    let dir = TempDir::new();
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
    let dir = TempDir::new();
    let database = dir.0.join("users.db");
    let mut server = start(&database).await;

    // 8 clients register distinct users as fast as they can; each keeps the
    // addresses that were answered 201.
    let base = Rc::new(server.base.clone());
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let base = Rc::clone(&base);
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
                        Ok(res) if res.status() == 201 => acknowledged.push(email),
                        Ok(res) => panic!("{email}: unexpected {}", res.status()),
                        Err(_) => break, // the server is gone
                    }
                }
                acknowledged
            })
        })
        .collect();

    actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();

    let mut acknowledged = Vec::new();
    for client in clients {
        acknowledged.extend(client.await.unwrap());
    }
    assert!(
        acknowledged.len() >= 8,
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
    let dir = TempDir::new();
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
            vec!["Serve the HTTP API", "JWT_SECRET_KEY", "SMTP_HOST"],
        ),
        (
            vec!["migrate", "--help"],
            vec!["migrations", "DATABASE_URL"],
        ),
        (
            vec!["create-superuser", "--help"],
            vec!["--email", "--promote", "without echo", "DATABASE_URL"],
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

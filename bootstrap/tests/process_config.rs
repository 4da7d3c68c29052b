//! The `portcullis` binary in production mode and `portcullis
//! check-config`, as processes: each production refusal names its
//! variable, and check-config passes on a good environment (showing no
//! secret), fails with one clear line for an unreachable or unmigrated
//! database and for an unreachable mail server, and changes nothing. With
//! the `postgres` feature, also on a fresh PostgreSQL database
//! (scripts/with-postgres).

#[cfg(feature = "postgres")]
mod pg_support;

mod process_support;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis_store_diesel_sqlite::SqliteUserStore;
use process_support::{TempDir, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

const JWT_SECRET: &str = "config-test-jwt-secret-0123456789abcdef";
const RESET_SECRET: &str = "config-test-reset-secret-0123456789abcd";
const VERIFY_SECRET: &str = "config-test-verify-secret-0123456789abc";
const SMTP_PASSWORD: &str = "config-test-smtp-password-hunter2";
const SUPERUSER_PASSWORD: &str = "config-test-superuser-password-hunter3";
const DB_PASSWORD: &str = "config-test-db-password-hunter4";

/// The SQLite database in `dir`.
fn database_url(dir: &TempDir) -> String {
    format!("sqlite://{}", dir.0.join("users.db").display())
}

/// `portcullis ARGS` in a production environment that passes every
/// production check: distinct secrets, an SMTP server (at a closed port
/// unless the test says otherwise), a first superuser.
fn production(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORTCULLIS_ENV", "production")
        .env("DATABASE_URL", "memory://")
        .env("PORT", free_port().to_string())
        .env("JWT_SECRET_KEY", JWT_SECRET)
        .env("AUTH_RESET_PASSWORD_TOKEN_SECRET", RESET_SECRET)
        .env("AUTH_VERIFICATION_TOKEN_SECRET", VERIFY_SECRET)
        .env("SMTP_HOST", "127.0.0.1")
        .env("SMTP_PORT", closed_port().to_string())
        .env("SMTP_TLS", "none")
        .env("SMTP_USERNAME", "mailer")
        .env("SMTP_PASSWORD", SMTP_PASSWORD)
        .env("MAIL_FROM", "Portcullis <noreply@example.com>")
        .env("FIRST_SUPERUSER_EMAIL", "root@example.com")
        .env("FIRST_SUPERUSER_PASSWORD", SUPERUSER_PASSWORD)
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
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("portcullis did not stop within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Standard output and error of a run, together.
fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A port nothing listens on: bound, then let go.
fn closed_port() -> u16 {
    free_port()
}

/// The one line of check-config's report about `subject`.
fn check_line<'a>(stdout: &'a str, subject: &str) -> &'a str {
    // "  TAG   subject: text", TAG being `ok`, `warn` or `FAIL`.
    let wanted = format!("{subject}: ");
    stdout
        .lines()
        .find(|l| {
            ["  ok    ", "  warn  ", "  FAIL  "].iter().any(|tag| {
                l.strip_prefix(tag)
                    .is_some_and(|rest| rest.starts_with(&wanted))
            })
        })
        .unwrap_or_else(|| panic!("no check line for {subject} in:\n{stdout}"))
}

fn assert_no_secret(output: &str) {
    for secret in [
        JWT_SECRET,
        RESET_SECRET,
        VERIFY_SECRET,
        SMTP_PASSWORD,
        SUPERUSER_PASSWORD,
        DB_PASSWORD,
    ] {
        assert!(!output.contains(secret), "{secret} shown in:\n{output}");
    }
}

/// A plain-text SMTP server that answers EHLO (offering AUTH, not
/// STARTTLS), AUTH, NOOP and QUIT, and records every command it receives.
struct SmtpPeer {
    port: u16,
    commands: Arc<Mutex<Vec<String>>>,
}

impl SmtpPeer {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let commands = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&commands);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let seen = Arc::clone(&seen);
                std::thread::spawn(move || Self::converse(stream, &seen));
            }
        });
        Self { port, commands }
    }

    fn converse(stream: TcpStream, seen: &Mutex<Vec<String>>) {
        let mut writer = stream.try_clone().unwrap();
        let mut say = |text: &str| writer.write_all(text.as_bytes()).is_ok();
        if !say("220 peer.test ESMTP ready\r\n") {
            return;
        }
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            seen.lock().unwrap().push(line.clone());
            let verb = line
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            let answer = match verb.as_str() {
                "EHLO" => "250-peer.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n",
                "AUTH" => "235 2.7.0 Authentication successful\r\n",
                "QUIT" => {
                    say("221 bye\r\n");
                    return;
                }
                _ => "250 ok\r\n",
            };
            if !say(answer) {
                return;
            }
        }
    }

    /// Waits (bounded) until a command starting with `verb` arrived.
    fn received(&self, verb: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self
                .commands
                .lock()
                .unwrap()
                .iter()
                .any(|c| c.to_ascii_uppercase().starts_with(verb))
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

fn migrate(database_url: &str) {
    let mut cmd = production(&["migrate"]);
    cmd.env("DATABASE_URL", database_url);
    let out = run_to_end(cmd);
    assert!(out.status.success(), "{}", text(&out));
}

fn pending_migrations(database_url: &str) -> Vec<String> {
    actix_web::rt::System::new().block_on(async {
        SqliteUserStore::open(database_url)
            .await
            .unwrap()
            .pending_migrations()
            .await
            .unwrap()
    })
}

#[test]
fn production_refuses_to_start_with_an_unset_secret_naming_it() {
    for var in [
        "JWT_SECRET_KEY",
        "AUTH_RESET_PASSWORD_TOKEN_SECRET",
        "AUTH_VERIFICATION_TOKEN_SECRET",
    ] {
        let mut cmd = production(&["serve"]);
        cmd.env_remove(var);
        let out = run_to_end(cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}: {stderr}");
        assert!(
            stderr.contains(&format!("{var} is not set and PORTCULLIS_ENV=production")),
            "{var}: {stderr}"
        );
        assert!(!stderr.contains("listening"), "{stderr}");
    }
}

#[test]
fn production_refuses_to_start_with_two_equal_secrets_naming_both() {
    let mut cmd = production(&["serve"]);
    cmd.env("AUTH_VERIFICATION_TOKEN_SECRET", RESET_SECRET);
    let out = run_to_end(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "AUTH_RESET_PASSWORD_TOKEN_SECRET and AUTH_VERIFICATION_TOKEN_SECRET hold the same value"
        ),
        "{stderr}"
    );
    assert_no_secret(&text(&out));
}

#[test]
fn production_refuses_the_log_mailer_naming_smtp_host() {
    let mut cmd = production(&["serve"]);
    cmd.env_remove("SMTP_HOST");
    let out = run_to_end(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("SMTP_HOST is not set and PORTCULLIS_ENV=production"),
        "{stderr}"
    );
    // Outside production the same environment starts (and would log mails):
    // check-config says so with a warning, and passes.
    let mut cmd = production(&["check-config"]);
    cmd.env_remove("SMTP_HOST")
        .env("PORTCULLIS_ENV", "development");
    let out = run_to_end(cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        check_line(&stdout, "SMTP_HOST").starts_with("  warn  SMTP_HOST: not set"),
        "{stdout}"
    );
}

#[test]
fn check_config_passes_on_a_migrated_sqlite_database_and_a_real_smtp_peer_showing_no_secret() {
    let dir = TempDir::new("config");
    let url = database_url(&dir);
    migrate(&url);
    let peer = SmtpPeer::start();
    let mut cmd = production(&["check-config"]);
    cmd.env("DATABASE_URL", &url)
        .env("SMTP_PORT", peer.port.to_string());
    let out = run_to_end(cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout.trim_end().ends_with("check-config: ok"), "{stdout}");
    assert!(
        check_line(&stdout, "configuration")
            .starts_with("  ok    configuration: valid for production"),
        "{stdout}"
    );
    assert!(
        check_line(&stdout, "database").contains("reachable, schema up to date"),
        "{stdout}"
    );
    assert_eq!(
        check_line(&stdout, "smtp"),
        format!(
            "  ok    smtp: 127.0.0.1:{} (none): the server answered, login accepted",
            peer.port
        )
    );
    // The peer was really spoken to, login included.
    assert!(peer.received("AUTH"), "{:?}", peer.commands.lock().unwrap());
    assert!(peer.received("NOOP"), "{:?}", peer.commands.lock().unwrap());
    // What it would run with, secrets masked.
    for line in [
        "PORTCULLIS_ENV",
        "JWT_SECRET_KEY",
        "SMTP_PASSWORD",
        "FIRST_SUPERUSER_PASSWORD",
        "LOG_FORMAT",
        "METRICS_ADDR",
    ] {
        assert!(
            stdout.lines().any(|l| l.trim_start().starts_with(line)),
            "{line} in {stdout}"
        );
    }
    assert!(stdout.contains("  SMTP_TLS "), "{stdout}");
    assert!(
        check_line(&stdout, "SMTP_TLS").starts_with("  warn  SMTP_TLS: none"),
        "plain text is named: {stdout}"
    );
    assert_no_secret(&text(&out));
}

#[test]
fn check_config_fails_on_pending_migrations_and_applies_none() {
    let dir = TempDir::new("config");
    let url = database_url(&dir);
    // An existing, empty database file.
    std::fs::write(dir.0.join("users.db"), b"").unwrap();
    let peer = SmtpPeer::start();
    let mut cmd = production(&["check-config"]);
    cmd.env("DATABASE_URL", &url)
        .env("SMTP_PORT", peer.port.to_string());
    let out = run_to_end(cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let line = check_line(&stdout, "database");
    assert!(
        line.starts_with("  FAIL  database: ")
            && line
                .contains("reachable, but 5 migration(s) pending: 2025-01-01-000000_create_user, ")
            && line.ends_with("; run `portcullis migrate`"),
        "{stdout}"
    );
    assert!(
        stdout
            .trim_end()
            .ends_with("check-config: FAILED (1 failed)"),
        "{stdout}"
    );
    assert_eq!(pending_migrations(&url).len(), 4, "nothing was applied");
}

#[test]
fn check_config_fails_clearly_for_an_unreachable_database_and_creates_no_file() {
    for (url, words) in [
        (
            "sqlite:///no/such/folder/users.db".to_owned(),
            "folder /no/such/folder does not exist",
        ),
        (
            format!(
                "sqlite://{}",
                std::env::temp_dir()
                    .join(format!("portcullis-missing-{}.db", uuid::Uuid::new_v4()))
                    .display()
            ),
            "no database file here",
        ),
    ] {
        let mut cmd = production(&["check-config"]);
        cmd.env("DATABASE_URL", &url);
        let out = run_to_end(cmd);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let line = check_line(&stdout, "database");
        assert!(
            line.starts_with("  FAIL  database: DATABASE_URL: cannot open SQLite database")
                && line.contains(words),
            "{stdout}"
        );
        let path = url.trim_start_matches("sqlite://");
        assert!(!std::path::Path::new(path).exists(), "{path} was created");
    }
}

#[test]
fn check_config_fails_clearly_for_an_unreachable_smtp_server() {
    let port = closed_port();
    let mut cmd = production(&["check-config"]);
    cmd.env("SMTP_PORT", port.to_string());
    let out = run_to_end(cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let line = check_line(&stdout, "smtp");
    assert!(
        line.starts_with(&format!("  FAIL  smtp: SMTP 127.0.0.1:{port} (none): ")),
        "{stdout}"
    );
    assert!(
        line.to_ascii_lowercase().contains("refused"),
        "says why: {stdout}"
    );
    assert_no_secret(&text(&out));
}

#[test]
fn check_config_with_smtp_tls_unset_never_falls_back_to_plain_text() {
    // The peer offers no STARTTLS: the default (starttls) refuses to send
    // the login in clear.
    let peer = SmtpPeer::start();
    let mut cmd = production(&["check-config"]);
    cmd.env("SMTP_PORT", peer.port.to_string())
        .env_remove("SMTP_TLS");
    let out = run_to_end(cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        check_line(&stdout, "smtp").starts_with(&format!(
            "  FAIL  smtp: SMTP 127.0.0.1:{} (starttls): ",
            peer.port
        )),
        "{stdout}"
    );
    assert!(
        !peer
            .commands
            .lock()
            .unwrap()
            .iter()
            .any(|c| c.starts_with("AUTH")),
        "the login went out in clear: {:?}",
        peer.commands.lock().unwrap()
    );
}

#[test]
fn check_config_reports_an_unreadable_configuration_and_production_refusals_as_failed_checks() {
    for (var, value, words) in [
        ("PORT", "eighty", "PORT: cannot read \"eighty\""),
        (
            "SMTP_HOST",
            "",
            "SMTP_HOST is not set and PORTCULLIS_ENV=production",
        ),
        (
            "JWT_SECRET_KEY",
            VERIFY_SECRET,
            "JWT_SECRET_KEY and AUTH_VERIFICATION_TOKEN_SECRET hold the same value",
        ),
        (
            "PORTCULLIS_ENV",
            "prod",
            "PORTCULLIS_ENV: expected production or development",
        ),
    ] {
        let mut cmd = production(&["check-config"]);
        cmd.env(var, value);
        let out = run_to_end(cmd);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{var}: {}", text(&out));
        assert!(
            check_line(&stdout, "configuration")
                .starts_with(&format!("  FAIL  configuration: {words}")),
            "{var}: {stdout}"
        );
        assert_no_secret(&text(&out));
    }
}

#[test]
fn check_config_masks_the_database_password() {
    let mut cmd = production(&["check-config"]);
    cmd.env(
        "DATABASE_URL",
        format!(
            "postgres://portcullis:{DB_PASSWORD}@127.0.0.1:{}/users",
            closed_port()
        ),
    );
    let out = run_to_end(cmd);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("postgres://portcullis:********@127.0.0.1:"),
        "{stdout}"
    );
    assert!(
        check_line(&stdout, "database").starts_with("  FAIL  database: "),
        "{stdout}"
    );
    assert_no_secret(&text(&out));
}

#[test]
fn check_config_says_what_it_checks() {
    let out = run_to_end(production(&["check-config", "--help"]));
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for words in [
        "changing nothing",
        "pending migration",
        "SMTP_TLS",
        "exits 0",
        "DATABASE_URL",
    ] {
        assert!(help.contains(words), "{words} in {help}");
    }
    let out = run_to_end(production(&["--help"]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("check-config"));
}

/// check-config on a real PostgreSQL database (scripts/with-postgres).
#[cfg(feature = "postgres")]
mod on_postgres {
    use super::*;
    use crate::pg_support::{connect, count, create_database, drop_database};

    #[actix_web::test]
    async fn check_config_reports_pending_migrations_then_passes_once_migrated() {
        let (name, url) = create_database().await;
        let peer = SmtpPeer::start();
        let check = || {
            let mut cmd = production(&["check-config"]);
            cmd.env("DATABASE_URL", &url)
                .env("SMTP_PORT", peer.port.to_string());
            run_to_end(cmd)
        };

        let out = check();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let line = check_line(&stdout, "database");
        assert!(
            line.starts_with("  FAIL  database: ")
                && line.contains(
                    "reachable, but 5 migration(s) pending: m20250101_000001_create_user, "
                ),
            "{stdout}"
        );
        // Nothing was applied: not even SeaORM's bookkeeping table.
        let db = connect(&url).await;
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
            )
            .await,
            0
        );

        migrate(&url);
        let out = check();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(
            check_line(&stdout, "database").ends_with("reachable, schema up to date"),
            "{stdout}"
        );
        assert_no_secret(&text(&out));
        drop(db);
        drop_database(&name).await;
    }
}

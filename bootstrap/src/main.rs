//! The `portcullis` command: serve the HTTP API, apply migrations, create a
//! superuser. Configured from the environment and `.env`.

use std::io::{BufRead, IsTerminal};
use std::net::TcpListener;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use portcullis::{
    CheckReport, Config, LogFormat, SuperuserOutcome, build_service, check_config,
    create_superuser, migrate_with_fields, serve_metrics, start,
};
use tracing_subscriber::EnvFilter;

const ENV_HELP: &str = "Reads DATABASE_URL, DATABASE_MAX_CONNECTIONS, HOST, PORT, API_PREFIX, LOGIN_REQUIRES_VERIFICATION, \
TRUSTED_PROXIES, RATE_LIMIT_AUTH_PER_MINUTE, \
LOGIN_LOCKOUT_FAILURES, LOGIN_LOCKOUT_MINUTES, MAIL_PER_ADDRESS_PER_HOUR, \
COOKIE_NAME, COOKIE_SECURE, COOKIE_DOMAIN, CORS_ORIGINS, \
JWT_SECRET_KEY, AUTH_RESET_PASSWORD_TOKEN_SECRET, AUTH_VERIFICATION_TOKEN_SECRET, \
JWT_ACCESS_TOKEN_EXPIRE_MINUTES, AUTH_STRATEGY, ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, ARGON2_PARALLELISM, \
PASSWORD_HASHER, HASH_QUEUE_MAX, HASH_QUEUE_TIMEOUT_MS, PASSWORD_MIN_LENGTH, USER_FIELDS, SMTP_HOST, SMTP_PORT, SMTP_USERNAME, SMTP_PASSWORD, SMTP_TLS, SMTP_CA_FILE, MAIL_FROM, \
FRONTEND_URL, FIRST_SUPERUSER_EMAIL, FIRST_SUPERUSER_PASSWORD, PORTCULLIS_ENV, METRICS_ADDR, LOG_FORMAT, \
OAUTH_PROVIDERS, OAUTH_<NAME>_KIND, OAUTH_<NAME>_CLIENT_ID, OAUTH_<NAME>_CLIENT_SECRET, OAUTH_<NAME>_SCOPES, \
OAUTH_<NAME>_REDIRECT_URL, OAUTH_<NAME>_ISSUER, OAUTH_<NAME>_AUTHORIZE_URL, OAUTH_<NAME>_TOKEN_URL, OAUTH_<NAME>_USERINFO_URL, \
OAUTH_STATE_SECRET, OAUTH_ASSOCIATE_BY_EMAIL, OAUTH_VERIFIED_BY_DEFAULT and RUST_LOG, \
from the environment or a .env file in the working directory.";

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "Registration, login, password reset and e-mail verification, speaking FastAPI Users' HTTP API",
    after_help = ENV_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (the default when no command is given).
    #[command(after_help = ENV_HELP)]
    Serve,
    /// Apply the database migrations of the store DATABASE_URL names, then
    /// exit. Harmless to run again. (`serve` applies them too.)
    #[command(after_help = "Reads DATABASE_URL and USER_FIELDS (environment or .env).")]
    Migrate,
    /// Create an active, verified superuser, or promote an existing user
    /// with --promote. The password is asked for without echo on a
    /// terminal, or read from the first line of standard input otherwise.
    #[command(
        after_help = "Reads DATABASE_URL, the ARGON2_*/PASSWORD_HASHER settings and \
    PASSWORD_MIN_LENGTH, USER_FIELDS (environment or .env). Example: echo \"$PASSWORD\" | portcullis create-superuser --email admin@example.com"
    )]
    CreateSuperuser {
        /// The superuser's e-mail address.
        #[arg(long)]
        email: String,
        /// Make an existing user a superuser instead of failing.
        #[arg(long)]
        promote: bool,
    },
    /// Check the configuration as `serve` would use it, changing nothing:
    /// the settings are valid (production rules included), the database
    /// answers and its schema is migrated (a pending migration fails: run
    /// `migrate`), the SMTP server answers (with SMTP_TLS, and the login).
    /// Prints the settings, secrets masked; exits 0 when every check
    /// passes, 1 otherwise.
    #[command(after_help = ENV_HELP)]
    CheckConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Read first: LOG_FORMAT (and RUST_LOG) may come from .env.
    let config = match Config::from_env() {
        Ok(config) => config,
        // For check-config, an unreadable configuration is a check that
        // fails, reported like the others.
        Err(e) if matches!(cli.command, Some(Command::CheckConfig)) => {
            return report(CheckReport::unreadable(e));
        }
        Err(e) => {
            eprintln!("portcullis: configuration: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log_format);
    actix_web::rt::System::new().block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(config).await,
            Command::Migrate => {
                match migrate_with_fields(&config.database_url, &config.user_fields).await {
                    Ok(what) => {
                        println!("{what}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => fail(e),
                }
            }
            Command::CreateSuperuser { email, promote } => superuser(config, &email, promote).await,
            Command::CheckConfig => report(check_config(&config).await),
        }
    })
}

/// The log subscriber: `RUST_LOG` (default `info`) filters, `LOG_FORMAT`
/// shapes the lines, standard error receives them.
fn init_logging(format: LogFormat) {
    let logger = tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr);
    match format {
        // Colours on a terminal only, not in a file or a pipe.
        LogFormat::Text => logger.with_ansi(std::io::stderr().is_terminal()).init(),
        // One object a line: the event's fields at the top level, the
        // spans it happened in (request id, user id) under `spans`.
        LogFormat::Json => logger
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
}

/// `check-config`'s report on standard output; 0 when every check passed,
/// 1 otherwise (an unreadable configuration included).
fn report(report: CheckReport) -> ExitCode {
    println!("{report}");
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("portcullis: {e}");
    ExitCode::from(1)
}

async fn serve(config: Config) -> ExitCode {
    let address = (config.host.clone(), config.port);
    let listener = match TcpListener::bind(&address) {
        Ok(l) => l,
        Err(e) => return fail(format!("cannot listen on {}:{}: {e}", address.0, address.1)),
    };
    // Before `start`: the service's gauges and counters land in its recorder.
    let metrics = match config
        .metrics_addr
        .as_deref()
        .map(serve_metrics_on)
        .transpose()
    {
        Ok(metrics) => metrics,
        Err(e) => return fail(e),
    };
    let server = match start(config.clone(), listener).await {
        Ok(server) => server,
        Err(e) => return fail(format!("cannot start: {e}")),
    };
    tracing::info!(
        "Portcullis listening on http://{}:{}{}",
        address.0,
        address.1,
        config.api_prefix
    );
    let metrics = metrics.map(|metrics| {
        let handle = metrics.handle();
        actix_web::rt::spawn(metrics);
        handle
    });
    let stopped = server.await;
    if let Some(metrics) = metrics {
        metrics.stop(true).await;
    }
    match stopped {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(format!("server stopped: {e}")),
    }
}

/// Serves the metrics on `METRICS_ADDR` (see [`serve_metrics`]).
fn serve_metrics_on(addr: &str) -> Result<actix_web::dev::Server, String> {
    let listener = TcpListener::bind(addr)
        .map_err(|e| format!("cannot start: METRICS_ADDR: cannot listen on {addr}: {e}"))?;
    let server = serve_metrics(listener).map_err(|e| format!("cannot start: {e}"))?;
    tracing::info!("Prometheus metrics on http://{addr}/metrics");
    Ok(server)
}

fn read_password(promote: bool) -> Result<Option<String>, String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(if promote {
            "Password (only used if the user does not exist; Enter to skip): "
        } else {
            "Password: "
        })
        .map_err(|e| format!("cannot read the password: {e}"))?;
        if first.is_empty() {
            return Ok(None);
        }
        let again = rpassword::prompt_password("Password (again): ")
            .map_err(|e| format!("cannot read the password: {e}"))?;
        if first != again {
            return Err("the passwords differ".into());
        }
        Ok(Some(first))
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        Ok((!line.is_empty()).then_some(line))
    }
}

async fn superuser(config: Config, email: &str, promote: bool) -> ExitCode {
    let service = match build_service(&config).await {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let password = match read_password(promote) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    match create_superuser(&service, email, password.as_deref(), promote).await {
        Ok(SuperuserOutcome::Created(u)) => println!("created superuser {} ({})", u.email, u.id),
        Ok(SuperuserOutcome::Promoted(u)) => {
            println!("promoted {} ({}) to superuser", u.email, u.id)
        }
        Ok(SuperuserOutcome::AlreadySuperuser(u)) => {
            println!("{} ({}) is already a superuser", u.email, u.id)
        }
        Err(e) => {
            // The error and its causes (a store outage says why).
            let causes = std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source())
                .map(ToString::to_string)
                .collect::<Vec<_>>();
            return fail(causes.join(": "));
        }
    }
    ExitCode::SUCCESS
}

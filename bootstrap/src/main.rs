//! `portcullis serve`: the server, configured from the environment and `.env`.

use std::net::TcpListener;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use portcullis::{Config, start};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "Registration, login, password reset and e-mail verification over the FastAPI Users HTTP API"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (the default). Reads DATABASE_URL, HOST, PORT,
    /// API_PREFIX, LOGIN_REQUIRES_VERIFICATION, JWT_SECRET_KEY,
    /// AUTH_RESET_PASSWORD_TOKEN_SECRET, AUTH_VERIFICATION_TOKEN_SECRET,
    /// JWT_ACCESS_TOKEN_EXPIRE_MINUTES, ARGON2_MEMORY_KIB, ARGON2_ITERATIONS,
    /// ARGON2_PARALLELISM, PASSWORD_HASHER, SMTP_HOST, SMTP_PORT, SMTP_USERNAME,
    /// SMTP_PASSWORD, SMTP_TLS, MAIL_FROM, FRONTEND_URL, FIRST_SUPERUSER_EMAIL,
    /// FIRST_SUPERUSER_PASSWORD, PORTCULLIS_ENV (environment or .env).
    Serve,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(),
    }
}

fn serve() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            tracing::error!("configuration: {e}");
            return ExitCode::from(2);
        }
    };
    actix_web::rt::System::new().block_on(async move {
        let address = (config.host.clone(), config.port);
        let listener = match TcpListener::bind(&address) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("cannot listen on {}:{}: {e}", address.0, address.1);
                return ExitCode::from(1);
            }
        };
        tracing::info!(
            "Portcullis listening on http://{}:{}{}",
            address.0,
            address.1,
            config.api_prefix
        );
        match start(config, listener).await {
            Ok(server) => match server.await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("server stopped: {e}");
                    ExitCode::from(1)
                }
            },
            Err(e) => {
                tracing::error!("cannot start: {e}");
                ExitCode::from(1)
            }
        }
    })
}

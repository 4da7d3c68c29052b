//! Runs the notes service on http://127.0.0.1:8080 with an in-memory store.
//! Signing secrets come from `NOTES_JWT_SECRET` & co. (32+ bytes each).

use std::sync::Arc;

use actix_web::web::Data;
use actix_web::{App, HttpServer};
use portcullis::prelude::*;
use portcullis_example_host_app::{Notes, configure_app};

fn secret(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        eprintln!(
            "!!! {name} is not set: using a PUBLIC demo secret; anyone can forge tokens. \
             Set it (32+ random bytes) for any real use."
        );
        format!("{name} for the demo only, not secret!")
    })
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let service = PortcullisBuilder::new()
        .store(Arc::new(MemoryUserStore::new()))
        .token_secrets(
            secret("NOTES_JWT_SECRET"),
            secret("NOTES_RESET_SECRET"),
            secret("NOTES_VERIFY_SECRET"),
        )
        .build()?;
    let notes = Data::new(Notes::default());
    HttpServer::new(move || App::new().configure(configure_app(service.clone(), notes.clone())))
        .bind(("127.0.0.1", 8080))?
        .run()
        .await?;
    Ok(())
}

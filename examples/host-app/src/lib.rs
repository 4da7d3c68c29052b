//! Notes: a host service that embeds Portcullis. Anyone logged in reads the
//! notes; instructors (and admins, and superusers) write them. Accounts,
//! login and password reset are Portcullis' routes under `/api`.
//!
//! A browser front end may log in with `POST /api/auth/cookie/login` instead
//! of holding a bearer token: the same guards (`CurrentUser`,
//! `InstructorUser`) then read the session cookie, and refuse a
//! cookie-authenticated `POST /notes` from a foreign page's `Origin`
//! (tests/notes.rs, `the_guards_accept_the_session_cookie`).

use std::sync::Mutex;

use actix_web::HttpResponse;
use actix_web::web::{self, Data, Json, ServiceConfig};
use portcullis::prelude::*;
use serde::{Deserialize, Serialize};

/// A note and who wrote it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Note {
    /// The text.
    pub text: String,
    /// The author's e-mail address.
    #[serde(default)]
    pub author: String,
}

/// The notes, in memory.
#[derive(Debug, Default)]
pub struct Notes(Mutex<Vec<Note>>);

/// The whole app: Portcullis under `/api`, the notes at `/notes`.
pub fn configure_app(service: UserService, notes: Data<Notes>) -> impl FnOnce(&mut ServiceConfig) {
    move |cfg: &mut ServiceConfig| {
        cfg.configure(mount(service, "/api"))
            .app_data(notes)
            .route("/notes", web::get().to(list_notes))
            .route("/notes", web::post().to(add_note));
    }
}

/// `GET /notes`: any active user.
async fn list_notes(_user: CurrentUser, notes: Data<Notes>) -> HttpResponse {
    let notes = notes.0.lock().map(|n| n.clone()).unwrap_or_default();
    HttpResponse::Ok().json(notes)
}

/// `POST /notes`: instructors and above.
async fn add_note(
    InstructorUser { user, .. }: InstructorUser,
    notes: Data<Notes>,
    Json(note): Json<Note>,
) -> HttpResponse {
    let note = Note {
        text: note.text,
        author: user.email.to_string(),
    };
    if let Ok(mut notes) = notes.0.lock() {
        notes.push(note.clone());
    }
    HttpResponse::Created().json(note)
}

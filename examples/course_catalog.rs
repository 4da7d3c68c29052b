//! A host application embedding Portcullis: a course catalogue.
//!
//! - Portcullis's routes are mounted at `/api` (register, login, …).
//! - `GET /courses`: anyone signed in (an active user).
//! - `POST /courses`: instructors and above (and superusers).
//! - `DELETE /courses/{id}`: admins (and superusers).
//! - One hook is overridden: every registration is counted and logged, and
//!   the built-in hooks still mail reset and verify tokens.
//! - One password rule of its own: no password may contain "course"
//!   (register, reset and password changes answer `400` with its reason).
//! - User fields of its own, declared by a type ([`Profile`]): a
//!   `display_name` the user sets at registration or with
//!   `PATCH /api/users/me`, and `credits` only admins grant;
//!   `GET /profile` reads them back as a `Profile`.
//!
//! Run it with `cargo run --example course_catalog`, then:
//!
//! ```text
//! curl -X POST localhost:8080/api/auth/register -H 'content-type: application/json' \
//!      -d '{"email": "ann@example.com", "password": "correct horse"}'
//! curl -X POST localhost:8080/api/auth/jwt/login -d 'username=ann@example.com&password=correct horse'
//! curl localhost:8080/courses -H "Authorization: Bearer <access_token>"
//! ```
//!
//! An administrator `admin@example.com` / `change-me-please` exists from the
//! start (a superuser), to promote others through `PATCH /api/users/{id}`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::web::{self, Data, Json, Path, ServiceConfig};
use actix_web::{App, HttpResponse, HttpServer};
use portcullis::prelude::*;
use serde::{Deserialize, Serialize};

/// A course of the catalogue.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Course {
    pub id: u64,
    pub title: String,
    pub created_by: String,
}

/// What a client sends to create a course.
#[derive(Debug, Deserialize)]
pub struct NewCourse {
    pub title: String,
}

/// The host's own state.
#[derive(Debug, Default)]
pub struct Catalogue {
    courses: Mutex<Vec<Course>>,
    next_id: AtomicUsize,
}

/// The one hook this host overrides: it counts registrations.
#[derive(Debug, Default)]
pub struct CountRegistrations {
    pub count: AtomicUsize,
}

#[async_trait]
impl UserEvents for CountRegistrations {
    async fn on_after_register(&self, user: &User) {
        let n = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        tracing::info!(email = %user.email, n, "welcome to the course catalogue");
    }
}

/// The catalogue's own user fields: real columns of the user table,
/// rendered with every user, declared by this type's schema.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Profile {
    /// How the catalogue calls the user; the user sets it.
    #[schema(max_length = 40)]
    pub display_name: Option<String>,
    /// Course credits; only admins change them (`read_only`).
    #[schema(read_only)]
    pub credits: i32,
}

/// `GET /profile`: the current user's [`Profile`].
async fn profile(CurrentUser(user): CurrentUser) -> HttpResponse {
    match portcullis::fields_of::<Profile>(&user) {
        Ok(profile) => HttpResponse::Ok().json(profile),
        Err(e) => {
            tracing::error!(error = %e, "a stored profile does not read back");
            HttpResponse::InternalServerError().finish()
        }
    }
}

/// The host's own password rule, after the built-in ones (8 characters,
/// not the address): a plain function is a `PasswordValidator`.
pub const NO_COURSE_REASON: &str = "Password should not contain the word \"course\"";

/// Refuses any password containing "course", in any letter case.
pub fn no_course_in_password(password: &str, _owner: &PasswordOwner<'_>) -> Result<(), String> {
    if password.to_lowercase().contains("course") {
        Err(NO_COURSE_REASON.to_owned())
    } else {
        Ok(())
    }
}

async fn list_courses(catalogue: Data<Catalogue>, _user: CurrentUser) -> HttpResponse {
    let courses = catalogue
        .courses
        .lock()
        .map(|c| c.clone())
        .unwrap_or_default();
    HttpResponse::Ok().json(courses)
}

async fn create_course(
    catalogue: Data<Catalogue>,
    InstructorUser { user, .. }: InstructorUser,
    body: Json<NewCourse>,
) -> HttpResponse {
    let course = Course {
        id: catalogue.next_id.fetch_add(1, Ordering::SeqCst) as u64 + 1,
        title: body.into_inner().title,
        created_by: user.email.to_string(),
    };
    match catalogue.courses.lock() {
        Ok(mut courses) => {
            courses.push(course.clone());
            HttpResponse::Created().json(course)
        }
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

async fn delete_course(
    catalogue: Data<Catalogue>,
    _admin: AdminUser,
    id: Path<u64>,
) -> HttpResponse {
    let Ok(mut courses) = catalogue.courses.lock() else {
        return HttpResponse::InternalServerError().finish();
    };
    let before = courses.len();
    courses.retain(|c| c.id != *id);
    if courses.len() < before {
        HttpResponse::NoContent().finish()
    } else {
        HttpResponse::NotFound().json(serde_json::json!({"detail": "Not Found"}))
    }
}

/// Portcullis assembled in code: no environment variables.
pub fn build_portcullis(hook: Arc<CountRegistrations>) -> UserService {
    let fields = portcullis::user_fields_of::<Profile>().expect("Profile maps to user fields");
    PortcullisBuilder::new()
        // The store holds the fields' columns too (a SQL store adds them
        // when it migrates).
        .store(Arc::new(
            MemoryUserStore::new().with_user_fields(fields.clone()),
        ))
        .user_fields(fields)
        // Example secrets: use real random ones (32+ bytes) in production.
        .token_secrets(
            "course-catalogue-access-secret-0123456789",
            "course-catalogue-reset-secret-01234567890",
            "course-catalogue-verify-secret-0123456789",
        )
        .frontend_url("http://localhost:8080")
        .events(hook)
        .password_validator(Arc::new(no_course_in_password))
        .build()
        .expect("the example's settings are valid")
}

/// The host's routes and Portcullis's, as one `App::configure` call.
pub fn configure_app(
    service: UserService,
    catalogue: Data<Catalogue>,
) -> impl FnOnce(&mut ServiceConfig) + Clone {
    move |cfg: &mut ServiceConfig| {
        cfg.app_data(catalogue)
            .configure(mount(service, "/api"))
            .route("/profile", web::get().to(profile))
            .route("/courses", web::get().to(list_courses))
            .route("/courses", web::post().to(create_course))
            .route("/courses/{id}", web::delete().to(delete_course));
    }
}

#[allow(dead_code)] // unused when the integration test includes this file
#[actix_web::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt().init();
    let hook = Arc::new(CountRegistrations::default());
    let service = build_portcullis(hook);
    portcullis::ensure_first_superuser(&service, "admin@example.com", "change-me-please")
        .await
        .map_err(std::io::Error::other)?;
    let catalogue = Data::new(Catalogue::default());
    println!("course catalogue on http://127.0.0.1:8080 (Portcullis at /api)");
    HttpServer::new(move || {
        App::new()
            .configure(configure_app(service.clone(), catalogue.clone()))
            // Outermost: a log line per request (yours too), X-Request-Id.
            .wrap(portcullis::http::RequestLog)
    })
    // A request whose client has gone leaves the password-hashing queue.
    .on_connect(portcullis::http::on_connect)
    .bind(("127.0.0.1", 8080))?
    .run()
    .await
}

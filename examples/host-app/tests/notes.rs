//! The host's own routes, tested in memory through actix-web's test stack
//! with `portcullis::testing`: a user with a role and a token in one line.

use actix_web::web::Data;
use actix_web::{App, test};
use portcullis::domain::Role;
use portcullis::testing::{TestKit, TestUser};
use portcullis_example_host_app::{Notes, configure_app};
use serde_json::{Value, json};

#[actix_web::test]
async fn instructors_write_notes_students_read_them_strangers_neither() {
    let kit = TestKit::new();
    let app = test::init_service(
        App::new().configure(configure_app(kit.service(), Data::new(Notes::default()))),
    )
    .await;
    let (_, teacher) = kit
        .user_with_token(TestUser::new("teacher@example.com").role(Role::Instructor))
        .await;
    let (_, student) = kit
        .user_with_token(TestUser::new("student@example.com"))
        .await;

    let post = |token: &str| {
        test::TestRequest::post()
            .uri("/notes")
            .insert_header(("Authorization", format!("Bearer {token}")))
            .set_json(json!({"text": "read chapter 3"}))
            .to_request()
    };
    let res = test::call_service(&app, post(&teacher)).await;
    assert_eq!(res.status(), 201);
    let res = test::call_service(&app, post(&student)).await;
    assert_eq!(res.status(), 403);
    let body: Value = test::read_body_json(res).await;
    assert_eq!(body, json!({"detail": "Forbidden"}));

    let list = test::TestRequest::get()
        .uri("/notes")
        .insert_header(("Authorization", format!("Bearer {student}")))
        .to_request();
    let notes: Value = test::call_and_read_body_json(&app, list).await;
    assert_eq!(
        notes,
        json!([{"text": "read chapter 3", "author": "teacher@example.com"}])
    );

    let anonymous = test::TestRequest::get().uri("/notes").to_request();
    assert_eq!(test::call_service(&app, anonymous).await.status(), 401);
}

#[actix_web::test]
async fn portcullis_routes_live_under_api_next_to_the_notes() {
    let kit = TestKit::new();
    let app = test::init_service(
        App::new().configure(configure_app(kit.service(), Data::new(Notes::default()))),
    )
    .await;
    let register = test::TestRequest::post()
        .uri("/api/auth/register")
        .set_json(json!({"email": "ann@example.com", "password": "correct horse"}))
        .to_request();
    let user: Value = test::call_and_read_body_json(&app, register).await;
    assert_eq!(user["email"], "ann@example.com");
    assert_eq!(user["role"], "student");

    // A reset link the kit caught, used over HTTP.
    let forgot = test::TestRequest::post()
        .uri("/api/auth/forgot-password")
        .set_json(json!({"email": "ann@example.com"}))
        .to_request();
    assert_eq!(test::call_service(&app, forgot).await.status(), 202);
    let token = kit
        .reset_token_for("ann@example.com")
        .expect("a reset mail");
    let reset = test::TestRequest::post()
        .uri("/api/auth/reset-password")
        .set_json(json!({"token": token, "password": "a new password"}))
        .to_request();
    assert_eq!(test::call_service(&app, reset).await.status(), 200);
    assert!(
        kit.service()
            .login("ann@example.com", "a new password")
            .await
            .is_ok()
    );
}

/// Browser front ends log in with the cookie transport; the host's guards
/// (`CurrentUser`, `VerifiedUser`, `Superuser`, `RequireRole<R>`) accept the
/// session cookie like the bearer header, the header winning when both come,
/// and refuse a cookie-authenticated change from a foreign page.
#[actix_web::test]
async fn the_guards_accept_the_session_cookie() {
    use portcullis::http::{Superuser, VerifiedUser};
    use portcullis::testing::TEST_FRONTEND_URL;

    let kit = TestKit::new();
    let app = test::init_service(
        App::new()
            .configure(configure_app(kit.service(), Data::new(Notes::default())))
            .route(
                "/verified",
                actix_web::web::get().to(|_: VerifiedUser| async { "verified" }),
            )
            .route(
                "/root",
                actix_web::web::get().to(|_: Superuser| async { "root" }),
            ),
    )
    .await;
    kit.user(
        TestUser::new("teacher@example.com")
            .role(Role::Instructor)
            .password("correct horse"),
    )
    .await;
    let (_, student) = kit
        .user_with_token(TestUser::new("student@example.com"))
        .await;
    let (_, root) = kit
        .user_with_token(TestUser::new("root@example.com").superuser().verified())
        .await;

    // The cookie login, over HTTP.
    let login = test::TestRequest::post()
        .uri("/api/auth/cookie/login")
        .set_form([
            ("username", "teacher@example.com"),
            ("password", "correct horse"),
        ])
        .to_request();
    let res = test::call_service(&app, login).await;
    assert_eq!(res.status(), 204);
    let set_cookie = res
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let cookie = set_cookie.split(';').next().unwrap_or_default().to_owned();
    assert!(cookie.starts_with("fastapiusersauth="), "{set_cookie}");
    assert!(set_cookie.contains("; HttpOnly;"), "{set_cookie}");

    let post = |cookie: &str, origin: &str| {
        test::TestRequest::post()
            .uri("/notes")
            .insert_header(("Cookie", cookie.to_owned()))
            .insert_header(("Origin", origin.to_owned()))
            .set_json(json!({"text": "read chapter 4"}))
            .to_request()
    };
    // RequireRole<Instructor>, from the front end's page: allowed.
    let res = test::call_service(&app, post(&cookie, TEST_FRONTEND_URL)).await;
    assert_eq!(res.status(), 201);
    // From a foreign page: 403, nothing written.
    let res = test::call_service(&app, post(&cookie, "https://evil.example.net")).await;
    assert_eq!(res.status(), 403);
    let list = test::TestRequest::get()
        .uri("/notes")
        .insert_header(("Cookie", cookie.clone()))
        .to_request();
    let notes: Value = test::call_and_read_body_json(&app, list).await;
    assert_eq!(
        notes,
        json!([{"text": "read chapter 4", "author": "teacher@example.com"}])
    );

    // The header wins: a student's bearer token beside the teacher's cookie.
    let both = test::TestRequest::post()
        .uri("/notes")
        .insert_header(("Cookie", cookie.clone()))
        .insert_header(("Authorization", format!("Bearer {student}")))
        .set_json(json!({"text": "not mine to write"}))
        .to_request();
    assert_eq!(test::call_service(&app, both).await.status(), 403);

    // VerifiedUser and Superuser read the cookie too.
    let get = |path: &str, cookie: String| {
        test::TestRequest::get()
            .uri(path)
            .insert_header(("Cookie", cookie))
            .to_request()
    };
    let root_cookie = format!("fastapiusersauth={root}");
    assert_eq!(
        test::call_service(&app, get("/verified", root_cookie.clone()))
            .await
            .status(),
        200
    );
    assert_eq!(
        test::call_service(&app, get("/root", root_cookie))
            .await
            .status(),
        200
    );
    assert_eq!(
        test::call_service(&app, get("/verified", cookie.clone()))
            .await
            .status(),
        403
    );
    assert_eq!(
        test::call_service(&app, get("/root", cookie))
            .await
            .status(),
        403
    );
    let garbage = "fastapiusersauth=garbage".to_owned();
    assert_eq!(
        test::call_service(&app, get("/root", garbage))
            .await
            .status(),
        401
    );
}

//! Drives the embedding example (`examples/course_catalog.rs`) over real
//! HTTP: Portcullis mounted at `/api` next to the host's own routes, each
//! guarded by one of Portcullis's extractors.

#[path = "../../examples/course_catalog.rs"]
mod course_catalog;

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use actix_web::web::Data;
use actix_web::{App, HttpServer};
use course_catalog::{
    Catalogue, CountRegistrations, NO_COURSE_REASON, build_portcullis, configure_app,
};
use portcullis::SuperuserOutcome;
use portcullis::prelude::*;
use serde_json::{Value, json};

struct Host {
    base: String,
    client: awc::Client,
    service: UserService,
    /// The host's administrator, who sets the test users' roles and flags.
    root: User,
    hook: Arc<CountRegistrations>,
}

async fn spawn_host() -> Host {
    let hook = Arc::new(CountRegistrations::default());
    let service = build_portcullis(hook.clone());
    let root = match service
        .create_superuser(
            EmailAddress::parse("host-admin@example.com").unwrap(),
            Some("the host's admin password"),
            false,
        )
        .await
    {
        Ok(SuperuserOutcome::Created(root)) => root,
        other => panic!("host administrator: {other:?}"),
    };
    let catalogue = Data::new(Catalogue::default());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let app_service = service.clone();
    let server = HttpServer::new(move || {
        App::new().configure(configure_app(app_service.clone(), catalogue.clone()))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    Host {
        base: format!("http://127.0.0.1:{port}"),
        client: awc::Client::default(),
        service,
        root,
        hook,
    }
}

impl Host {
    /// Registers over HTTP, logs in over HTTP, then sets role and flags as
    /// the host's administrator through the use cases. Returns the bearer
    /// token.
    async fn user(&self, email: &str, role: Role, superuser: bool, active: bool) -> String {
        let password = "a long enough password";
        let res = self
            .client
            .post(format!("{}/api/auth/register", self.base))
            .send_json(&json!({"email": email, "password": password}))
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "register {email}");
        let token = self.login(email, password).await;
        let user = self.service.authenticate(&token).await.unwrap();
        let changes = UserChanges {
            role: Some(role),
            is_superuser: Some(superuser),
            is_active: Some(active),
            ..UserChanges::default()
        };
        let user = self
            .service
            .admin_update_user(&self.root, user.id, changes)
            .await
            .unwrap();
        assert_eq!(
            (user.role, user.is_superuser, user.is_active),
            (role, superuser, active)
        );
        token
    }

    async fn login(&self, email: &str, password: &str) -> String {
        let mut res = self
            .client
            .post(format!("{}/api/auth/jwt/login", self.base))
            .send_form(&[("username", email), ("password", password)])
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "login {email}");
        let body: Value = res.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> u16 {
        let url = format!("{}{path}", self.base);
        let mut req = match method {
            "GET" => self.client.get(url),
            "POST" => self.client.post(url),
            "DELETE" => self.client.delete(url),
            other => panic!("unexpected method {other}"),
        };
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let res = match body {
            Some(body) => req.send_json(&body).await.unwrap(),
            None => req.send().await.unwrap(),
        };
        res.status().as_u16()
    }

    async fn create(&self, token: &str) -> u64 {
        let mut res = self
            .client
            .post(format!("{}/courses", self.base))
            .bearer_auth(token)
            .send_json(&json!({"title": "Systems programming"}))
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let body: Value = res.json().await.unwrap();
        body["id"].as_u64().unwrap()
    }
}

#[actix_web::test]
async fn each_guard_admits_and_refuses_the_right_users() {
    let host = spawn_host().await;
    let student = host
        .user("student@example.com", Role::Student, false, true)
        .await;
    let instructor = host
        .user("instructor@example.com", Role::Instructor, false, true)
        .await;
    let admin = host
        .user("admin@example.com", Role::Admin, false, true)
        .await;
    let superuser = host
        .user("root@example.com", Role::Student, true, true)
        .await;
    let inactive = host
        .user("gone@example.com", Role::Admin, true, false)
        .await;
    let new_course = || Some(json!({"title": "Networks"}));

    // Listing: anyone signed in and active.
    for (who, token, expected) in [
        ("student", Some(&student), 200),
        ("instructor", Some(&instructor), 200),
        ("admin", Some(&admin), 200),
        ("superuser", Some(&superuser), 200),
        ("inactive", Some(&inactive), 401),
        ("no token", None, 401),
    ] {
        let status = host
            .call("GET", "/courses", token.map(String::as_str), None)
            .await;
        assert_eq!(status, expected, "GET /courses as {who}");
    }

    // Creating: instructors and above, and superusers.
    for (who, token, expected) in [
        ("student", Some(&student), 403),
        ("instructor", Some(&instructor), 201),
        ("admin", Some(&admin), 201),
        ("superuser", Some(&superuser), 201),
        ("inactive", Some(&inactive), 401),
        ("no token", None, 401),
    ] {
        let status = host
            .call("POST", "/courses", token.map(String::as_str), new_course())
            .await;
        assert_eq!(status, expected, "POST /courses as {who}");
    }

    // Deleting: admins and superusers.
    for (who, token, expected) in [
        ("student", Some(&student), 403),
        ("instructor", Some(&instructor), 403),
        ("admin", Some(&admin), 204),
        ("superuser", Some(&superuser), 204),
        ("inactive", Some(&inactive), 401),
        ("no token", None, 401),
    ] {
        let id = host.create(&instructor).await;
        let status = host
            .call(
                "DELETE",
                &format!("/courses/{id}"),
                token.map(String::as_str),
                None,
            )
            .await;
        assert_eq!(status, expected, "DELETE /courses/{id} as {who}");
    }
}

#[actix_web::test]
async fn portcullis_routes_live_under_the_prefix_and_the_overridden_hook_runs() {
    let host = spawn_host().await;
    let token = host
        .user("ann@example.com", Role::Student, false, true)
        .await;
    let mut res = host
        .client
        .get(format!("{}/api/users/me", host.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let me: Value = res.json().await.unwrap();
    assert_eq!(me["email"], "ann@example.com");
    // the host's hook ran once per registration
    assert_eq!(host.hook.count.load(Ordering::SeqCst), 1);
    // Portcullis's routes are not at the root
    assert_eq!(host.call("GET", "/users/me", Some(&token), None).await, 404);
    // the built-in routes' JSON errors still apply under the prefix
    assert_eq!(host.call("GET", "/api/nope", None, None).await, 404);
}

#[actix_web::test]
async fn the_hosts_password_rule_refuses_with_its_own_reason() {
    let host = spawn_host().await;
    let mut res = host
        .client
        .post(format!("{}/api/auth/register", host.base))
        .send_json(&json!({"email": "ann@example.com", "password": "my Course password"}))
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"detail": {"code": "REGISTER_INVALID_PASSWORD", "reason": NO_COURSE_REASON}})
    );
    assert_eq!(
        NO_COURSE_REASON,
        "Password should not contain the word \"course\""
    );
    // Nobody registered: the hook did not run, the address is free.
    assert_eq!(host.hook.count.load(Ordering::SeqCst), 0);
    let token = host
        .user("ann@example.com", Role::Student, false, true)
        .await;
    // A user's own change obeys the rule too.
    let mut res = host
        .client
        .patch(format!("{}/api/users/me", host.base))
        .bearer_auth(&token)
        .send_json(&json!({"password": "of COURSE it is long"}))
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"detail": {"code": "UPDATE_USER_INVALID_PASSWORD", "reason": NO_COURSE_REASON}})
    );
}

#[actix_web::test]
async fn the_hosts_user_fields_are_set_by_their_writers_and_read_back_as_its_type() {
    let host = spawn_host().await;
    let mut res = host
        .client
        .post(format!("{}/api/auth/register", host.base))
        .send_json(&json!({
            "email": "ann@example.com", "password": "correct horse",
            "display_name": "Ann", "credits": 100
        }))
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let user: Value = res.json().await.unwrap();
    // The user set the display name; credits are admin-only: the default.
    assert_eq!(
        (&user["display_name"], &user["credits"]),
        (&json!("Ann"), &json!(0))
    );

    let ann = host
        .service
        .authenticate(&host.login("ann@example.com", "correct horse").await)
        .await
        .unwrap();
    let mut changes = UserChanges::default();
    changes
        .fields
        .set("credits", portcullis::domain::FieldValue::Integer(12));
    host.service
        .admin_update_user(&host.root, ann.id, changes)
        .await
        .unwrap();

    let token = host.login("ann@example.com", "correct horse").await;
    let mut res = host
        .client
        .get(format!("{}/profile", host.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let profile: course_catalog::Profile = res.json().await.unwrap();
    assert_eq!(
        profile,
        course_catalog::Profile {
            display_name: Some("Ann".into()),
            credits: 12
        }
    );
}

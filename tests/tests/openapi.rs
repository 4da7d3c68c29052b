//! The OpenAPI document at `GET /openapi.json` and Swagger UI at `/docs`:
//! the document is OpenAPI 3.1, lists exactly the routes the server serves
//! (under the configured prefix), and the answers of real requests (success
//! and each kind of error, per route) match what it documents for their
//! status: body schema, content type, headers.

#[path = "support/outage.rs"]
mod outage;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use awc::http::Method;
use outage::{Switchable, spawn_app_on};
use portcullis_store_memory::MemoryUserStore;
use portcullis_tests::test_app::{
    Body, PASSWORD, RESET_AUDIENCE, RESET_SECRET, SUPERUSER_EMAIL, TestApp, TestResponse,
    VERIFY_AUDIENCE, VERIFY_SECRET, access_token_for, hs256_jwt, now, spawn_app, spawn_app_with,
};
use serde_json::{Map, Value, json};

const UNKNOWN_ID: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

/// The routes of shared/API.md, relative to the prefix.
const CONTRACT_ROUTES: [(&str, &str); 15] = [
    ("POST", "/auth/register"),
    ("POST", "/auth/jwt/login"),
    ("POST", "/auth/jwt/logout"),
    ("POST", "/auth/cookie/login"),
    ("POST", "/auth/cookie/logout"),
    ("DELETE", "/users/me/sessions"),
    ("POST", "/auth/forgot-password"),
    ("POST", "/auth/reset-password"),
    ("POST", "/auth/request-verify-token"),
    ("POST", "/auth/verify"),
    ("GET", "/users/me"),
    ("PATCH", "/users/me"),
    ("GET", "/users/{id}"),
    ("PATCH", "/users/{id}"),
    ("DELETE", "/users/{id}"),
];

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

async fn document(app: &TestApp) -> Value {
    app.get_raw("/openapi.json").await.expect_json(200)
}

/// Every (METHOD, path) the document lists.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let Some(paths) = doc["paths"].as_object() else {
        panic!("the document has no paths: {doc}");
    };
    paths
        .iter()
        .flat_map(|(path, item)| {
            let item = item.as_object().cloned().unwrap_or_default();
            item.keys()
                .filter(|k| METHODS.contains(&k.to_ascii_uppercase().as_str()))
                .map(|m| (m.to_ascii_uppercase(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The routes the server is meant to serve under `prefix`: API.md's, the
/// instance `DELETE /users/me` of `DELETE /users/{id}` (an OpenAPI path
/// without a parameter takes precedence over a templated one, so the
/// document must list it), and `GET /health` at the root.
fn expected_operations(prefix: &str) -> BTreeSet<(String, String)> {
    CONTRACT_ROUTES
        .iter()
        .chain([("DELETE", "/users/me")].iter())
        .map(|(m, p)| ((*m).to_owned(), format!("{prefix}{p}")))
        .chain([("GET".to_owned(), "/health".to_owned())])
        .collect()
}

fn method(name: &str) -> Method {
    Method::from_bytes(name.as_bytes()).expect("a method")
}

#[actix_web::test]
async fn the_document_is_openapi_3_1_and_lists_exactly_the_served_routes() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let version = doc["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3.1."), "openapi: {version}");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());

    let listed = operations(&doc);
    assert_eq!(listed, expected_operations("/api"));

    // Each listed operation is served (no token, no body: whatever the
    // answer, not an unknown route nor a wrong method), and every other
    // method on a listed path is a 405: the document hides nothing.
    let paths: BTreeSet<&String> = listed.iter().map(|(_, p)| p).collect();
    for path in paths {
        let url = app.raw_url(&path.replace("{id}", UNKNOWN_ID));
        for name in METHODS {
            let res = app.send_to(method(name), &url, &[], Body::Empty).await;
            if listed.contains(&(name.to_owned(), path.clone())) {
                assert!(
                    res.status != 404 && res.status != 405,
                    "{name} {path} is documented but answers {}: {}",
                    res.status,
                    res.text()
                );
            } else {
                assert_eq!(res.status, 405, "{name} {path} is not documented");
            }
        }
    }
}

#[actix_web::test]
async fn the_document_follows_the_configured_prefix() {
    let app = spawn_app_with([("API_PREFIX", "/v1/accounts/")]).await;
    let doc = document(&app).await;
    assert_eq!(operations(&doc), expected_operations("/v1/accounts"));
    assert_eq!(
        doc["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"],
        "/v1/accounts/auth/jwt/login"
    );
}

#[actix_web::test]
async fn protected_operations_use_the_oauth2_password_flow_of_the_login_route() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let scheme = &doc["components"]["securitySchemes"]["OAuth2PasswordBearer"];
    assert_eq!(scheme["type"], "oauth2");
    assert_eq!(
        scheme["flows"]["password"]["tokenUrl"],
        "/api/auth/jwt/login"
    );
    for (name, path) in operations(&doc) {
        let operation = &doc["paths"][&path][name.to_ascii_lowercase()];
        let protected = path.starts_with("/api/users/")
            || path == "/api/auth/jwt/logout"
            || path == "/api/auth/cookie/logout";
        let security = operation.get("security").cloned().unwrap_or(Value::Null);
        if protected {
            // Either the bearer token or the session cookie, as FastAPI
            // Users lists its transports.
            assert_eq!(
                security,
                json!([{"OAuth2PasswordBearer": []}, {"APIKeyCookie": []}]),
                "{name} {path}"
            );
            if name != "GET" {
                assert!(
                    operation["responses"]["403"].is_object(),
                    "{name} {path} documents the 403 of a foreign Origin"
                );
            }
            assert!(
                operation["responses"]["401"].is_object(),
                "{name} {path} documents its 401"
            );
        } else {
            assert!(security.is_null(), "{name} {path} is public: {security}");
        }
    }
}

/// FastAPI Users' `CookieTransport` declares `APIKeyCookie` (recorded in
/// `tests/fixtures/fastapi_users_cookie_transport.json`); its name follows
/// `COOKIE_NAME`. The cookie login takes the login form.
#[actix_web::test]
async fn the_cookie_transport_is_documented_as_fastapi_users_declares_it() {
    let recorded: Value = serde_json::from_str(include_str!(
        "../fixtures/fastapi_users_cookie_transport.json"
    ))
    .expect("JSON");
    let app = spawn_app().await;
    let doc = document(&app).await;
    let scheme = &doc["components"]["securitySchemes"]["APIKeyCookie"];
    for key in ["type", "in", "name"] {
        assert_eq!(scheme[key], recorded["openapi_cookie_scheme"][key], "{key}");
    }
    let login = &doc["paths"]["/api/auth/cookie/login"]["post"];
    assert_eq!(login["operationId"], "auth_cookie_login");
    assert_eq!(login["tags"], json!(["Auth"]));
    assert_eq!(
        login["requestBody"], doc["paths"]["/api/auth/jwt/login"]["post"]["requestBody"],
        "the same form as jwt/login"
    );
    let logout = &doc["paths"]["/api/auth/cookie/logout"]["post"];
    assert_eq!(logout["operationId"], "auth_cookie_logout");
    assert_eq!(logout["security"], recorded["openapi_logout_security"]);
    assert_eq!(
        doc["paths"]["/api/users/me/sessions"]["delete"]["operationId"],
        "users_end_all_sessions"
    );

    let app = spawn_app_with([("COOKIE_NAME", "sid")]).await;
    let doc = document(&app).await;
    assert_eq!(
        doc["components"]["securitySchemes"]["APIKeyCookie"]["name"],
        "sid"
    );
}

#[actix_web::test]
async fn the_login_form_and_the_update_bodies_are_documented_as_the_contract_says() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let login = &doc["paths"]["/api/auth/jwt/login"]["post"]["requestBody"]["content"];
    let form = resolve(&doc, &login["application/x-www-form-urlencoded"]["schema"]);
    assert_eq!(
        keys(&form["properties"]),
        [
            "client_id",
            "client_secret",
            "grant_type",
            "password",
            "scope",
            "username"
        ]
    );
    assert_eq!(form["required"], json!(["username", "password"]));

    let me = resolve(
        &doc,
        &doc["paths"]["/api/users/me"]["patch"]["requestBody"]["content"]["application/json"]["schema"],
    );
    assert_eq!(keys(&me["properties"]), ["password"]);
    assert!(me.get("required").is_none(), "{me}");

    let admin = resolve(
        &doc,
        &doc["paths"]["/api/users/{id}"]["patch"]["requestBody"]["content"]["application/json"]["schema"],
    );
    assert_eq!(
        keys(&admin["properties"]),
        [
            "email",
            "is_active",
            "is_superuser",
            "is_verified",
            "password",
            "role"
        ]
    );
    assert!(admin.get("required").is_none(), "{admin}");
    let validator = Validator { doc: &doc };
    for field in ["email", "password", "is_active", "role"] {
        let schema = &admin["properties"][field];
        assert!(
            validator.check(&Value::Null, schema).is_ok(),
            "{field} is nullable"
        );
    }
    let role = &admin["properties"]["role"];
    for ok in ["student", "instructor", "admin"] {
        assert!(validator.check(&json!(ok), role).is_ok(), "{ok}");
    }
    assert!(validator.check(&json!("root"), role).is_err());
}

fn keys(object: &Value) -> Vec<String> {
    object
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

fn resolve(doc: &Value, schema: &Value) -> Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => resolve(doc, &pointer(doc, reference)),
        None => schema.clone(),
    }
}

fn pointer(doc: &Value, reference: &str) -> Value {
    let path = reference
        .strip_prefix('#')
        .unwrap_or_else(|| panic!("only local references: {reference}"));
    doc.pointer(path)
        .cloned()
        .unwrap_or_else(|| panic!("dangling reference {reference}"))
}

#[actix_web::test]
async fn swagger_ui_is_served_from_the_binary() {
    let app = spawn_app().await;
    let res = app.get_raw("/docs").await;
    assert_eq!(res.status, 308, "{}", res.text());
    assert_eq!(res.header("location").as_deref(), Some("/docs/"));
    let page = app.get_raw("/docs/").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.media_type().as_deref(), Some("text/html"));
    assert!(page.text().contains("swagger-ui"), "{}", page.text());
    let init = app.get_raw("/docs/swagger-initializer.js").await;
    assert_eq!(init.status, 200);
    assert!(init.text().contains("/openapi.json"), "{}", init.text());
    let bundle = app.get_raw("/docs/swagger-ui-bundle.js").await;
    assert_eq!(bundle.status, 200);
    assert!(bundle.body.len() > 100_000, "the bundle is built in");
    app.get_raw("/docs/nope").await.expect_404();
    app.send_to(
        Method::POST,
        &app.raw_url("/openapi.json"),
        &[],
        Body::Empty,
    )
    .await
    .expect_405();
}

// ----- recorded answers against the document -----

/// One answer of the server to a request of one documented operation.
struct Recorded {
    method: &'static str,
    /// The documented path (template), e.g. `/api/users/{id}`.
    path: String,
    what: &'static str,
    response: TestResponse,
}

/// Sends requests and keeps each answer with the documented operation it
/// belongs to.
struct Recorder<'a> {
    app: &'a TestApp,
    recorded: Vec<Recorded>,
}

impl Recorder<'_> {
    /// `path` is under the prefix; a segment after `/users/` other than
    /// `me` is the `{id}` of the template.
    async fn send(
        &mut self,
        name: &'static str,
        path: &str,
        token: Option<&str>,
        body: Body,
        what: &'static str,
    ) -> TestResponse {
        let response = self.app.send(method(name), path, token, body).await;
        let template = match path.strip_prefix("/users/") {
            Some(id) if id != "me" && !id.starts_with("me/") => "/users/{id}",
            _ => path,
        };
        self.recorded.push(Recorded {
            method: name,
            path: format!("{}{template}", self.app.api_prefix),
            what,
            response: response.clone(),
        });
        response
    }

    async fn post(&mut self, path: &str, body: Value, what: &'static str) -> TestResponse {
        self.send("POST", path, None, Body::Json(body), what).await
    }

    async fn patch(&mut self, path: &str, token: Option<&str>, body: Value, what: &'static str) {
        self.send("PATCH", path, token, Body::Json(body), what)
            .await;
    }

    async fn get(&mut self, path: &str, token: Option<&str>, what: &'static str) {
        self.send("GET", path, token, Body::Empty, what).await;
    }

    async fn delete(&mut self, path: &str, token: Option<&str>, what: &'static str) {
        self.send("DELETE", path, token, Body::Empty, what).await;
    }

    /// `POST`/`PATCH`/`DELETE` with the session cookie, from a page of
    /// `origin` when given.
    async fn with_cookie(
        &mut self,
        name: &'static str,
        path: &str,
        token: &str,
        origin: Option<&str>,
        body: Body,
        what: &'static str,
    ) -> TestResponse {
        let cookie = format!("fastapiusersauth={token}");
        let mut headers = vec![("cookie", cookie.as_str())];
        if let Some(origin) = origin {
            headers.push(("origin", origin));
        }
        let response = self.app.send_with(method(name), path, &headers, body).await;
        self.recorded.push(Recorded {
            method: name,
            path: format!("{}{path}", self.app.api_prefix),
            what,
            response: response.clone(),
        });
        response
    }

    /// A JSON body larger than any request may be.
    async fn too_large(&mut self, name: &'static str, path: &str, token: Option<&str>) {
        let body = format!(r#"{{"email": "{}@example.com"}}"#, "a".repeat(70 * 1024));
        let body = Body::raw("application/json", body);
        self.send(name, path, token, body, "too large").await;
    }
}

#[actix_web::test]
async fn answers_of_every_route_match_the_documented_responses() {
    // Two failed logins lock an address: few requests to record a 429.
    let app = spawn_app_with([("LOGIN_LOCKOUT_FAILURES", "2")]).await;
    let doc = document(&app).await;
    let root = app.superuser_token().await;
    let (_, bob) = app.new_user("bob@example.com").await;
    let root_id = TestApp::id_of(&app.me(&root).await.expect_json(200));
    let (root, bob) = (Some(root.as_str()), Some(bob.as_str()));
    let mut r = Recorder {
        app: &app,
        recorded: Vec::new(),
    };

    let reg = "/auth/register";
    let ann = json!({"email": "ann@example.com", "password": PASSWORD});
    let ann = r.post(reg, ann, "created").await.json();
    let ann_id = TestApp::id_of(&ann);
    let ann = format!("/users/{ann_id}");
    r.post(
        reg,
        json!({"email": "ANN@example.com", "password": PASSWORD}),
        "taken",
    )
    .await;
    r.post(
        reg,
        json!({"email": "cy@example.com", "password": "short"}),
        "weak password",
    )
    .await;
    r.post(
        reg,
        json!({"email": "cy@site.test", "password": 5}),
        "malformed",
    )
    .await;
    let bad_json = Body::raw("application/json", "{");
    r.send("POST", reg, None, bad_json, "bad JSON").await;
    r.too_large("POST", reg, None).await;

    let login = "/auth/jwt/login";
    let form = |pairs: &[(&str, &str)]| Body::form(pairs);
    let good = form(&[("username", "ann@example.com"), ("password", PASSWORD)]);
    r.send("POST", login, None, good, "logged in").await;
    let wrong = form(&[
        ("username", "ann@example.com"),
        ("password", "wrong password"),
    ]);
    r.send("POST", login, None, wrong, "bad credentials").await;
    let missing = form(&[("username", "ann@example.com")]);
    r.send("POST", login, None, missing, "missing password")
        .await;
    r.post(
        login,
        json!({"username": "ann@example.com", "password": PASSWORD}),
        "JSON",
    )
    .await;
    let huge = Body::raw("application/x-www-form-urlencoded", "a".repeat(70 * 1024));
    r.send("POST", login, None, huge, "too large").await;
    // LOGIN_LOCKOUT_FAILURES (2 here) failures lock the address.
    for _ in 0..2 {
        app.login("locked@example.com", "wrong password")
            .await
            .expect_code("LOGIN_BAD_CREDENTIALS");
    }
    let locked = form(&[
        ("username", "locked@example.com"),
        ("password", "wrong password"),
    ]);
    r.send("POST", login, None, locked, "locked").await;

    let logout = "/auth/jwt/logout";
    r.send("POST", logout, bob, Body::Empty, "logged out").await;
    r.send("POST", logout, None, Body::Empty, "no token").await;
    // With AUTH_STRATEGY=database the logout deleted bob's token: a new one.
    let bob_relogged = app.login_token("bob@example.com", PASSWORD).await;
    let bob_token = bob_relogged.as_str();
    let evil = Some("https://evil.example.net");
    r.with_cookie(
        "POST",
        logout,
        bob_token,
        evil,
        Body::Empty,
        "foreign origin",
    )
    .await;

    let cookie_login = "/auth/cookie/login";
    let good = form(&[("username", "ann@example.com"), ("password", PASSWORD)]);
    r.send("POST", cookie_login, None, good, "logged in").await;
    let wrong = form(&[
        ("username", "ann@example.com"),
        ("password", "wrong password"),
    ]);
    r.send("POST", cookie_login, None, wrong, "bad credentials")
        .await;
    let missing = form(&[("username", "ann@example.com")]);
    r.send("POST", cookie_login, None, missing, "missing password")
        .await;
    let huge = Body::raw("application/x-www-form-urlencoded", "a".repeat(70 * 1024));
    r.send("POST", cookie_login, None, huge, "too large").await;
    let cookie_logout = "/auth/cookie/logout";
    r.with_cookie(
        "POST",
        cookie_logout,
        bob_token,
        None,
        Body::Empty,
        "logged out",
    )
    .await;
    // Again: with AUTH_STRATEGY=database the cookie logout deleted it.
    let bob_relogged = app.login_token("bob@example.com", PASSWORD).await;
    let bob_token = bob_relogged.as_str();
    let bob = Some(bob_token);
    r.with_cookie(
        "POST",
        cookie_logout,
        bob_token,
        evil,
        Body::Empty,
        "foreign origin",
    )
    .await;
    r.send("POST", cookie_logout, None, Body::Empty, "no cookie")
        .await;

    let forgot = "/auth/forgot-password";
    r.post(
        forgot,
        json!({"email": "nobody@example.com"}),
        "unknown address",
    )
    .await;
    r.post(forgot, json!({"email": "not an address"}), "malformed")
        .await;
    r.too_large("POST", forgot, None).await;
    let token = app.reset_token_for("ann@example.com").await;
    let reset = "/auth/reset-password";
    r.post(
        reset,
        json!({"token": token, "password": "ann"}),
        "weak password",
    )
    .await;
    r.post(
        reset,
        json!({"token": token, "password": "a good password"}),
        "reset",
    )
    .await;
    r.post(
        reset,
        json!({"token": token, "password": "a new password"}),
        "spent token",
    )
    .await;
    r.post(reset, json!({"token": 1}), "malformed").await;
    r.too_large("POST", reset, None).await;

    let request_verify = "/auth/request-verify-token";
    r.post(
        request_verify,
        json!({"email": "nobody@example.com"}),
        "unknown address",
    )
    .await;
    r.post(request_verify, json!([]), "not an object").await;
    r.too_large("POST", request_verify, None).await;
    let token = app.verify_token_for("ann@example.com").await;
    let verify = "/auth/verify";
    r.post(verify, json!({"token": token}), "verified").await;
    r.post(verify, json!({"token": token}), "already verified")
        .await;
    r.post(verify, json!({"token": "a.b.c"}), "bad token").await;
    r.post(verify, json!({}), "missing token").await;
    r.too_large("POST", verify, None).await;

    let me = "/users/me";
    r.get(me, bob, "me").await;
    r.get(me, Some("not.a.token"), "bad token").await;
    let change = json!({"password": "bob's new password", "is_superuser": true});
    r.patch(me, bob, change, "changed").await;
    // The change ended bob's sessions (shared/API.md, "Sessions").
    let bob_again = app
        .login_token("bob@example.com", "bob's new password")
        .await;
    let bob = Some(bob_again.as_str());
    r.patch(me, bob, json!({"password": "bob"}), "weak password")
        .await;
    r.patch(me, None, json!({}), "no token").await;
    r.patch(me, bob, json!({"password": 12_345_678}), "malformed")
        .await;
    r.too_large("PATCH", me, bob).await;
    let change = Body::Json(json!({"password": "a stolen password"}));
    r.with_cookie("PATCH", me, bob_token, evil, change, "foreign origin")
        .await;
    r.delete(me, None, "no token").await;
    r.delete(me, bob, "not a superuser").await;
    r.delete(me, root, "no user `me`").await;

    r.get(&ann, root, "a user").await;
    r.get(
        &format!("/users/{}", ann_id.to_uppercase()),
        None,
        "no token",
    )
    .await;
    r.get(&ann, bob, "not a superuser").await;
    r.get(&format!("/users/{UNKNOWN_ID}"), root, "unknown")
        .await;
    r.get("/users/nope", root, "no UUID").await;
    let update = json!({"role": "instructor", "is_verified": "yes", "email": null});
    r.patch(&ann, root, update, "updated").await;
    r.patch(
        &ann,
        root,
        json!({"email": "bob@example.com"}),
        "address taken",
    )
    .await;
    r.patch(
        &ann,
        root,
        json!({"password": "ann@example.com!"}),
        "weak password",
    )
    .await;
    r.patch(&ann, None, json!({}), "no token").await;
    r.patch(&ann, bob, json!({}), "not a superuser").await;
    r.patch(&format!("/users/{UNKNOWN_ID}"), root, json!({}), "unknown")
        .await;
    r.patch(
        &ann,
        root,
        json!({"role": "root", "is_active": 2}),
        "malformed",
    )
    .await;
    r.too_large("PATCH", &ann, root).await;
    r.delete(&ann, None, "no token").await;
    r.delete(&ann, bob, "not a superuser").await;
    r.delete(&format!("/users/{root_id}"), root, "oneself")
        .await;
    r.delete(&ann, root, "deleted").await;
    r.delete(&ann, root, "already deleted").await;

    // Last: it ends every session of its user.
    let (_, dan) = app.new_user("dan@example.com").await;
    let sessions = "/users/me/sessions";
    r.with_cookie(
        "DELETE",
        sessions,
        &dan,
        evil,
        Body::Empty,
        "foreign origin",
    )
    .await;
    r.delete(sessions, None, "no token").await;
    r.delete(sessions, Some(&dan), "ended").await;

    let mut recorded = std::mem::take(&mut r.recorded);
    recorded.push(Recorded {
        method: "GET",
        path: "/health".into(),
        what: "healthy",
        response: app.get_raw("/health").await,
    });
    recorded.extend(answers_while_the_store_is_down().await);
    recorded.extend(answers_over_the_rate_limit().await);

    let validator = Validator { doc: &doc };
    let mut covered: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for rec in &recorded {
        let status = rec.response.status.to_string();
        covered
            .entry((rec.method.to_owned(), rec.path.clone()))
            .or_default()
            .insert(status.clone());
        if let Err(problem) = validator.check_response(rec) {
            problems.push(format!(
                "{} {} ({}) → {}: {problem}\n    body: {}",
                rec.method,
                rec.path,
                rec.what,
                rec.response.status,
                rec.response.text()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // Every documented answer, 503 included, was seen, so the check above
    // covered each of them.
    for (name, path) in operations(&doc) {
        let operation = &doc["paths"][&path][name.to_ascii_lowercase()];
        let documented: BTreeSet<String> = keys(&operation["responses"]).into_iter().collect();
        let seen = covered
            .get(&(name.clone(), path.clone()))
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            seen, documented,
            "answers of {name} {path} recorded vs documented"
        );
    }
    // The superuser was not affected by any of this.
    let root = root.unwrap_or_default();
    assert_eq!(
        app.me(root).await.expect_json(200)["email"],
        SUPERUSER_EMAIL
    );
}

/// One `POST` of each operation under `/auth/` from a client address that
/// has spent its budget (`RATE_LIMIT_AUTH_PER_MINUTE=1`): each is answered
/// 429, whatever its body.
async fn answers_over_the_rate_limit() -> Vec<Recorded> {
    let app = spawn_app_with([("RATE_LIMIT_AUTH_PER_MINUTE", "1")]).await;
    let mut r = Recorder {
        app: &app,
        recorded: Vec::new(),
    };
    let spend = app.forgot_password("ann@example.com").await;
    assert_eq!(spend.status, 202, "the one request of the budget");
    let ann = json!({"email": "ann@example.com", "password": PASSWORD});
    r.post("/auth/register", ann, "over the limit").await;
    let form = Body::form(&[("username", "ann@example.com"), ("password", PASSWORD)]);
    r.send(
        "POST",
        "/auth/jwt/login",
        None,
        form.clone(),
        "over the limit",
    )
    .await;
    r.send("POST", "/auth/cookie/login", None, form, "over the limit")
        .await;
    r.send(
        "POST",
        "/auth/cookie/logout",
        None,
        Body::Empty,
        "over the limit",
    )
    .await;
    r.send(
        "POST",
        "/auth/jwt/logout",
        None,
        Body::Empty,
        "over the limit",
    )
    .await;
    for path in [
        "/auth/forgot-password",
        "/auth/reset-password",
        "/auth/request-verify-token",
        "/auth/verify",
    ] {
        r.post(path, json!({}), "over the limit").await;
    }
    for rec in &r.recorded {
        assert_eq!(
            rec.response.status,
            429,
            "{} {} over the limit: {}",
            rec.method,
            rec.path,
            rec.response.text()
        );
    }
    r.recorded
}

#[actix_web::test]
async fn every_post_under_auth_documents_the_429_of_the_limits() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let mut limited = Vec::new();
    for (name, path) in operations(&doc) {
        let operation = &doc["paths"][&path][name.to_ascii_lowercase()];
        let answer = &operation["responses"]["429"];
        if name != "POST" || !path.starts_with("/api/auth/") {
            assert!(answer.is_null(), "{name} {path} is never limited");
            continue;
        }
        limited.push(path.clone());
        let details =
            answer["content"]["application/json"]["schema"]["properties"]["detail"]["enum"].clone();
        let expected = if path.ends_with("/login") {
            json!(["TOO_MANY_REQUESTS", "LOGIN_TOO_MANY_ATTEMPTS"])
        } else {
            json!(["TOO_MANY_REQUESTS"])
        };
        assert_eq!(details, expected, "{path}");
        assert_eq!(
            answer["headers"]["Retry-After"]["schema"],
            json!({"type": "integer", "minimum": 1}),
            "{path}"
        );
    }
    assert_eq!(
        limited,
        [
            "/api/auth/cookie/login",
            "/api/auth/cookie/logout",
            "/api/auth/forgot-password",
            "/api/auth/jwt/login",
            "/api/auth/jwt/logout",
            "/api/auth/register",
            "/api/auth/request-verify-token",
            "/api/auth/reset-password",
            "/api/auth/verify",
        ]
    );
}

/// One request of each documented operation to a server whose store is
/// down, each as it would otherwise succeed (valid bodies, tokens signed
/// with the right secrets): each is answered 503.
async fn answers_while_the_store_is_down() -> Vec<Recorded> {
    let store = Switchable::new(Arc::new(MemoryUserStore::new()));
    store.set_down(true);
    let app = spawn_app_on(store.clone(), "memory://").await;
    let token = access_token_for(UNKNOWN_ID, 3600);
    let token = Some(token.as_str());
    let reset = hs256_jwt(
        &json!({"sub": UNKNOWN_ID, "password_fgpt": "x", "aud": [RESET_AUDIENCE], "exp": now() + 3600}),
        RESET_SECRET,
    );
    let verify = hs256_jwt(
        &json!({"sub": UNKNOWN_ID, "email": "ann@example.com", "aud": [VERIFY_AUDIENCE], "exp": now() + 3600}),
        VERIFY_SECRET,
    );
    let mut r = Recorder {
        app: &app,
        recorded: Vec::new(),
    };
    let credentials = json!({"email": "ann@example.com", "password": PASSWORD});
    r.post("/auth/register", credentials, "store down").await;
    let form = Body::form(&[("username", "ann@example.com"), ("password", PASSWORD)]);
    r.send("POST", "/auth/jwt/login", None, form, "store down")
        .await;
    r.send("POST", "/auth/jwt/logout", token, Body::Empty, "store down")
        .await;
    let form = Body::form(&[("username", "ann@example.com"), ("password", PASSWORD)]);
    r.send("POST", "/auth/cookie/login", None, form, "store down")
        .await;
    let cookie_token = access_token_for(UNKNOWN_ID, 3600);
    r.with_cookie(
        "POST",
        "/auth/cookie/logout",
        &cookie_token,
        None,
        Body::Empty,
        "store down",
    )
    .await;
    r.delete("/users/me/sessions", token, "store down").await;
    let ann = json!({"email": "ann@example.com"});
    r.post("/auth/forgot-password", ann.clone(), "store down")
        .await;
    let body = json!({"token": reset, "password": "a good password"});
    r.post("/auth/reset-password", body, "store down").await;
    r.post("/auth/request-verify-token", ann, "store down")
        .await;
    r.post("/auth/verify", json!({"token": verify}), "store down")
        .await;
    let user = format!("/users/{UNKNOWN_ID}");
    for path in ["/users/me", user.as_str()] {
        r.get(path, token, "store down").await;
        r.patch(
            path,
            token,
            json!({"password": "a new password"}),
            "store down",
        )
        .await;
        r.delete(path, token, "store down").await;
    }
    let mut recorded = std::mem::take(&mut r.recorded);
    recorded.push(Recorded {
        method: "GET",
        path: "/health".into(),
        what: "store down",
        response: app.get_raw("/health").await,
    });
    for rec in &recorded {
        assert_eq!(
            rec.response.status,
            503,
            "{} {} with the store down: {}",
            rec.method,
            rec.path,
            rec.response.text()
        );
    }
    assert!(store.failures() >= recorded.len(), "the store was asked");
    recorded
}

/// The operations that hash a password, and so may answer `503
/// SERVICE_BUSY` when the hashing queue is full.
const HASHING_OPERATIONS: [(&str, &str); 7] = [
    ("POST", "/api/auth/register"),
    ("POST", "/api/auth/jwt/login"),
    ("POST", "/api/auth/cookie/login"),
    ("POST", "/api/auth/forgot-password"),
    ("POST", "/api/auth/reset-password"),
    ("PATCH", "/api/users/me"),
    ("PATCH", "/api/users/{id}"),
];

#[actix_web::test]
async fn the_503_of_the_hashing_operations_documents_service_busy_with_retry_after() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let validator = Validator { doc: &doc };
    let busy = json!({"detail": "SERVICE_BUSY"});
    let unavailable = json!({"detail": "Service Unavailable"});
    // The contract's operations (`GET /health` has a 503 of its own).
    for (name, path) in operations(&doc)
        .into_iter()
        .filter(|(_, p)| p.starts_with("/api/"))
    {
        let answer = &doc["paths"][&path][name.to_ascii_lowercase()]["responses"]["503"];
        let schema = &answer["content"]["application/json"]["schema"];
        let what = format!("503 of {name} {path}");
        assert_eq!(validator.check(&unavailable, schema), Ok(()), "{what}");
        assert!(
            answer["headers"]["Retry-After"].is_object(),
            "{what}: {answer}"
        );
        if HASHING_OPERATIONS.contains(&(name.as_str(), path.as_str())) {
            assert_eq!(validator.check(&busy, schema), Ok(()), "{what}");
            let description = answer["description"].as_str().unwrap_or_default();
            assert!(
                description.contains("SERVICE_BUSY"),
                "{what}: {description}"
            );
        } else {
            assert!(
                validator.check(&busy, schema).is_err(),
                "{what} hashes nothing"
            );
        }
    }
}

#[actix_web::test]
async fn the_schema_check_rejects_answers_the_document_does_not_describe() {
    // A check that cannot fail proves nothing: it must catch a user with an
    // extra key, a wrong type, a role outside the enum, a missing field.
    let app = spawn_app().await;
    let doc = document(&app).await;
    let validator = Validator { doc: &doc };
    let user_schema = json!({"$ref": "#/components/schemas/UserRead"});
    let good = app.me(&app.superuser_token().await).await.expect_json(200);
    assert_eq!(validator.check(&good, &user_schema), Ok(()));
    let with = |key: &str, value: Value| {
        let mut bad = good.clone();
        bad[key] = value;
        bad
    };
    for bad in [
        with("hashed_password", json!("$argon2id$...")),
        with("is_active", json!("yes")),
        with("role", json!("root")),
        with("id", json!("not-a-uuid")),
        json!({"id": good["id"], "email": good["email"]}),
        json!(null),
    ] {
        assert!(validator.check(&bad, &user_schema).is_err(), "{bad}");
    }
    let unauthorized = json!({"$ref": "#/components/schemas/Unauthorized"});
    assert_eq!(
        validator.check(&json!({"detail": "Unauthorized"}), &unauthorized),
        Ok(())
    );
    assert!(
        validator
            .check(&json!({"detail": "Forbidden"}), &unauthorized)
            .is_err()
    );
    let error = json!({"$ref": "#/components/schemas/ErrorModel"});
    assert!(
        validator
            .check(&json!({"detail": {"code": "X"}}), &error)
            .is_err()
    );
    assert!(validator.check(&json!({"detail": 1}), &error).is_err());
}

/// A small JSON Schema check: the keywords the document uses. An unknown
/// validation keyword is an error rather than silently passed. `pattern`
/// is not judged (no regex engine here); Schemathesis judges it.
struct Validator<'a> {
    doc: &'a Value,
}

const ANNOTATIONS: [&str; 7] = [
    "description",
    "title",
    "examples",
    "example",
    "default",
    "deprecated",
    "pattern",
];

impl Validator<'_> {
    /// The recorded answer against the document's response for its status.
    fn check_response(&self, rec: &Recorded) -> Result<(), String> {
        let operation = self
            .doc
            .pointer(&format!(
                "/paths/{}/{}",
                rec.path.replace('~', "~0").replace('/', "~1"),
                rec.method.to_ascii_lowercase()
            ))
            .ok_or("the operation is not documented")?;
        let status = rec.response.status.to_string();
        let response = operation["responses"]
            .get(&status)
            .ok_or_else(|| format!("status {status} is not documented"))?;
        let response = resolve(self.doc, response);
        for name in keys(&response["headers"]) {
            let value = rec
                .response
                .header(&name)
                .ok_or_else(|| format!("the documented header {name} is missing"))?;
            let schema = &response["headers"][&name]["schema"];
            let value = if schema["type"] == "integer" {
                json!(value.parse::<i64>().map_err(|e| format!("{name}: {e}"))?)
            } else {
                json!(value)
            };
            self.check(&value, schema)
                .map_err(|e| format!("header {name}: {e}"))?;
        }
        match response.get("content").and_then(Value::as_object) {
            None => {
                if rec.response.body.is_empty() {
                    Ok(())
                } else {
                    Err("a body where the document says none".into())
                }
            }
            Some(content) => {
                let media = rec.response.media_type().unwrap_or_default();
                let entry = content
                    .get(&media)
                    .ok_or_else(|| format!("content type {media:?} is not documented"))?;
                let body: Value = serde_json::from_slice(&rec.response.body)
                    .map_err(|e| format!("the body is not JSON: {e}"))?;
                self.check(&body, &entry["schema"])
            }
        }
    }

    fn check(&self, value: &Value, schema: &Value) -> Result<(), String> {
        self.check_at(value, schema, "$")
    }

    fn check_at(&self, value: &Value, schema: &Value, at: &str) -> Result<(), String> {
        let Some(schema) = schema.as_object() else {
            return match schema {
                Value::Bool(true) => Ok(()),
                _ => Err(format!("{at}: unusable schema {schema}")),
            };
        };
        let fail = |what: String| Err(format!("{at}: {what} (value {value})"));
        for (keyword, arg) in schema {
            match keyword.as_str() {
                "$ref" => {
                    let target = pointer(self.doc, arg.as_str().unwrap_or_default());
                    self.check_at(value, &target, at)?;
                }
                "type" => {
                    let types: Vec<&str> = match arg {
                        Value::String(t) => vec![t.as_str()],
                        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                        _ => return fail(format!("bad type keyword {arg}")),
                    };
                    if !types.iter().any(|t| has_type(value, t)) {
                        return fail(format!("not of type {arg}"));
                    }
                }
                "enum" => {
                    let options = arg.as_array().cloned().unwrap_or_default();
                    if !options.iter().any(|o| same(o, value)) {
                        return fail(format!("not one of {arg}"));
                    }
                }
                "required" => {
                    if let Some(object) = value.as_object() {
                        for key in arg.as_array().into_iter().flatten() {
                            let key = key.as_str().unwrap_or_default();
                            if !object.contains_key(key) {
                                return fail(format!("missing required {key}"));
                            }
                        }
                    }
                }
                "properties" => {
                    if let (Some(object), Some(properties)) = (value.as_object(), arg.as_object()) {
                        for (key, sub) in properties {
                            if let Some(v) = object.get(key) {
                                self.check_at(v, sub, &format!("{at}.{key}"))?;
                            }
                        }
                    }
                }
                "additionalProperties" => {
                    let known: Map<String, Value> = schema
                        .get("properties")
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    if let Some(object) = value.as_object() {
                        for (key, v) in object {
                            if known.contains_key(key) {
                                continue;
                            }
                            if arg == &Value::Bool(false) {
                                return fail(format!("unexpected key {key}"));
                            }
                            self.check_at(v, arg, &format!("{at}.{key}"))?;
                        }
                    }
                }
                "items" => {
                    for (i, v) in value.as_array().into_iter().flatten().enumerate() {
                        self.check_at(v, arg, &format!("{at}[{i}]"))?;
                    }
                }
                "anyOf" | "oneOf" => {
                    let matches = arg
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|sub| self.check_at(value, sub, at).is_ok())
                        .count();
                    let ok = if keyword == "anyOf" {
                        matches >= 1
                    } else {
                        matches == 1
                    };
                    if !ok {
                        return fail(format!("{matches} branches of {keyword} match"));
                    }
                }
                "allOf" => {
                    for sub in arg.as_array().into_iter().flatten() {
                        self.check_at(value, sub, at)?;
                    }
                }
                "minLength" | "maxLength" => {
                    if let Some(text) = value.as_str() {
                        let n = text.chars().count() as u64;
                        let bound = arg.as_u64().unwrap_or_default();
                        if (keyword == "minLength" && n < bound)
                            || (keyword == "maxLength" && n > bound)
                        {
                            return fail(format!("{keyword} {bound}"));
                        }
                    }
                }
                "minimum" => {
                    if let (Some(n), Some(min)) = (value.as_f64(), arg.as_f64())
                        && n < min
                    {
                        return fail(format!("below {min}"));
                    }
                }
                "format" => {
                    if let Some(text) = value.as_str() {
                        let ok = match arg.as_str().unwrap_or_default() {
                            "uuid" => uuid::Uuid::parse_str(text).is_ok(),
                            "email" => text.contains('@'),
                            _ => true,
                        };
                        if !ok {
                            return fail(format!("not of format {arg}"));
                        }
                    }
                }
                annotation if ANNOTATIONS.contains(&annotation) => {}
                other => return Err(format!("{at}: the check does not know keyword {other}")),
            }
        }
        Ok(())
    }
}

fn has_type(value: &Value, name: &str) -> bool {
    match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.as_f64().is_some_and(|n| n.fract() == 0.0),
        _ => false,
    }
}

/// JSON Schema equality: numbers by value, booleans never equal numbers.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// With a social-login provider configured (`OAUTH_PROVIDERS=acme`), the
/// document lists its six operations under its name, as FastAPI Users
/// documents each provider's routers (no `{name}` template is left), and
/// their real answers match what it documents.
#[actix_web::test]
async fn social_login_operations_are_documented_per_provider() {
    use portcullis_tests::oauth_provider::{Flavour, OAuthProvider};

    let provider = OAuthProvider::start(Flavour::OAuth2).await;
    let mut vars = provider.env_vars("acme");
    vars.push((
        "OAUTH_STATE_SECRET".into(),
        "openapi-oauth-state-secret-0123456789abcdef".into(),
    ));
    let app = spawn_app_with(vars).await;
    let doc = document(&app).await;
    let listed = operations(&doc);
    let oauth: BTreeSet<(String, String)> = [
        "/api/auth/acme/authorize",
        "/api/auth/acme/callback",
        "/api/auth/cookie/acme/authorize",
        "/api/auth/cookie/acme/callback",
        "/api/auth/associate/acme/authorize",
        "/api/auth/associate/acme/callback",
    ]
    .into_iter()
    .map(|p| ("GET".to_owned(), p.to_owned()))
    .collect();
    let expected: BTreeSet<_> = expected_operations("/api").union(&oauth).cloned().collect();
    assert_eq!(listed, expected);
    let id = &doc["paths"]["/api/auth/acme/authorize"]["get"]["operationId"];
    assert_eq!(id, "oauth_acme_authorize");
    let params = doc["paths"]["/api/auth/acme/authorize"]["get"]["parameters"].to_string();
    assert!(
        !params.contains("\"path\""),
        "no path parameter left: {params}"
    );

    let (_, token) = app.new_user("doc@example.com").await;
    let get = |path: &'static str, token: Option<String>| {
        let app = &app;
        async move {
            let url = app.url(path);
            let auth = token.map(|t| format!("Bearer {t}"));
            let mut headers: Vec<(&str, &str)> = Vec::new();
            if let Some(auth) = &auth {
                headers.push(("authorization", auth));
            }
            app.send_to(Method::GET, &url, &headers, Body::Empty).await
        }
    };
    let mut recorded = Vec::new();
    for (path, token, what, status) in [
        ("/auth/acme/authorize", None, "authorize", 200),
        ("/auth/cookie/acme/authorize", None, "cookie authorize", 200),
        (
            "/auth/associate/acme/authorize",
            Some(token.clone()),
            "associate authorize",
            200,
        ),
        (
            "/auth/associate/acme/authorize",
            None,
            "associate authorize, no token",
            401,
        ),
        ("/auth/acme/callback?code=c&state=s", None, "bad state", 400),
        ("/auth/acme/callback", None, "no code", 400),
        (
            "/auth/acme/callback?error=access_denied",
            None,
            "refused by the user",
            400,
        ),
        (
            "/auth/cookie/acme/callback?code=c&state=s",
            None,
            "cookie: bad state",
            400,
        ),
        (
            "/auth/associate/acme/callback?code=c&state=s",
            Some(token.clone()),
            "associate: bad state",
            400,
        ),
        (
            "/auth/associate/acme/callback?code=c",
            None,
            "associate: no token",
            401,
        ),
    ] {
        let response = get(path, token).await;
        assert_eq!(response.status, status, "{what}: {}", response.text());
        recorded.push(Recorded {
            method: "GET",
            path: format!("/api{}", path.split('?').next().unwrap_or(path)),
            what,
            response,
        });
    }
    let validator = Validator { doc: &doc };
    for rec in &recorded {
        assert_eq!(
            validator.check_response(rec),
            Ok(()),
            "{} {}: {}",
            rec.method,
            rec.path,
            rec.what
        );
    }
    assert_eq!(
        recorded[5].response.text(),
        r#"{"detail":"Bad Request"}"#,
        "FastAPI Users' answer to a callback without a code (FastAPI's phrase for a None detail)"
    );
    assert_eq!(
        recorded[6].response.text(),
        r#"{"detail":"access_denied"}"#,
        "the provider's error is the detail"
    );
}

//! The per-client-address limit on `POST`s under `/auth/`
//! (`RATE_LIMIT_AUTH_PER_MINUTE`, default 30) and the client address behind
//! `TRUSTED_PROXIES`, over real HTTP.
//!
//! The harness turns the limit off for the other suites; these tests
//! unset it (`""`) to run on the real default, or set it.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, test as actix_test, web};
use awc::http::Method;
use portcullis::PortcullisBuilder;
use portcullis::http::{ClientAddress, mount};
use portcullis_tests::test_app::{Body, PASSWORD, TestApp, TestResponse, spawn_app_with};
use serde_json::json;

/// The real default: the variable unset.
const DEFAULT_LIMIT: [(&str, &str); 1] = [("RATE_LIMIT_AUTH_PER_MINUTE", "")];

/// A cheap `POST` under `/auth/`: a token that does not verify, `400`,
/// no hashing, no mail.
async fn post_verify(app: &TestApp, headers: &[(&str, &str)]) -> TestResponse {
    app.send_to(
        Method::POST,
        &app.url("/auth/verify"),
        headers,
        Body::Json(json!({"token": "not.a.token"})),
    )
    .await
}

/// `POST path` with a JSON body from another local address than
/// 127.0.0.1 (the whole of 127.0.0.0/8 is loopback on Linux).
async fn post_json_from(
    app: &TestApp,
    source: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &serde_json::Value,
) -> TestResponse {
    let source: IpAddr = source.parse().expect("an address");
    let client = awc::Client::builder()
        .connector(awc::Connector::new().local_address(source))
        .timeout(Duration::from_secs(30))
        .finish();
    let mut req = client.post(app.url(path));
    for (name, value) in headers {
        req = req.insert_header((*name, *value));
    }
    let mut res = req
        .send_json(body)
        .await
        .unwrap_or_else(|e| panic!("POST {path} from {source}: {e}"));
    let body = res.body().await.expect("the body");
    TestResponse {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body: body.to_vec(),
    }
}

/// [`post_verify`] from `source`.
async fn post_verify_from(app: &TestApp, source: &str, headers: &[(&str, &str)]) -> TestResponse {
    let body = json!({"token": "not.a.token"});
    post_json_from(app, source, "/auth/verify", headers, &body).await
}

/// Panics unless `res` is the limit's answer; returns its `Retry-After`.
#[track_caller]
fn expect_too_many_requests(res: &TestResponse) -> u64 {
    assert_eq!(res.expect_json(429), json!({"detail": "TOO_MANY_REQUESTS"}));
    let retry_after: u64 = res
        .header("retry-after")
        .expect("a Retry-After header")
        .parse()
        .expect("Retry-After in whole seconds");
    assert!(retry_after >= 1, "Retry-After: {retry_after}");
    retry_after
}

/// Spends `n` requests of 127.0.0.1's budget (with `headers`), each
/// admitted; returns when it started.
async fn spend(app: &TestApp, n: usize, headers: &[(&str, &str)]) -> Instant {
    let started = Instant::now();
    for i in 0..n {
        let res = post_verify(app, headers).await;
        assert_eq!(
            res.status,
            400,
            "request {i} is within the budget: {}",
            res.text()
        );
    }
    started
}

/// The next request (127.0.0.1, or `source`, with `headers`) after a burst
/// of `per_minute` that began at `started`: a 429. On a machine slow
/// enough for the budget to grow back meanwhile (one every `60/per_minute`
/// seconds), exactly that many more are admitted first, and no more.
/// Returns the `Retry-After`.
async fn expect_refused(
    app: &TestApp,
    source: Option<&str>,
    headers: &[(&str, &str)],
    per_minute: u32,
    started: Instant,
) -> u64 {
    let period = 60.0 / f64::from(per_minute);
    let mut extra = 0u32;
    loop {
        let res = match source {
            None => post_verify(app, headers).await,
            Some(source) => post_verify_from(app, source, headers).await,
        };
        if res.status == 429 {
            return expect_too_many_requests(&res);
        }
        assert_eq!(res.status, 400, "{}", res.text());
        extra += 1;
        let grown = started.elapsed().as_secs_f64() / period;
        assert!(
            f64::from(extra) <= grown.ceil(),
            "{extra} admitted over the burst of {per_minute}, {:?} after it began",
            started.elapsed()
        );
    }
}

#[actix_web::test]
async fn thirty_posts_a_minute_are_admitted_then_429_with_retry_after() {
    let app = spawn_app_with(DEFAULT_LIMIT).await;
    let started = spend(&app, 30, &[]).await;
    let retry_after = expect_refused(&app, None, &[], 30, started).await;
    // One every 60/30 s once the burst is spent.
    assert!(retry_after <= 2, "Retry-After: {retry_after}");
    // Every route under /auth/ shares the budget, and the limit answers
    // before the body is read: a body that would be a 422 or a 413 is not
    // even looked at.
    expect_too_many_requests(&app.register("ann@example.com", PASSWORD).await);
    expect_too_many_requests(
        &app.post_raw("/auth/jwt/login", "application/json", "{")
            .await,
    );
    let huge = Body::raw("application/json", "x".repeat(200 * 1024));
    expect_too_many_requests(&app.send(Method::POST, "/auth/register", None, huge).await);
    expect_too_many_requests(
        &app.send(Method::POST, "/auth/jwt/logout", None, Body::Empty)
            .await,
    );
}

#[actix_web::test]
async fn a_refused_request_has_no_effect() {
    let app = spawn_app_with(DEFAULT_LIMIT).await;
    let started = Instant::now();
    app.register_ok("ann@example.com", PASSWORD).await;
    spend(&app, 29, &[]).await;
    expect_refused(&app, None, &[], 30, started).await;
    expect_too_many_requests(&app.forgot_password("ann@example.com").await);
    assert!(
        app.no_mail_to("ann@example.com").await,
        "a refused forgot-password sent a mail"
    );
    expect_too_many_requests(&app.register("bob@example.com", PASSWORD).await);
    // bob was not created: from another address, with its own budget,
    // registering him works (a 400 REGISTER_USER_ALREADY_EXISTS otherwise).
    let bob = json!({"email": "bob@example.com", "password": PASSWORD});
    let res = post_json_from(&app, "127.0.0.2", "/auth/register", &[], &bob).await;
    assert_eq!(res.expect_json(201)["email"], "bob@example.com");
}

#[actix_web::test]
async fn the_budget_comes_back_after_retry_after() {
    let app = spawn_app_with([("RATE_LIMIT_AUTH_PER_MINUTE", "60")]).await;
    let started = spend(&app, 60, &[]).await;
    let retry_after = expect_refused(&app, None, &[], 60, started).await;
    assert_eq!(retry_after, 1, "one request a second");
    // Wait for the condition (refused requests do not count), bounded.
    let refused_at = Instant::now();
    loop {
        let res = post_verify(&app, &[]).await;
        if res.status == 400 {
            break;
        }
        expect_too_many_requests(&res);
        assert!(
            refused_at.elapsed() < Duration::from_secs(retry_after + 2),
            "still refused {:?} after Retry-After: {retry_after}",
            refused_at.elapsed()
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    // One request came back, not the burst.
    expect_too_many_requests(&post_verify(&app, &[]).await);
}

#[actix_web::test]
async fn another_client_address_has_its_own_budget() {
    let app = spawn_app_with(DEFAULT_LIMIT).await;
    let started = spend(&app, 30, &[]).await;
    expect_refused(&app, None, &[], 30, started).await;
    let started = Instant::now();
    for i in 0..30 {
        let res = post_verify_from(&app, "127.0.0.2", &[]).await;
        assert_eq!(
            res.status,
            400,
            "request {i} from 127.0.0.2: {}",
            res.text()
        );
    }
    expect_refused(&app, Some("127.0.0.2"), &[], 30, started).await;
}

#[actix_web::test]
async fn behind_a_trusted_proxy_x_forwarded_for_names_the_client() {
    let app = spawn_app_with([
        ("RATE_LIMIT_AUTH_PER_MINUTE", ""),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let first = [("x-forwarded-for", "203.0.113.1")];
    let first_started = spend(&app, 30, &first).await;
    expect_refused(&app, None, &first, 30, first_started).await;
    // Another client behind the same proxy: a fresh budget.
    let second = [("x-forwarded-for", "203.0.113.2")];
    let started = spend(&app, 30, &second).await;
    expect_refused(&app, None, &second, 30, started).await;
    // The first client cannot escape by writing an address of its own in
    // front of the one the proxy appended.
    let spoofed = [("x-forwarded-for", "198.51.100.99, 203.0.113.1")];
    expect_refused(&app, None, &spoofed, 30, first_started).await;
    // The proxy itself (no header) has its own budget too.
    spend(&app, 30, &[]).await;
}

#[actix_web::test]
async fn from_a_peer_that_is_not_trusted_x_forwarded_for_is_ignored() {
    // 127.0.0.1 is trusted, 127.0.0.2 is not.
    let app = spawn_app_with([
        ("RATE_LIMIT_AUTH_PER_MINUTE", ""),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let started = Instant::now();
    for i in 0..30 {
        let forged = format!("203.0.113.{i}");
        let res = post_verify_from(&app, "127.0.0.2", &[("x-forwarded-for", &forged)]).await;
        assert_eq!(res.status, 400, "request {i}: {}", res.text());
    }
    // A new forged address each time got no fresh budget.
    let forged = [("x-forwarded-for", "203.0.113.200")];
    expect_refused(&app, Some("127.0.0.2"), &forged, 30, started).await;
    // And without TRUSTED_PROXIES nobody is trusted.
    let app = spawn_app_with(DEFAULT_LIMIT).await;
    let started = Instant::now();
    for i in 0..30 {
        let forged = format!("203.0.113.{i}");
        let res = post_verify(&app, &[("x-forwarded-for", &forged)]).await;
        assert_eq!(res.status, 400, "request {i}: {}", res.text());
    }
    expect_refused(&app, None, &forged, 30, started).await;
}

#[actix_web::test]
async fn users_routes_and_other_methods_are_never_limited() {
    let app = spawn_app_with(DEFAULT_LIMIT).await;
    let started = Instant::now();
    let (_, token) = app.new_user("ann@example.com").await; // 2 POSTs
    spend(&app, 28, &[]).await;
    expect_refused(&app, None, &[], 30, started).await;
    for _ in 0..40 {
        assert_eq!(
            app.me(&token).await.expect_json(200)["email"],
            "ann@example.com"
        );
    }
    let res = app
        .patch_json("/users/me", Some(&token), &json!({"is_verified": true}))
        .await;
    res.expect_json(200);
    // Another method under /auth/ is its 405, not a 429.
    for _ in 0..3 {
        app.get("/auth/register").await.expect_405();
    }
    assert_eq!(app.get_raw("/health").await.status, 200);
    // An unknown path under /auth/ is its 404.
    let res = app
        .send(Method::POST, "/auth/nowhere", None, Body::Empty)
        .await;
    res.expect_404();
}

#[actix_web::test]
async fn zero_turns_the_limit_off() {
    let app = spawn_app_with([("RATE_LIMIT_AUTH_PER_MINUTE", "0")]).await;
    spend(&app, 100, &[]).await;
}

#[actix_web::test]
async fn a_host_that_mounts_the_routes_gets_the_limit_and_the_client_address() {
    async fn whoami(ClientAddress(client): ClientAddress) -> HttpResponse {
        HttpResponse::Ok().body(client.to_string())
    }
    let service = PortcullisBuilder::new()
        .token_secrets([1; 32], [2; 32], [3; 32])
        .trusted_proxies("10.0.0.0/8".parse().expect("a list"))
        .auth_rate_limit_per_minute(2)
        .build()
        .expect("a service");
    let app = actix_test::init_service(
        App::new()
            .configure(mount(service, "/v1"))
            .route("/whoami", web::get().to(whoami)),
    )
    .await;
    let request = |path: &str, method: Method, peer: &str, forwarded: Option<&str>| {
        let mut req = actix_test::TestRequest::default()
            .method(method)
            .uri(path)
            .peer_addr(format!("{peer}:40000").parse().expect("a socket address"));
        if let Some(forwarded) = forwarded {
            req = req.insert_header(("x-forwarded-for", forwarded));
        }
        req.to_request()
    };
    // The host's handler sees the client its trusted proxy names.
    let res = actix_test::call_service(
        &app,
        request(
            "/whoami",
            Method::GET,
            "10.0.0.1",
            Some("203.0.113.9, 10.0.0.2"),
        ),
    )
    .await;
    assert_eq!(actix_test::read_body(res).await, "203.0.113.9");
    let res = actix_test::call_service(
        &app,
        request("/whoami", Method::GET, "198.51.100.1", Some("203.0.113.9")),
    )
    .await;
    assert_eq!(actix_test::read_body(res).await, "198.51.100.1");
    // Two POSTs under /v1/auth/ per client a minute.
    let post = |peer| request("/v1/auth/jwt/logout", Method::POST, "10.0.0.1", Some(peer));
    for _ in 0..2 {
        let res = actix_test::call_service(&app, post("203.0.113.9")).await;
        assert_eq!(res.status(), 401);
    }
    let res = actix_test::call_service(&app, post("203.0.113.9")).await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    let body: serde_json::Value = actix_test::read_body_json(res).await;
    assert_eq!(body, json!({"detail": "TOO_MANY_REQUESTS"}));
    let res = actix_test::call_service(&app, post("203.0.113.10")).await;
    assert_eq!(res.status(), 401);
}

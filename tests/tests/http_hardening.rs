//! HTTP hardening over real HTTP and TCP (API.md, "Operations"): the
//! security headers on every answer (`X-Content-Type-Options: nosniff`,
//! `Referrer-Policy: no-referrer`; `Cache-Control: no-store` on every
//! `/auth/` and `/users/` answer), CORS for the origins of `CORS_ORIGINS`
//! with credentials (and for no other), and the cut-off of a request body
//! that stalls (408 and the connection closed, within 10 s).

use std::time::{Duration, Instant};

use awc::http::Method;
use portcullis_tests::test_app::{
    Body, PASSWORD, SUPERUSER_EMAIL, SUPERUSER_PASSWORD, TestApp, TestResponse, spawn_app,
    spawn_app_with,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const ALLOWED: &str = "https://app.example.com";
const ALSO_ALLOWED: &str = "http://localhost:5173";
const FOREIGN: &str = "https://evil.example.com";

/// An app whose `CORS_ORIGINS` lists [`ALLOWED`] and [`ALSO_ALLOWED`]
/// (the latter written with a trailing slash, as a deployer might).
async fn cors_app() -> TestApp {
    spawn_app_with([("CORS_ORIGINS", format!("{ALLOWED}, {ALSO_ALLOWED}/"))]).await
}

/// Asserts the two headers every answer carries.
fn assert_security_headers(res: &TestResponse) {
    assert_eq!(
        res.header("x-content-type-options").as_deref(),
        Some("nosniff"),
        "{res:?}"
    );
    assert_eq!(
        res.header("referrer-policy").as_deref(),
        Some("no-referrer"),
        "{res:?}"
    );
}

/// Asserts the security headers and `Cache-Control: no-store`.
fn assert_no_store(res: &TestResponse) {
    assert_security_headers(res);
    assert_eq!(
        res.header("cache-control").as_deref(),
        Some("no-store"),
        "{res:?}"
    );
}

/// Asserts that an answer grants `origin` nothing.
fn assert_no_grant(res: &TestResponse) {
    for name in [
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-allow-methods",
        "access-control-allow-headers",
        "access-control-expose-headers",
    ] {
        assert_eq!(res.header(name), None, "{name} in {res:?}");
    }
}

/// The comma list of a header as lowercase items.
fn list(res: &TestResponse, name: &str) -> Vec<String> {
    res.header(name)
        .unwrap_or_else(|| panic!("no {name} in {res:?}"))
        .split(',')
        .map(|item| item.trim().to_ascii_lowercase())
        .collect()
}

/// Asserts the grant of an actual (not preflight) answer to `origin`.
fn assert_granted(res: &TestResponse, origin: &str) {
    assert_eq!(
        res.header("access-control-allow-origin").as_deref(),
        Some(origin),
        "{res:?}"
    );
    assert_eq!(
        res.header("access-control-allow-credentials").as_deref(),
        Some("true"),
        "{res:?}"
    );
    let mut exposed = list(res, "access-control-expose-headers");
    exposed.sort();
    assert_eq!(exposed, ["retry-after", "x-request-id"], "{res:?}");
    assert!(list(res, "vary").contains(&"origin".to_owned()), "{res:?}");
}

/// A preflight of `method` on `path` (under the prefix) from `origin`,
/// asking for `request_headers`.
async fn preflight(
    app: &TestApp,
    path: &str,
    origin: &str,
    method: &str,
    request_headers: &str,
) -> TestResponse {
    app.send_with(
        Method::OPTIONS,
        path,
        &[
            ("origin", origin),
            ("access-control-request-method", method),
            ("access-control-request-headers", request_headers),
        ],
        Body::Empty,
    )
    .await
}

// ------------------------------------------------------- security headers

#[actix_web::test]
async fn a_token_answer_and_users_me_carry_the_security_headers_and_no_store() {
    let app = spawn_app().await;
    let login = app.login(SUPERUSER_EMAIL, SUPERUSER_PASSWORD).await;
    let token = login.expect_json(200)["access_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    assert_no_store(&login);
    assert_no_grant(&login);

    let cookie_login = app.cookie_login(SUPERUSER_EMAIL, SUPERUSER_PASSWORD).await;
    cookie_login.expect_empty(204);
    assert!(
        cookie_login.header("set-cookie").is_some(),
        "{cookie_login:?}"
    );
    assert_no_store(&cookie_login);

    let me = app.me(&token).await;
    assert_eq!(me.expect_json(200)["email"], SUPERUSER_EMAIL);
    assert_no_store(&me);

    let registered = app.register("ann@example.com", PASSWORD).await;
    registered.expect_json(201);
    assert_no_store(&registered);
}

#[actix_web::test]
async fn errors_and_404s_carry_the_security_headers() {
    let app = spawn_app().await;
    // A contract error under /auth/.
    let refused = app.login(SUPERUSER_EMAIL, "wrong password").await;
    refused.expect_code("LOGIN_BAD_CREDENTIALS");
    assert_no_store(&refused);
    // 401 under /users/.
    let unauthorized = app.get("/users/me").await;
    unauthorized.expect_401();
    assert_no_store(&unauthorized);
    // 422, 405.
    let invalid = app.post_json("/auth/register", &json!({})).await;
    invalid.expect_422();
    assert_no_store(&invalid);
    let wrong_method = app.get("/auth/jwt/login").await;
    wrong_method.expect_405();
    assert_no_store(&wrong_method);
    // 404s: under /auth/ and /users/ (no-store), elsewhere under the prefix
    // and outside it (no Cache-Control: nothing there is private).
    for path in ["/auth/nothing-here", "/users/me/nothing-here"] {
        let res = app.get(path).await;
        res.expect_404();
        assert_no_store(&res);
    }
    for res in [
        app.get("/nothing-here").await,
        app.get_raw("/nothing-here").await,
    ] {
        res.expect_404();
        assert_security_headers(&res);
        assert_eq!(res.header("cache-control"), None, "{res:?}");
    }
}

#[actix_web::test]
async fn health_and_the_documents_carry_the_security_headers() {
    let app = spawn_app().await;
    for path in ["/health", "/openapi.json", "/docs/"] {
        let res = app.get_raw(path).await;
        assert_eq!(res.status, 200, "{path}: {res:?}");
        assert_security_headers(&res);
        assert_eq!(res.header("cache-control"), None, "{path}: {res:?}");
    }
}

#[actix_web::test]
async fn at_the_root_every_route_carries_the_headers_and_cors() {
    let app = spawn_app_with([("API_PREFIX", ""), ("CORS_ORIGINS", ALLOWED)]).await;
    let login = app.login(SUPERUSER_EMAIL, SUPERUSER_PASSWORD).await;
    login.expect_json(200);
    assert_no_store(&login);
    let unknown = app.get_raw("/nothing-here").await;
    unknown.expect_404();
    assert_security_headers(&unknown);

    let res = preflight(&app, "/users/me", ALLOWED, "PATCH", "authorization").await;
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(
        res.header("access-control-allow-origin").as_deref(),
        Some(ALLOWED)
    );
    assert_no_store(&res);
}

/// A host's app: Portcullis mounted with `portcullis::mount` at `prefix`
/// (CORS for [`ALLOWED`]) next to the host's own `GET /host`, with no
/// middleware of the host's. Returns the base URL.
async fn spawn_host(prefix: &str) -> String {
    let service = portcullis::PortcullisBuilder::new()
        .token_secrets([1; 32], [2; 32], [3; 32])
        .cors_origins(ALLOWED.parse().expect("an origin"))
        .build()
        .expect("builds");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let prefix = prefix.to_owned();
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .configure(portcullis::mount(service.clone(), &prefix))
            .route(
                "/host",
                actix_web::web::get().to(|| async { actix_web::HttpResponse::Ok().body("host") }),
            )
    })
    .workers(1)
    .listen(listener)
    .expect("listens")
    .run();
    actix_web::rt::spawn(server);
    format!("http://127.0.0.1:{port}")
}

/// `method url` with `headers`, the whole answer.
async fn fetch(method: Method, url: &str, headers: &[(&str, &str)]) -> TestResponse {
    let mut req = awc::Client::default().request(method, url);
    for header in headers {
        req = req.insert_header(*header);
    }
    let mut res = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
    let body = res.body().await.expect("a body").to_vec();
    TestResponse {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body,
    }
}

#[actix_web::test]
async fn a_host_mounting_portcullis_gets_the_headers_and_cors_on_its_routes_only() {
    for prefix in ["/api", ""] {
        let base = spawn_host(prefix).await;
        let me = fetch(Method::GET, &format!("{base}{prefix}/users/me"), &[]).await;
        me.expect_401();
        assert_no_store(&me);
        let login = fetch(
            Method::POST,
            &format!("{base}{prefix}/auth/jwt/login"),
            &[("origin", ALLOWED)],
        )
        .await;
        login.expect_422();
        assert_no_store(&login);
        assert_granted(&login, ALLOWED);
        let preflight = fetch(
            Method::OPTIONS,
            &format!("{base}{prefix}/users/me"),
            &[
                ("origin", ALLOWED),
                ("access-control-request-method", "PATCH"),
            ],
        )
        .await;
        assert_eq!(preflight.status, 200, "{prefix}: {preflight:?}");
        assert_eq!(
            preflight.header("access-control-allow-origin").as_deref(),
            Some(ALLOWED)
        );
        assert_security_headers(&preflight);
        // The host's own route stays the host's.
        let host = fetch(Method::GET, &format!("{base}/host"), &[("origin", ALLOWED)]).await;
        assert_eq!(host.text(), "host");
        assert_eq!(host.header("x-content-type-options"), None, "{host:?}");
        assert_no_grant(&host);
    }
    // Under a prefix, its 404s are the API's too.
    let base = spawn_host("/api").await;
    let unknown = fetch(Method::GET, &format!("{base}/api/nothing-here"), &[]).await;
    unknown.expect_404();
    assert_security_headers(&unknown);
}

// ------------------------------------------------------------------- CORS

#[actix_web::test]
async fn a_preflight_from_a_listed_origin_is_granted_with_credentials() {
    let app = cors_app().await;
    for origin in [ALLOWED, ALSO_ALLOWED] {
        let res = preflight(
            &app,
            "/auth/jwt/login",
            origin,
            "POST",
            "Content-Type, Authorization, X-Request-Id",
        )
        .await;
        assert_eq!(res.status, 200, "{res:?}");
        assert!(res.body.is_empty(), "{res:?}");
        assert_eq!(
            res.header("access-control-allow-origin").as_deref(),
            Some(origin),
            "{res:?}"
        );
        assert_eq!(
            res.header("access-control-allow-credentials").as_deref(),
            Some("true"),
            "{res:?}"
        );
        let mut methods = list(&res, "access-control-allow-methods");
        methods.sort();
        assert_eq!(methods, ["delete", "get", "patch", "post"], "{res:?}");
        let mut headers = list(&res, "access-control-allow-headers");
        headers.sort();
        assert_eq!(
            headers,
            ["authorization", "content-type", "x-request-id"],
            "{res:?}"
        );
        assert!(list(&res, "vary").contains(&"origin".to_owned()), "{res:?}");
        assert_no_store(&res);
    }
}

#[actix_web::test]
async fn a_preflight_from_an_unlisted_origin_is_granted_nothing() {
    let app = cors_app().await;
    for origin in [FOREIGN, "http://app.example.com", "null"] {
        let res = preflight(&app, "/auth/jwt/login", origin, "POST", "content-type").await;
        assert_eq!(res.status, 400, "{origin}: {res:?}");
        assert_no_grant(&res);
        assert_security_headers(&res);
    }
    // A listed origin asking for a header the API does not take.
    let res = preflight(&app, "/users/me", ALLOWED, "PATCH", "x-custom").await;
    assert_eq!(res.status, 400, "{res:?}");
    assert_eq!(res.header("access-control-allow-headers"), None, "{res:?}");
}

#[actix_web::test]
async fn without_cors_origins_there_is_no_cors() {
    let app = spawn_app().await;
    let res = preflight(&app, "/auth/jwt/login", ALLOWED, "POST", "content-type").await;
    assert_no_grant(&res);
    res.expect_405();
    assert_no_store(&res);
    let login = app
        .send_with(
            Method::POST,
            "/auth/jwt/login",
            &[("origin", ALLOWED)],
            Body::Form(vec![
                ("username".into(), SUPERUSER_EMAIL.into()),
                ("password".into(), SUPERUSER_PASSWORD.into()),
            ]),
        )
        .await;
    login.expect_json(200);
    assert_no_grant(&login);
}

#[actix_web::test]
async fn a_credentialed_request_from_a_listed_origin_is_granted() {
    let app = cors_app().await;
    let cookie_login = app
        .send_with(
            Method::POST,
            "/auth/cookie/login",
            &[("origin", ALLOWED)],
            Body::Form(vec![
                ("username".into(), SUPERUSER_EMAIL.into()),
                ("password".into(), SUPERUSER_PASSWORD.into()),
            ]),
        )
        .await;
    cookie_login.expect_empty(204);
    assert_granted(&cookie_login, ALLOWED);
    assert_no_store(&cookie_login);
    let set = cookie_login.header("set-cookie").expect("a session cookie");
    let jar = set.split(';').next().expect("name=value").to_owned();

    // The page's fetch with `credentials: "include"` sends the cookie.
    let me = app
        .send_with(
            Method::GET,
            "/users/me",
            &[("origin", ALLOWED), ("cookie", &jar)],
            Body::Empty,
        )
        .await;
    assert_eq!(me.expect_json(200)["email"], SUPERUSER_EMAIL);
    assert_granted(&me, ALLOWED);
    assert_no_store(&me);

    // An error answer is granted too, so the page can read it.
    let refused = app
        .send_with(
            Method::GET,
            "/users/me",
            &[("origin", ALLOWED)],
            Body::Empty,
        )
        .await;
    refused.expect_401();
    assert_granted(&refused, ALLOWED);

    // Another origin's request is answered as usual (a browser keeps the
    // answer from its page), with no grant.
    let foreign = app
        .send_with(
            Method::GET,
            "/users/me",
            &[("origin", FOREIGN), ("cookie", &jar)],
            Body::Empty,
        )
        .await;
    assert_eq!(foreign.expect_json(200)["email"], SUPERUSER_EMAIL);
    assert_no_grant(&foreign);
    // And its cookie-authenticated change is refused by the Origin rule.
    let change = app
        .send_with(
            Method::PATCH,
            "/users/me",
            &[("origin", FOREIGN), ("cookie", &jar)],
            Body::Json(json!({"first_name": "x"})),
        )
        .await;
    change.expect_403();
    assert_no_grant(&change);
}

// --------------------------------------------------------- stalled bodies

/// `POST /api/auth/register` over a raw connection announcing
/// `Content-Length` of the whole `body`, of which `sent` goes out at once;
/// with `Connection: close` when `close`.
async fn start_register(app: &TestApp, body: &[u8], sent: usize, close: bool) -> TcpStream {
    let connection = if close { "Connection: close\r\n" } else { "" };
    let head = format!(
        "POST {}/auth/register HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{connection}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        app.api_prefix,
        app.port,
        body.len()
    );
    let mut stream = TcpStream::connect(("127.0.0.1", app.port))
        .await
        .expect("connect");
    stream.write_all(head.as_bytes()).await.expect("send head");
    stream.write_all(&body[..sent]).await.expect("send body");
    stream
}

/// Everything the server sends until it closes the connection, waiting
/// at most `limit`.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(limit, stream.read_to_end(&mut answer))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the connection is still open after {limit:?}; read so far: {:?}",
                String::from_utf8_lossy(&answer)
            )
        })
        .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

/// The status line's code and the JSON body of a raw HTTP/1.1 answer.
fn parse_answer(answer: &str) -> (u16, Value) {
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {answer:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"));
    let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer:?}"));
    (status, body)
}

#[actix_web::test]
async fn a_stalled_body_is_cut_off_with_408_and_the_connection_closed_within_10_s() {
    let app = spawn_app().await;
    let body = json!({"email": "stall@example.com", "password": PASSWORD}).to_string();
    let started = Instant::now();
    // A keep-alive connection: the server itself must close it.
    let mut stream = start_register(&app, body.as_bytes(), body.len() / 2, false).await;
    let answer = read_until_closed(&mut stream, Duration::from_secs(30)).await;
    let waited = started.elapsed();
    let (status, json) = parse_answer(&answer);
    assert_eq!(status, 408, "{answer:?}");
    assert_eq!(json, json!({"detail": "Request Timeout"}), "{answer:?}");
    let head = answer.to_ascii_lowercase();
    assert!(head.contains("connection: close"), "{answer:?}");
    assert!(
        head.contains("x-content-type-options: nosniff"),
        "{answer:?}"
    );
    assert!(head.contains("cache-control: no-store"), "{answer:?}");
    // Cut off within 10 s of the last byte (plus scheduling slack), and not
    // at once: the client was given its time.
    assert!(waited < Duration::from_secs(12), "cut off after {waited:?}");
    assert!(waited >= Duration::from_secs(9), "cut off after {waited:?}");
    // Nothing was registered.
    app.login("stall@example.com", PASSWORD)
        .await
        .expect_code("LOGIN_BAD_CREDENTIALS");
}

#[actix_web::test]
async fn a_slow_but_steady_body_is_read_past_10_s() {
    let app = spawn_app().await;
    let body = json!({"email": "slow@example.com", "password": PASSWORD}).to_string();
    let bytes = body.as_bytes();
    let mut stream = start_register(&app, bytes, 1, true).await;
    // The rest in six pieces, one every 2 s: 12 s in all, never 10 s apart.
    let pieces: Vec<&[u8]> = bytes[1..].chunks(bytes.len().div_ceil(6)).collect();
    let started = Instant::now();
    for piece in pieces {
        tokio::time::sleep(Duration::from_secs(2)).await;
        stream.write_all(piece).await.expect("send a piece");
    }
    assert!(started.elapsed() > Duration::from_secs(10));
    let answer = read_until_closed(&mut stream, Duration::from_secs(30)).await;
    let (status, user) = parse_answer(&answer);
    assert_eq!(status, 201, "{answer:?}");
    assert_eq!(user["email"], "slow@example.com", "{answer:?}");
    app.login("slow@example.com", PASSWORD)
        .await
        .expect_json(200);
}

//! `METRICS_ADDR` against the real binary: Prometheus text at `/metrics`
//! on that address only, with the request histogram, login outcomes,
//! requests shed and the hashing gauges carrying the labels and values the
//! requests made call for; no metrics listener at all when it is unset.

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const PASSWORD: &str = "a long enough password";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `portcullis serve` on `port`, memory store, cheap hashing unless the
/// test says otherwise.
fn portcullis(port: u16) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", "memory://")
        .env("PORT", port.to_string())
        .env("JWT_SECRET_KEY", "metrics-test-jwt-secret-0123456789abcdef")
        .env(
            "AUTH_RESET_PASSWORD_TOKEN_SECRET",
            "metrics-test-reset-secret-0123456789abc",
        )
        .env(
            "AUTH_VERIFICATION_TOKEN_SECRET",
            "metrics-test-verify-secret-0123456789ab",
        )
        // A hash of ~20 ms on this project's machines (9.5 ms at t = 4,
        // 2.3 ms at t = 1 on the fastest host seen, 2026-12-03): well over
        // the histogram's 5 ms bucket, which a good login must miss.
        .env("ARGON2_MEMORY_KIB", "8192")
        .env("ARGON2_ITERATIONS", "8")
        .env("RATE_LIMIT_AUTH_PER_MINUTE", "0")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    cmd
}

struct Server {
    child: Child,
    base: String,
    log: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Starts `cmd` (listening on `port`), its standard error in a file, and
/// waits until `/health` answers.
async fn start(mut cmd: Command, port: u16) -> Server {
    let log = std::env::temp_dir().join(format!(
        "portcullis-metrics-{}-{port}.log",
        std::process::id()
    ));
    let child = cmd
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        log,
    };
    let client = awc::Client::default();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(res) = client.get(format!("{}/health", server.base)).send().await
            && res.status() == 200
        {
            return server;
        }
        assert!(
            Instant::now() < deadline,
            "server did not come up: {}",
            std::fs::read_to_string(&server.log).unwrap_or_default()
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The scrape at `url`: its content type and its samples, keyed
/// `name{labels}` exactly as written.
async fn scrape(url: &str) -> (String, BTreeMap<String, f64>) {
    let mut res = awc::Client::default().get(url).send().await.unwrap();
    assert_eq!(res.status(), 200, "{url}");
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = res.body().limit(1 << 22).await.unwrap();
    let text = String::from_utf8(body.to_vec()).unwrap();
    let samples = text
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (key, value) = line.rsplit_once(' ').expect("a sample line");
            (key.to_owned(), value.parse::<f64>().expect("a number"))
        })
        .collect();
    (content_type, samples)
}

fn sample(samples: &BTreeMap<String, f64>, key: &str) -> f64 {
    *samples
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in {samples:#?}"))
}

/// The TCP ports `pid` listens on (Linux: its socket descriptors matched
/// against the kernel's table of listening sockets).
fn listening_ports(pid: u32) -> BTreeSet<u16> {
    let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_owned(),
            )
        })
        .collect();
    let mut ports = BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address, st (0A: LISTEN), inode
            if fields.len() > 9 && fields[3] == "0A" && inodes.contains(fields[9]) {
                let port = fields[1].rsplit_once(':').unwrap().1;
                ports.insert(u16::from_str_radix(port, 16).unwrap());
            }
        }
    }
    ports
}

/// A client that waits for slow hashes (a busy machine, costly settings).
fn patient_client() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .finish()
}

async fn register(base: &str, email: &str) {
    let res = patient_client()
        .post(format!("{base}/api/auth/register"))
        .send_json(&serde_json::json!({"email": email, "password": PASSWORD}))
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "register {email}");
}

/// A bearer login: its status and JSON body.
async fn login(base: &str, email: &str, password: &str) -> (u16, serde_json::Value) {
    let mut res = patient_client()
        .post(format!("{base}/api/auth/jwt/login"))
        .send_form(&[("username", email), ("password", password)])
        .await
        .unwrap();
    let body = res.json::<serde_json::Value>().await.unwrap();
    (res.status().as_u16(), body)
}

#[actix_web::test]
async fn metrics_count_requests_logins_and_sheds_on_metrics_addr_only() {
    let (port, metrics_port) = (free_port(), free_port());
    let mut cmd = portcullis(port);
    cmd.env("METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
        // A burst of 5 POSTs under /auth/, then one every 12 s.
        .env("RATE_LIMIT_AUTH_PER_MINUTE", "5")
        .env("LOGIN_LOCKOUT_FAILURES", "2");
    let server = start(cmd, port).await;
    let base = server.base.clone();
    let metrics_url = format!("http://127.0.0.1:{metrics_port}/metrics");

    assert_eq!(
        listening_ports(server.child.id()),
        BTreeSet::from([port, metrics_port]),
        "the API and the metrics, each on its own port"
    );

    register(&base, "ann@example.com").await;
    let (status, body) = login(&base, "ann@example.com", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    for _ in 0..2 {
        let (status, body) = login(&base, "ann@example.com", "not the password").await;
        assert_eq!(
            (status, body),
            (400, serde_json::json!({"detail": "LOGIN_BAD_CREDENTIALS"}))
        );
    }
    let (status, body) = login(&base, "ann@example.com", PASSWORD).await;
    assert_eq!(
        (status, body),
        (
            429,
            serde_json::json!({"detail": "LOGIN_TOO_MANY_ATTEMPTS"})
        ),
        "two failures lock the address"
    );
    let (status, body) = login(&base, "ann@example.com", PASSWORD).await;
    assert_eq!(
        (status, body),
        (429, serde_json::json!({"detail": "TOO_MANY_REQUESTS"})),
        "the sixth POST under /auth/ is over the budget"
    );
    let client = awc::Client::default();
    let mut res = client
        .get(format!("{base}/api/no-such-route-4711"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"detail": "Not Found"})
    );
    // Never on the API's address.
    let mut res = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"detail": "Not Found"})
    );

    let (content_type, samples) = scrape(&metrics_url).await;
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert_eq!(
        sample(&samples, r#"portcullis_logins_total{outcome="ok"}"#),
        1.0
    );
    assert_eq!(
        sample(
            &samples,
            r#"portcullis_logins_total{outcome="bad_credentials"}"#
        ),
        2.0
    );
    assert_eq!(
        sample(
            &samples,
            r#"portcullis_requests_shed_total{reason="rate_limited"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(&samples, r#"portcullis_logins_total{outcome="locked"}"#),
        1.0
    );
    assert_eq!(
        sample(
            &samples,
            r#"portcullis_requests_shed_total{reason="login_locked"}"#
        ),
        1.0
    );
    let h = "portcullis_http_request_duration_seconds";
    for (labels, count) in [
        (
            r#"route="/api/auth/register",method="POST",status="201""#,
            1.0,
        ),
        (
            r#"route="/api/auth/jwt/login",method="POST",status="200""#,
            1.0,
        ),
        (
            r#"route="/api/auth/jwt/login",method="POST",status="400""#,
            2.0,
        ),
        (
            // The lockout and the rate limit.
            r#"route="/api/auth/jwt/login",method="POST",status="429""#,
            2.0,
        ),
        // The unknown path and /metrics on the API's address.
        (r#"route="unmatched",method="GET",status="404""#, 2.0),
    ] {
        assert_eq!(
            sample(&samples, &format!("{h}_count{{{labels}}}")),
            count,
            "{labels}"
        );
        assert_eq!(
            sample(&samples, &format!("{h}_bucket{{{labels},le=\"+Inf\"}}")),
            count,
            "{labels}"
        );
        assert!(
            sample(&samples, &format!("{h}_sum{{{labels}}}")) > 0.0,
            "{labels}"
        );
    }
    // A hash takes more than 5 ms; a refusal before the body is read less
    // than 10 s.
    assert_eq!(
        sample(
            &samples,
            &format!(
                r#"{h}_bucket{{route="/api/auth/jwt/login",method="POST",status="200",le="0.005"}}"#
            )
        ),
        0.0
    );
    assert_eq!(
        sample(
            &samples,
            &format!(
                r#"{h}_bucket{{route="/api/auth/jwt/login",method="POST",status="429",le="10"}}"#
            )
        ),
        2.0
    );
    assert!(
        sample(
            &samples,
            &format!(r#"{h}_count{{route="/health",method="GET",status="200"}}"#)
        ) >= 1.0
    );
    assert!(
        !samples.keys().any(|k| k.contains("no-such-route")),
        "a raw path became a label: {samples:#?}"
    );
    assert!(sample(&samples, "portcullis_hashing_slots") >= 1.0);
    assert_eq!(sample(&samples, "portcullis_hashing_slots_busy"), 0.0);
    assert_eq!(sample(&samples, "portcullis_hashing_queue_length"), 0.0);

    // Nothing else is served there.
    let res = client
        .get(format!("http://127.0.0.1:{metrics_port}/api/auth/register"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[actix_web::test]
async fn the_hashing_gauges_show_busy_slots_and_the_queue_and_a_full_queue_is_shed() {
    let (port, metrics_port) = (free_port(), free_port());
    let mut cmd = portcullis(port);
    cmd.env("METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
        // About a second a hash, so that the scrapes see them run.
        .env("ARGON2_MEMORY_KIB", "65536")
        .env("ARGON2_ITERATIONS", "8")
        .env("HASH_QUEUE_MAX", "1")
        .env("HASH_QUEUE_TIMEOUT_MS", "60000");
    let server = start(cmd, port).await;
    let base = server.base.clone();
    let metrics_url = format!("http://127.0.0.1:{metrics_port}/metrics");
    register(&base, "ann@example.com").await;
    let (_, samples) = scrape(&metrics_url).await;
    let slots = sample(&samples, "portcullis_hashing_slots");
    assert!(slots >= 1.0);

    // Every slot busy, one login waiting, one refused at once.
    let logins: Vec<_> = (0..slots as usize + 2)
        .map(|_| {
            let base = base.clone();
            actix_web::rt::spawn(async move { login(&base, "ann@example.com", PASSWORD).await })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, samples) = scrape(&metrics_url).await;
        let busy = sample(&samples, "portcullis_hashing_slots_busy");
        let queue = sample(&samples, "portcullis_hashing_queue_length");
        assert!(busy <= slots && queue <= 1.0, "{busy} busy, {queue} queued");
        if busy == slots && queue == 1.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never saw {slots} busy and 1 queued: {busy} busy, {queue} queued"
        );
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    let mut statuses = Vec::new();
    for login in logins {
        let (status, body) = login.await.unwrap();
        if status == 503 {
            assert_eq!(body, serde_json::json!({"detail": "SERVICE_BUSY"}));
        }
        statuses.push(status);
    }
    statuses.sort_unstable();
    let mut expected = vec![200; slots as usize + 1];
    expected.push(503);
    assert_eq!(statuses, expected);

    let (_, samples) = scrape(&metrics_url).await;
    assert_eq!(sample(&samples, "portcullis_hashing_slots_busy"), 0.0);
    assert_eq!(sample(&samples, "portcullis_hashing_queue_length"), 0.0);
    assert_eq!(
        sample(&samples, r#"portcullis_logins_total{outcome="ok"}"#),
        slots + 1.0
    );
    assert_eq!(
        sample(&samples, r#"portcullis_logins_total{outcome="busy"}"#),
        1.0
    );
    assert_eq!(
        sample(
            &samples,
            r#"portcullis_requests_shed_total{reason="hashing_queue_full"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &samples,
            r#"portcullis_http_request_duration_seconds_count{route="/api/auth/jwt/login",method="POST",status="503"}"#
        ),
        1.0
    );
}

#[actix_web::test]
async fn without_metrics_addr_nothing_listens_but_the_api() {
    let port = free_port();
    let server = start(portcullis(port), port).await;
    assert_eq!(listening_ports(server.child.id()), BTreeSet::from([port]));
    let res = awc::Client::default()
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(!log.contains("metrics"), "{log}");
}

/// The output of `child` once it exits; kills it and panics after 20 s.
fn exit_within_20s(mut child: Child) -> std::process::Output {
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("portcullis did not stop within 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_metrics_addr_in_use_stops_start_up_naming_the_variable() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let port = free_port();
    let out = portcullis(port)
        .env("METRICS_ADDR", format!("127.0.0.1:{taken_port}"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = exit_within_20s(out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "METRICS_ADDR: cannot listen on 127.0.0.1:{taken_port}"
        )),
        "{stderr}"
    );

    let out = portcullis(port)
        .env("METRICS_ADDR", format!("127.0.0.1:{port}"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = exit_within_20s(out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("portcullis: configuration: METRICS_ADDR: ")
            && stderr.contains("the API's own address"),
        "{stderr}"
    );
}

/// Polls the scrape at `url` until `done` holds for it; panics after 20 s
/// with the last scrape.
async fn wait_for_metrics(url: &str, what: &str, done: impl Fn(&BTreeMap<String, f64>) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, samples) = scrape(url).await;
        if done(&samples) {
            return;
        }
        assert!(Instant::now() < deadline, "never saw {what}: {samples:#?}");
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
}

#[actix_web::test]
async fn a_client_that_leaves_while_queued_for_a_hash_is_shed_as_client_gone() {
    use std::io::Write as _;

    let (port, metrics_port) = (free_port(), free_port());
    let mut cmd = portcullis(port);
    cmd.env("METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
        // Seconds a hash: the slots stay busy while the client comes and goes.
        .env("ARGON2_MEMORY_KIB", "65536")
        .env("ARGON2_ITERATIONS", "16")
        .env("HASH_QUEUE_MAX", "4")
        .env("HASH_QUEUE_TIMEOUT_MS", "60000");
    let server = start(cmd, port).await;
    let base = server.base.clone();
    let metrics_url = format!("http://127.0.0.1:{metrics_port}/metrics");
    register(&base, "ann@example.com").await;
    let (_, samples) = scrape(&metrics_url).await;
    let slots = sample(&samples, "portcullis_hashing_slots");

    let logins: Vec<_> = (0..slots as usize)
        .map(|_| {
            let base = base.clone();
            actix_web::rt::spawn(async move { login(&base, "ann@example.com", PASSWORD).await })
        })
        .collect();
    wait_for_metrics(&metrics_url, "every slot busy", |s| {
        sample(s, "portcullis_hashing_slots_busy") == slots
    })
    .await;

    let form = format!(
        "username=ann%40example.com&password={}",
        PASSWORD.replace(' ', "+")
    );
    let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        client,
        "POST /api/auth/jwt/login HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    )
    .unwrap();
    wait_for_metrics(&metrics_url, "the login queued", |s| {
        sample(s, "portcullis_hashing_queue_length") == 1.0
    })
    .await;
    drop(client);
    wait_for_metrics(&metrics_url, "the client gone and out of the queue", |s| {
        s.get(r#"portcullis_requests_shed_total{reason="client_gone"}"#) == Some(&1.0)
            && sample(s, "portcullis_hashing_queue_length") == 0.0
    })
    .await;

    for login in logins {
        assert_eq!(login.await.unwrap().0, 200);
    }
    let (_, samples) = scrape(&metrics_url).await;
    assert_eq!(
        sample(
            &samples,
            r#"portcullis_http_request_duration_seconds_count{route="/api/auth/jwt/login",method="POST",status="499"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(&samples, r#"portcullis_logins_total{outcome="ok"}"#),
        slots,
        "the login dropped with its client is no outcome"
    );
    assert_eq!(sample(&samples, "portcullis_hashing_slots_busy"), 0.0);
}

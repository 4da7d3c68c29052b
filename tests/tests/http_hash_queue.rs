//! The bounded hashing queue over real HTTP and TCP: past `HASH_QUEUE_MAX`
//! waiting requests a login is refused at once with `503 SERVICE_BUSY` +
//! `Retry-After: 1`, admitted logins still succeed, and a request whose
//! client has gone leaves the queue and is never hashed.
//!
//! Each test serves one hashing slot, held by the login of a user whose
//! stored hash is slow (made with heavy argon2 parameters, as an adopted
//! database's would be), and reads the hasher's own counters (jobs started,
//! queue length) rather than the clock.

use std::net::TcpListener;
use std::num::NonZeroUsize;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::PortcullisBuilder;
use portcullis::application::{NewUser, UserService};
use portcullis::password::{HasherConfig, PhcPasswordHasher};
use portcullis_domain::{EmailAddress, Store};
use portcullis_store_memory::MemoryUserStore;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

const SLOW_USER: &str = "slow@example.com";
const FAST_USER: &str = "fast@example.com";
const PASSWORD: &str = "correct horse battery";

/// A served Portcullis with one hashing slot, and its hasher's counters.
struct QueueApp {
    address: String,
    hasher: PhcPasswordHasher,
    client: awc::Client,
}

/// Serves Portcullis through `portcullis::serve` (which watches its
/// connections) with one hashing slot, at most `queue_max` requests waiting
/// for it, and two users: [`SLOW_USER`], whose stored hash takes a good
/// second to check, and [`FAST_USER`].
async fn spawn_queue_app(queue_max: usize) -> QueueApp {
    let store: Arc<dyn Store> = Arc::new(MemoryUserStore::new());
    let slow = HasherConfig {
        argon2_memory_kib: 65_536,
        argon2_iterations: 16,
        ..HasherConfig::default()
    };
    let slow = PhcPasswordHasher::new(slow).expect("valid");
    create_user(&service_on(&store, slow), SLOW_USER).await;
    let fast = HasherConfig {
        argon2_memory_kib: 8,
        argon2_iterations: 1,
        queue_max,
        queue_timeout: Duration::from_secs(30),
        ..HasherConfig::default()
    };
    let one_slot = NonZeroUsize::new(1).expect("non-zero");
    let hasher = PhcPasswordHasher::with_max_concurrency(fast, one_slot).expect("valid");
    let service = service_on(&store, hasher.clone());
    create_user(&service, FAST_USER).await;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let server = portcullis::serve(service, "/api", listener).expect("serves");
    actix_web::rt::spawn(server);
    QueueApp {
        address,
        hasher,
        client: awc::Client::builder()
            .timeout(Duration::from_secs(60))
            .finish(),
    }
}

/// Portcullis on `store` with `hasher`.
fn service_on(store: &Arc<dyn Store>, hasher: PhcPasswordHasher) -> UserService {
    PortcullisBuilder::new()
        .store(Arc::clone(store))
        .hasher(Arc::new(hasher))
        .token_secrets(
            "hash queue test access secret!!!!!",
            "hash queue test reset secret!!!!!!",
            "hash queue test verify secret!!!!!",
        )
        .build()
        .expect("builds")
}

/// Creates an active user at `email` with [`PASSWORD`].
async fn create_user(service: &UserService, email: &str) {
    let email = EmailAddress::parse(email).expect("an address");
    service
        .create_user(NewUser::new(email, PASSWORD))
        .await
        .expect("created");
}

/// A login's answer: status, `Retry-After`, JSON body.
#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: Value,
}

impl QueueApp {
    async fn login(&self, username: &str, password: &str) -> Answer {
        let mut response = self
            .client
            .post(format!("http://{}/api/auth/jwt/login", self.address))
            .send_form(&[("username", username), ("password", password)])
            .await
            .expect("an answer");
        let body = response.body().await.expect("a body");
        Answer {
            status: response.status().as_u16(),
            retry_after: response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().expect("ascii").to_owned()),
            body: serde_json::from_slice(&body).expect("JSON"),
        }
    }

    /// A login sent over a raw TCP connection, its answer never read.
    async fn raw_login(&self, username: &str) -> TcpStream {
        let body = format!("username={username}&password=wrong+password");
        let request = format!(
            "POST /api/auth/jwt/login HTTP/1.1\r\nHost: {}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            self.address,
            body.len()
        );
        let mut stream = TcpStream::connect(&self.address).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("send");
        stream
    }

    /// Waits (up to 20 s) until `condition` holds of the hasher.
    async fn until(&self, what: &str, condition: impl Fn(&PhcPasswordHasher) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !condition(&self.hasher) {
            assert!(
                Instant::now() < deadline,
                "never: {what} (busy {}, queued {}, started {})",
                self.hasher.busy_slots(),
                self.hasher.queue_len(),
                self.hasher.jobs_started()
            );
            actix_web::rt::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn assert_token(answer: &Answer) {
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.body["access_token"].is_string(), "{answer:?}");
}

fn assert_busy(answer: &Answer) {
    assert_eq!(
        (answer.status, answer.retry_after.as_deref(), &answer.body),
        (503, Some("1"), &json!({"detail": "SERVICE_BUSY"}))
    );
}

#[actix_web::test]
async fn a_flood_past_the_queue_is_refused_as_busy_while_admitted_logins_succeed() {
    let app = Rc::new(spawn_queue_app(2).await);
    // The one slot: a slow login.
    let holder = {
        let app = Rc::clone(&app);
        actix_web::rt::spawn(async move { app.login(SLOW_USER, PASSWORD).await })
    };
    app.until("the slow login holds the slot", |h| h.busy_slots() == 1)
        .await;
    // The queue: two logins that will be served.
    let admitted: Vec<_> = (0..2)
        .map(|_| {
            let app = Rc::clone(&app);
            actix_web::rt::spawn(async move { app.login(FAST_USER, PASSWORD).await })
        })
        .collect();
    app.until("two logins wait", |h| h.queue_len() == 2).await;
    let started = app.hasher.jobs_started();

    // The flood: every one refused, none waiting, none hashed.
    let flood: Vec<_> = (0..12)
        .map(|i| {
            let app = Rc::clone(&app);
            actix_web::rt::spawn(async move {
                let user = if i % 2 == 0 {
                    FAST_USER
                } else {
                    "nobody@example.com"
                };
                app.login(user, PASSWORD).await
            })
        })
        .collect();
    for refused in flood {
        assert_busy(&refused.await.expect("task"));
    }
    assert_eq!(app.hasher.queue_len(), 2, "the refused never queued");

    assert_token(&holder.await.expect("task"));
    for login in admitted {
        assert_token(&login.await.expect("task"));
    }
    assert_eq!(
        app.hasher.jobs_started(),
        started + 2,
        "only the two admitted logins were hashed since the flood"
    );
    // Free again.
    assert_token(&app.login(FAST_USER, PASSWORD).await);
}

#[actix_web::test]
async fn a_request_whose_client_has_gone_leaves_the_queue_and_is_never_hashed() {
    let app = Rc::new(spawn_queue_app(4).await);
    let before = app.hasher.jobs_started();
    let holder = {
        let app = Rc::clone(&app);
        actix_web::rt::spawn(async move { app.login(SLOW_USER, PASSWORD).await })
    };
    let started = before + 1;
    app.until("the slow login holds the slot", |h| {
        h.busy_slots() == 1 && h.jobs_started() == started
    })
    .await;

    // Four clients send a login, wait in the queue, and give up.
    let mut abandoned = Vec::new();
    for i in 0..4 {
        abandoned.push(app.raw_login(&format!("gone{i}@example.com")).await);
    }
    app.until("four logins wait", |h| h.queue_len() == 4).await;
    assert_busy(&app.login(FAST_USER, PASSWORD).await);
    drop(abandoned);

    // They leave the queue while the slow login still holds the slot...
    app.until("the gone clients left the queue", |h| h.queue_len() == 0)
        .await;
    assert_eq!(app.hasher.jobs_started(), started, "nothing else started");
    // ...which the next client finds free: admitted, not refused.
    let next = {
        let app = Rc::clone(&app);
        actix_web::rt::spawn(async move { app.login(FAST_USER, PASSWORD).await })
    };
    app.until("the next login waits", |h| h.queue_len() == 1)
        .await;

    assert_token(&holder.await.expect("task"));
    assert_token(&next.await.expect("task"));
    assert_eq!(
        app.hasher.jobs_started(),
        started + 1,
        "the abandoned logins were hashed"
    );
}

//! PostgreSQL goes away under a running `portcullis` and comes back: while
//! it is down, requests that need it answer 503 within a bounded time (not
//! 500, not a hang) and `/health` says 503; once it is back, the same
//! process serves again, without a restart. Stops and starts the throwaway
//! cluster of scripts/with-postgres (`PORTCULLIS_TEST_PGCTL`), so it is
//! alone in its test binary.

mod pg_support;

use std::process::Command;
use std::time::{Duration, Instant};

use pg_support::{
    SUPERUSER_EMAIL, SUPERUSER_PASSWORD, Server, create_database, drop_database, required_var,
};

/// The longest a request may take to answer 503 while PostgreSQL is down
/// (the store's acquire timeout is 3 s).
const BOUND: Duration = Duration::from_secs(6);

fn pg_ctl(action: &str) {
    let pgctl = required_var("PORTCULLIS_TEST_PGCTL");
    let out = Command::new(&pgctl).arg(action).output().unwrap();
    assert!(
        out.status.success(),
        "{pgctl} {action}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts the cluster again if the test stops half-way, so that the tests
/// after this one find it running.
struct RestartOnDrop(bool);

impl Drop for RestartOnDrop {
    fn drop(&mut self) {
        if self.0 {
            let pgctl = required_var("PORTCULLIS_TEST_PGCTL");
            let _ = Command::new(pgctl).arg("start").output();
        }
    }
}

async fn timed(request: awc::ClientRequest, body: Option<&[(&str, &str)]>) -> (u16, Duration) {
    let started = Instant::now();
    let res = match body {
        Some(form) => request.send_form(&form).await,
        None => request.send().await,
    };
    let status = res
        .unwrap_or_else(|e| panic!("no answer at all: {e}"))
        .status()
        .as_u16();
    (status, started.elapsed())
}

#[actix_web::test]
async fn requests_answer_503_while_postgres_is_down_and_the_service_recovers_by_itself() {
    let _ = required_var("PORTCULLIS_TEST_PGCTL");
    let (name, url) = create_database().await;
    let mut server = Server::spawn(&url);
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .finish();
    server.wait_healthy(&client, Duration::from_secs(30)).await;
    let login = [
        ("username", SUPERUSER_EMAIL),
        ("password", SUPERUSER_PASSWORD),
    ];
    let res = client
        .post(format!("{}/api/auth/jwt/login", server.base))
        .send_form(&login)
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let token = res["access_token"].as_str().unwrap().to_owned();
    let base = server.base.clone();
    let me = || {
        client
            .get(format!("{base}/api/users/me"))
            .insert_header(("authorization", format!("Bearer {token}")))
    };
    assert_eq!(timed(me(), None).await.0, 200);

    let guard = RestartOnDrop(true);
    pg_ctl("stop");
    let mut worst = Duration::ZERO;
    let mut seen = Vec::new();
    for round in 0..3 {
        for (what, (status, took)) in [
            (
                "GET /health",
                timed(client.get(format!("{}/health", server.base)), None).await,
            ),
            ("GET /api/users/me", timed(me(), None).await),
            (
                "POST /api/auth/jwt/login",
                timed(
                    client.post(format!("{}/api/auth/jwt/login", server.base)),
                    Some(&login),
                )
                .await,
            ),
        ] {
            assert_eq!(
                status, 503,
                "{what} while PostgreSQL is down (round {round})"
            );
            assert!(took < BOUND, "{what} took {took:?} to answer 503");
            worst = worst.max(took);
            seen.push(format!("{what} {took:.2?}"));
        }
    }
    assert!(server.running(), "the process survives the outage");

    let restart_started = Instant::now();
    pg_ctl("start");
    let pg_up_after = restart_started.elapsed();
    let healthy_after_pg = server.wait_healthy(&client, Duration::from_secs(30)).await;
    let recovered = restart_started.elapsed();
    drop(guard);
    let (status, _) = timed(me(), None).await;
    assert_eq!(
        status,
        200,
        "the same token works again: {}",
        server.stderr()
    );
    let register = client
        .post(format!("{}/api/auth/register", server.base))
        .send_json(&serde_json::json!({"email": "after@example.com", "password": "a long enough password"}))
        .await
        .unwrap();
    assert_eq!(register.status(), 201);
    assert!(server.running(), "no restart");
    println!(
        "outage: 503 while down, slowest {worst:.2?} ({}); PostgreSQL restarted in {pg_up_after:.2?} \
         (pg_ctl start -w), /health 200 again {healthy_after_pg:.2?} after that, {recovered:.2?} \
         after the start began; same process, no restart",
        seen.join(", ")
    );
    drop(server);
    drop_database(&name).await;
}

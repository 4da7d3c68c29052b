//! Several `portcullis` processes (built with the `postgres` feature)
//! started at the same moment on one fresh PostgreSQL database, each with
//! the same first superuser configured — the situation a FastAPI Users
//! service crashes in: all come up, the migrations are applied once (under
//! the advisory lock) and there is exactly one superuser.

mod pg_support;

use std::time::{Duration, Instant};

use pg_support::{
    SUPERUSER_EMAIL, SUPERUSER_PASSWORD, Server, connect, count, create_database, drop_database,
};

/// How many instances start at once.
const INSTANCES: usize = 8;

#[actix_web::test]
async fn instances_started_together_on_a_fresh_database_all_come_up() {
    let (name, url) = create_database().await;
    let started = Instant::now();
    let mut servers: Vec<Server> = (0..INSTANCES).map(|_| Server::spawn(&url)).collect();

    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    let mut up_after = Vec::new();
    for server in &mut servers {
        server.wait_healthy(&client, Duration::from_secs(60)).await;
        up_after.push(started.elapsed());
    }

    let db = connect(&url).await;
    assert_eq!(
        count(&db, r#"SELECT count(*) FROM "user" WHERE is_superuser"#).await,
        1,
        "exactly one superuser"
    );
    assert_eq!(count(&db, r#"SELECT count(*) FROM "user""#).await, 1);
    assert_eq!(
        count(&db, "SELECT count(*) FROM seaql_migrations").await,
        6,
        "each migration recorded once"
    );
    let logs: Vec<String> = servers.iter().map(Server::stderr).collect();
    let applied = logs
        .iter()
        .filter(|log| log.contains("applied migrations"))
        .count();
    let up_to_date = logs
        .iter()
        .filter(|log| log.contains("schema up to date"))
        .count();
    assert_eq!(
        (applied, up_to_date),
        (1, INSTANCES - 1),
        "one instance migrates, the others find the schema up to date:\n{}",
        logs.join("\n----\n")
    );
    for log in &logs {
        assert!(!log.contains("panicked") && !log.contains("ERROR"), "{log}");
    }

    // Every instance serves the one superuser.
    for server in &mut servers {
        let res = client
            .post(format!("{}/api/auth/jwt/login", server.base))
            .send_form(&[
                ("username", SUPERUSER_EMAIL),
                ("password", SUPERUSER_PASSWORD),
            ])
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{}", server.stderr());
        assert!(server.running());
    }
    println!(
        "{INSTANCES} instances started together on a fresh database: all /health 200, the last \
         after {:.2?}; migrations applied by 1, {} found them done; superusers: 1",
        up_after.iter().max().unwrap(),
        INSTANCES - 1
    );
    drop(servers);
    let _ = db.close().await;
    drop_database(&name).await;
}

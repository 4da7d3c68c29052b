//! Registration under concurrent load, over real HTTP: the store decides
//! e-mail clashes atomically, and no answer is a 5xx. (A FastAPI Users
//! service on SQLite answers HTTP 500 "database is locked" here.) Run on
//! each store by `scripts/test`.

use std::rc::Rc;

use std::collections::BTreeSet;

use portcullis_tests::test_app::{
    PASSWORD, TestApp, TestResponse, assert_plain_user, spawn_app_with,
};

const N: usize = 64;

async fn register_all(addresses: Vec<String>) -> (Rc<TestApp>, Vec<TestResponse>) {
    // All 64 wait for a hashing slot: a queue that holds them (this suite
    // is about the store, not load shedding; see http_hash_queue.rs).
    let app = Rc::new(spawn_app_with([("HASH_QUEUE_MAX", N.to_string())]).await);
    let tasks: Vec<_> = addresses
        .into_iter()
        .map(|address| {
            let app = Rc::clone(&app);
            actix_web::rt::spawn(async move { app.register(&address, PASSWORD).await })
        })
        .collect();
    let mut answers = Vec::with_capacity(N);
    for task in tasks {
        answers.push(task.await.expect("the request task finished"));
    }
    (app, answers)
}

#[actix_web::test]
async fn sixty_four_concurrent_registrations_of_distinct_addresses_all_succeed() {
    let addresses: Vec<String> = (0..N).map(|i| format!("user{i}@example.com")).collect();
    let (app, answers) = register_all(addresses.clone()).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    assert!(statuses.iter().all(|&s| s == 201), "{statuses:?}");
    // Each answer is the user it registered, with an id of its own...
    let ids: Vec<String> = answers
        .iter()
        .zip(&addresses)
        .map(|(answer, address)| {
            let user = answer.json();
            assert_plain_user(&user, address);
            TestApp::id_of(&user)
        })
        .collect();
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), N, "{ids:?}");
    // ...and every one of them was stored: the superuser reads each back.
    let root = app.superuser_token().await;
    for (id, address) in ids.iter().zip(&addresses) {
        let stored = app
            .get_with_token(&format!("/users/{id}"), &root)
            .await
            .expect_json(200);
        assert_plain_user(&stored, address);
        assert_eq!(stored["id"], serde_json::json!(id));
    }
}

#[actix_web::test]
async fn sixty_four_concurrent_registrations_of_one_address_let_exactly_one_win() {
    let spellings = [
        "race@example.com",
        "RACE@example.com",
        "Race@Example.com",
        "rAcE@EXAMPLE.COM",
    ];
    let (_app, answers) = register_all(
        (0..N)
            .map(|i| spellings[i % spellings.len()].to_owned())
            .collect(),
    )
    .await;
    let created = answers.iter().filter(|r| r.status == 201).count();
    assert_eq!(
        created,
        1,
        "{:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for answer in answers.iter().filter(|r| r.status != 201) {
        answer.expect_code("REGISTER_USER_ALREADY_EXISTS");
    }
}

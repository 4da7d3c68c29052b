//! The [`OAuthAccountStore`](portcullis_domain::OAuthAccountStore) cases of
//! the store contract: the provider accounts of social login, FastAPI
//! Users' `oauth_account` table. One provider account (`oauth_name`,
//! `account_id`) is linked at most once, decided by the store atomically.

use std::sync::Arc;

use portcullis_domain::{OAuthAccount, StoreError, User, UserId};
use tokio::sync::Barrier;
use uuid::Uuid;

use super::{Store, user};

async fn created_user(store: &Store, address: &str) -> User {
    store
        .create(user(address))
        .await
        .unwrap_or_else(|e| panic!("create {address}: {e}"))
}

/// A new link of `account_id` at `provider` for `user`, with tokens and an
/// address of its own.
fn account(user: UserId, provider: &str, account_id: &str) -> OAuthAccount {
    OAuthAccount {
        id: Uuid::new_v4(),
        user_id: user,
        oauth_name: provider.to_owned(),
        access_token: format!("access-{provider}-{account_id}"),
        expires_at: Some(1_767_225_600),
        refresh_token: Some(format!("refresh-{provider}-{account_id}")),
        account_id: account_id.to_owned(),
        account_email: format!("{account_id}@{provider}.example.com"),
    }
}

async fn add(store: &Store, account: &OAuthAccount) {
    store
        .add_oauth_account(account)
        .await
        .unwrap_or_else(|e| panic!("add_oauth_account {account:?}: {e}"));
}

/// Added accounts read back whole, by provider account and by user (by
/// provider, then account id); other users' and unknown accounts are not
/// found.
pub async fn oauth_add_then_get_and_list(store: Store) {
    let ann = created_user(&store, "ann@example.com").await;
    let bob = created_user(&store, "bob@example.com").await;
    let github = account(ann.id, "github", "4242");
    let google = OAuthAccount {
        expires_at: None,
        refresh_token: None,
        ..account(ann.id, "google", "117")
    };
    let other_github = account(ann.id, "github", "1000");
    let bobs = account(bob.id, "github", "7");
    for a in [&google, &github, &bobs, &other_github] {
        add(&store, a).await;
    }
    assert_eq!(
        store.get_oauth_account("github", "4242").await,
        Ok(Some(github.clone()))
    );
    assert_eq!(
        store.get_oauth_account("google", "117").await,
        Ok(Some(google.clone()))
    );
    assert_eq!(store.get_oauth_account("github", "117").await, Ok(None));
    assert_eq!(store.get_oauth_account("google", "4242").await, Ok(None));
    assert_eq!(
        store.get_oauth_account("GitHub", "4242").await,
        Ok(None),
        "provider names are compared exactly"
    );
    assert_eq!(
        store.oauth_accounts_of(ann.id).await,
        Ok(vec![other_github, github, google]),
        "by oauth_name, then account_id"
    );
    assert_eq!(store.oauth_accounts_of(bob.id).await, Ok(vec![bobs]));
    assert_eq!(store.oauth_accounts_of(UserId::random()).await, Ok(vec![]));
}

/// `update_oauth_account` replaces the tokens, the expiry and the address
/// of the row with that id, and keeps its user, provider and account id
/// whatever the argument says; other rows are untouched.
pub async fn oauth_update_replaces_tokens_expiry_and_address_only(store: Store) {
    let ann = created_user(&store, "ann@example.com").await;
    let bob = created_user(&store, "bob@example.com").await;
    let linked = account(ann.id, "github", "4242");
    let other = account(ann.id, "google", "117");
    add(&store, &linked).await;
    add(&store, &other).await;
    let refreshed = OAuthAccount {
        id: linked.id,
        user_id: bob.id,
        oauth_name: "gitlab".into(),
        access_token: "second-access-token".into(),
        expires_at: None,
        refresh_token: None,
        account_id: "9999".into(),
        account_email: "Ann.New@example.com".into(),
    };
    assert_eq!(store.update_oauth_account(&refreshed).await, Ok(()));
    let expected = OAuthAccount {
        user_id: ann.id,
        oauth_name: "github".into(),
        account_id: "4242".into(),
        ..refreshed.clone()
    };
    assert_eq!(
        store.get_oauth_account("github", "4242").await,
        Ok(Some(expected.clone()))
    );
    assert_eq!(store.get_oauth_account("gitlab", "9999").await, Ok(None));
    assert_eq!(store.oauth_accounts_of(bob.id).await, Ok(vec![]));
    assert_eq!(
        store.oauth_accounts_of(ann.id).await,
        Ok(vec![expected.clone(), other])
    );
    // And back to values again (null to set).
    let again = OAuthAccount {
        expires_at: Some(1),
        refresh_token: Some("r".into()),
        ..expected
    };
    assert_eq!(store.update_oauth_account(&again).await, Ok(()));
    assert_eq!(
        store.get_oauth_account("github", "4242").await,
        Ok(Some(again))
    );
}

/// Updating a row that does not exist is `NotFound`, and creates nothing.
pub async fn oauth_update_of_an_unknown_row_is_not_found(store: Store) {
    let ann = created_user(&store, "ann@example.com").await;
    let never_added = account(ann.id, "github", "4242");
    assert_eq!(
        store.update_oauth_account(&never_added).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(store.get_oauth_account("github", "4242").await, Ok(None));
    // Nor an id whose row a deletion took.
    let linked = account(ann.id, "github", "1");
    add(&store, &linked).await;
    store.delete(ann.id).await.unwrap();
    assert_eq!(
        store.update_oauth_account(&linked).await,
        Err(StoreError::NotFound)
    );
}

/// A second link of one provider account is `Conflict`, for another user
/// or the same one, and leaves the first link as it was; the same account
/// id at another provider, or another account at the same provider, is a
/// link of its own. A row id already used is `Conflict` too.
pub async fn oauth_a_second_link_of_one_provider_account_conflicts(store: Store) {
    let ann = created_user(&store, "ann@example.com").await;
    let bob = created_user(&store, "bob@example.com").await;
    let first = account(ann.id, "github", "4242");
    add(&store, &first).await;
    for again in [
        account(bob.id, "github", "4242"),
        account(ann.id, "github", "4242"),
    ] {
        assert_eq!(
            store.add_oauth_account(&again).await,
            Err(StoreError::Conflict)
        );
    }
    assert_eq!(
        store.get_oauth_account("github", "4242").await,
        Ok(Some(first.clone()))
    );
    assert_eq!(store.oauth_accounts_of(bob.id).await, Ok(vec![]));
    add(&store, &account(bob.id, "google", "4242")).await;
    add(&store, &account(bob.id, "github", "4243")).await;
    let same_row_id = OAuthAccount {
        id: first.id,
        ..account(bob.id, "gitlab", "1")
    };
    assert_eq!(
        store.add_oauth_account(&same_row_id).await,
        Err(StoreError::Conflict)
    );
    assert_eq!(store.get_oauth_account("gitlab", "1").await, Ok(None));
}

/// Of many concurrent links of one provider account (to different users,
/// as concurrent callbacks would), exactly one wins; the others are
/// `Conflict`.
pub async fn oauth_concurrent_links_of_one_provider_account_let_exactly_one_win(store: Store) {
    let mut attempts = Vec::new();
    for i in 0..16 {
        let u = created_user(&store, &format!("racer{i}@example.com")).await;
        attempts.push(account(u.id, "github", "4242"));
    }
    let barrier = Arc::new(Barrier::new(attempts.len()));
    let tasks: Vec<_> = attempts
        .into_iter()
        .map(|a| {
            let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                let outcome = store.add_oauth_account(&a).await;
                (a, outcome)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("add task panicked") {
            (a, Ok(())) => winners.push(a),
            (_, Err(StoreError::Conflict)) => {}
            (_, Err(other)) => panic!("a racing link failed with {other:?}, not Conflict"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one of 16 concurrent links wins");
    assert_eq!(
        store.get_oauth_account("github", "4242").await,
        Ok(Some(winners[0].clone()))
    );
    assert_eq!(
        store.oauth_accounts_of(winners[0].user_id).await,
        Ok(winners)
    );
}

/// Linking an account to a user that does not exist is `NotFound`.
pub async fn oauth_unknown_user_is_not_found(store: Store) {
    let nobody = account(UserId::random(), "github", "4242");
    assert_eq!(
        store.add_oauth_account(&nobody).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(store.get_oauth_account("github", "4242").await, Ok(None));
}

/// Deleting a user deletes its accounts (and only its), and frees them to
/// be linked again.
pub async fn oauth_deleting_the_user_cascades(store: Store) {
    let ann = created_user(&store, "ann@example.com").await;
    let bob = created_user(&store, "bob@example.com").await;
    add(&store, &account(ann.id, "github", "4242")).await;
    add(&store, &account(ann.id, "google", "117")).await;
    let bobs = account(bob.id, "github", "7");
    add(&store, &bobs).await;
    store.delete(ann.id).await.unwrap();
    assert_eq!(store.get_oauth_account("github", "4242").await, Ok(None));
    assert_eq!(store.get_oauth_account("google", "117").await, Ok(None));
    assert_eq!(store.oauth_accounts_of(ann.id).await, Ok(vec![]));
    assert_eq!(
        store.oauth_accounts_of(bob.id).await,
        Ok(vec![bobs.clone()])
    );
    let relinked = account(bob.id, "github", "4242");
    add(&store, &relinked).await;
    assert_eq!(
        store.get_oauth_account("github", "4242").await,
        Ok(Some(relinked))
    );
}

/// The column sizes of FastAPI Users' table are usable to the full:
/// tokens of 1024 characters, account ids and addresses of 320, provider
/// names of 100 (non-ASCII included), and the whole range of its 32-bit
/// `expires_at`.
pub async fn oauth_the_longest_values_fit(store: Store) {
    let ann = created_user(&store, "ann@example.com").await;
    let local = "a".repeat(64);
    let domain = format!("{}.example.com", "d".repeat(320 - 64 - 1 - 12));
    let longest = OAuthAccount {
        id: Uuid::new_v4(),
        user_id: ann.id,
        oauth_name: format!("{}é", "p".repeat(99)),
        access_token: "x".repeat(1024),
        expires_at: Some(i64::from(i32::MAX)),
        refresh_token: Some("ü".repeat(1024)),
        account_id: "9".repeat(320),
        account_email: format!("{local}@{domain}"),
    };
    assert_eq!(longest.account_email.chars().count(), 320);
    assert_eq!(longest.oauth_name.chars().count(), 100);
    add(&store, &longest).await;
    assert_eq!(
        store
            .get_oauth_account(&longest.oauth_name, &longest.account_id)
            .await,
        Ok(Some(longest.clone()))
    );
    let earliest = OAuthAccount {
        expires_at: Some(i64::from(i32::MIN)),
        ..longest.clone()
    };
    assert_eq!(store.update_oauth_account(&earliest).await, Ok(()));
    assert_eq!(store.oauth_accounts_of(ann.id).await, Ok(vec![earliest]));
}

/// A second instance on the same database sees the links the first made
/// and updated, and its own link of an account the first linked is
/// `Conflict`.
pub async fn oauth_a_second_instance_sees_links_and_conflicts(first: Store, second: Store) {
    let ann = created_user(&first, "ann@example.com").await;
    let linked = account(ann.id, "github", "4242");
    add(&first, &linked).await;
    assert_eq!(
        second.get_oauth_account("github", "4242").await,
        Ok(Some(linked.clone()))
    );
    let bob = created_user(&second, "bob@example.com").await;
    assert_eq!(
        second
            .add_oauth_account(&account(bob.id, "github", "4242"))
            .await,
        Err(StoreError::Conflict)
    );
    let refreshed = OAuthAccount {
        access_token: "second".into(),
        ..linked
    };
    second.update_oauth_account(&refreshed).await.unwrap();
    assert_eq!(first.oauth_accounts_of(ann.id).await, Ok(vec![refreshed]));
}

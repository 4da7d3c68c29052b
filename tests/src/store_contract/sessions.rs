//! The [`AccessTokenStore`](portcullis_domain::AccessTokenStore) cases of
//! the store contract (the opaque tokens of the `database` strategy,
//! FastAPI Users' `accesstoken` table), and the cases of the session stamp
//! every user carries ([`User::session_stamp`], raised by
//! [`UserPatch::end_sessions`]).
//!
//! Times are fixed and whole microseconds: a store keeps `created_at` to the
//! microsecond and judges expiry by the `not_before` it is given.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portcullis_domain::{AccessTokenRecord, StoreError, User, UserId, UserPatch};
use tokio::sync::Barrier;

use super::{Store, user};

/// A fixed time with a microsecond part.
fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(1_764_000_000_123_456)
}

fn us(micros: u64) -> Duration {
    Duration::from_micros(micros)
}

/// A token of 43 URL-safe characters, as `secrets.token_urlsafe()` makes,
/// distinct for each `name`.
fn token(name: &str) -> String {
    format!("{name:-<43}")
}

fn record(name: &str, user: UserId, created_at: SystemTime) -> AccessTokenRecord {
    AccessTokenRecord {
        token: token(name),
        user_id: user,
        created_at,
    }
}

async fn created_user(store: &Store, address: &str) -> User {
    store
        .create(user(address))
        .await
        .unwrap_or_else(|e| panic!("create {address}: {e}"))
}

async fn create(store: &Store, record: &AccessTokenRecord) {
    store
        .create_access_token(record)
        .await
        .unwrap_or_else(|e| panic!("create_access_token {}: {e}", record.token));
}

/// The token's record, however old (`None`: no row at all).
async fn stored(store: &Store, name: &str) -> Option<AccessTokenRecord> {
    store
        .get_access_token(&token(name), UNIX_EPOCH)
        .await
        .unwrap_or_else(|e| panic!("get_access_token {name}: {e}"))
}

/// Which of `names` are stored.
async fn kept(store: &Store, names: &[&str]) -> BTreeSet<String> {
    let mut kept = BTreeSet::new();
    for name in names {
        if stored(store, name).await.is_some() {
            kept.insert((*name).to_owned());
        }
    }
    kept
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

/// A created token is found with its user and its time, to the microsecond.
pub async fn sessions_create_then_get(store: Store) {
    let ann = created_user(&store, "ann@example.com").await;
    let mine = record("a", ann.id, t0());
    create(&store, &mine).await;
    assert_eq!(
        store.get_access_token(&mine.token, t0() - us(1)).await,
        Ok(Some(mine.clone()))
    );
    assert_eq!(stored(&store, "a").await, Some(mine));
    assert_eq!(
        store.get_access_token(&token("unknown"), UNIX_EPOCH).await,
        Ok(None)
    );
}

/// A token created before `not_before` has expired (`None`); one created
/// exactly at it is still valid.
pub async fn sessions_get_with_not_before_after_created_at_is_none(store: Store) {
    let ann = created_user(&store, "ann@example.com").await;
    let mine = record("a", ann.id, t0());
    create(&store, &mine).await;
    assert_eq!(
        store.get_access_token(&mine.token, t0()).await,
        Ok(Some(mine.clone())),
        "created exactly at not_before: valid"
    );
    assert_eq!(
        store.get_access_token(&mine.token, t0() + us(1)).await,
        Ok(None),
        "one microsecond too old: expired"
    );
    assert_eq!(
        store
            .get_access_token(&mine.token, t0() + Duration::from_secs(3600))
            .await,
        Ok(None)
    );
    assert_eq!(
        stored(&store, "a").await,
        Some(mine),
        "a lookup deletes nothing"
    );
}

/// Deleting one token leaves the others, of the same user too; deleting an
/// unknown one is fine.
pub async fn sessions_delete_one_leaves_the_others(store: Store) {
    let ann = created_user(&store, "ann@example.com").await;
    let bob = created_user(&store, "bob@example.com").await;
    create(&store, &record("a1", ann.id, t0())).await;
    create(&store, &record("a2", ann.id, t0())).await;
    create(&store, &record("b1", bob.id, t0())).await;
    assert_eq!(store.delete_access_token(&token("a1")).await, Ok(()));
    assert_eq!(kept(&store, &["a1", "a2", "b1"]).await, set(&["a2", "b1"]));
    assert_eq!(store.delete_access_token(&token("a1")).await, Ok(()));
    assert_eq!(store.delete_access_token(&token("never")).await, Ok(()));
    assert_eq!(kept(&store, &["a2", "b1"]).await, set(&["a2", "b1"]));
}

/// `delete_access_tokens_of` deletes that user's tokens only and says how
/// many.
pub async fn sessions_delete_of_a_user_deletes_only_theirs_and_counts(store: Store) {
    let ann = created_user(&store, "ann@example.com").await;
    let bob = created_user(&store, "bob@example.com").await;
    for name in ["a1", "a2", "a3"] {
        create(&store, &record(name, ann.id, t0())).await;
    }
    create(&store, &record("b1", bob.id, t0())).await;
    assert_eq!(store.delete_access_tokens_of(ann.id).await, Ok(3));
    assert_eq!(kept(&store, &["a1", "a2", "a3", "b1"]).await, set(&["b1"]));
    assert_eq!(store.delete_access_tokens_of(ann.id).await, Ok(0));
    assert_eq!(
        store
            .delete_access_tokens_of(user("nobody@example.com").id)
            .await,
        Ok(0)
    );
}

/// Deleting a user deletes their tokens (FastAPI Users' `ON DELETE
/// CASCADE`), and only theirs.
pub async fn sessions_deleting_the_user_cascades(store: Store) {
    let ann = created_user(&store, "ann@example.com").await;
    let bob = created_user(&store, "bob@example.com").await;
    create(&store, &record("a1", ann.id, t0())).await;
    create(&store, &record("a2", ann.id, t0())).await;
    create(&store, &record("b1", bob.id, t0())).await;
    store.delete(ann.id).await.unwrap();
    assert_eq!(kept(&store, &["a1", "a2", "b1"]).await, set(&["b1"]));
    // A new user with the same address has none of them.
    let again = created_user(&store, "ann@example.com").await;
    assert_eq!(store.delete_access_tokens_of(again.id).await, Ok(0));
}

/// `purge_access_tokens` deletes the tokens created before the cutoff, of
/// every user, keeps the ones created at it or after, and counts.
pub async fn sessions_purge_removes_only_older_ones_and_counts(store: Store) {
    let ann = created_user(&store, "ann@example.com").await;
    let bob = created_user(&store, "bob@example.com").await;
    create(
        &store,
        &record("old-a", ann.id, t0() - Duration::from_secs(7200)),
    )
    .await;
    create(&store, &record("old-b", bob.id, t0() - us(1))).await;
    create(&store, &record("at", ann.id, t0())).await;
    create(&store, &record("new", bob.id, t0() + us(1))).await;
    let all = ["old-a", "old-b", "at", "new"];
    assert_eq!(store.purge_access_tokens(t0()).await, Ok(2));
    assert_eq!(kept(&store, &all).await, set(&["at", "new"]));
    assert_eq!(store.purge_access_tokens(t0()).await, Ok(0));
    assert_eq!(store.purge_access_tokens(t0() + us(2)).await, Ok(2));
    assert_eq!(kept(&store, &all).await, set(&[]));
}

/// A token that exists is never overwritten: `Conflict`, the first kept.
pub async fn sessions_duplicate_token_conflicts(store: Store) {
    let ann = created_user(&store, "ann@example.com").await;
    let bob = created_user(&store, "bob@example.com").await;
    let first = record("a", ann.id, t0());
    create(&store, &first).await;
    assert_eq!(
        store
            .create_access_token(&record("a", bob.id, t0() + us(5)))
            .await,
        Err(StoreError::Conflict)
    );
    assert_eq!(stored(&store, "a").await, Some(first));
}

/// A token of a user who does not exist is refused with `NotFound`, and
/// nothing is stored.
pub async fn sessions_unknown_user_is_not_found(store: Store) {
    let ghost = user("ghost@example.com");
    assert_eq!(
        store
            .create_access_token(&record("g", ghost.id, t0()))
            .await,
        Err(StoreError::NotFound)
    );
    assert_eq!(stored(&store, "g").await, None);
}

/// A second instance on the same database sees the tokens the first
/// created, and not those it deleted (no copy kept in a process).
pub async fn sessions_a_second_instance_sees_created_and_deleted_tokens(
    first: Store,
    second: Store,
) {
    let ann = created_user(&first, "ann@example.com").await;
    let mine = record("a", ann.id, t0());
    create(&first, &mine).await;
    create(&first, &record("b", ann.id, t0())).await;
    assert_eq!(
        second.get_access_token(&mine.token, t0()).await,
        Ok(Some(mine.clone()))
    );
    first.delete_access_token(&mine.token).await.unwrap();
    assert_eq!(second.get_access_token(&mine.token, t0()).await, Ok(None));
    assert_eq!(second.delete_access_tokens_of(ann.id).await, Ok(1));
    assert_eq!(kept(&first, &["a", "b"]).await, set(&[]));
}

/// A patch ending the sessions at `now_ms` (Unix milliseconds).
fn end_sessions_at(now_ms: i64) -> UserPatch {
    UserPatch {
        end_sessions: Some(now_ms),
        ..UserPatch::default()
    }
}

/// A patch ending the sessions now, by the system's clock.
fn end_sessions() -> UserPatch {
    end_sessions_at(now_ms())
}

/// The system's time in Unix milliseconds.
fn now_ms() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since.as_millis()).unwrap()
}

/// A new user's stamp is 0; `create` stores the stamp it is given.
pub async fn session_stamp_of_a_new_user_is_0_and_create_writes_it(store: Store) {
    let ann = created_user(&store, "ann@example.com").await;
    assert_eq!(ann.session_stamp, 0);
    assert_eq!(store.get(ann.id).await.unwrap().unwrap().session_stamp, 0);
    let bob = User {
        session_stamp: 5,
        ..user("bob@example.com")
    };
    store.create(bob.clone()).await.unwrap();
    assert_eq!(store.get(bob.id).await, Ok(Some(bob)));
}

/// `end_sessions: Some(now)` raises the stamp to `max(stamp + 1, now)`
/// (so at least now in milliseconds, and above the old one) and the patch
/// returns the user with it; along with other changes, in the same write.
pub async fn session_stamp_end_sessions_raises_it_to_now_and_returns_it(store: Store) {
    let ann = created_user(&store, "ann@example.com").await;
    let before = now_ms();
    let patched = store.patch(ann.id, end_sessions()).await.unwrap();
    assert!(
        (before..=now_ms()).contains(&patched.session_stamp),
        "{before} <= {} <= now",
        patched.session_stamp
    );
    assert_eq!(
        patched,
        User {
            session_stamp: patched.session_stamp,
            ..ann.clone()
        }
    );
    assert_eq!(store.get(ann.id).await, Ok(Some(patched.clone())));
    // A floor at or below the stamp (a clock behind, or several raises in
    // one millisecond): one above the old stamp.
    let behind = store
        .patch(ann.id, end_sessions_at(patched.session_stamp - 5000))
        .await
        .unwrap();
    assert_eq!(behind.session_stamp, patched.session_stamp + 1);
    let same = store
        .patch(ann.id, end_sessions_at(behind.session_stamp))
        .await
        .unwrap();
    assert_eq!(same.session_stamp, behind.session_stamp + 1);
    let later = same.session_stamp + 60_000;
    let both = store
        .patch(
            ann.id,
            UserPatch {
                hashed_password: Some("$argon2id$new".into()),
                is_active: Some(false),
                ..end_sessions_at(later)
            },
        )
        .await
        .unwrap();
    assert_eq!(both.session_stamp, later);
    assert_eq!(both.hashed_password, "$argon2id$new");
    assert!(!both.is_active);
    assert_eq!(store.get(ann.id).await, Ok(Some(both)));
    assert_eq!(
        store
            .patch(user("nobody@example.com").id, end_sessions())
            .await,
        Err(StoreError::NotFound)
    );
}

/// A legacy counter stamp (from before stamps carried time) is raised to
/// the time like any other; with a floor below it, by one.
pub async fn session_stamp_a_counter_is_raised_to_the_time(store: Store) {
    let bob = User {
        session_stamp: 5,
        ..user("bob@example.com")
    };
    store.create(bob.clone()).await.unwrap();
    let counted = store.patch(bob.id, end_sessions_at(0)).await.unwrap();
    assert_eq!(counted.session_stamp, 6);
    let before = now_ms();
    let timed = store.patch(bob.id, end_sessions()).await.unwrap();
    assert!(timed.session_stamp >= before, "{}", timed.session_stamp);
    assert_eq!(store.get(bob.id).await, Ok(Some(timed)));
}

/// Concurrent `end_sessions` patches are each counted: the stamp is raised
/// in the database, not from a copy read before. All at one floor `F`, the
/// first sets `F` and each other one more.
pub async fn session_stamp_concurrent_end_sessions_all_count(store: Store) {
    const PATCHES: usize = 20;
    const FLOOR: i64 = 1_800_000_000_000;
    let ann = created_user(&store, "ann@example.com").await;
    let barrier = Arc::new(Barrier::new(PATCHES));
    let tasks: Vec<_> = (0..PATCHES)
        .map(|_| {
            let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                store.patch(ann.id, end_sessions_at(FLOOR)).await
            })
        })
        .collect();
    let mut seen = BTreeSet::new();
    for task in tasks {
        let user = task.await.unwrap().expect("each patch succeeds");
        seen.insert(user.session_stamp);
    }
    assert_eq!(
        seen,
        (FLOOR..FLOOR + PATCHES as i64).collect::<BTreeSet<_>>(),
        "each patch returned its own new stamp"
    );
    let stamp = store.get(ann.id).await.unwrap().unwrap().session_stamp;
    assert_eq!(stamp, FLOOR + PATCHES as i64 - 1);
}

/// Patches without `end_sessions`, and `replace_password_hash`, leave the
/// stamp as it is.
pub async fn session_stamp_other_writes_leave_it(store: Store) {
    let ann = created_user(&store, "ann@example.com").await;
    let stamp = store
        .patch(ann.id, end_sessions())
        .await
        .unwrap()
        .session_stamp;
    let patched = store
        .patch(
            ann.id,
            UserPatch {
                email: Some(super::email("ann.lee@example.com")),
                hashed_password: Some("$argon2id$other".into()),
                is_active: Some(false),
                is_superuser: Some(true),
                is_verified: Some(true),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(patched.session_stamp, stamp);
    assert_eq!(
        store
            .replace_password_hash(ann.id, "$argon2id$other", "$argon2id$rehashed")
            .await,
        Ok(true)
    );
    let now = store.get(ann.id).await.unwrap().unwrap();
    assert_eq!(now.session_stamp, stamp);
    assert_eq!(now.hashed_password, "$argon2id$rehashed");
    assert_eq!(store.patch(ann.id, UserPatch::default()).await, Ok(now));
}

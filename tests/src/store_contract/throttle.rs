//! The [`ThrottleLedger`](portcullis_domain::ThrottleLedger) cases of the store contract: fixed windows per
//! kind and key, counted atomically, shared by every instance on one
//! database.
//!
//! Times are fixed (not the clock's): a store must judge windows by the
//! `now` it is given, to the millisecond.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portcullis_domain::{ThrottleKind, ThrottleWindow};

use super::Store;

const LOGIN: ThrottleKind = ThrottleKind::LoginFailure;
const MAIL: ThrottleKind = ThrottleKind::Mail;
/// The window most cases use: 15 minutes.
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// A window long enough that every window opened in a case is open.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// A fixed time on a whole millisecond.
fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_764_000_000_123)
}

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn window(started: SystemTime, count: u32) -> ThrottleWindow {
    ThrottleWindow { started, count }
}

async fn hit(store: &Store, kind: ThrottleKind, key: &str, now: SystemTime) -> ThrottleWindow {
    store
        .hit(kind, key, now, WINDOW)
        .await
        .unwrap_or_else(|e| panic!("hit {kind:?} {key:?}: {e}"))
}

async fn current(
    store: &Store,
    kind: ThrottleKind,
    key: &str,
    now: SystemTime,
) -> Option<ThrottleWindow> {
    store
        .current(kind, key, now, WINDOW)
        .await
        .unwrap_or_else(|e| panic!("current {kind:?} {key:?}: {e}"))
}

/// The window of `kind` for `key`, however old (`None`: no row at all).
async fn stored(store: &Store, kind: ThrottleKind, key: &str) -> Option<ThrottleWindow> {
    store.current(kind, key, t0(), FOREVER).await.unwrap()
}

/// The first hit opens a window at `now`, kept to the millisecond (the
/// microseconds dropped), with count 1; `current` then sees it.
pub async fn throttle_first_hit_opens_a_window_of_one_to_the_millisecond(store: Store) {
    let now = t0() + Duration::from_micros(456);
    assert_eq!(
        hit(&store, LOGIN, "ann@example.com", now).await,
        window(t0(), 1)
    );
    assert_eq!(
        current(&store, LOGIN, "ann@example.com", now).await,
        Some(window(t0(), 1))
    );
}

/// Hits within the window count up and keep its start, up to its last
/// millisecond.
pub async fn throttle_hits_in_the_window_count_up_and_keep_its_start(store: Store) {
    let key = "ann@example.com";
    assert_eq!(hit(&store, LOGIN, key, t0()).await, window(t0(), 1));
    assert_eq!(hit(&store, LOGIN, key, t0()).await, window(t0(), 2));
    assert_eq!(
        hit(&store, LOGIN, key, t0() + ms(60_000)).await,
        window(t0(), 3)
    );
    let last = t0() + WINDOW - ms(1);
    assert_eq!(hit(&store, LOGIN, key, last).await, window(t0(), 4));
    assert_eq!(
        current(&store, LOGIN, key, last).await,
        Some(window(t0(), 4))
    );
}

/// A window of length `w` opened at `s` is closed from `s + w` on: a hit
/// then opens a new window at its own time, with count 1.
pub async fn throttle_a_hit_at_or_after_the_window_end_opens_a_new_window(store: Store) {
    let key = "ann@example.com";
    hit(&store, LOGIN, key, t0()).await;
    hit(&store, LOGIN, key, t0()).await;
    let end = t0() + WINDOW;
    assert_eq!(
        current(&store, LOGIN, key, end).await,
        None,
        "closed at its end"
    );
    assert_eq!(hit(&store, LOGIN, key, end).await, window(end, 1));
    assert_eq!(hit(&store, LOGIN, key, end + ms(1)).await, window(end, 2));
    let later = end + WINDOW * 3;
    assert_eq!(hit(&store, LOGIN, key, later).await, window(later, 1));
    assert_eq!(
        current(&store, LOGIN, key, later).await,
        Some(window(later, 1))
    );
}

/// `current` answers `None` for a key never hit and for a closed window,
/// and changes nothing: no window is opened, counted, moved or removed.
pub async fn throttle_current_is_none_without_an_open_window_and_writes_nothing(store: Store) {
    let key = "ann@example.com";
    for _ in 0..3 {
        assert_eq!(current(&store, LOGIN, key, t0()).await, None);
    }
    assert_eq!(
        stored(&store, LOGIN, key).await,
        None,
        "current opened no window"
    );

    let later = t0() + ms(5_000);
    assert_eq!(hit(&store, LOGIN, key, later).await, window(later, 1));
    for _ in 0..3 {
        assert_eq!(
            current(&store, LOGIN, key, later + ms(1)).await,
            Some(window(later, 1))
        );
    }
    assert_eq!(
        hit(&store, LOGIN, key, later + ms(2)).await,
        window(later, 2),
        "current counted nothing"
    );

    let closed = later + WINDOW;
    assert_eq!(current(&store, LOGIN, key, closed).await, None);
    assert_eq!(
        store.current(LOGIN, key, closed, FOREVER).await.unwrap(),
        Some(window(later, 2)),
        "asking about a closed window leaves it stored as it was"
    );
}

/// Each kind and each key has its own window.
pub async fn throttle_kinds_and_keys_are_independent(store: Store) {
    for _ in 0..3 {
        hit(&store, LOGIN, "ann@example.com", t0()).await;
    }
    assert_eq!(
        hit(&store, MAIL, "ann@example.com", t0() + ms(7)).await,
        window(t0() + ms(7), 1)
    );
    assert_eq!(
        hit(&store, LOGIN, "bob@example.com", t0() + ms(9)).await,
        window(t0() + ms(9), 1)
    );
    assert_eq!(
        current(&store, LOGIN, "ann@example.com", t0()).await,
        Some(window(t0(), 3))
    );
    assert_eq!(
        current(&store, LOGIN, "Ann@example.com", t0()).await,
        None,
        "keys are exact"
    );

    store.clear(LOGIN, "ann@example.com").await.unwrap();
    assert_eq!(current(&store, LOGIN, "ann@example.com", t0()).await, None);
    assert_eq!(
        current(&store, MAIL, "ann@example.com", t0() + ms(7)).await,
        Some(window(t0() + ms(7), 1)),
        "clearing one kind leaves the other"
    );
    assert_eq!(
        current(&store, LOGIN, "bob@example.com", t0() + ms(9)).await,
        Some(window(t0() + ms(9), 1)),
        "clearing one key leaves the others"
    );
}

/// `clear` forgets a window, open or closed; clearing what is not there
/// succeeds; the next hit starts over.
pub async fn throttle_clear_forgets_and_clearing_nothing_is_fine(store: Store) {
    let key = "ann@example.com";
    store
        .clear(LOGIN, key)
        .await
        .expect("clearing nothing is fine");
    hit(&store, LOGIN, key, t0()).await;
    hit(&store, LOGIN, key, t0()).await;
    store.clear(LOGIN, key).await.unwrap();
    assert_eq!(stored(&store, LOGIN, key).await, None);
    store
        .clear(LOGIN, key)
        .await
        .expect("clearing twice is fine");
    let later = t0() + ms(10);
    assert_eq!(hit(&store, LOGIN, key, later).await, window(later, 1));

    // Another kind's window just the same.
    store.clear(LOGIN, key).await.unwrap();
    hit(&store, MAIL, key, t0()).await;
    store.clear(MAIL, key).await.unwrap();
    assert_eq!(stored(&store, MAIL, key).await, None);
}

/// `purge` removes the windows of its kind that started before the cutoff
/// (one started at the cutoff stays), and says how many.
pub async fn throttle_purge_removes_only_that_kinds_windows_started_before_the_cutoff(
    store: Store,
) {
    let cutoff = t0() + ms(10_000);
    hit(&store, LOGIN, "old@example.com", t0()).await;
    hit(&store, LOGIN, "older@example.com", t0() - WINDOW * 4).await;
    hit(&store, LOGIN, "at@example.com", cutoff).await;
    hit(&store, LOGIN, "new@example.com", cutoff + ms(1)).await;
    hit(&store, MAIL, "old@example.com", t0()).await;

    assert_eq!(store.purge(LOGIN, cutoff).await, Ok(2));
    assert_eq!(stored(&store, LOGIN, "old@example.com").await, None);
    assert_eq!(stored(&store, LOGIN, "older@example.com").await, None);
    assert_eq!(
        stored(&store, LOGIN, "at@example.com").await,
        Some(window(cutoff, 1))
    );
    assert_eq!(
        stored(&store, LOGIN, "new@example.com").await,
        Some(window(cutoff + ms(1), 1))
    );
    assert_eq!(
        stored(&store, MAIL, "old@example.com").await,
        Some(window(t0(), 1)),
        "another kind's windows stay"
    );
    assert_eq!(
        store.purge(LOGIN, cutoff).await,
        Ok(0),
        "nothing left to purge"
    );
    assert_eq!(store.purge(MAIL, cutoff).await, Ok(1));
    assert_eq!(stored(&store, MAIL, "old@example.com").await, None);
}

/// Hits `key` from `tasks` tasks on each of `stores` at once (all at `now`)
/// and returns the count each hit saw.
async fn concurrent_hits(stores: &[Store], tasks: usize, key: &str, now: SystemTime) -> Vec<u32> {
    let barrier = Arc::new(tokio::sync::Barrier::new(stores.len() * tasks));
    let handles: Vec<_> = stores
        .iter()
        .flat_map(|store| std::iter::repeat_n(store, tasks))
        .map(|store| {
            let (store, barrier, key) = (Arc::clone(store), Arc::clone(&barrier), key.to_owned());
            tokio::spawn(async move {
                barrier.wait().await;
                store.hit(LOGIN, &key, now, WINDOW).await
            })
        })
        .collect();
    let mut counts = Vec::new();
    for handle in handles {
        let window = handle.await.expect("no panic").expect("every hit succeeds");
        assert_eq!(window.started, now, "all in one window");
        counts.push(window.count);
    }
    counts
}

/// The counts `1..=n`, each once: what `n` atomic hits see.
fn one_to(n: u32) -> BTreeSet<u32> {
    (1..=n).collect()
}

/// 50 concurrent hits on one key are all counted: each sees its own count,
/// 1 to 50, and the window ends at 50.
pub async fn throttle_concurrent_hits_are_all_counted(store: Store) {
    let key = "ann@example.com";
    let counts = concurrent_hits(std::slice::from_ref(&store), 50, key, t0()).await;
    assert_eq!(counts.iter().copied().collect::<BTreeSet<_>>(), one_to(50));
    assert_eq!(
        current(&store, LOGIN, key, t0()).await,
        Some(window(t0(), 50))
    );
}

/// A key of 320 bytes (the longest address) is kept whole: it counts, and
/// a key differing in its last byte is another key.
pub async fn throttle_a_320_byte_key_works(store: Store) {
    let long = format!("{}@{}.com", "l".repeat(64), "d".repeat(251));
    assert_eq!(long.len(), 320);
    let other = format!("{}@{}.con", "l".repeat(64), "d".repeat(251));
    hit(&store, MAIL, &long, t0()).await;
    assert_eq!(hit(&store, MAIL, &long, t0()).await, window(t0(), 2));
    assert_eq!(hit(&store, MAIL, &other, t0()).await, window(t0(), 1));
    assert_eq!(
        current(&store, MAIL, &long, t0()).await,
        Some(window(t0(), 2))
    );
    store.clear(MAIL, &long).await.unwrap();
    assert_eq!(current(&store, MAIL, &long, t0()).await, None);
    assert_eq!(
        current(&store, MAIL, &other, t0()).await,
        Some(window(t0(), 1))
    );
}

/// Two instances on one database share the windows: what one counts, the
/// other sees and goes on counting; what one clears or purges is gone for
/// both.
pub async fn throttle_a_second_instance_sees_the_counts(store: Store, second: Store) {
    let key = "ann@example.com";
    hit(&store, LOGIN, key, t0()).await;
    hit(&store, LOGIN, key, t0()).await;
    assert_eq!(
        current(&second, LOGIN, key, t0()).await,
        Some(window(t0(), 2))
    );
    assert_eq!(
        hit(&second, LOGIN, key, t0() + ms(1)).await,
        window(t0(), 3)
    );
    assert_eq!(
        current(&store, LOGIN, key, t0() + ms(2)).await,
        Some(window(t0(), 3))
    );

    second.clear(LOGIN, key).await.unwrap();
    assert_eq!(current(&store, LOGIN, key, t0()).await, None);

    hit(&second, MAIL, key, t0()).await;
    assert_eq!(store.purge(MAIL, t0() + ms(1)).await, Ok(1));
    assert_eq!(current(&second, MAIL, key, t0()).await, None);
}

/// 25 concurrent hits on each of two instances, on one key: all 50 are
/// counted, each sees its own count.
pub async fn throttle_concurrent_hits_from_two_instances_are_all_counted(
    store: Store,
    second: Store,
) {
    let key = "ann@example.com";
    let counts = concurrent_hits(&[Arc::clone(&store), Arc::clone(&second)], 25, key, t0()).await;
    assert_eq!(counts.iter().copied().collect::<BTreeSet<_>>(), one_to(50));
    assert_eq!(
        current(&second, LOGIN, key, t0()).await,
        Some(window(t0(), 50))
    );
    assert_eq!(
        current(&store, LOGIN, key, t0()).await,
        Some(window(t0(), 50))
    );
}

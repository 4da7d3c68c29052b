//! The store contract suite: one set of tests, written against
//! `Arc<dyn Store>` only (a [`UserRepository`], a [`ThrottleLedger`], an
//! [`AccessTokenStore`] and an [`OAuthAccountStore`]),
//! that every store must pass — so that "swappable" is proven, not claimed.
//!
//! Each `pub async fn` here is one case; it takes a fresh, empty store (with
//! its schema in place) and panics on a breach of the contract that
//! [`UserRepository`], [`ThrottleLedger`], [`AccessTokenStore`] and
//! [`OAuthAccountStore`] document
//! (the `throttle_*` cases are in `store_contract/throttle.rs`, the
//! `sessions_*` and `session_stamp_*` ones in `store_contract/sessions.rs`,
//! the `oauth_*` ones in `store_contract/oauth.rs`). [`store_contract_tests!`]
//! turns the whole list into `#[tokio::test]`s for one kind of store. The
//! factory makes a store with the extra user fields it is given: none for
//! most cases, [`contract_fields`] for the cases about them (`fields_*`).
//! The `*_instance*` cases also take a second instance on the same
//! database ([`Fresh::with_second_instance`]): what a second process would
//! open.
//!
//! ```ignore
//! async fn memory(fields: UserFields) -> portcullis_tests::store_contract::Fresh {
//!     let store: Arc<dyn Store> = Arc::new(MemoryUserStore::new().with_user_fields(fields));
//!     let same = Arc::clone(&store);
//!     Fresh::new(store).with_second_instance(move || std::future::ready(Arc::clone(&same)))
//! }
//! portcullis_tests::store_contract_tests!(memory);
//! ```
//!
//! [`AccessTokenStore`]: portcullis_domain::AccessTokenStore
//! [`OAuthAccountStore`]: portcullis_domain::OAuthAccountStore
//! [`ThrottleLedger`]: portcullis_domain::ThrottleLedger
//! [`UserRepository`]: portcullis_domain::UserRepository
//!
//! [`store_contract_tests!`]: crate::store_contract_tests

mod oauth;
mod sessions;
mod throttle;

use std::any::Any;
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use portcullis_domain::{
    EmailAddress, FieldSpec, FieldType, FieldValue, FieldValues, FieldWriter, Role, StoreError,
    User, UserFields, UserId, UserPatch,
};
use tokio::sync::Barrier;

pub use oauth::*;
pub use sessions::*;
pub use throttle::*;

/// Opens another instance of a store on its database.
type Opener = Box<dyn Fn() -> Pin<Box<dyn Future<Output = Store> + Send>> + Send + Sync + 'static>;

/// A fresh store for one test, and whatever must live as long as it (a
/// temporary database file that its drop removes, say).
pub struct Fresh {
    /// The store under test: empty, schema in place.
    pub store: Arc<dyn portcullis_domain::Store>,
    /// Opens a second instance on the same database.
    second: Option<Opener>,
    /// Dropped after `store` (fields drop in declaration order).
    cleanup: Option<Box<dyn Any + Send>>,
}

impl Fresh {
    /// A store that needs no clean-up.
    pub fn new(store: Arc<dyn portcullis_domain::Store>) -> Self {
        Self {
            store,
            second: None,
            cleanup: None,
        }
    }

    /// How to open a second instance of the store on the same database, as
    /// another process would (the same file, the same PostgreSQL database;
    /// for memory, the one store of the process).
    pub fn with_second_instance<F, Fut>(mut self, open: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Store> + Send + 'static,
    {
        self.second = Some(Box::new(move || Box::pin(open())));
        self
    }

    /// A second instance on the same database.
    ///
    /// # Panics
    /// When the factory gave no [`Fresh::with_second_instance`].
    pub async fn second_instance(&self) -> Store {
        let open = self
            .second
            .as_ref()
            .expect("the factory must give Fresh::with_second_instance for the two-instance cases");
        open().await
    }

    /// Keeps `guard` alive until the test ends; it is dropped after the
    /// store.
    pub fn with_cleanup(mut self, guard: impl Any + Send) -> Self {
        self.cleanup = Some(Box::new(guard));
        self
    }
}

/// Generates one `#[tokio::test(flavor = "multi_thread")]` per contract case
/// for the store that `$factory` (an `async fn(UserFields) -> Fresh`) makes,
/// in a module named after the factory: the cases about extra user fields
/// get a store with [`contract_fields`], the others one with none.
#[macro_export]
macro_rules! store_contract_tests {
    ($factory:ident) => {
        $crate::store_contract_tests!(@cases $factory;
            no_fields: [
            create_get_patch_delete_round_trip,
            fields_round_trip_exactly,
            get_of_an_unknown_id_is_none,
            patch_and_delete_of_an_unknown_id_are_not_found,
            get_by_email_ignores_ascii_case,
            get_by_email_ignores_non_ascii_case,
            create_of_a_taken_address_in_any_case_conflicts,
            patch_to_a_taken_address_conflicts_and_to_its_own_in_another_case_succeeds,
            create_never_overwrites_an_existing_id,
            delete_frees_the_address,
            concurrent_creates_of_one_address_let_exactly_one_win,
            concurrent_creates_of_one_non_ascii_address_let_exactly_one_win,
            concurrent_creates_of_distinct_addresses_all_succeed,
            lookups_stay_correct_with_100_000_users,
            replace_password_hash_is_a_conditional_update,
            concurrent_password_replacements_let_exactly_one_win,
            patch_writes_only_the_named_columns,
            patch_moves_the_address,
            patch_of_an_unknown_id_is_not_found,
            patch_to_another_users_address_in_any_case_conflicts,
            an_empty_patch_returns_the_user_unchanged,
            ping_answers,
            throttle_first_hit_opens_a_window_of_one_to_the_millisecond,
            throttle_hits_in_the_window_count_up_and_keep_its_start,
            throttle_a_hit_at_or_after_the_window_end_opens_a_new_window,
            throttle_current_is_none_without_an_open_window_and_writes_nothing,
            throttle_kinds_and_keys_are_independent,
            throttle_clear_forgets_and_clearing_nothing_is_fine,
            throttle_purge_removes_only_that_kinds_windows_started_before_the_cutoff,
            throttle_concurrent_hits_are_all_counted,
            throttle_a_320_byte_key_works,
            sessions_create_then_get,
            sessions_get_with_not_before_after_created_at_is_none,
            sessions_delete_one_leaves_the_others,
            sessions_delete_of_a_user_deletes_only_theirs_and_counts,
            sessions_deleting_the_user_cascades,
            sessions_purge_removes_only_older_ones_and_counts,
            sessions_duplicate_token_conflicts,
            sessions_unknown_user_is_not_found,
            session_stamp_of_a_new_user_is_0_and_create_writes_it,
            session_stamp_end_sessions_raises_it_to_now_and_returns_it,
            session_stamp_a_counter_is_raised_to_the_time,
            session_stamp_concurrent_end_sessions_all_count,
            session_stamp_other_writes_leave_it,
            oauth_add_then_get_and_list,
            oauth_update_replaces_tokens_expiry_and_address_only,
            oauth_update_of_an_unknown_row_is_not_found,
            oauth_a_second_link_of_one_provider_account_conflicts,
            oauth_concurrent_links_of_one_provider_account_let_exactly_one_win,
            oauth_unknown_user_is_not_found,
            oauth_deleting_the_user_cascades,
            oauth_the_longest_values_fit,
            ];
            contract_fields: [
            fields_of_every_type_round_trip,
            fields_are_null_when_set_so,
            fields_absent_at_create_get_their_defaults,
            fields_patch_of_one_leaves_the_others_and_the_columns_alone,
            fields_not_configured_are_ignored,
            fields_hold_the_edge_values,
            ];
            @two_instances: [
            throttle_a_second_instance_sees_the_counts,
            throttle_concurrent_hits_from_two_instances_are_all_counted,
            sessions_a_second_instance_sees_created_and_deleted_tokens,
            oauth_a_second_instance_sees_links_and_conflicts,
            ];
        );
    };
    (@cases $factory:ident; $($fields:ident: [$($case:ident),+ $(,)?];)+
        @two_instances: [$($two:ident),+ $(,)?];) => {
        mod $factory {
            $($(
                #[::tokio::test(flavor = "multi_thread")]
                async fn $case() {
                    let fresh = super::$factory($crate::store_contract::$fields()).await;
                    $crate::store_contract::$case(::std::sync::Arc::clone(&fresh.store)).await;
                    drop(fresh);
                }
            )+)+
            $(
                #[::tokio::test(flavor = "multi_thread")]
                async fn $two() {
                    let fresh = super::$factory($crate::store_contract::no_fields()).await;
                    let second = fresh.second_instance().await;
                    $crate::store_contract::$two(::std::sync::Arc::clone(&fresh.store), second)
                        .await;
                    drop(fresh);
                }
            )+
        }
    };
}

/// No extra user field: the store as most deployments have it.
pub fn no_fields() -> UserFields {
    UserFields::none()
}

/// The extra user fields the `fields_*` cases run with, one of each type:
/// `nickname` (string, at most 50 characters, nullable, default null),
/// `organisation_id` (integer, not null, default 0) and `newsletter`
/// (boolean, not null, default false).
pub fn contract_fields() -> UserFields {
    UserFields::new(vec![
        FieldSpec {
            name: "nickname".into(),
            ty: FieldType::String {
                max_length: Some(50),
            },
            nullable: true,
            default: FieldValue::Null,
            writable_by: FieldWriter::User,
        },
        FieldSpec {
            name: "organisation_id".into(),
            ty: FieldType::Integer,
            nullable: false,
            default: FieldValue::Integer(0),
            writable_by: FieldWriter::Admin,
        },
        FieldSpec {
            name: "newsletter".into(),
            ty: FieldType::Boolean,
            nullable: false,
            default: FieldValue::Boolean(false),
            writable_by: FieldWriter::User,
        },
    ])
    .expect("the contract's fields are valid")
}

/// A store under test.
pub type Store = Arc<dyn portcullis_domain::Store>;

fn email(text: &str) -> EmailAddress {
    EmailAddress::parse(text).unwrap_or_else(|e| panic!("test address {text:?}: {e}"))
}

fn user(address: &str) -> User {
    User::new(
        email(address),
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG".into(),
    )
}

/// Creates, patches every field, reads back by id and by address, deletes.
pub async fn create_get_patch_delete_round_trip(store: Store) {
    let ann = user("Ann.Lee@example.com");
    assert_eq!(store.create(ann.clone()).await, Ok(ann.clone()));
    assert_eq!(store.get(ann.id).await, Ok(Some(ann.clone())));
    assert_eq!(
        store.get_by_email(&email("Ann.Lee@example.com")).await,
        Ok(Some(ann.clone()))
    );

    let changed = User {
        id: ann.id,
        email: email("Ann.Smith@example.org"),
        hashed_password: "$pbkdf2-sha256$29000$N2YuQS5m$bqS1nmx4Dxe1w2bsVlZyEt0Okhw1eOA8".into(),
        is_active: false,
        is_superuser: true,
        is_verified: true,
        role: Role::Instructor,
        fields: ann.fields.clone(),
        session_stamp: ann.session_stamp,
    };
    assert_eq!(
        store.patch(ann.id, every_column_of(&changed)).await,
        Ok(changed.clone())
    );
    assert_eq!(store.get(ann.id).await, Ok(Some(changed.clone())));
    assert_eq!(
        store.get_by_email(&email("ann.smith@example.org")).await,
        Ok(Some(changed.clone()))
    );
    assert_eq!(
        store.get_by_email(&email("Ann.Lee@example.com")).await,
        Ok(None),
        "the old address no longer finds the user"
    );

    assert_eq!(store.delete(ann.id).await, Ok(()));
    assert_eq!(store.get(ann.id).await, Ok(None));
    assert_eq!(
        store.get_by_email(&email("Ann.Smith@example.org")).await,
        Ok(None)
    );
}

/// Every flag combination, every role, hashes of every shape and non-ASCII
/// addresses come back exactly as stored (the address in the case given).
pub async fn fields_round_trip_exactly(store: Store) {
    let hashes = [
        "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
        "$pbkdf2-sha256$29000$N2YuQS5m$bqS1nmx4Dxe1w2bsVlZyEt0Okhw1eOA8",
        "",
        "x",
    ];
    let mut stored = Vec::new();
    let mut n = 0;
    for role in Role::ALL {
        for flags in 0..8u8 {
            n += 1;
            let address = match n % 4 {
                0 => format!("Jöhn.Dœ{n}@Exämple.COM"),
                1 => format!("ÉLODIE.{n}@example.com"),
                2 => format!("Mixed.Case.{n}@EXAMPLE.com"),
                _ => format!("用户{n}@例子.广告"),
            };
            let u = User {
                id: UserId::random(),
                email: email(&address),
                hashed_password: format!("{}{}", hashes[n % hashes.len()], "=".repeat(n % 3)),
                is_active: flags & 1 != 0,
                is_superuser: flags & 2 != 0,
                is_verified: flags & 4 != 0,
                role,
                fields: Default::default(),
                session_stamp: 0,
            };
            assert_eq!(store.create(u.clone()).await, Ok(u.clone()));
            stored.push(u);
        }
    }
    // The longest hash FastAPI Users' `hashed_password VARCHAR(1024)` holds
    // (PostgreSQL enforces the length; SQLite does not).
    let prefix = "$argon2id$v=19$m=19456,t=2,p=1$";
    let long_hash = User {
        hashed_password: format!("{prefix}{}", "A".repeat(1024 - prefix.len())),
        ..user("long.hash@example.com")
    };
    store.create(long_hash.clone()).await.unwrap();
    stored.push(long_hash);

    for u in &stored {
        let by_id = store.get(u.id).await.unwrap();
        assert_eq!(by_id.as_ref(), Some(u), "by id");
        let by_email = store.get_by_email(&u.email).await.unwrap();
        assert_eq!(by_email.as_ref(), Some(u), "by e-mail");
        assert_eq!(
            by_email.unwrap().email.as_str(),
            u.email.as_str(),
            "the address keeps its case"
        );
    }
    assert_eq!(stored[0].email.as_str(), "ÉLODIE.1@example.com");
    assert_eq!(stored[3].email.as_str(), "Jöhn.Dœ4@exämple.com");
}

/// `get` of an id no user has is `None`, not an error.
pub async fn get_of_an_unknown_id_is_none(store: Store) {
    assert_eq!(store.get(UserId::random()).await, Ok(None));
    store.create(user("someone@example.com")).await.unwrap();
    assert_eq!(store.get(UserId::random()).await, Ok(None));
    assert_eq!(
        store.get_by_email(&email("no.one@example.com")).await,
        Ok(None)
    );
}

/// The patch that would write every column of `user`.
fn every_column_of(user: &User) -> UserPatch {
    UserPatch {
        email: Some(user.email.clone()),
        hashed_password: Some(user.hashed_password.clone()),
        is_active: Some(user.is_active),
        is_superuser: Some(user.is_superuser),
        is_verified: Some(user.is_verified),
        role: Some(user.role),
        fields: user.fields.clone(),
        end_sessions: None,
    }
}

/// `patch` (of every column) and `delete` of an id no user has are
/// `NotFound`, and change nothing.
pub async fn patch_and_delete_of_an_unknown_id_are_not_found(store: Store) {
    let kept = store.create(user("kept@example.com")).await.unwrap();
    for ghost in [user("ghost@example.com"), user("ghöst@example.com")] {
        assert_eq!(
            store.patch(ghost.id, every_column_of(&ghost)).await,
            Err(StoreError::NotFound)
        );
        assert_eq!(store.get(ghost.id).await, Ok(None), "patch did not create");
        assert_eq!(store.get_by_email(&ghost.email).await, Ok(None));
        assert_eq!(store.delete(ghost.id).await, Err(StoreError::NotFound));
    }
    // An unknown id with a taken address is still NotFound, not Conflict.
    let ghost = user("KEPT@example.com");
    assert_eq!(
        store.patch(ghost.id, every_column_of(&ghost)).await,
        Err(StoreError::NotFound)
    );
    store.delete(kept.id).await.unwrap();
    assert_eq!(
        store.delete(kept.id).await,
        Err(StoreError::NotFound),
        "deleting twice"
    );
}

/// `patch` writes only the columns it names: two writers that each read
/// the user before the other wrote (an administrator changing the role, the
/// user resetting the password, another administrator deactivating) all
/// keep their change.
pub async fn patch_writes_only_the_named_columns(store: Store) {
    let ann = store.create(user("Ann.Lee@example.com")).await.unwrap();
    let stale = store.get(ann.id).await.unwrap().unwrap();

    let after_role = store
        .patch(
            ann.id,
            UserPatch {
                role: Some(Role::Instructor),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        after_role,
        User {
            role: Role::Instructor,
            ..ann.clone()
        }
    );

    // A password reset racing with it (a conditional update of the hash).
    let reset = "$pbkdf2-sha256$29000$N2YuQS5m$bqS1nmx4Dxe1w2bsVlZyEt0Okhw1eOA8";
    assert_eq!(
        store
            .replace_password_hash(ann.id, &stale.hashed_password, reset)
            .await,
        Ok(true)
    );

    // A writer that still sees `stale` (student, old hash) deactivates.
    assert_eq!(stale.role, Role::Student);
    let after_deactivation = store
        .patch(
            stale.id,
            UserPatch {
                is_active: Some(false),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    let expected = User {
        is_active: false,
        role: Role::Instructor,
        hashed_password: reset.into(),
        ..ann.clone()
    };
    assert_eq!(
        after_deactivation, expected,
        "patch returns the stored user, with the other writers' changes kept"
    );
    assert_eq!(store.get(ann.id).await, Ok(Some(expected.clone())));

    // Every other column, one at a time.
    let after_flags = store
        .patch(
            ann.id,
            UserPatch {
                is_superuser: Some(true),
                is_verified: Some(true),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    let expected = User {
        is_superuser: true,
        is_verified: true,
        ..expected
    };
    assert_eq!(after_flags, expected);
    let new_hash = "$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";
    let after_hash = store
        .patch(
            ann.id,
            UserPatch {
                hashed_password: Some(new_hash.into()),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    let expected = User {
        hashed_password: new_hash.into(),
        ..expected
    };
    assert_eq!(after_hash, expected);
    assert_eq!(store.get(ann.id).await, Ok(Some(expected)));
}

/// A patched address (ASCII or not, a new address or a new spelling of the
/// same one) is found by its new spelling, and a new address frees the old
/// one.
pub async fn patch_moves_the_address(store: Store) {
    let ann = store.create(user("Ann.Lee@example.com")).await.unwrap();
    for (address, other_spelling) in [
        ("ANN.LEE@example.com", "ann.lee@example.com"),
        ("Jöhn@example.com", "JÖHN@example.com"),
        ("JÖHN@example.com", "jöhn@example.com"),
        ("Ann.Smith@example.org", "ann.smith@EXAMPLE.org"),
    ] {
        let patched = store
            .patch(
                ann.id,
                UserPatch {
                    email: Some(email(address)),
                    ..UserPatch::default()
                },
            )
            .await
            .unwrap_or_else(|e| panic!("patch to {address}: {e:?}"));
        let expected = User {
            email: email(address),
            ..ann.clone()
        };
        assert_eq!(patched, expected, "{address}");
        assert_eq!(
            store.get_by_email(&email(other_spelling)).await,
            Ok(Some(expected)),
            "{other_spelling}"
        );
    }
    for old in ["Ann.Lee@example.com", "Jöhn@example.com"] {
        assert_eq!(store.get_by_email(&email(old)).await, Ok(None), "{old}");
        // the freed address can be taken again
        store.create(user(old)).await.unwrap();
    }
}

/// A patch of an id nobody has is `NotFound` and creates nobody; so is an
/// empty one, and one with a (non-ASCII) address.
pub async fn patch_of_an_unknown_id_is_not_found(store: Store) {
    let ghost = UserId::random();
    for patch in [
        UserPatch {
            is_active: Some(false),
            ..UserPatch::default()
        },
        UserPatch {
            email: Some(email("ghost@example.com")),
            role: Some(Role::Admin),
            ..UserPatch::default()
        },
        UserPatch {
            email: Some(email("Gëist@example.com")),
            ..UserPatch::default()
        },
        UserPatch::default(),
    ] {
        assert_eq!(
            store.patch(ghost, patch.clone()).await,
            Err(StoreError::NotFound),
            "{patch:?}"
        );
    }
    assert_eq!(store.get(ghost).await, Ok(None));
    assert_eq!(
        store.get_by_email(&email("ghost@example.com")).await,
        Ok(None)
    );
}

/// Patching the address to another user's, in any case, is a typed
/// `Conflict` and changes nothing — not even the other columns of the same
/// patch.
pub async fn patch_to_another_users_address_in_any_case_conflicts(store: Store) {
    let ann = store.create(user("Ann@example.com")).await.unwrap();
    let jöhn = store.create(user("Jöhn@example.com")).await.unwrap();
    let bob = store.create(user("Bob@example.com")).await.unwrap();
    for taken in [
        "ANN@example.com",
        "ann@EXAMPLE.com",
        "JÖHN@example.com",
        "jöhn@example.com",
    ] {
        assert_eq!(
            store
                .patch(
                    bob.id,
                    UserPatch {
                        email: Some(email(taken)),
                        is_active: Some(false),
                        role: Some(Role::Admin),
                        hashed_password: Some("$other".into()),
                        ..UserPatch::default()
                    },
                )
                .await,
            Err(StoreError::Conflict),
            "{taken}"
        );
    }
    assert_eq!(store.get(bob.id).await, Ok(Some(bob.clone())));
    assert_eq!(store.get(ann.id).await, Ok(Some(ann.clone())));
    assert_eq!(store.get(jöhn.id).await, Ok(Some(jöhn.clone())));
    assert_eq!(
        store.get_by_email(&email("bob@example.com")).await,
        Ok(Some(bob))
    );
    assert_eq!(
        store.get_by_email(&email("ann@example.com")).await,
        Ok(Some(ann))
    );
}

/// An empty patch writes nothing and returns the stored user, as stored.
pub async fn an_empty_patch_returns_the_user_unchanged(store: Store) {
    let mut ann = user("Ann.Lee@example.com");
    ann.is_verified = true;
    ann.role = Role::Instructor;
    let ann = store.create(ann).await.unwrap();
    assert_eq!(
        store.patch(ann.id, UserPatch::default()).await,
        Ok(ann.clone())
    );
    assert_eq!(store.get(ann.id).await, Ok(Some(ann)));
}

/// Any spelling of an ASCII address in another case finds the user.
pub async fn get_by_email_ignores_ascii_case(store: Store) {
    let ann = store.create(user("Ann.Lee@example.com")).await.unwrap();
    for spelling in [
        "Ann.Lee@example.com",
        "ann.lee@example.com",
        "ANN.LEE@EXAMPLE.COM",
        "aNN.lEE@Example.Com",
    ] {
        assert_eq!(
            store.get_by_email(&email(spelling)).await,
            Ok(Some(ann.clone())),
            "{spelling}"
        );
    }
    assert_eq!(
        store.get_by_email(&email("Ann.Le@example.com")).await,
        Ok(None)
    );
    assert_eq!(
        store.get_by_email(&email("Ann.Lee2@example.com")).await,
        Ok(None)
    );
}

/// Non-ASCII letters match case-insensitively too (`EmailAddress::key` is a
/// full Unicode lowercase): accented letters after an ASCII start, at the
/// start, in non-Latin scripts, and `İ`, whose lowercase is two characters.
pub async fn get_by_email_ignores_non_ascii_case(store: Store) {
    let families: [&[&str]; 6] = [
        &["Jöhn@example.com", "JÖHN@example.com", "jöhn@EXAMPLE.com"],
        &[
            "Élodie@example.com",
            "ÉLODIE@example.com",
            "élodie@example.com",
        ],
        &["Øyvind.Strøm@example.com", "øyvind.STRØM@example.com"],
        &[
            "Дмитрий@example.com",
            "ДМИТРИЙ@example.com",
            "дмитрий@example.com",
        ],
        &["Σωκράτης@example.com", "ΣΩΚΡΆΤΗΣ@example.com"],
        &[
            "İpek@example.com",
            "i\u{307}pek@example.com",
            "I\u{307}PEK@example.com",
        ],
    ];
    for family in families {
        let stored = store.create(user(family[0])).await.unwrap();
        for spelling in family {
            assert_eq!(
                store.get_by_email(&email(spelling)).await,
                Ok(Some(stored.clone())),
                "{spelling} should find {}",
                family[0]
            );
        }
    }
    // Different letters are different accounts.
    for other in [
        "John@example.com",
        "Jőhn@example.com",
        "Elodie@example.com",
        "Ipek@example.com",
    ] {
        assert_eq!(
            store.get_by_email(&email(other)).await,
            Ok(None),
            "{other} is another account"
        );
    }
}

/// Creating an address that is taken, in any case, is a typed `Conflict`
/// and stores nothing.
pub async fn create_of_a_taken_address_in_any_case_conflicts(store: Store) {
    let taken = [
        (
            "Ann@example.com",
            ["Ann@example.com", "ann@example.com", "ANN@EXAMPLE.COM"],
        ),
        (
            "Jöhn@example.com",
            ["Jöhn@example.com", "JÖHN@example.com", "jöhn@example.com"],
        ),
        (
            "Élodie@example.com",
            [
                "Élodie@example.com",
                "ÉLODIE@example.com",
                "élodie@example.com",
            ],
        ),
    ];
    for (first, clashes) in taken {
        let original = store.create(user(first)).await.unwrap();
        for clash in clashes {
            let attempt = user(clash);
            assert_eq!(
                store.create(attempt.clone()).await,
                Err(StoreError::Conflict),
                "{clash} after {first}"
            );
            assert_eq!(store.get(attempt.id).await, Ok(None), "{clash} not stored");
        }
        assert_eq!(
            store.get_by_email(&email(first)).await,
            Ok(Some(original)),
            "the first is untouched"
        );
    }
}

/// Moving a user (with an ASCII or a non-ASCII address) to another user's
/// address, in any case, is a typed `Conflict` and changes nothing; moving
/// it to its own address in another case is fine.
pub async fn patch_to_a_taken_address_conflicts_and_to_its_own_in_another_case_succeeds(
    store: Store,
) {
    let pairs = [
        (
            "a.one@example.com",
            "b.two@example.com",
            "B.TWO@example.com",
        ),
        ("Zoë@example.com", "Jöhn@example.com", "JÖHN@example.com"),
        (
            "plain@example.com",
            "Élodie@example.com",
            "élodie@example.com",
        ),
    ];
    for (mover, holder, clash) in pairs {
        let mover = store.create(user(mover)).await.unwrap();
        let holder = store.create(user(holder)).await.unwrap();
        let moved = User {
            email: email(clash),
            is_verified: true,
            ..mover.clone()
        };
        assert_eq!(
            store.patch(mover.id, every_column_of(&moved)).await,
            Err(StoreError::Conflict),
            "{clash}"
        );
        assert_eq!(
            store.get(mover.id).await,
            Ok(Some(mover.clone())),
            "unchanged"
        );
        assert_eq!(
            store.get(holder.id).await,
            Ok(Some(holder.clone())),
            "unchanged"
        );

        let recased = User {
            email: email(&mover.email.as_str().to_uppercase()),
            ..mover.clone()
        };
        assert_eq!(
            store.patch(mover.id, every_column_of(&recased)).await,
            Ok(recased.clone())
        );
        assert_eq!(store.get_by_email(&mover.email).await, Ok(Some(recased)));
    }
}

/// A create with the id of a stored user fails and does not replace it.
pub async fn create_never_overwrites_an_existing_id(store: Store) {
    let first = store.create(user("first@example.com")).await.unwrap();
    let impostor = User {
        email: email("impostor@example.com"),
        ..first.clone()
    };
    assert_eq!(store.create(impostor).await, Err(StoreError::Conflict));
    assert_eq!(store.get(first.id).await, Ok(Some(first)));
    assert_eq!(
        store.get_by_email(&email("impostor@example.com")).await,
        Ok(None)
    );
}

/// A deleted user's address, and an address a user moved away from, can be
/// taken again in any case.
pub async fn delete_frees_the_address(store: Store) {
    for address in ["Gone@example.com", "Göne@example.com"] {
        let gone = store.create(user(address)).await.unwrap();
        store.delete(gone.id).await.unwrap();
        let again = user(&address.to_uppercase().replace("EXAMPLE.COM", "example.com"));
        assert_eq!(store.create(again.clone()).await, Ok(again.clone()));
        assert_eq!(
            store.get_by_email(&email(address)).await,
            Ok(Some(again.clone()))
        );

        let moved = UserPatch {
            email: Some(email(&format!("moved.{address}"))),
            ..UserPatch::default()
        };
        store.patch(again.id, moved).await.unwrap();
        store.create(user(address)).await.unwrap();
    }
}

/// Runs `attempts` creates at once, released together by a barrier, and
/// returns the users created. Any error but `Conflict` fails the test.
async fn race(store: &Store, attempts: Vec<User>) -> Vec<User> {
    let barrier = Arc::new(Barrier::new(attempts.len()));
    let tasks: Vec<_> = attempts
        .into_iter()
        .map(|u| {
            let (store, barrier) = (Arc::clone(store), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                store.create(u).await
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut conflicts = 0;
    for task in tasks {
        match task.await.expect("create task panicked") {
            Ok(u) => winners.push(u),
            Err(StoreError::Conflict) => conflicts += 1,
            Err(other) => panic!("a racing create failed with {other:?}, not Conflict"),
        }
    }
    println!("{} created, {conflicts} Conflict", winners.len());
    winners
}

async fn one_address_race(store: &Store, spellings: &[&str]) {
    let attempts: Vec<User> = (0..64)
        .map(|i| user(spellings[i % spellings.len()]))
        .collect();
    let winners = race(store, attempts).await;
    assert_eq!(
        winners.len(),
        1,
        "exactly one of 64 concurrent creates of {} must succeed (63 Conflict)",
        spellings[0]
    );
    let winner = &winners[0];
    assert_eq!(store.get(winner.id).await, Ok(Some(winner.clone())));
    for spelling in spellings {
        assert_eq!(
            store.get_by_email(&email(spelling)).await,
            Ok(Some(winner.clone())),
            "{spelling}"
        );
    }
}

/// `replace_password_hash` changes the hash only while it is the expected
/// one, touches nothing else, and answers `false` for an unknown id.
pub async fn replace_password_hash_is_a_conditional_update(store: Store) {
    let ann = store.create(user("ann@example.com")).await.unwrap();
    let old = ann.hashed_password.clone();
    assert_eq!(
        store
            .replace_password_hash(ann.id, "$not-the-hash", "$x")
            .await,
        Ok(false)
    );
    assert_eq!(
        store.get(ann.id).await.unwrap().unwrap().hashed_password,
        old
    );
    assert_eq!(
        store.replace_password_hash(ann.id, &old, "$new").await,
        Ok(true)
    );
    let stored = store.get(ann.id).await.unwrap().unwrap();
    assert_eq!(stored.hashed_password, "$new");
    assert_eq!(
        User {
            hashed_password: old.clone(),
            ..stored
        },
        ann
    );
    assert_eq!(
        store.replace_password_hash(ann.id, &old, "$again").await,
        Ok(false)
    );
    assert_eq!(
        store
            .replace_password_hash(portcullis_domain::UserId::random(), &old, "$x")
            .await,
        Ok(false)
    );
}

/// 64 concurrent replacements from the same expected hash (one reset token
/// used 64 times at once): exactly one wins.
pub async fn concurrent_password_replacements_let_exactly_one_win(store: Store) {
    let ann = store.create(user("ann@example.com")).await.unwrap();
    let old = ann.hashed_password.clone();
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let (store, old) = (Arc::clone(&store), old.clone());
            tokio::spawn(async move {
                store
                    .replace_password_hash(ann.id, &old, &format!("$new{i}"))
                    .await
            })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        if task.await.unwrap().unwrap() {
            wins += 1;
        }
    }
    assert_eq!(wins, 1);
}

/// 64 concurrent creates of one ASCII address in assorted cases: exactly
/// one `Ok`, 63 `Conflict`.
pub async fn concurrent_creates_of_one_address_let_exactly_one_win(store: Store) {
    one_address_race(
        &store,
        &[
            "race@example.com",
            "RACE@example.com",
            "Race@example.com",
            "rAcE@example.com",
        ],
    )
    .await;
}

/// The same with non-ASCII letters, after an ASCII start and at the start.
pub async fn concurrent_creates_of_one_non_ascii_address_let_exactly_one_win(store: Store) {
    one_address_race(
        &store,
        &[
            "ström@example.com",
            "STRÖM@example.com",
            "Ström@example.com",
            "sTRöM@example.com",
        ],
    )
    .await;
    one_address_race(
        &store,
        &[
            "ørjan@example.com",
            "ØRJAN@example.com",
            "Ørjan@example.com",
        ],
    )
    .await;
}

/// 64 concurrent creates of distinct addresses: all succeed.
pub async fn concurrent_creates_of_distinct_addresses_all_succeed(store: Store) {
    let attempts: Vec<User> = (0..64)
        .map(|i| match i % 3 {
            0 => user(&format!("parallel.{i}@example.com")),
            1 => user(&format!("Pärallel.{i}@example.com")),
            _ => user(&format!("Ötzi.{i}@example.com")),
        })
        .collect();
    let winners = race(&store, attempts.clone()).await;
    assert_eq!(winners.len(), 64, "every distinct create succeeds");
    for u in &attempts {
        assert_eq!(store.get_by_email(&u.email).await, Ok(Some(u.clone())));
    }
}

/// How many users [`lookups_stay_correct_with_100_000_users`] stores.
pub const MANY: usize = 100_000;

/// With 100 000 users stored (created through the port), lookups by id and
/// by address in any case still find exactly the right user, absent ones
/// are absent, and clashes are still caught. Prints the time each phase took.
pub async fn lookups_stay_correct_with_100_000_users(store: Store) {
    let started = Instant::now();
    let spelling = |i: usize| match i % 50 {
        0 => format!("Jöhn.{i}@example.com"),
        1 => format!("Élodie.{i}@example.com"),
        _ => format!("User.{i}@Example.com"),
    };
    // Four writers at once: fast enough for every store, and the
    // write path is exercised under contention.
    const WRITERS: usize = 4;
    let mut ids = vec![UserId::random(); MANY];
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = Arc::clone(&store);
            let mine: Vec<(usize, User)> = (w..MANY)
                .step_by(WRITERS)
                .map(|i| (i, user(&spelling(i))))
                .collect();
            tokio::spawn(async move {
                let mut made = Vec::with_capacity(mine.len());
                for (i, u) in mine {
                    let id = u.id;
                    store
                        .create(u)
                        .await
                        .unwrap_or_else(|e| panic!("create #{i}: {e:?}"));
                    made.push((i, id));
                }
                made
            })
        })
        .collect();
    for task in tasks {
        for (i, id) in task.await.expect("writer panicked") {
            ids[i] = id;
        }
    }
    let seeded = started.elapsed();

    let probe_started = Instant::now();
    let mut seen = HashSet::new();
    for i in (0..MANY).step_by(997).chain([0, 1, 2, 50, 51, MANY - 1]) {
        let address = spelling(i);
        let found = store
            .get_by_email(&email(&address.to_uppercase()))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{address} not found among {MANY}"));
        assert_eq!(found.id, ids[i], "{address}");
        assert_eq!(found.email.as_str(), email(&address).as_str());
        assert_eq!(
            store.get(ids[i]).await.unwrap().map(|u| u.email),
            Some(found.email)
        );
        seen.insert(i);
    }
    for absent in [
        "User.100000@example.com",
        "user.-1@example.com",
        "Jöhn.51@example.com",
        "Élodie.0@example.com",
        "nobody@example.com",
    ] {
        assert_eq!(
            store.get_by_email(&email(absent)).await,
            Ok(None),
            "{absent}"
        );
    }
    assert_eq!(store.get(UserId::random()).await, Ok(None));
    for clash in [
        "USER.77@example.com",
        "JÖHN.50@example.com",
        "élodie.51@example.com",
    ] {
        assert_eq!(
            store.create(user(clash)).await,
            Err(StoreError::Conflict),
            "{clash}"
        );
    }
    println!(
        "{MANY} users created in {seeded:.2?}; {} lookups and checks in {:.2?}",
        seen.len() * 2 + 9,
        probe_started.elapsed()
    );
}

/// A working store answers `ping`.
pub async fn ping_answers(store: Store) {
    assert_eq!(store.ping().await, Ok(()));
}

/// Values of the contract's fields, by name.
fn values(pairs: &[(&str, FieldValue)]) -> FieldValues {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.clone()))
        .collect()
}

fn text(value: &str) -> FieldValue {
    FieldValue::String(value.to_owned())
}

/// A user with a value for each of the contract's fields.
fn with_fields(address: &str, fields: FieldValues) -> User {
    User {
        fields,
        ..user(address)
    }
}

/// Asserts that `store` holds `expected`, by id and by address.
async fn assert_stored(store: &Store, expected: &User) {
    assert_eq!(
        store.get(expected.id).await,
        Ok(Some(expected.clone())),
        "get"
    );
    assert_eq!(
        store.get_by_email(&expected.email).await,
        Ok(Some(expected.clone())),
        "get_by_email"
    );
}

/// A value of each type is written by `create`, read back exactly by both
/// lookups, and each can be changed by `patch`.
pub async fn fields_of_every_type_round_trip(store: Store) {
    let ann = with_fields(
        "ann@example.com",
        values(&[
            ("nickname", text("Annie")),
            ("organisation_id", FieldValue::Integer(7)),
            ("newsletter", FieldValue::Boolean(true)),
        ]),
    );
    assert_eq!(store.create(ann.clone()).await, Ok(ann.clone()));
    assert_stored(&store, &ann).await;

    let changes = values(&[
        ("nickname", text("Ann")),
        ("organisation_id", FieldValue::Integer(-3)),
        ("newsletter", FieldValue::Boolean(false)),
    ]);
    let patched = User {
        fields: changes.clone(),
        ..ann.clone()
    };
    let patch = UserPatch {
        fields: changes,
        ..UserPatch::default()
    };
    assert_eq!(store.patch(ann.id, patch).await, Ok(patched.clone()));
    assert_stored(&store, &patched).await;

    // Another user's values are their own.
    let bob = with_fields(
        "bob@example.com",
        values(&[
            ("nickname", text("Bobby")),
            ("organisation_id", FieldValue::Integer(8)),
            ("newsletter", FieldValue::Boolean(true)),
        ]),
    );
    store.create(bob.clone()).await.expect("create bob");
    assert_stored(&store, &bob).await;
    assert_stored(&store, &patched).await;
}

/// A nullable field holds null: given at create, and set by a patch.
pub async fn fields_are_null_when_set_so(store: Store) {
    let ann = with_fields(
        "ann@example.com",
        values(&[
            ("nickname", FieldValue::Null),
            ("organisation_id", FieldValue::Integer(1)),
            ("newsletter", FieldValue::Boolean(true)),
        ]),
    );
    assert_eq!(store.create(ann.clone()).await, Ok(ann.clone()));
    assert_stored(&store, &ann).await;

    let named = UserPatch {
        fields: values(&[("nickname", text("Annie"))]),
        ..UserPatch::default()
    };
    let stored = store.patch(ann.id, named).await.expect("patch");
    assert_eq!(stored.fields.get("nickname"), Some(&text("Annie")));
    let unnamed = UserPatch {
        fields: values(&[("nickname", FieldValue::Null)]),
        ..UserPatch::default()
    };
    assert_eq!(store.patch(ann.id, unnamed).await, Ok(ann.clone()));
    assert_stored(&store, &ann).await;
}

/// `create` writes each field's default when the user has no value for
/// it, and returns the user as stored (with them).
pub async fn fields_absent_at_create_get_their_defaults(store: Store) {
    let bare = user("ann@example.com");
    assert!(bare.fields.is_empty());
    let expected = User {
        fields: values(&[
            ("nickname", FieldValue::Null),
            ("organisation_id", FieldValue::Integer(0)),
            ("newsletter", FieldValue::Boolean(false)),
        ]),
        ..bare.clone()
    };
    assert_eq!(store.create(bare).await, Ok(expected.clone()));
    assert_stored(&store, &expected).await;

    // Some given, the others defaulted.
    let partial = with_fields(
        "bob@example.com",
        values(&[("organisation_id", FieldValue::Integer(42))]),
    );
    let expected = User {
        fields: values(&[
            ("nickname", FieldValue::Null),
            ("organisation_id", FieldValue::Integer(42)),
            ("newsletter", FieldValue::Boolean(false)),
        ]),
        ..partial.clone()
    };
    assert_eq!(store.create(partial).await, Ok(expected.clone()));
    assert_stored(&store, &expected).await;
}

/// A patch of one field writes that column only: the other fields and the
/// other columns, changed meanwhile by another patch, are kept; a patch of
/// columns and fields together writes both.
pub async fn fields_patch_of_one_leaves_the_others_and_the_columns_alone(store: Store) {
    let ann = with_fields(
        "ann@example.com",
        values(&[
            ("nickname", text("Annie")),
            ("organisation_id", FieldValue::Integer(7)),
            ("newsletter", FieldValue::Boolean(true)),
        ]),
    );
    store.create(ann.clone()).await.expect("create");

    // Another writer changes a column and a field...
    let other = UserPatch {
        is_verified: Some(true),
        fields: values(&[("newsletter", FieldValue::Boolean(false))]),
        ..UserPatch::default()
    };
    store.patch(ann.id, other).await.expect("the other patch");
    // ...then this one changes only organisation_id.
    let mine = UserPatch {
        fields: values(&[("organisation_id", FieldValue::Integer(9))]),
        ..UserPatch::default()
    };
    let expected = User {
        is_verified: true,
        fields: values(&[
            ("nickname", text("Annie")),
            ("organisation_id", FieldValue::Integer(9)),
            ("newsletter", FieldValue::Boolean(false)),
        ]),
        ..ann.clone()
    };
    assert_eq!(store.patch(ann.id, mine).await, Ok(expected.clone()));
    assert_stored(&store, &expected).await;

    // Columns and a field in one patch.
    let both = UserPatch {
        email: Some(email("Ann.Lee@example.org")),
        role: Some(Role::Admin),
        fields: values(&[("nickname", text("Lee"))]),
        ..UserPatch::default()
    };
    let expected = User {
        email: email("Ann.Lee@example.org"),
        role: Role::Admin,
        fields: values(&[
            ("nickname", text("Lee")),
            ("organisation_id", FieldValue::Integer(9)),
            ("newsletter", FieldValue::Boolean(false)),
        ]),
        ..expected
    };
    assert_eq!(store.patch(ann.id, both).await, Ok(expected.clone()));
    assert_stored(&store, &expected).await;

    // A field patch of an unknown id is NotFound; of a clashing address, a
    // Conflict that writes nothing.
    let field_only = UserPatch {
        fields: values(&[("organisation_id", FieldValue::Integer(1))]),
        ..UserPatch::default()
    };
    assert_eq!(
        store.patch(UserId::random(), field_only).await,
        Err(StoreError::NotFound)
    );
    let bob = store
        .create(user("bob@example.com"))
        .await
        .expect("create bob");
    let clash = UserPatch {
        email: Some(email("ANN.LEE@example.org")),
        fields: values(&[("organisation_id", FieldValue::Integer(5))]),
        ..UserPatch::default()
    };
    assert_eq!(store.patch(bob.id, clash).await, Err(StoreError::Conflict));
    assert_stored(&store, &bob).await;
}

/// Names that are not configured fields are dropped by `create` (the
/// stored user has none of them) and ignored by `patch`.
pub async fn fields_not_configured_are_ignored(store: Store) {
    let mut given = values(&[("organisation_id", FieldValue::Integer(3))]);
    given.set("shoe_size", FieldValue::Integer(44));
    let ann = with_fields("ann@example.com", given);
    let expected = User {
        fields: values(&[
            ("nickname", FieldValue::Null),
            ("organisation_id", FieldValue::Integer(3)),
            ("newsletter", FieldValue::Boolean(false)),
        ]),
        ..ann.clone()
    };
    assert_eq!(store.create(ann.clone()).await, Ok(expected.clone()));
    assert_stored(&store, &expected).await;

    let unknown_only = UserPatch {
        fields: values(&[("shoe_size", FieldValue::Integer(45))]),
        ..UserPatch::default()
    };
    assert_eq!(
        store.patch(ann.id, unknown_only).await,
        Ok(expected.clone())
    );
    let mixed = UserPatch {
        is_active: Some(false),
        fields: values(&[
            ("shoe_size", FieldValue::Integer(45)),
            ("newsletter", FieldValue::Boolean(true)),
        ]),
        ..UserPatch::default()
    };
    let mut after = expected.clone();
    after.is_active = false;
    after.fields.set("newsletter", FieldValue::Boolean(true));
    assert_eq!(store.patch(ann.id, mixed).await, Ok(after.clone()));
    assert_stored(&store, &after).await;
}

/// The longest string (50 characters, none of them ASCII, some outside
/// the BMP), the smallest and largest integers, and a non-ASCII address
/// (SQLite's other write path) round-trip exactly.
pub async fn fields_hold_the_edge_values(store: Store) {
    // Quotes and a backslash too: values are bound, never spliced.
    let longest: String = "é日𝄞'\"\\ß".chars().cycle().take(50).collect();
    assert_eq!(longest.chars().count(), 50);
    let low = with_fields(
        "Jöhn@example.com",
        values(&[
            ("nickname", text(&longest)),
            ("organisation_id", FieldValue::Integer(i32::MIN.into())),
            ("newsletter", FieldValue::Boolean(true)),
        ]),
    );
    assert_eq!(store.create(low.clone()).await, Ok(low.clone()));
    assert_stored(&store, &low).await;
    assert_eq!(
        store.get_by_email(&email("JÖHN@example.com")).await,
        Ok(Some(low.clone()))
    );

    let high = UserPatch {
        email: Some(email("Zoë@example.com")),
        fields: values(&[
            ("organisation_id", FieldValue::Integer(i32::MAX.into())),
            ("nickname", text("")),
        ]),
        ..UserPatch::default()
    };
    let mut expected = low.clone();
    high.apply_to(&mut expected);
    assert_eq!(store.patch(low.id, high).await, Ok(expected.clone()));
    assert_stored(&store, &expected).await;
}

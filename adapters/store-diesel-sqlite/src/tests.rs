//! The SQLite-specific behaviour: opening, pragmas, migrations, adoption of a
//! FastAPI Users database, error mapping, index use. The behaviour every store
//! shares is checked by the store contract suite in `tests/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};
use diesel::sqlite::{Sqlite, SqliteConnection};
use std::error::Error;

use portcullis_domain::{
    EmailAddress, OAuthAccountStore, Role, StoreError, User, UserPatch, UserRepository,
};
use portcullis_store_sql_common::CorruptRow;

use crate::error::Failure;
use crate::schema::{SqliteUserRow, users};
use crate::{SqliteStoreError, SqliteStoreOptions, SqliteUserStore};

/// A database file in the temp folder, removed (with its WAL files) on drop.
struct TempDb(PathBuf);

impl TempDb {
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!("portcullis-sqlite-{}.db", uuid::Uuid::new_v4())))
    }
    fn url(&self) -> String {
        format!("sqlite://{}", self.0.display())
    }
    fn raw(&self) -> SqliteConnection {
        SqliteConnection::establish(&self.0.to_string_lossy()).unwrap()
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
    }
}

fn user(email: &str) -> User {
    User::new(
        EmailAddress::parse(email).unwrap(),
        "$argon2id$v=19$m=19456,t=2,p=1$x$y".into(),
    )
}

async fn migrated(db: &TempDb) -> SqliteUserStore {
    let store = SqliteUserStore::open(&db.url()).await.unwrap();
    store.migrate().await.unwrap();
    store
}

#[derive(QueryableByName)]
struct Row1 {
    #[diesel(sql_type = Text)]
    v: String,
}

fn text(conn: &mut SqliteConnection, sql: &str) -> Vec<String> {
    diesel::sql_query(sql)
        .load::<Row1>(conn)
        .unwrap()
        .into_iter()
        .map(|r| r.v)
        .collect()
}

/// FastAPI Users' DDL as SQLAlchemy emits it for `SQLAlchemyBaseUserTableUUID`
/// on SQLite (the reference service's, without its `role` mixin).
const FASTAPI_USERS_DDL: &str = "CREATE TABLE user (
	id CHAR(36) NOT NULL,
	email VARCHAR(320) NOT NULL,
	hashed_password VARCHAR(1024) NOT NULL,
	is_active BOOLEAN NOT NULL,
	is_superuser BOOLEAN NOT NULL,
	is_verified BOOLEAN NOT NULL,
	PRIMARY KEY (id)
);
CREATE UNIQUE INDEX ix_user_email ON user (email);";

/// FastAPI Users' `accesstoken` table as SQLAlchemy 2.0 emits it for
/// `SQLAlchemyBaseAccessTokenTableUUID` on SQLite (fastapi-users-db-sqlalchemy
/// 7.0.0; `sqlite_master` of a database it created).
const FASTAPI_USERS_ACCESS_TOKEN_DDL: [&str; 2] = [
    "CREATE TABLE accesstoken (
	user_id CHAR(36) NOT NULL, 
	token VARCHAR(43) NOT NULL, 
	created_at TIMESTAMP NOT NULL, 
	PRIMARY KEY (token), 
	FOREIGN KEY(user_id) REFERENCES user (id) ON DELETE cascade
);",
    "CREATE INDEX ix_accesstoken_created_at ON accesstoken (created_at);",
];

/// `accesstoken`'s columns, foreign key and indexes, as SQLite describes
/// them.
fn access_token_schema(conn: &mut SqliteConnection) -> Vec<String> {
    let mut schema = text(
        conn,
        "SELECT cid || ' ' || name || ' ' || type || ' ' || \"notnull\" || ' ' || pk || ' ' || \
         coalesce(dflt_value, '-') AS v FROM pragma_table_info('accesstoken') ORDER BY cid",
    );
    schema.extend(text(
        conn,
        "SELECT \"table\" || '(' || \"to\" || ') from ' || \"from\" || ' on delete ' || on_delete AS v \
         FROM pragma_foreign_key_list('accesstoken')",
    ));
    schema.extend(text(
        conn,
        "SELECT name || ' ' || \"unique\" || ' ' || origin AS v FROM pragma_index_list('accesstoken') \
         ORDER BY name",
    ));
    schema.extend(text(
        conn,
        "SELECT group_concat(name, ',') AS v FROM pragma_index_info('ix_accesstoken_created_at')",
    ));
    schema
}

/// FastAPI Users' `oauth_account` table as SQLAlchemy 2.0 emits it for
/// `SQLAlchemyBaseOAuthAccountTableUUID` on SQLite (captured from it).
const FASTAPI_USERS_OAUTH_DDL: &str =
    include_str!("../../../tests/fixtures/fastapi_users_sql/sqlite_oauth_schema.sql");

/// `oauth_account`'s columns, foreign key and indexes (with their
/// columns), as SQLite describes them.
fn oauth_account_schema(conn: &mut SqliteConnection) -> Vec<String> {
    let mut schema = text(
        conn,
        "SELECT cid || ' ' || name || ' ' || type || ' ' || \"notnull\" || ' ' || pk || ' ' || \
         coalesce(dflt_value, '-') AS v FROM pragma_table_info('oauth_account') ORDER BY cid",
    );
    schema.extend(text(
        conn,
        "SELECT \"table\" || '(' || \"to\" || ') from ' || \"from\" || ' on delete ' || on_delete AS v \
         FROM pragma_foreign_key_list('oauth_account')",
    ));
    schema.extend(text(
        conn,
        "SELECT l.name || ' ' || l.\"unique\" || ' ' || l.origin || ' ' || \
         (SELECT group_concat(name, ',') FROM pragma_index_info(l.name)) AS v \
         FROM pragma_index_list('oauth_account') AS l ORDER BY l.name",
    ));
    schema
}

/// [`fastapi_users_made`] with the one index Portcullis adds to
/// `accesstoken` (on `user_id`: a user's tokens, for sign-out everywhere
/// and the cascade of a user's deletion).
fn fastapi_users_made_and_indexed() -> SqliteConnection {
    let mut conn = fastapi_users_made();
    conn.batch_execute("CREATE INDEX ix_portcullis_accesstoken_user_id ON accesstoken (user_id);")
        .unwrap();
    conn
}

/// An in-memory database with FastAPI Users' two tables.
fn fastapi_users_made() -> SqliteConnection {
    let mut conn = SqliteConnection::establish(":memory:").unwrap();
    conn.batch_execute(FASTAPI_USERS_DDL).unwrap();
    conn.batch_execute(&FASTAPI_USERS_ACCESS_TOKEN_DDL.join("\n"))
        .unwrap();
    conn
}

/// The reference service's DDL (FastAPI Users plus a `role` column mixed in
/// first, no database default), as `sqlite3 .schema` shows it.
const REFERENCE_DDL: &str = "CREATE TABLE user (
	role VARCHAR(20) NOT NULL,
	id CHAR(36) NOT NULL,
	email VARCHAR(320) NOT NULL,
	hashed_password VARCHAR(1024) NOT NULL,
	is_active BOOLEAN NOT NULL,
	is_superuser BOOLEAN NOT NULL,
	is_verified BOOLEAN NOT NULL,
	PRIMARY KEY (id)
);
CREATE UNIQUE INDEX ix_user_email ON user (email);";

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_folder_is_a_clear_error() {
    let url = "sqlite:///no/such/folder/portcullis.db";
    let err = SqliteUserStore::open(url).await.unwrap_err();
    assert!(matches!(err, SqliteStoreError::Open { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("folder /no/such/folder does not exist"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_that_is_not_a_database_is_a_clear_error() {
    let db = TempDb::new();
    std::fs::write(
        &db.0,
        "certainly not an SQLite database, but long enough to have a header",
    )
    .unwrap();
    let err = SqliteUserStore::open(&db.url()).await.unwrap_err();
    assert!(matches!(err, SqliteStoreError::Open { .. }), "{err}");
    assert!(err.to_string().contains("not a database"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_folder_and_a_bad_url_are_clear_errors() {
    let dir = std::env::temp_dir();
    let err = SqliteUserStore::open(&format!("sqlite://{}", dir.display()))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("a folder, not a database file"),
        "{err}"
    );
    let err = SqliteUserStore::open("postgres://localhost/db")
        .await
        .unwrap_err();
    assert!(matches!(err, SqliteStoreError::InvalidUrl { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_connection_gets_the_pragmas() {
    let db = TempDb::new();
    let store = SqliteUserStore::open(&db.url()).await.unwrap();
    let pool = store.pool.clone();
    let got = tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().unwrap();
        [
            "SELECT CAST(journal_mode AS TEXT) AS v FROM pragma_journal_mode",
            "SELECT CAST(timeout AS TEXT) AS v FROM pragma_busy_timeout",
            "SELECT CAST(foreign_keys AS TEXT) AS v FROM pragma_foreign_keys",
            "SELECT CAST(synchronous AS TEXT) AS v FROM pragma_synchronous",
        ]
        .map(|sql| text(&mut conn, sql))
    })
    .await
    .unwrap();
    assert_eq!(got.map(|v| v[0].clone()), ["wal", "5000", "1", "1"]);
}

/// `PRAGMA mmap_size` (not a table-valued pragma).
fn mmap_size(conn: &mut SqliteConnection) -> String {
    #[derive(QueryableByName)]
    struct MmapSize {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        mmap_size: i64,
    }
    let row: MmapSize = diesel::sql_query("PRAGMA mmap_size")
        .get_result(conn)
        .unwrap();
    row.mmap_size.to_string()
}

/// `read` on this thread's reader of `store`, given the store's rowid hints.
fn on_reader<T>(
    store: &SqliteUserStore,
    read: impl FnOnce(&mut SqliteConnection, &crate::inline_read::RowidHints) -> T,
) -> T {
    store
        .inline_reads
        .as_ref()
        .expect("a file has inline reads")
        .run(|conn, hints, _| Ok(read(conn, hints)))
        .expect("this thread's reader")
}

fn reader_pragmas(store: &SqliteUserStore) -> [String; 4] {
    on_reader(store, |conn, _| {
        [
            text(
                conn,
                "SELECT CAST(timeout AS TEXT) AS v FROM pragma_busy_timeout",
            )[0]
            .clone(),
            text(
                conn,
                "SELECT CAST(query_only AS TEXT) AS v FROM pragma_query_only",
            )[0]
            .clone(),
            mmap_size(conn),
            text(
                conn,
                "SELECT CAST(journal_mode AS TEXT) AS v FROM pragma_journal_mode",
            )[0]
            .clone(),
        ]
    })
}

/// The thread's own reading connection never waits, never writes, and maps
/// the file (1 GiB by default, as set); the pool's connections, which
/// write, never map it.
#[tokio::test]
async fn the_reading_connection_of_a_thread_maps_the_file_and_only_reads() {
    let db = TempDb::new();
    let store = SqliteUserStore::open(&db.url()).await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(reader_pragmas(&store), ["0", "1", "1073741824", "wal"]);
    let pool = store.pool.clone();
    let pooled = tokio::task::spawn_blocking(move || mmap_size(&mut pool.get().unwrap()))
        .await
        .unwrap();
    assert_eq!(pooled, "0");

    for (size, shown) in [(0, "0"), (4096 * 10, "40960")] {
        let options = SqliteStoreOptions {
            read_mmap_size: size,
            ..SqliteStoreOptions::default()
        };
        let other = SqliteUserStore::open_existing(&db.url(), options)
            .await
            .unwrap();
        assert_eq!(reader_pragmas(&other), ["0", "1", shown, "wal"]);
        // Fields of their own: new readers, same mapping.
        let other = other.with_user_fields(portcullis_domain::UserFields::none());
        assert_eq!(reader_pragmas(&other)[2], shown);
    }
}

/// A read that fails drops the thread's connection (whatever state it is
/// in stays out) but not the store's rowid hints: the next read opens a
/// new connection, set up as every reader is, and still knows where the rows
/// it found lie.
#[tokio::test]
async fn a_failed_read_replaces_the_connection_and_keeps_the_hints() {
    let db = TempDb::new();
    let store = SqliteUserStore::open(&db.url()).await.unwrap();
    store.migrate().await.unwrap();
    let id = uuid::Uuid::from_u128(0x0f8f_ad5b_d9cb_469f_a165_7086_7728_950e);
    let cache_size = |conn: &mut SqliteConnection| {
        text(
            conn,
            "SELECT CAST(cache_size AS TEXT) AS v FROM pragma_cache_size",
        )[0]
        .clone()
    };
    let default_cache = on_reader(&store, |conn, hints| {
        let default = cache_size(conn);
        // A mark of this connection.
        conn.batch_execute("PRAGMA cache_size = -1234").unwrap();
        hints.put(&id, 77);
        default
    });
    assert_ne!(default_cache, "-1234");
    assert_eq!(on_reader(&store, |conn, _| cache_size(conn)), "-1234");

    let reads = store.inline_reads.as_ref().unwrap();
    let failed = reads.run(|conn, _, _| {
        diesel::sql_query("SELECT * FROM no_such_table")
            .execute(conn)
            .map(drop)
    });
    assert_eq!(failed, None, "a failed read is the pool's to answer");

    let (cache, hint) = on_reader(&store, |conn, hints| (cache_size(conn), hints.get(&id)));
    assert_eq!(cache, default_cache, "a new connection");
    assert_eq!(hint, Some(77), "the hints kept");
    assert_eq!(reader_pragmas(&store), ["0", "1", "1073741824", "wal"]);
}

/// How many batches of more than one read this thread's reader of `store`
/// ran in one transaction.
fn shared_transactions(store: &SqliteUserStore) -> usize {
    store.inline_reads.as_ref().unwrap().shared_transactions()
}

/// Lookups asked by tasks of one thread before any of them runs again go
/// in one read transaction, each answered with its own row (or none); a
/// lookup alone is a plain autocommit `SELECT`. A batch sees what was
/// written before it: a user deactivated between two batches is seen so.
#[tokio::test]
async fn lookups_asked_together_on_one_thread_share_one_read_transaction() {
    let db = TempDb::new();
    let store = migrated(&db).await;
    let ann = store.create(user("ann@example.com")).await.unwrap();
    let bob = store.create(user("bob@example.com")).await.unwrap();
    let nobody = portcullis_domain::UserId::random();
    assert_eq!(store.get(ann.id).await.unwrap(), Some(ann.clone()));
    let before = shared_transactions(&store);

    let (a, b, none, a_again) = tokio::join!(
        store.get(ann.id),
        store.get(bob.id),
        store.get(nobody),
        store.get(ann.id)
    );
    assert_eq!(a.unwrap(), Some(ann.clone()));
    assert_eq!(b.unwrap(), Some(bob.clone()));
    assert_eq!(none.unwrap(), None);
    assert_eq!(a_again.unwrap(), Some(ann.clone()));
    assert_eq!(shared_transactions(&store), before + 1, "one batch");

    assert_eq!(store.get(bob.id).await.unwrap(), Some(bob.clone()));
    assert_eq!(shared_transactions(&store), before + 1, "alone: no BEGIN");

    let off = store
        .patch(
            ann.id,
            UserPatch {
                is_active: Some(false),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    let (a, b) = tokio::join!(store.get(ann.id), store.get(bob.id));
    assert_eq!(a.unwrap(), Some(off), "the deactivation is seen");
    assert_eq!(b.unwrap(), Some(bob));
    assert_eq!(shared_transactions(&store), before + 2);
}

/// A lookup whose asker is gone before its batch ran (its request
/// cancelled) leaves nobody waiting: the next asker on the thread runs the
/// batch and gets its answer.
#[tokio::test]
async fn a_lookup_whose_asker_is_gone_holds_up_no_other() {
    let db = TempDb::new();
    let store = migrated(&db).await;
    let ann = store.create(user("ann@example.com")).await.unwrap();
    let bob = store.create(user("bob@example.com")).await.unwrap();
    {
        let mut gone = std::pin::pin!(store.get(ann.id));
        let polled = gone
            .as_mut()
            .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
        assert!(polled.is_pending(), "asked, waiting for its batch");
    }
    assert_eq!(store.get(bob.id).await.unwrap(), Some(bob));
    assert_eq!(store.get(ann.id).await.unwrap(), Some(ann));
}

/// A lookup asked on one thread whose task then runs on another (a
/// multi-threaded runtime moved it) is answered there, through the pool;
/// the thread it was asked on skips it in its next batch.
#[tokio::test(flavor = "multi_thread")]
async fn a_lookup_that_moved_to_another_thread_is_answered_there() {
    let db = TempDb::new();
    let store = migrated(&db).await;
    let ann = store.create(user("ann@example.com")).await.unwrap();
    let bob = store.create(user("bob@example.com")).await.unwrap();
    // The thread it was asked on lives on (its reader, with the waiting
    // lookup, too) until the lookup is answered.
    let (send_back, moved) = std::sync::mpsc::channel();
    let (answered, done) = std::sync::mpsc::channel::<()>();
    let asked_on = {
        let store = store.clone();
        std::thread::spawn(move || {
            let mover = store.clone();
            let mut moved = Box::pin(async move { mover.get(ann.id).await });
            let polled = moved
                .as_mut()
                .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
            assert!(polled.is_pending(), "asked, waiting for its batch");
            send_back.send(moved).unwrap();
            done.recv().unwrap();
            // Its next batch skips the moved lookup and serves its own.
            let here = run_on_this_thread(store.get(bob.id)).expect("read on the thread");
            assert_eq!(here.unwrap(), Some(bob));
        })
    };
    let moved = moved.recv().unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(30), moved)
        .await
        .expect("answered, not left waiting for the other thread");
    assert_eq!(answer.unwrap(), Some(ann));
    answered.send(()).unwrap();
    asked_on.join().expect("no panic");
}

/// A batch that fails (here its `BEGIN`: the thread's connection was left
/// inside a transaction, on an old snapshot) drops the connection, and
/// every lookup of the batch is answered through the pool, with the rows
/// as they are now. The thread's next batch runs on a new connection.
#[tokio::test]
async fn a_failed_batch_is_answered_through_the_pool() {
    let db = TempDb::new();
    let store = migrated(&db).await;
    let ann = store.create(user("ann@example.com")).await.unwrap();
    let (a, a_again) = tokio::join!(store.get(ann.id), store.get(ann.id));
    assert_eq!(
        (a.unwrap(), a_again.unwrap()),
        (Some(ann.clone()), Some(ann.clone()))
    );
    assert_eq!(shared_transactions(&store), 1);
    on_reader(&store, |conn, _| {
        conn.batch_execute("BEGIN; SELECT count(*) FROM user;")
            .unwrap()
    });
    let carol = store.create(user("carol@example.com")).await.unwrap();
    let (a, c) = tokio::join!(store.get(ann.id), store.get(carol.id));
    assert_eq!(a.unwrap(), Some(ann.clone()));
    assert_eq!(c.unwrap(), Some(carol.clone()), "not the old snapshot");
    assert_eq!(shared_transactions(&store), 0, "a new connection");
    let (a, c) = tokio::join!(store.get(ann.id), store.get(carol.id));
    assert_eq!((a.unwrap(), c.unwrap()), (Some(ann), Some(carol)));
    assert_eq!(shared_transactions(&store), 1, "batched on it");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_database_gets_fastapi_users_schema_and_migrating_again_is_harmless() {
    let db = TempDb::new();
    let store = SqliteUserStore::open(&db.url()).await.unwrap();
    let applied = store.migrate().await.unwrap();
    assert_eq!(applied.len(), 6, "{applied:?}");
    assert_eq!(store.migrate().await.unwrap(), Vec::<String>::new());
    let mut conn = db.raw();
    let throttle = text(
        &mut conn,
        "SELECT name || ' ' || type || ' ' || \"notnull\" || ' ' || pk AS v \
         FROM pragma_table_info('portcullis_throttle') ORDER BY cid",
    );
    assert_eq!(
        throttle,
        [
            "kind VARCHAR(32) 1 1",
            "key VARCHAR(320) 1 2",
            "window_start BIGINT 1 0",
            "count INTEGER 1 0"
        ]
    );
    let purge_index = text(
        &mut conn,
        "SELECT group_concat(name, ',') AS v FROM pragma_index_info('ix_portcullis_throttle_kind_window_start')",
    );
    assert_eq!(purge_index, ["kind,window_start"]);
    let columns = text(
        &mut conn,
        "SELECT name || ' ' || type || ' ' || \"notnull\" AS v FROM pragma_table_info('user') ORDER BY cid",
    );
    assert_eq!(
        columns,
        [
            "id CHAR(36) 1",
            "email VARCHAR(320) 1",
            "hashed_password VARCHAR(1024) 1",
            "is_active BOOLEAN 1",
            "is_superuser BOOLEAN 1",
            "is_verified BOOLEAN 1",
            "role VARCHAR(20) 1",
            "portcullis_session_stamp BIGINT 1"
        ]
    );
    // FastAPI Users' accesstoken table, as its SQLAlchemy adapter makes it,
    // plus Portcullis' index on the user.
    assert_eq!(
        access_token_schema(&mut conn),
        access_token_schema(&mut fastapi_users_made_and_indexed())
    );
    let indexes = text(
        &mut conn,
        "SELECT sql AS v FROM sqlite_master WHERE type = 'index' AND tbl_name = 'user' \
         AND sql IS NOT NULL ORDER BY name",
    );
    assert_eq!(
        indexes,
        [
            "CREATE UNIQUE INDEX ix_user_email ON user (email)",
            "CREATE UNIQUE INDEX ix_user_email_lower ON user (lower(email))"
        ]
    );
    // FastAPI Users' oauth_account table, as its SQLAlchemy adapter makes it
    // (the DDL captured from it), and Portcullis' unique index beside.
    let mut fastapi_users = SqliteConnection::establish(":memory:").unwrap();
    fastapi_users.batch_execute(FASTAPI_USERS_DDL).unwrap();
    fastapi_users
        .batch_execute(FASTAPI_USERS_OAUTH_DDL)
        .unwrap();
    let ours = oauth_account_schema(&mut conn);
    let theirs = oauth_account_schema(&mut fastapi_users);
    let unique = "ix_oauth_account_oauth_name_account_id 1 c oauth_name,account_id".to_owned();
    let mut expected: Vec<String> = theirs.into_iter().chain([unique]).collect();
    expected.sort();
    let mut ours = ours;
    ours.sort();
    assert_eq!(ours, expected);
    // Stored as FastAPI Users stores it: text UUID, hyphenated lowercase; 0/1.
    let ann = store.create(user("Ann@example.com")).await.unwrap();
    let row = text(
        &mut conn,
        "SELECT id || '|' || typeof(id) || '|' || is_active || is_superuser || is_verified || '|' || role || '|' || portcullis_session_stamp AS v FROM user",
    );
    assert_eq!(row, [format!("{}|text|100|student|0", ann.id)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fastapi_users_database_is_adopted_in_place() {
    let db = TempDb::new();
    let id = "10e80a18-88e2-496b-9ab7-b1c109d6d5ea";
    {
        let mut conn = db.raw();
        conn.batch_execute(FASTAPI_USERS_DDL).unwrap();
        conn.batch_execute(&format!(
            "INSERT INTO user VALUES ('{id}', 'Foo.Bar@example.com', '$argon2id$v=19$m=65536,t=3,p=4$abc$def', 1, 1, 0)"
        ))
        .unwrap();
    }
    let store = migrated(&db).await;
    let found = store
        .get_by_email(&EmailAddress::parse("foo.bar@EXAMPLE.com").unwrap())
        .await
        .unwrap()
        .expect("the FastAPI Users row is kept");
    assert_eq!(found.id.to_string(), id);
    assert_eq!(found.email.as_str(), "Foo.Bar@example.com");
    assert_eq!(found.role, Role::Student);
    assert!(found.is_active && found.is_superuser && !found.is_verified);
    assert_eq!(
        found.hashed_password,
        "$argon2id$v=19$m=65536,t=3,p=4$abc$def"
    );
    // case-insensitive uniqueness now holds
    assert_eq!(
        store.create(user("FOO.BAR@example.com")).await,
        Err(StoreError::Conflict)
    );
    // and migrating again changes nothing
    assert_eq!(store.migrate().await.unwrap(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reference_services_database_with_its_own_role_column_is_adopted() {
    let db = TempDb::new();
    {
        let mut conn = db.raw();
        conn.batch_execute(REFERENCE_DDL).unwrap();
        conn.batch_execute(
            "INSERT INTO user VALUES ('instructor', '18418b53-acf3-4f70-a87a-5c81b0b0fadf', 'Zed.Bar@example.com', 'h', 1, 0, 1)",
        )
        .unwrap();
    }
    let store = migrated(&db).await;
    let zed = store
        .get_by_email(&EmailAddress::parse("zed.bar@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(zed.role, Role::Instructor);
    let mut admin = user("New.Admin@example.com");
    admin.role = Role::Admin;
    store.create(admin.clone()).await.unwrap();
    assert_eq!(store.get(admin.id).await.unwrap(), Some(admin));
}

#[tokio::test(flavor = "multi_thread")]
async fn adopting_a_table_with_one_account_stored_twice_names_the_clash_and_changes_nothing() {
    let db = TempDb::new();
    {
        let mut conn = db.raw();
        conn.batch_execute(FASTAPI_USERS_DDL).unwrap();
        conn.batch_execute(
            "INSERT INTO user VALUES ('10e80a18-88e2-496b-9ab7-b1c109d6d5ea', 'Ann@example.com', 'h', 1, 0, 0);
             INSERT INTO user VALUES ('18418b53-acf3-4f70-a87a-5c81b0b0fadf', 'ann@example.com', 'h', 1, 0, 0);
             INSERT INTO user VALUES ('28418b53-acf3-4f70-a87a-5c81b0b0fadf', 'Jöhn@example.com', 'h', 1, 0, 0);
             INSERT INTO user VALUES ('38418b53-acf3-4f70-a87a-5c81b0b0fadf', 'JÖHN@example.com', 'h', 1, 0, 0);",
        )
        .unwrap();
    }
    let store = SqliteUserStore::open(&db.url()).await.unwrap();
    let err = store.migrate().await.unwrap_err();
    let text_ = err.to_string();
    assert!(matches!(err, SqliteStoreError::Migration { .. }), "{text_}");
    assert!(
        text_.contains("Ann@example.com / ann@example.com"),
        "{text_}"
    );
    assert!(
        text_.contains("JÖHN@example.com / Jöhn@example.com"),
        "{text_}"
    );
    assert!(text_.contains("Merge or rename"), "{text_}");
    let mut conn = db.raw();
    assert!(
        text(
            &mut conn,
            "SELECT name AS v FROM pragma_table_info('user') WHERE name = 'role'"
        )
        .is_empty(),
        "rolled back"
    );
}

/// Two links of one provider account, as FastAPI Users may have written
/// them (it only looks before it links), and a third, single link.
const TWICE_LINKED: &str = "
INSERT INTO user VALUES ('10e80a18-88e2-496b-9ab7-b1c109d6d5ea', 'ann@example.com', 'h', 1, 0, 0);
INSERT INTO user VALUES ('18418b53-acf3-4f70-a87a-5c81b0b0fadf', 'bob@example.com', 'h', 1, 0, 0);
INSERT INTO oauth_account VALUES ('a0000000-0000-4000-8000-000000000001', '10e80a18-88e2-496b-9ab7-b1c109d6d5ea', 'github', 't1', NULL, NULL, '4242', 'ann@example.com');
INSERT INTO oauth_account VALUES ('a0000000-0000-4000-8000-000000000002', '18418b53-acf3-4f70-a87a-5c81b0b0fadf', 'github', 't2', 1767225600, 'r2', '4242', 'bob@example.com');
INSERT INTO oauth_account VALUES ('a0000000-0000-4000-8000-000000000003', '18418b53-acf3-4f70-a87a-5c81b0b0fadf', 'google', 't3', NULL, NULL, '4242', 'bob@example.com');";

#[tokio::test(flavor = "multi_thread")]
async fn adopting_oauth_accounts_linked_twice_names_them_and_changes_nothing() {
    let db = TempDb::new();
    {
        let mut conn = db.raw();
        conn.batch_execute(FASTAPI_USERS_DDL).unwrap();
        conn.batch_execute(FASTAPI_USERS_OAUTH_DDL).unwrap();
        conn.batch_execute(TWICE_LINKED).unwrap();
    }
    let store = SqliteUserStore::open(&db.url()).await.unwrap();
    // check-config's view says the same as migrate.
    let listed = store.pending_migrations().await.unwrap_err().to_string();
    let err = store.migrate().await.unwrap_err();
    let text_ = err.to_string();
    assert!(matches!(err, SqliteStoreError::Migration { .. }), "{text_}");
    for said in [&text_, &listed] {
        assert!(
            said.contains("1 provider account(s) are linked more than once"),
            "{said}"
        );
        assert!(said.contains("github account \"4242\": 2 links"), "{said}");
        assert!(said.contains("Nothing was changed"), "{said}");
    }
    assert!(!text_.contains("google"), "{text_}");
    let mut conn = db.raw();
    assert!(
        text(
            &mut conn,
            "SELECT name AS v FROM pragma_table_info('user') WHERE name = 'role'"
        )
        .is_empty(),
        "rolled back"
    );
    assert_eq!(
        text(&mut conn, "SELECT count(*) AS v FROM oauth_account"),
        ["3"]
    );
    // The operator keeps one link; then the table is adopted with its rows.
    conn.batch_execute(
        "DELETE FROM oauth_account WHERE id = 'a0000000-0000-4000-8000-000000000002'",
    )
    .unwrap();
    store.migrate().await.unwrap();
    let bob = portcullis_domain::UserId::from_uuid(
        "18418b53-acf3-4f70-a87a-5c81b0b0fadf".parse().unwrap(),
    );
    let kept = store.oauth_accounts_of(bob).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        (kept[0].oauth_name.as_str(), kept[0].access_token.as_str()),
        ("google", "t3")
    );
    let ann = store
        .get_oauth_account("github", "4242")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ann.account_email, "ann@example.com");
    assert_eq!(
        text(
            &mut conn,
            "SELECT name AS v FROM sqlite_master WHERE name = 'ix_oauth_account_oauth_name_account_id'"
        ),
        ["ix_oauth_account_oauth_name_account_id"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_oauth_account_row_is_unavailable_not_a_panic() {
    let db = TempDb::new();
    let store = migrated(&db).await;
    let ann = store.create(user("ann@example.com")).await.unwrap();
    db.raw()
        .batch_execute(&format!(
            "INSERT INTO oauth_account VALUES ('not-a-uuid', '{}', 'github', 't', NULL, NULL, '1', 'a@example.com')",
            ann.id
        ))
        .unwrap();
    assert!(matches!(
        store.get_oauth_account("github", "1").await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store.oauth_accounts_of(ann.id).await,
        Err(StoreError::Unavailable(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_user_table_is_refused() {
    let db = TempDb::new();
    db.raw()
        .batch_execute("CREATE TABLE user (name TEXT)")
        .unwrap();
    let store = SqliteUserStore::open(&db.url()).await.unwrap();
    let err = store.migrate().await.unwrap_err().to_string();
    assert!(err.contains("not a FastAPI Users user table"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_write_lock_past_the_busy_timeout_is_unavailable_not_a_panic() {
    let db = TempDb::new();
    migrated(&db).await;
    let options = SqliteStoreOptions {
        busy_timeout: Duration::from_millis(100),
        ..SqliteStoreOptions::default()
    };
    let store = SqliteUserStore::open_with(&db.url(), options)
        .await
        .unwrap();
    let mut blocker = db.raw();
    // The pool may still be setting up its connections (a brief write
    // lock of its own): the blocker waits for that, then holds the lock.
    blocker
        .batch_execute("PRAGMA busy_timeout = 10000; BEGIN IMMEDIATE")
        .unwrap();
    for email in ["busy@example.com", "bü@example.com"] {
        match store.create(user(email)).await {
            Err(err @ StoreError::Unavailable(_)) => {
                assert!(err.to_string().contains("locked"), "{err}");
                // The cause is kept, down to Diesel's own error.
                let failure = err.source().expect("the failure is the source");
                assert!(
                    matches!(
                        failure.downcast_ref::<Failure>(),
                        Some(Failure::Db(diesel::result::Error::DatabaseError(..)))
                    ),
                    "{failure:?}"
                );
                assert!(failure.source().is_some(), "{failure:?}");
            }
            other => panic!("{email}: expected Unavailable, got {other:?}"),
        }
    }
    blocker.batch_execute("ROLLBACK").unwrap();
    store.create(user("busy@example.com")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_table_or_a_corrupt_row_is_unavailable() {
    let db = TempDb::new();
    let store = SqliteUserStore::open(&db.url()).await.unwrap();
    let err = store.get(user("a@example.com").id).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("no such table"), "{err}");
    let failure = err.source().and_then(|e| e.downcast_ref::<Failure>());
    assert!(matches!(failure, Some(Failure::Db(_))), "{failure:?}");
    store.migrate().await.unwrap();
    db.raw()
        .batch_execute("INSERT INTO user (id, email, hashed_password, is_active, is_superuser, is_verified, role) VALUES ('not-a-uuid', 'x@example.com', 'h', 1, 0, 0, 'student'), ('18418b53-acf3-4f70-a87a-5c81b0b0fadf', 'y@example.com', 'h', 1, 0, 0, 'emperor')")
        .unwrap();
    for (email, part) in [
        ("x@example.com", "not-a-uuid"),
        ("y@example.com", "emperor"),
    ] {
        let got = store
            .get_by_email(&EmailAddress::parse(email).unwrap())
            .await;
        let Err(err @ StoreError::Unavailable(_)) = got else {
            panic!("{email}: expected Unavailable, got {got:?}");
        };
        assert!(err.to_string().contains(part), "{email}: {err}");
        let cause = err.source().and_then(|e| e.downcast_ref::<CorruptRow>());
        assert!(
            cause.is_some(),
            "{email}: the corrupt row is the source: {err:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_in_memory_database_works_for_tests() {
    let store = SqliteUserStore::open("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let ann = store.create(user("Ann@example.com")).await.unwrap();
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.get(ann.id).await })
        })
        .collect();
    for h in handles {
        assert!(h.await.unwrap().unwrap().is_some());
    }
    assert_eq!(store.location(), ":memory:");
    store.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn patching_a_user_keeps_its_own_address_in_another_case() {
    let db = TempDb::new();
    let store = migrated(&db).await;
    for email in ["Ann@example.com", "Jöhn@example.com"] {
        let mut u = store.create(user(email)).await.unwrap();
        u.email = EmailAddress::parse(&email.to_uppercase().replace("EXAMPLE.COM", "example.com"))
            .unwrap();
        u.is_verified = true;
        let patch = UserPatch {
            email: Some(u.email.clone()),
            is_verified: Some(true),
            ..UserPatch::default()
        };
        assert_eq!(store.patch(u.id, patch).await, Ok(u.clone()));
        assert_eq!(store.get(u.id).await.unwrap(), Some(u));
    }
}

/// `EXPLAIN QUERY PLAN` in front of a Diesel query, binds and all.
struct Explain<Q>(Q);

impl<Q> diesel::query_builder::QueryId for Explain<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q> diesel::query_builder::Query for Explain<Q> {
    type SqlType = (Integer, Integer, Integer, Text);
}

impl<Q: diesel::query_builder::QueryFragment<Sqlite>> diesel::query_builder::QueryFragment<Sqlite>
    for Explain<Q>
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, Sqlite>,
    ) -> QueryResult<()> {
        out.push_sql("EXPLAIN QUERY PLAN ");
        self.0.walk_ast(out.reborrow())
    }
}

impl<Q> RunQueryDsl<SqliteConnection> for Explain<Q> {}

fn plan<Q>(conn: &mut SqliteConnection, query: Q) -> String
where
    Q: diesel::query_builder::QueryFragment<Sqlite>,
{
    Explain(query)
        .load::<(i32, i32, i32, String)>(conn)
        .unwrap()
        .into_iter()
        .map(|r| r.3)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Issue 16 (a million users, a session each): the statements the store
/// sends per request, per sign-out and per purge find their rows through an
/// index, never reading a whole table — a user's tokens (sign-out
/// everywhere, revocation, the cascade of a user's deletion) through the
/// index on `accesstoken.user_id` that FastAPI Users' table lacks. The
/// statements are the store's own.
#[test]
fn session_count_and_user_statements_use_an_index() {
    use portcullis_store_sql_common::fields::Dialect::Sqlite;
    use portcullis_store_sql_common::{sessions, throttle};
    let db = TempDb::new();
    let mut conn = db.raw();
    crate::connection::ConnectionSetup {
        busy_timeout: Duration::from_secs(1),
    }
    .apply(&mut conn)
    .unwrap();
    crate::migrate::run(&mut conn, &portcullis_domain::UserFields::none()).unwrap();
    let explain =
        |conn: &mut SqliteConnection, sql: &str| plan(conn, diesel::sql_query(sql.to_owned()));
    for (sql, index) in [
        (
            sessions::delete_access_tokens_of_sql(Sqlite),
            "INDEX ix_portcullis_accesstoken_user_id (user_id=?)",
        ),
        (
            sessions::purge_access_tokens_sql(Sqlite),
            "INDEX ix_accesstoken_created_at (created_at<?)",
        ),
        (
            throttle::purge_sql(Sqlite),
            "INDEX ix_portcullis_throttle_kind_window_start (kind=? AND window_start<?)",
        ),
    ] {
        // `USING INDEX` or `USING COVERING INDEX`
        let p = explain(&mut conn, &sql);
        assert!(p.contains(index), "{sql}: {p}");
        assert!(!p.contains("SCAN"), "{sql}: {p}");
    }
    let p = plan(
        &mut conn,
        crate::access_token::lookup(
            "kX3vQ0m9Zb1pYtR7cW2eH5uJ8nL4sD6fA0gB3iK-_yz",
            "2026-12-02 10:00:00.000000",
        ),
    );
    assert!(
        p.contains("INDEX sqlite_autoindex_accesstoken_1 (token=?)") && !p.contains("SCAN"),
        "{p}"
    );
    let key = || "0f8fad5b-d9cb-469f-a165-70867728950e".to_owned();
    let fields = || crate::store::FieldsJsonOf::<true>("'{}'".into());
    let p = plan(&mut conn, crate::store::by_id(key(), fields()));
    assert!(p.contains("INDEX sqlite_autoindex_user_1 (id=?)"), "{p}");
    // With a rowid hint: the table's own B-tree, no index.
    let p = plan(&mut conn, crate::store::by_rowid_and_id(7, key(), fields()));
    assert_eq!(p, "SEARCH user USING INTEGER PRIMARY KEY (rowid=?)");
}

/// The rowid of the user whose id is `id`, read on a connection of its own.
fn rowid_of(db: &TempDb, id: &portcullis_domain::UserId) -> Option<i64> {
    use crate::store::Rowid;
    users::table
        .filter(users::id.eq(id.to_string()))
        .select(Rowid)
        .first(&mut db.raw())
        .optional()
        .unwrap()
}

/// This thread's reader's hint for `id`.
fn hint_of(store: &SqliteUserStore, id: &portcullis_domain::UserId) -> Option<i64> {
    on_reader(store, |_, hints| hints.get(id.as_uuid()))
}

/// Issue 16: a lookup by id remembers where the row was and goes there
/// first next time, by rowid and id both, so a hint gone wrong (the row
/// deleted, its rowid taken by another user, the user deleted and made
/// again) finds nothing and the id's index answers as before; a row read
/// through a hint is the row as it is now.
#[tokio::test]
async fn a_lookup_by_id_goes_first_where_the_row_was_and_checks_the_id() {
    let db = TempDb::new();
    let store = SqliteUserStore::open(&db.url()).await.unwrap();
    store.migrate().await.unwrap();
    let user = |name: &str| {
        User::new(
            EmailAddress::parse(&format!("{name}@example.com")).unwrap(),
            "$argon2id$…".into(),
        )
    };
    let (ann, bob, cid) = (user("ann"), user("bob"), user("cid"));
    for u in [&ann, &bob, &cid] {
        store.create(u.clone()).await.unwrap();
    }
    // Current-thread runtime: every read below is this thread's reader's.
    assert_eq!(store.get(bob.id).await.unwrap(), Some(bob.clone()));
    assert_eq!(store.get(cid.id).await.unwrap(), Some(cid.clone()));
    let cid_rowid = rowid_of(&db, &cid.id).unwrap();
    assert_eq!(hint_of(&store, &bob.id), rowid_of(&db, &bob.id));
    assert_eq!(hint_of(&store, &cid.id), Some(cid_rowid));
    assert_eq!(hint_of(&store, &ann.id), None);

    // Read through the hint: what the row holds now.
    let patch = UserPatch {
        is_active: Some(false),
        ..UserPatch::default()
    };
    let bob = store.patch(bob.id, patch).await.unwrap();
    assert!(!bob.is_active);
    assert_eq!(store.get(bob.id).await.unwrap(), Some(bob.clone()));

    // Cid's rowid (the table's highest) goes to the next user made: the
    // hint now points at Dee's row.
    store.delete(cid.id).await.unwrap();
    let dee = user("dee");
    store.create(dee.clone()).await.unwrap();
    assert_eq!(
        rowid_of(&db, &dee.id),
        Some(cid_rowid),
        "the rowid was taken again"
    );
    assert_eq!(hint_of(&store, &cid.id), Some(cid_rowid));
    assert_eq!(store.get(cid.id).await.unwrap(), None);
    assert_eq!(hint_of(&store, &cid.id), None, "a wrong hint is forgotten");
    assert_eq!(store.get(dee.id).await.unwrap(), Some(dee.clone()));
    assert_eq!(hint_of(&store, &dee.id), Some(cid_rowid));

    // Bob deleted and made again with his id: another rowid.
    let bob_rowid = hint_of(&store, &bob.id).unwrap();
    store.delete(bob.id).await.unwrap();
    let again = User {
        is_active: true,
        ..bob.clone()
    };
    store.create(again.clone()).await.unwrap();
    let moved = rowid_of(&db, &bob.id).unwrap();
    assert_ne!(moved, bob_rowid, "the row moved");
    assert_eq!(store.get(bob.id).await.unwrap(), Some(again));
    assert_eq!(hint_of(&store, &bob.id), Some(moved));
}

/// The hints are the store's, not a thread's: where one thread found a row
/// is where every other thread's reader goes first, and so do the readers
/// of the same file with other fields.
#[tokio::test]
async fn a_row_one_thread_found_is_hinted_to_the_others() {
    let db = TempDb::new();
    let store = SqliteUserStore::open(&db.url()).await.unwrap();
    store.migrate().await.unwrap();
    let ann = User::new(
        EmailAddress::parse("ann@example.com").unwrap(),
        "$argon2id$…".into(),
    );
    store.create(ann.clone()).await.unwrap();
    let rowid = rowid_of(&db, &ann.id);
    assert!(rowid.is_some());
    let (other, id) = (store.clone(), ann.id);
    let unseen = std::thread::spawn(move || hint_of(&other, &id))
        .join()
        .unwrap();
    assert_eq!(unseen, None, "no thread has read it yet");

    assert_eq!(store.get(ann.id).await.unwrap(), Some(ann.clone()));
    let (other, id) = (store.clone(), ann.id);
    let seen = std::thread::spawn(move || hint_of(&other, &id))
        .join()
        .unwrap();
    assert_eq!(seen, rowid, "another thread's reader");
    let fields = store.with_user_fields(portcullis_domain::UserFields::none());
    assert_eq!(
        hint_of(&fields, &ann.id),
        rowid,
        "readers with other fields"
    );
}

/// Runs `future` on this thread, outside any Tokio runtime, as long as it
/// only waits for itself (a yield: it wakes itself before it returns
/// `Pending`): `Some` when it gets ready so, `None` when it waits for
/// anything else (the blocking pool, another thread).
fn run_on_this_thread<F: std::future::Future>(future: F) -> Option<F::Output> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::{Context, Poll, Wake, Waker};
    struct Woken(AtomicBool);
    impl Wake for Woken {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let woken = std::sync::Arc::new(Woken(AtomicBool::new(false)));
    let waker = Waker::from(woken.clone());
    let mut future = std::pin::pin!(future);
    loop {
        woken.0.store(false, Ordering::SeqCst);
        match future.as_mut().poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(output) => return Some(output),
            Poll::Pending if woken.0.load(Ordering::SeqCst) => continue,
            Poll::Pending => return None,
        }
    }
}

/// A login's lookup of an ASCII address runs on the calling thread's reader:
/// outside any runtime, where the pool's path (on Tokio's blocking pool)
/// cannot run, it is answered at once. An address needing Unicode case
/// matching still goes through the pool.
#[tokio::test(flavor = "multi_thread")]
async fn an_ascii_address_is_looked_up_on_the_calling_thread_any_other_through_the_pool() {
    let db = TempDb::new();
    let store = migrated(&db).await;
    let ann = store.create(user("Ann@Example.com")).await.unwrap();
    let jo = store.create(user("jöhn@example.com")).await.unwrap();
    let address = |a: &str| EmailAddress::parse(a).unwrap();
    // One thread throughout, so that the lookup after the deactivation
    // reads through the same reader as the one before; the write itself runs
    // through the pool, on the runtime.
    let runtime = tokio::runtime::Handle::current();
    let (inline, unicode, after) = {
        let store = store.clone();
        let ann = ann.clone();
        std::thread::spawn(move || {
            let found = run_on_this_thread(store.get_by_email(&address("ann@EXAMPLE.com")));
            let none = run_on_this_thread(store.get_by_email(&address("nobody@example.com")));
            assert!(matches!(none, Some(Ok(None))), "{none:?}");
            let unicode = run_on_this_thread(store.get_by_email(&address("JÖHN@example.com")));
            let off = UserPatch {
                is_active: Some(false),
                ..UserPatch::default()
            };
            let off = runtime.block_on(store.patch(ann.id, off)).unwrap();
            assert!(!off.is_active);
            let after = run_on_this_thread(store.get_by_email(&address("ANN@example.com")));
            (found, unicode, after.map(|after| (after, off)))
        })
        .join()
        .expect("no panic")
    };
    assert_eq!(
        inline.expect("answered at once").unwrap(),
        Some(ann.clone())
    );
    assert!(
        matches!(unicode, Some(Err(StoreError::Unavailable(_)))),
        "the pool's path needs the runtime: {unicode:?}"
    );
    let (after, off) = after.expect("answered at once");
    assert_eq!(
        after.unwrap(),
        Some(off),
        "the deactivation is seen at once"
    );
    // Within a runtime the Unicode address is found through the pool.
    assert_eq!(store.get_by_email(&jo.email).await.unwrap(), Some(jo));
}

/// Once the store is open, no connection it opens creates the file again:
/// a database removed (or moved) under a running server is not replaced by
/// an empty one at its path. Only the first connection, when the store is
/// opened, may create it. Readers are per thread, so a new thread opens a
/// new one; the pool opens more connections when those it has are busy.
#[tokio::test(flavor = "multi_thread")]
async fn a_database_removed_while_open_is_not_created_again_empty() {
    let db = TempDb::new();
    let options = SqliteStoreOptions {
        max_connections: 8,
        connection_timeout: Duration::from_millis(300),
        ..SqliteStoreOptions::default()
    };
    let store = SqliteUserStore::open_with(&db.url(), options)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let ann = store.create(user("ann@example.com")).await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let mut path = db.0.clone().into_os_string();
        path.push(suffix);
        std::fs::remove_file(PathBuf::from(path)).unwrap();
    }
    assert!(!db.0.exists());

    // A thread that has never read: its reader opens now.
    let read = {
        let store = store.clone();
        std::thread::spawn(move || run_on_this_thread(store.get(ann.id)))
            .join()
            .expect("no panic")
    };
    assert!(
        !db.0.exists(),
        "a new thread's reader made the file again (it read {read:?})"
    );
    // Every pooled connection held at once: the pool tries to open new ones.
    let open = store.pool.state().connections;
    assert!(open < 8, "the pool must have room to open more: {open}");
    let pool = store.pool.clone();
    let held = tokio::task::spawn_blocking(move || {
        let held: Vec<_> = (0..8).map(|_| pool.get()).collect();
        held.iter().filter(|c| c.is_ok()).count()
    })
    .await
    .unwrap();
    assert!(
        held <= open as usize,
        "{held} connections held, {open} were open"
    );
    assert!(
        !db.0.exists(),
        "a new pooled connection made the file again"
    );
}

/// A file whose path has characters a URI escapes is opened by every
/// connection, the first (a plain path) and the later ones (a `file:` URI):
/// a thread's reader finds the row, and so does the pool.
#[tokio::test(flavor = "multi_thread")]
async fn a_path_with_spaces_and_percent_signs_is_opened_by_every_connection() {
    let dir = std::env::temp_dir().join(format!("portcullis sqlite #%é&={}", uuid::Uuid::new_v4()));
    std::fs::create_dir(&dir).unwrap();
    let db = TempDb(dir.join("users 100%.db"));
    let store = migrated(&db).await;
    let ann = store.create(user("ann@example.com")).await.unwrap();
    let inline = {
        let store = store.clone();
        std::thread::spawn(move || run_on_this_thread(store.get(ann.id)))
            .join()
            .expect("no panic")
    };
    assert_eq!(
        inline.expect("read on the thread").unwrap(),
        Some(ann.clone())
    );
    let email = EmailAddress::parse("ANN@example.com").unwrap();
    assert_eq!(store.get_by_email(&email).await.unwrap(), Some(ann));
    drop(store);
    drop(db);
    std::fs::remove_dir(&dir).expect("the folder holds nothing else");
}

#[test]
fn lookups_use_the_lower_email_index() {
    use crate::schema::lower;
    use crate::store::unicode_candidates;
    let db = TempDb::new();
    let mut conn = db.raw();
    crate::connection::ConnectionSetup {
        busy_timeout: Duration::from_secs(1),
    }
    .apply(&mut conn)
    .unwrap();
    crate::migrate::run(&mut conn, &portcullis_domain::UserFields::none()).unwrap();

    let ascii = users::table
        .filter(lower(users::email).eq("ann@example.com"))
        .select(SqliteUserRow::as_select());
    let p = plan(&mut conn, ascii);
    assert!(
        p.contains("USING INDEX ix_user_email_lower (<expr>=?)"),
        "{p}"
    );

    for key in [
        "jöhn@example.com",
        "élodie@example.com",
        "дмитрий@example.com",
        "yi\u{307}ğit@example.com",
    ] {
        let p = plan(
            &mut conn,
            unicode_candidates(key).select(SqliteUserRow::as_select()),
        );
        assert!(!p.contains("SCAN"), "{key}: {p}");
        assert!(
            p.contains("USING INDEX ix_user_email_lower (<expr>>? AND <expr><?)"),
            "{key}: {p}"
        );
    }
    let p = plan(
        &mut conn,
        unicode_candidates("i\u{307}pek@example.com").select(SqliteUserRow::as_select()),
    );
    assert!(p.contains("SCAN"), "the one key that allows no prefix: {p}");
}

#[test]
fn temp_paths_are_cleaned_up() {
    let path;
    {
        let db = TempDb::new();
        db.raw().batch_execute("CREATE TABLE t (x)").unwrap();
        path = db.0.clone();
        assert!(Path::new(&path).exists());
    }
    assert!(!path.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_database_passes_the_integrity_check() {
    let store = SqliteUserStore::open("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(
        store.integrity_check().await.unwrap(),
        vec!["ok".to_owned()]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pending_migrations_lists_what_migrate_would_apply_and_changes_nothing() {
    let db = TempDb::new();
    assert!(
        matches!(
            SqliteUserStore::open_existing(&db.url(), SqliteStoreOptions::default()).await,
            Err(SqliteStoreError::Open { ref reason, .. }) if reason == "no database file here"
        ),
        "a missing file is refused"
    );
    assert!(!db.0.exists(), "and not created");

    let store = SqliteUserStore::open(&db.url()).await.unwrap();
    let pending = store.pending_migrations().await.unwrap();
    assert_eq!(
        pending,
        [
            "2025-01-01-000000_create_user",
            "2025-01-01-000001_email_case_insensitive_index",
            "2025-01-01-000002_create_throttle",
            "2025-01-01-000003_sessions",
            "2025-01-01-000004_oauth_accounts",
            "2026-12-02-160000_accesstoken_user_index",
        ]
    );
    // Listing them twice lists the same, and left no table behind.
    assert_eq!(store.pending_migrations().await.unwrap(), pending);
    assert_eq!(
        text(
            &mut db.raw(),
            "SELECT name AS v FROM sqlite_master WHERE type = 'table'"
        ),
        Vec::<String>::new()
    );

    store.migrate().await.unwrap();
    assert_eq!(
        store.pending_migrations().await.unwrap(),
        Vec::<String>::new()
    );
    drop(store);
    let existing = SqliteUserStore::open_existing(&db.url(), SqliteStoreOptions::default())
        .await
        .unwrap();
    assert_eq!(
        existing.pending_migrations().await.unwrap(),
        Vec::<String>::new()
    );
}

mod user_fields {
    use portcullis_domain::{FieldSpec, FieldType, FieldValue, FieldWriter, UserFields};

    use super::*;

    fn spec(name: &str, ty: FieldType, nullable: bool, default: FieldValue) -> FieldSpec {
        FieldSpec {
            name: name.into(),
            ty,
            nullable,
            default,
            writable_by: FieldWriter::User,
        }
    }

    fn nickname() -> FieldSpec {
        spec(
            "nickname",
            FieldType::String {
                max_length: Some(50),
            },
            true,
            FieldValue::Null,
        )
    }

    fn organisation_id() -> FieldSpec {
        spec(
            "organisation_id",
            FieldType::Integer,
            false,
            FieldValue::Integer(0),
        )
    }

    fn newsletter() -> FieldSpec {
        spec(
            "newsletter",
            FieldType::Boolean,
            false,
            FieldValue::Boolean(true),
        )
    }

    fn fields(specs: Vec<FieldSpec>) -> UserFields {
        UserFields::new(specs).unwrap()
    }

    async fn store_with(db: &TempDb, fields: UserFields) -> SqliteUserStore {
        SqliteUserStore::open(&db.url())
            .await
            .unwrap()
            .with_user_fields(fields)
    }

    /// `name type notnull dflt` of each column of `user`.
    fn columns(conn: &mut SqliteConnection) -> Vec<String> {
        text(
            conn,
            "SELECT name || ' ' || type || ' ' || \"notnull\" || ' ' || ifnull(dflt_value, '-') \
             AS v FROM pragma_table_info('user')",
        )
    }

    const ID: &str = "10e80a18-88e2-496b-9ab7-b1c109d6d5ea";

    #[tokio::test(flavor = "multi_thread")]
    async fn columns_are_added_and_rows_already_there_get_the_defaults() {
        let db = TempDb::new();
        let before = migrated(&db).await;
        let ann = user("ann@example.com");
        before.create(ann.clone()).await.unwrap();
        drop(before);

        let all = fields(vec![nickname(), organisation_id(), newsletter()]);
        let store = store_with(&db, all).await;
        store.migrate().await.unwrap();
        let found = store.get(ann.id).await.unwrap().unwrap();
        assert_eq!(found.fields.get("nickname"), Some(&FieldValue::Null));
        assert_eq!(
            found.fields.get("organisation_id"),
            Some(&FieldValue::Integer(0))
        );
        assert_eq!(
            found.fields.get("newsletter"),
            Some(&FieldValue::Boolean(true))
        );
        let columns = columns(&mut db.raw());
        for expected in [
            "nickname VARCHAR(50) 0 -",
            "organisation_id INTEGER 1 0",
            "newsletter BOOLEAN 1 1",
        ] {
            assert!(columns.iter().any(|c| c == expected), "{columns:?}");
        }
        // Migrating again adds nothing and keeps the values.
        store.migrate().await.unwrap();
        assert_eq!(super::columns_count(&mut db.raw()), columns.len());
        assert_eq!(store.get(ann.id).await.unwrap(), Some(found));
    }

    /// Two stores of one file, one with fields: a thread that read for one
    /// reads for the other with the other's columns. Each store's readers on
    /// the calling thread cache their statement by type, so they must be
    /// connections of their own. On one thread, every read is inline.
    #[tokio::test]
    async fn stores_of_one_file_with_other_fields_each_read_their_own_on_one_thread() {
        let db = TempDb::new();
        let plain = migrated(&db).await;
        let ann = user("ann@example.com");
        plain.create(ann.clone()).await.unwrap();
        assert_eq!(plain.get(ann.id).await.unwrap(), Some(ann.clone()));
        let with = plain
            .clone()
            .with_user_fields(fields(vec![nickname(), newsletter()]));
        with.migrate().await.unwrap();
        // Values that are not the defaults.
        let mut bob = user("bob@example.com");
        bob.fields
            .set("nickname", FieldValue::String("bobby".into()));
        bob.fields.set("newsletter", FieldValue::Boolean(false));
        let bob = with.create(bob).await.unwrap();
        for _ in 0..3 {
            assert_eq!(with.get(bob.id).await.unwrap(), Some(bob.clone()));
            let found = plain.get(bob.id).await.unwrap().unwrap();
            assert!(found.fields.is_empty(), "{found:?}");
            assert_eq!(found.email, bob.email);
            assert_eq!(plain.get(ann.id).await.unwrap(), Some(ann.clone()));
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_missing_field_column_is_a_pending_migration() {
        let db = TempDb::new();
        drop(migrated(&db).await);
        let store = store_with(&db, fields(vec![nickname(), organisation_id()])).await;
        assert_eq!(
            store.pending_migrations().await.unwrap(),
            [
                "column nickname (user field)",
                "column organisation_id (user field)"
            ]
        );
        store.migrate().await.unwrap();
        assert_eq!(
            store.pending_migrations().await.unwrap(),
            Vec::<String>::new()
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn fastapi_users_columns_of_compatible_types_are_adopted_with_their_data() {
        let db = TempDb::new();
        {
            let mut conn = db.raw();
            conn.batch_execute(FASTAPI_USERS_DDL).unwrap();
            // As SQLAlchemy makes String(30), BigInteger and Boolean columns.
            conn.batch_execute(
                "ALTER TABLE user ADD COLUMN nickname varchar(30);
                 ALTER TABLE user ADD COLUMN organisation_id BIGINT NOT NULL DEFAULT 5;
                 ALTER TABLE user ADD COLUMN newsletter bool;",
            )
            .unwrap();
            conn.batch_execute(&format!(
                "INSERT INTO user VALUES ('{ID}', 'Foo@example.com', 'h', 1, 0, 0, 'Fooey', 12, 0)"
            ))
            .unwrap();
        }
        let before = columns(&mut db.raw());
        let store = store_with(
            &db,
            fields(vec![nickname(), organisation_id(), newsletter()]),
        )
        .await;
        store.migrate().await.unwrap();
        let found = store
            .get_by_email(&EmailAddress::parse("foo@example.com").unwrap())
            .await
            .unwrap()
            .expect("the FastAPI Users row is kept");
        assert_eq!(
            found.fields.get("nickname"),
            Some(&FieldValue::String("Fooey".into()))
        );
        assert_eq!(
            found.fields.get("organisation_id"),
            Some(&FieldValue::Integer(12))
        );
        assert_eq!(
            found.fields.get("newsletter"),
            Some(&FieldValue::Boolean(false))
        );
        let after = columns(&mut db.raw());
        for column in &before {
            assert!(after.contains(column), "{column} kept as it was: {after:?}");
        }
        assert_eq!(
            after.len(),
            before.len() + 2,
            "only role and the session stamp were added: {after:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_column_of_an_incompatible_type_is_refused_naming_the_field_and_nothing_changes() {
        let db = TempDb::new();
        {
            let mut conn = db.raw();
            conn.batch_execute(FASTAPI_USERS_DDL).unwrap();
            conn.batch_execute("ALTER TABLE user ADD COLUMN organisation_id TEXT")
                .unwrap();
        }
        let before = columns(&mut db.raw());
        let store = store_with(&db, fields(vec![nickname(), organisation_id()])).await;
        let err = store.migrate().await.unwrap_err();
        let shown = err.to_string();
        assert!(matches!(err, SqliteStoreError::Migration { .. }), "{err:?}");
        for part in ["\"organisation_id\"", "\"TEXT\"", "integer not null"] {
            assert!(shown.contains(part), "{part} in {shown}");
        }
        assert_eq!(
            columns(&mut db.raw()),
            before,
            "neither role nor nickname added"
        );

        // NOT NULL for a nullable field.
        let db = TempDb::new();
        {
            let mut conn = db.raw();
            conn.batch_execute(FASTAPI_USERS_DDL).unwrap();
            conn.batch_execute(
                "ALTER TABLE user ADD COLUMN nickname VARCHAR(50) NOT NULL DEFAULT ''",
            )
            .unwrap();
        }
        let err = store_with(&db, fields(vec![nickname()]))
            .await
            .migrate()
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"nickname\"") && err.contains("NOT NULL") && err.contains("nullable"),
            "{err}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_value_that_does_not_fit_is_refused_before_anything_is_written() {
        let db = TempDb::new();
        let store = store_with(&db, fields(vec![organisation_id()])).await;
        store.migrate().await.unwrap();
        let mut ann = user("ann@example.com");
        ann.fields
            .set("organisation_id", FieldValue::String("seven".into()));
        let err = store.create(ann.clone()).await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert!(err.to_string().contains("organisation_id"), "{err}");
        assert_eq!(store.get(ann.id).await, Ok(None));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_stored_value_of_the_wrong_kind_is_unavailable_naming_the_field() {
        let db = TempDb::new();
        let store = store_with(&db, fields(vec![organisation_id()])).await;
        store.migrate().await.unwrap();
        let ann = user("ann@example.com");
        store.create(ann.clone()).await.unwrap();
        db.raw()
            .batch_execute("UPDATE user SET organisation_id = 'seven'")
            .unwrap();
        let err = store.get(ann.id).await.unwrap_err();
        let cause = err.source().and_then(|c| c.downcast_ref::<CorruptRow>());
        assert!(
            matches!(cause, Some(CorruptRow::Field { field, .. }) if field == "organisation_id"),
            "{err:?}"
        );
        assert!(err.to_string().contains("\"seven\""), "{err}");
    }
}

fn columns_count(conn: &mut SqliteConnection) -> usize {
    text(conn, "SELECT name AS v FROM pragma_table_info('user')").len()
}

mod sessions {
    use std::time::{Duration, UNIX_EPOCH};

    use portcullis_domain::{AccessTokenRecord, AccessTokenStore, UserId};

    use super::*;

    const ID: &str = "10e80a18-88e2-496b-9ab7-b1c109d6d5ea";
    /// 43 URL-safe characters, as `secrets.token_urlsafe()` makes.
    const TOKEN: &str = "kX3vQ0m9Zb1pYtR7cW2eH5uJ8nL4sD6fA0gB3iK-_yz";

    #[tokio::test(flavor = "multi_thread")]
    async fn fastapi_users_sessions_are_adopted_and_each_side_reads_the_others_rows() {
        let db = TempDb::new();
        {
            let mut conn = db.raw();
            conn.batch_execute(FASTAPI_USERS_DDL).unwrap();
            conn.batch_execute(&FASTAPI_USERS_ACCESS_TOKEN_DDL.join("\n"))
                .unwrap();
            // Rows as FastAPI Users writes them (no stamp column yet; the
            // token's time as SQLAlchemy writes a TIMESTAMPAware on SQLite).
            conn.batch_execute(&format!(
                "INSERT INTO user VALUES ('{ID}', 'foo@example.com', 'h', 1, 0, 0);
                 INSERT INTO accesstoken VALUES ('{ID}', '{TOKEN}', '2026-12-01 23:00:52.440530');"
            ))
            .unwrap();
        }
        let store = migrated(&db).await;
        let id = UserId::from_uuid(uuid::Uuid::parse_str(ID).unwrap());
        let created = UNIX_EPOCH + Duration::from_micros(1_796_166_052_440_530);
        let expected = AccessTokenRecord {
            token: TOKEN.into(),
            user_id: id,
            created_at: created,
        };
        assert_eq!(
            store.get_access_token(TOKEN, created).await.unwrap(),
            Some(expected.clone()),
            "FastAPI Users' session is kept and read, to the microsecond"
        );
        assert_eq!(
            store
                .get_access_token(TOKEN, created + Duration::from_micros(1))
                .await
                .unwrap(),
            None
        );
        let user = store.get(id).await.unwrap().unwrap();
        assert_eq!(user.session_stamp, 0, "the column's default");
        // The table is FastAPI Users' own still, with Portcullis' index on
        // the user.
        let mut conn = db.raw();
        assert_eq!(
            access_token_schema(&mut conn),
            access_token_schema(&mut fastapi_users_made_and_indexed())
        );

        // A token Portcullis writes is stored as FastAPI Users writes one.
        let mine = AccessTokenRecord {
            token: "a".repeat(43),
            user_id: id,
            created_at: UNIX_EPOCH + Duration::from_nanos(1_764_000_000_000_001_999),
        };
        store.create_access_token(&mine).await.unwrap();
        let row = text(
            &mut conn,
            &format!(
                "SELECT user_id || '|' || typeof(user_id) || '|' || created_at || '|' || typeof(created_at) AS v \
                 FROM accesstoken WHERE token = '{}'",
                mine.token
            ),
        );
        assert_eq!(row, [format!("{ID}|text|2025-11-24 16:00:00.000001|text")]);

        // Deleting the user (as FastAPI Users would, by plain SQL) cascades:
        // the store's connections have the foreign keys on, and so does this
        // one.
        conn.batch_execute("PRAGMA foreign_keys = ON").unwrap();
        store.delete(id).await.unwrap();
        assert_eq!(
            text(&mut conn, "SELECT token AS v FROM accesstoken"),
            Vec::<String>::new()
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_corrupt_token_row_is_unavailable_not_a_panic() {
        let db = TempDb::new();
        let store = migrated(&db).await;
        let ann = store.create(user("ann@example.com")).await.unwrap();
        db.raw()
            .batch_execute(&format!(
                "INSERT INTO accesstoken VALUES ('{}', '{TOKEN}', 'yesterday')",
                ann.id
            ))
            .unwrap();
        let err = store.get_access_token(TOKEN, UNIX_EPOCH).await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert!(err.to_string().contains("yesterday"), "{err}");
    }

    /// Every request authenticated by a database session looks its token
    /// up: on the calling thread's reader, answered at once outside any
    /// runtime (where the pool's path cannot run), and seeing a token's
    /// deletion at once.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_token_is_looked_up_on_the_calling_thread() {
        let db = TempDb::new();
        let store = migrated(&db).await;
        let ann = store.create(user("ann@example.com")).await.unwrap();
        let record = AccessTokenRecord {
            token: TOKEN.to_owned(),
            user_id: ann.id,
            created_at: UNIX_EPOCH + Duration::from_secs(1_796_166_052),
        };
        store.create_access_token(&record).await.unwrap();
        // One thread throughout, so that the lookup after the deletion reads
        // through the same reader as the one before; the deletion itself runs
        // through the pool, on the runtime.
        let runtime = tokio::runtime::Handle::current();
        let (found, older, gone) = std::thread::spawn(move || {
            let found = run_on_this_thread(store.get_access_token(TOKEN, UNIX_EPOCH));
            let older = run_on_this_thread(
                store.get_access_token(TOKEN, UNIX_EPOCH + Duration::from_secs(1_796_166_053)),
            );
            runtime.block_on(store.delete_access_token(TOKEN)).unwrap();
            let gone = run_on_this_thread(store.get_access_token(TOKEN, UNIX_EPOCH));
            (found, older, gone)
        })
        .join()
        .expect("no panic");
        assert_eq!(found.expect("answered at once").unwrap(), Some(record));
        assert!(matches!(older, Some(Ok(None))), "{older:?}");
        assert!(matches!(gone, Some(Ok(None))), "{gone:?}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn stamp_patches_and_token_lookups_use_the_database_not_a_copy() {
        let db = TempDb::new();
        let store = migrated(&db).await;
        let ann = store.create(user("ann@example.com")).await.unwrap();
        // Another program raises the stamp; the store reads it (a floor of 0:
        // the raise is then old + 1).
        db.raw()
            .batch_execute("UPDATE user SET portcullis_session_stamp = 41")
            .unwrap();
        let patched = store
            .patch(
                ann.id,
                UserPatch {
                    end_sessions: Some(0),
                    ..UserPatch::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(patched.session_stamp, 42);
    }
}

//! What is particular to the PostgreSQL store, on a real server (the
//! behaviour every store shares is the store contract suite's): adopting a
//! FastAPI Users table, the database itself refusing two spellings of one
//! account, the index lookups use, migrations racing, clear failures, bounded
//! waits, connections the server killed being replaced, the columns of
//! extra user fields (added, adopted, refused), and FastAPI Users'
//! `accesstoken` table and the session stamp column (created, adopted), and
//! its `oauth_account` table (created, adopted, refused when it links one
//! provider account twice).
//!
//! Needs the `postgres` feature and `PORTCULLIS_TEST_POSTGRES_URL`
//! (scripts/with-postgres); fails loudly without the variable.

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use portcullis_domain::{
    AccessTokenRecord, AccessTokenStore, EmailAddress, FieldValue, OAuthAccountStore, Role,
    StoreError, User, UserFields, UserId, UserPatch, UserRepository,
};
use portcullis_store_sea_orm_postgres::sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait,
};
use portcullis_store_sea_orm_postgres::{
    PostgresStoreError, PostgresStoreOptions, PostgresUserStore, get_by_email_statement,
};
use portcullis_tests::postgres::{PgDatabase, admin, server_url};

/// FastAPI Users' DDL as SQLAlchemy emits it for `SQLAlchemyBaseUserTableUUID`
/// on PostgreSQL (the reference service's, without its `role` mixin).
const FASTAPI_USERS_DDL: &str = r#"
CREATE TABLE "user" (
	id UUID NOT NULL,
	email VARCHAR(320) NOT NULL,
	hashed_password VARCHAR(1024) NOT NULL,
	is_active BOOLEAN NOT NULL,
	is_superuser BOOLEAN NOT NULL,
	is_verified BOOLEAN NOT NULL,
	PRIMARY KEY (id)
);
CREATE UNIQUE INDEX ix_user_email ON "user" (email);
"#;

/// FastAPI Users' `accesstoken` table as SQLAlchemy 2.0 emits it for
/// `SQLAlchemyBaseAccessTokenTableUUID` on PostgreSQL
/// (fastapi-users-db-sqlalchemy 7.0.0).
const FASTAPI_USERS_ACCESS_TOKEN_DDL: &str = r#"
CREATE TABLE accesstoken (
	user_id UUID NOT NULL, 
	token VARCHAR(43) NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (token), 
	FOREIGN KEY(user_id) REFERENCES "user" (id) ON DELETE cascade
);
CREATE INDEX ix_accesstoken_created_at ON accesstoken (created_at);
"#;

/// What `pg_dump -s` shows of a database FastAPI Users made, as
/// [`access_token_schema`] reads it.
fn fastapi_users_access_token_schema() -> Vec<String> {
    [
        "user_id uuid - NO",
        "token character varying 43 NO",
        "created_at timestamp with time zone - NO",
        "accesstoken_pkey PRIMARY KEY (token)",
        "accesstoken_user_id_fkey FOREIGN KEY (user_id) REFERENCES \"user\"(id) ON DELETE CASCADE",
        "CREATE UNIQUE INDEX accesstoken_pkey ON public.accesstoken USING btree (token)",
        "CREATE INDEX ix_accesstoken_created_at ON public.accesstoken USING btree (created_at)",
    ]
    .map(String::from)
    .to_vec()
}

/// [`fastapi_users_access_token_schema`] and Portcullis' own index on the
/// user, which a user's sign-out everywhere and deletion look their tokens
/// up by.
fn migrated_access_token_schema() -> Vec<String> {
    let mut schema = fastapi_users_access_token_schema();
    schema.push(
        "CREATE INDEX ix_portcullis_accesstoken_user_id ON public.accesstoken USING btree (user_id)"
            .into(),
    );
    schema
}

/// `accesstoken`'s columns, constraints and indexes.
async fn access_token_schema(db: &DatabaseConnection) -> Vec<String> {
    let mut schema = texts(
        db,
        "SELECT column_name || ' ' || data_type || ' ' || coalesce(character_maximum_length::text, '-') \
         || ' ' || is_nullable FROM information_schema.columns \
         WHERE table_name = 'accesstoken' ORDER BY ordinal_position",
    )
    .await;
    schema.extend(
        texts(
            db,
            "SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE conrelid = 'accesstoken'::regclass ORDER BY conname",
        )
        .await,
    );
    schema.extend(
        texts(
            db,
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'accesstoken' ORDER BY indexname",
        )
        .await,
    );
    schema
}

/// FastAPI Users' `oauth_account` table as SQLAlchemy 2.0 emits it for
/// `SQLAlchemyBaseOAuthAccountTableUUID` on PostgreSQL (captured from it).
const FASTAPI_USERS_OAUTH_DDL: &str =
    include_str!("../fixtures/fastapi_users_sql/postgres_oauth_schema.sql");

/// `oauth_account`'s columns, constraints and indexes.
async fn oauth_account_schema(db: &DatabaseConnection) -> Vec<String> {
    let mut schema = texts(
        db,
        "SELECT column_name || ' ' || data_type || ' ' || coalesce(character_maximum_length::text, '-') \
         || ' ' || is_nullable FROM information_schema.columns \
         WHERE table_name = 'oauth_account' ORDER BY ordinal_position",
    )
    .await;
    schema.extend(
        texts(
            db,
            "SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE conrelid = 'oauth_account'::regclass ORDER BY conname",
        )
        .await,
    );
    schema.extend(
        texts(
            db,
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'oauth_account' ORDER BY indexname",
        )
        .await,
    );
    schema
}

/// A token as `secrets.token_urlsafe()` makes one.
const TOKEN: &str = "kX3vQ0m9Zb1pYtR7cW2eH5uJ8nL4sD6fA0gB3iK-_yz";

const HASH: &str = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";

fn email(text: &str) -> EmailAddress {
    EmailAddress::parse(text).unwrap()
}

async fn open(database: &PgDatabase) -> PostgresUserStore {
    PostgresUserStore::open(&database.url).await.unwrap()
}

async fn migrated(database: &PgDatabase) -> PostgresUserStore {
    let store = open(database).await;
    store.migrate().await.unwrap();
    store
}

fn db(store: &PostgresUserStore) -> &DatabaseConnection {
    store.connection()
}

async fn texts(db: &DatabaseConnection, sql: &str) -> Vec<String> {
    db.query_all_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|row| row.try_get_by_index::<String>(0).unwrap())
        .collect()
}

async fn exec(db: &DatabaseConnection, sql: &str) {
    db.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_database_gets_fastapi_users_schema_and_migrating_again_does_nothing() {
    let database = PgDatabase::create();
    let store = open(&database).await;
    assert_eq!(
        store.migrate().await.unwrap(),
        [
            "m20250101_000001_create_user",
            "m20250101_000002_email_case_insensitive_index",
            "m20250101_000003_create_throttle",
            "m20250101_000004_sessions",
            "m20250101_000005_oauth_accounts",
            "m20261202_160000_accesstoken_user_index"
        ]
    );
    assert_eq!(store.migrate().await.unwrap(), Vec::<String>::new());
    let columns = texts(
        db(&store),
        "SELECT column_name || ' ' || data_type || ' ' || coalesce(character_maximum_length::text, '-') \
         || ' ' || is_nullable || ' ' || coalesce(column_default, '-') \
         FROM information_schema.columns WHERE table_name = 'user' ORDER BY ordinal_position",
    )
    .await;
    assert_eq!(
        columns,
        [
            "id uuid - NO -",
            "email character varying 320 NO -",
            "hashed_password character varying 1024 NO -",
            "is_active boolean - NO -",
            "is_superuser boolean - NO -",
            "is_verified boolean - NO -",
            "role character varying 20 NO 'student'::character varying",
            "portcullis_session_stamp bigint - NO 0",
        ]
    );
    // FastAPI Users' accesstoken table, as its SQLAlchemy adapter makes it
    // (a database it made, pg_dump'ed, has exactly these), plus Portcullis'
    // index on the user.
    assert_eq!(
        access_token_schema(db(&store)).await,
        migrated_access_token_schema()
    );
    // FastAPI Users' oauth_account table, as its SQLAlchemy adapter makes it
    // (its captured DDL run on another database gives the same), and
    // Portcullis' unique index beside.
    let theirs = PgDatabase::create();
    let theirs_store = open(&theirs).await;
    exec(db(&theirs_store), FASTAPI_USERS_DDL).await;
    exec(db(&theirs_store), FASTAPI_USERS_OAUTH_DDL).await;
    let mut expected = oauth_account_schema(db(&theirs_store)).await;
    expected.push(
        "CREATE UNIQUE INDEX ix_oauth_account_oauth_name_account_id ON public.oauth_account \
         USING btree (oauth_name, account_id)"
            .to_owned(),
    );
    expected.sort();
    let mut ours = oauth_account_schema(db(&store)).await;
    ours.sort();
    assert_eq!(ours, expected);
    let indexes = texts(
        db(&store),
        "SELECT indexdef FROM pg_indexes WHERE tablename = 'user' ORDER BY indexname",
    )
    .await;
    assert_eq!(
        indexes,
        [
            r#"CREATE UNIQUE INDEX ix_user_email ON public."user" USING btree (email)"#,
            r#"CREATE UNIQUE INDEX ix_user_email_lower ON public."user" USING btree (lower(((email)::text COLLATE "und-x-icu")))"#,
            r#"CREATE UNIQUE INDEX user_pkey ON public."user" USING btree (id)"#,
        ]
    );
    let throttle = texts(
        db(&store),
        "SELECT column_name || ' ' || data_type || ' ' || coalesce(character_maximum_length::text, '-') \
         || ' ' || is_nullable FROM information_schema.columns \
         WHERE table_name = 'portcullis_throttle' ORDER BY ordinal_position",
    )
    .await;
    assert_eq!(
        throttle,
        [
            "kind character varying 32 NO",
            "key character varying 320 NO",
            "window_start bigint - NO",
            "count integer - NO",
        ]
    );
    let throttle_indexes = texts(
        db(&store),
        "SELECT indexdef FROM pg_indexes WHERE tablename = 'portcullis_throttle' ORDER BY indexname",
    )
    .await;
    assert_eq!(
        throttle_indexes,
        [
            "CREATE INDEX ix_portcullis_throttle_kind_window_start ON public.portcullis_throttle USING btree (kind, window_start)",
            "CREATE UNIQUE INDEX portcullis_throttle_pkey ON public.portcullis_throttle USING btree (kind, key)",
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pending_migrations_lists_what_migrate_would_apply_and_changes_nothing() {
    let database = PgDatabase::create();
    let store = open(&database).await;
    let all = [
        "m20250101_000001_create_user",
        "m20250101_000002_email_case_insensitive_index",
        "m20250101_000003_create_throttle",
        "m20250101_000004_sessions",
        "m20250101_000005_oauth_accounts",
        "m20261202_160000_accesstoken_user_index",
    ];
    assert_eq!(store.pending_migrations().await.unwrap(), all);
    // SeaORM's bookkeeping table was created in a transaction rolled back.
    assert_eq!(
        texts(
            db(&store),
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()"
        )
        .await,
        Vec::<String>::new()
    );
    assert_eq!(store.pending_migrations().await.unwrap(), all);
    store.migrate().await.unwrap();
    assert_eq!(
        store.pending_migrations().await.unwrap(),
        Vec::<String>::new()
    );

    let nickname = UserFields::new(vec![portcullis_domain::FieldSpec {
        name: "nickname".into(),
        ty: portcullis_domain::FieldType::String {
            max_length: Some(50),
        },
        nullable: true,
        default: FieldValue::Null,
        writable_by: portcullis_domain::FieldWriter::User,
    }])
    .unwrap();
    let with_field = open(&database).await.with_user_fields(nickname);
    assert_eq!(
        with_field.pending_migrations().await.unwrap(),
        ["column nickname (user field)"]
    );
    with_field.migrate().await.unwrap();
    assert_eq!(
        with_field.pending_migrations().await.unwrap(),
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fastapi_users_table_is_adopted_in_place() {
    let database = PgDatabase::create();
    let store = open(&database).await;
    exec(db(&store), FASTAPI_USERS_DDL).await;
    exec(
        db(&store),
        &format!(
            r#"INSERT INTO "user" VALUES
               ('0f8fad5b-d9cb-469f-a165-70867728950e', 'Ann.Lee@example.com', '{HASH}', true, false, true),
               ('7c9e6679-7425-40de-944b-e07fc1f90ae7', 'Jöhn@exämple.com', '{HASH}', false, true, false)"#
        ),
    )
    .await;
    // FastAPI Users' sessions (DatabaseStrategy), as it writes them.
    exec(db(&store), FASTAPI_USERS_ACCESS_TOKEN_DDL).await;
    exec(
        db(&store),
        &format!(
            r#"INSERT INTO accesstoken VALUES
               ('0f8fad5b-d9cb-469f-a165-70867728950e', '{TOKEN}', '2026-12-01 23:00:52.440530+00')"#
        ),
    )
    .await;
    let applied = store.migrate().await.unwrap();
    assert_eq!(applied.len(), 6, "{applied:?}");
    assert_eq!(
        access_token_schema(db(&store)).await,
        migrated_access_token_schema(),
        "FastAPI Users' table is kept as it is, and gains the index on the user"
    );

    let ann = store
        .get_by_email(&email("ANN.LEE@example.com"))
        .await
        .unwrap()
        .expect("an adopted user is found in any case");
    assert_eq!(ann.id.to_string(), "0f8fad5b-d9cb-469f-a165-70867728950e");
    assert_eq!(ann.email.as_str(), "Ann.Lee@example.com");
    assert_eq!(ann.hashed_password, HASH);
    assert!(ann.is_active && !ann.is_superuser && ann.is_verified);
    assert_eq!(ann.role, Role::Student, "existing users become students");
    assert_eq!(ann.session_stamp, 0, "and start at stamp 0");
    let created = UNIX_EPOCH + Duration::from_micros(1_796_166_052_440_530);
    assert_eq!(
        store.get_access_token(TOKEN, created).await,
        Ok(Some(AccessTokenRecord {
            token: TOKEN.into(),
            user_id: ann.id,
            created_at: created,
        })),
        "FastAPI Users' session is adopted, to the microsecond"
    );
    assert_eq!(
        store
            .get_access_token(TOKEN, created + Duration::from_micros(1))
            .await,
        Ok(None)
    );
    // A token Portcullis writes is a row as FastAPI Users writes one.
    let mine = AccessTokenRecord {
        token: "p".repeat(43),
        user_id: ann.id,
        created_at: UNIX_EPOCH + Duration::from_nanos(1_764_000_000_000_001_999),
    };
    store.create_access_token(&mine).await.unwrap();
    assert_eq!(
        texts(
            db(&store),
            &format!(
                "SELECT user_id::text || ' ' || (created_at AT TIME ZONE 'UTC')::text FROM accesstoken \
                 WHERE token = '{}'",
                mine.token
            ),
        )
        .await,
        ["0f8fad5b-d9cb-469f-a165-70867728950e 2025-11-24 16:00:00.000001"]
    );
    // A user FastAPI Users inserts after the migration (without the stamp
    // column) starts at 0.
    exec(
        db(&store),
        &format!(
            r#"INSERT INTO "user" (id, email, hashed_password, is_active, is_superuser, is_verified)
               VALUES ('5d8b4a4e-2f36-4c1b-9d5e-7d1fbd1c2a10', 'new@example.com', '{HASH}', true, false, false)"#
        ),
    )
    .await;
    let new = store
        .get_by_email(&email("new@example.com"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(new.session_stamp, 0);
    let john = store
        .get_by_email(&email("JÖHN@EXÄMPLE.COM"))
        .await
        .unwrap()
        .unwrap();
    assert!(!john.is_active && john.is_superuser && !john.is_verified);

    // The adopted table keeps working, and the database now refuses a
    // second spelling of an account whoever writes.
    assert_eq!(
        store
            .create(User::new(email("ann.lee@EXAMPLE.com"), HASH.into()))
            .await,
        Err(StoreError::Conflict)
    );
    let err = db(&store)
        .execute_unprepared(&format!(
            r#"INSERT INTO "user" VALUES (gen_random_uuid(), 'JÖHN@exämple.com', '{HASH}', true, false, false)"#
        ))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ix_user_email_lower"), "{err}");
    assert_eq!(store.migrate().await.unwrap(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn adopting_a_table_with_one_account_stored_twice_names_the_addresses() {
    let database = PgDatabase::create();
    let store = open(&database).await;
    exec(db(&store), FASTAPI_USERS_DDL).await;
    exec(
        db(&store),
        &format!(
            r#"INSERT INTO "user" VALUES
               (gen_random_uuid(), 'Jöhn@example.com', '{HASH}', true, false, false),
               (gen_random_uuid(), 'JÖHN@example.com', '{HASH}', true, false, false),
               (gen_random_uuid(), 'other@example.com', '{HASH}', true, false, false)"#
        ),
    )
    .await;
    let err = store.migrate().await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, PostgresStoreError::Migration { .. }),
        "{text}"
    );
    assert!(
        text.contains("JÖHN@example.com / Jöhn@example.com") && text.contains("Merge or rename"),
        "{text}"
    );
    assert!(!text.contains("other@"), "{text}");
    // Nothing was changed: no role column, no migration recorded.
    assert!(
        texts(
            db(&store),
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_name = 'user' AND column_name = 'role'"
        )
        .await
        .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn adopting_oauth_accounts_linked_twice_names_them_and_changes_nothing() {
    let database = PgDatabase::create();
    let store = open(&database).await;
    exec(db(&store), FASTAPI_USERS_DDL).await;
    exec(db(&store), FASTAPI_USERS_OAUTH_DDL).await;
    exec(
        db(&store),
        &format!(
            r#"INSERT INTO "user" VALUES
               ('10e80a18-88e2-496b-9ab7-b1c109d6d5ea', 'ann@example.com', '{HASH}', true, false, false),
               ('18418b53-acf3-4f70-a87a-5c81b0b0fadf', 'bob@example.com', '{HASH}', true, false, false);
               INSERT INTO oauth_account VALUES
               ('a0000000-0000-4000-8000-000000000001', '10e80a18-88e2-496b-9ab7-b1c109d6d5ea', 'github', 't1', NULL, NULL, '4242', 'ann@example.com'),
               ('a0000000-0000-4000-8000-000000000002', '18418b53-acf3-4f70-a87a-5c81b0b0fadf', 'github', 't2', 1767225600, 'r2', '4242', 'bob@example.com'),
               ('a0000000-0000-4000-8000-000000000003', '18418b53-acf3-4f70-a87a-5c81b0b0fadf', 'google', 't3', NULL, NULL, '4242', 'bob@example.com')"#
        ),
    )
    .await;
    // check-config's view says the same as migrate.
    let listed = store.pending_migrations().await.unwrap_err().to_string();
    let err = store.migrate().await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, PostgresStoreError::Migration { .. }),
        "{text}"
    );
    for said in [&text, &listed] {
        assert!(
            said.contains("1 provider account(s) are linked more than once")
                && said.contains(r#"github account "4242": 2 links"#)
                && said.contains("Nothing was changed"),
            "{said}"
        );
    }
    assert!(!text.contains("google"), "{text}");
    // Nothing was changed: no role column, the three links kept.
    assert!(
        texts(
            db(&store),
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_name = 'user' AND column_name = 'role'"
        )
        .await
        .is_empty()
    );
    assert_eq!(
        texts(db(&store), "SELECT count(*)::text FROM oauth_account").await,
        ["3"]
    );
    // The operator keeps one link; then the table is adopted with its rows.
    exec(
        db(&store),
        "DELETE FROM oauth_account WHERE id = 'a0000000-0000-4000-8000-000000000002'",
    )
    .await;
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
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_table_that_is_not_fastapi_users_is_refused() {
    let database = PgDatabase::create();
    let store = open(&database).await;
    exec(
        db(&store),
        r#"CREATE TABLE "user" (id serial PRIMARY KEY, name text)"#,
    )
    .await;
    let err = store.migrate().await.unwrap_err().to_string();
    assert!(
        err.contains("not a FastAPI Users user table") && err.contains("no column email"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_that_is_not_utf8_is_refused_clearly() {
    let server = server_url();
    let name = format!("portcullis_ascii_{}", uuid::Uuid::new_v4().simple());
    admin(
        &server,
        format!(
            r#"CREATE DATABASE "{name}" ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"#
        ),
    )
    .unwrap();
    let url = portcullis_tests::postgres::with_database(&server, &name);
    let store = PostgresUserStore::open(&url).await.unwrap();
    let err = store.migrate().await.unwrap_err().to_string();
    drop(store);
    admin(&server, format!(r#"DROP DATABASE "{name}" WITH (FORCE)"#)).unwrap();
    assert!(err.contains("needs a UTF8 database"), "{err}");
}

/// The unique index decides for every writer, with Unicode's full lowercase
/// (where the libc ctype would map `İ` to `i` and every `Σ` to `σ`).
#[tokio::test(flavor = "multi_thread")]
async fn the_database_itself_refuses_a_second_spelling_of_an_account() {
    let database = PgDatabase::create();
    let store = migrated(&database).await;
    let insert = |address: &str| {
        format!(
            r#"INSERT INTO "user" VALUES (gen_random_uuid(), '{address}', '{HASH}', true, false, false, 'student')"#
        )
    };
    for (first, second) in [
        ("ann@example.com", "ANN@example.com"),
        ("Jöhn@example.com", "JÖHN@example.com"),
        ("Σωκράτης@example.com", "ΣΩΚΡΆΤΗΣ@example.com"),
        ("İpek@example.com", "i\u{307}pek@example.com"),
    ] {
        exec(db(&store), &insert(first)).await;
        let err = db(&store)
            .execute_unprepared(&insert(second))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("ix_user_email_lower"),
            "{second}: {err}"
        );
    }
    // Different letters stay different accounts: `Ipek` is not `İpek`.
    exec(db(&store), &insert("Ipek@example.com")).await;
    let ipek = store
        .get_by_email(&email("ipek@example.com"))
        .await
        .unwrap();
    assert_eq!(ipek.unwrap().email.as_str(), "Ipek@example.com");
}

/// The statement `get_by_email` really sends (as the store builds it, not
/// a copy written here) is answered by one probe of the case-insensitive
/// unique index.
#[tokio::test(flavor = "multi_thread")]
async fn lookups_by_address_probe_the_case_insensitive_index() {
    let database = PgDatabase::create();
    let store = migrated(&database).await;
    let statement = get_by_email_statement(&email("Ann@example.com"));
    let explain = Statement {
        sql: format!("EXPLAIN {}", statement.sql),
        ..statement.clone()
    };
    let txn = db(&store).begin().await.unwrap();
    txn.execute_unprepared("SET LOCAL enable_seqscan = off")
        .await
        .unwrap();
    let plan: Vec<String> = txn
        .query_all_raw(explain)
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"))
        .iter()
        .map(|row| row.try_get_by_index::<String>(0).unwrap())
        .collect();
    txn.rollback().await.unwrap();
    assert!(
        plan.iter().any(|line| line.contains("ix_user_email_lower")),
        "{statement}\n{plan:#?}"
    );
    // and the statement is the lookup: it finds the account in any case
    store
        .create(User::new(email("ann@EXAMPLE.com"), HASH.into()))
        .await
        .unwrap();
    let rows = db(&store).query_all_raw(statement).await.unwrap();
    assert_eq!(rows.len(), 1);
}

/// The plan of `sql` with `values`, sequential scans discouraged (on a
/// near-empty table PostgreSQL would rather read it whole): a plan that
/// still scans has no index to use.
async fn plan_of(
    store: &PostgresUserStore,
    sql: &str,
    values: Vec<portcullis_store_sea_orm_postgres::sea_orm::Value>,
) -> String {
    let txn = db(store).begin().await.unwrap();
    txn.execute_unprepared("SET LOCAL enable_seqscan = off")
        .await
        .unwrap();
    let plan: Vec<String> = txn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!("EXPLAIN {sql}"),
            values,
        ))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|row| row.try_get_by_index::<String>(0).unwrap())
        .collect();
    txn.rollback().await.unwrap();
    plan.join("\n")
}

/// Issue 16 (a million users, a session each): every statement on the
/// sessions and the counts that the server runs per request, per sign-out
/// or per purge finds its rows through an index, never reading the whole
/// table — in particular a user's tokens (sign-out everywhere, revocation,
/// and the cascade of a user's deletion) through the index on `user_id`
/// that FastAPI Users' table lacks. The statements are the store's own.
#[tokio::test(flavor = "multi_thread")]
async fn session_and_count_statements_use_an_index() {
    use portcullis_store_sql_common::fields::Dialect::Postgres;
    use portcullis_store_sql_common::{sessions, throttle};
    let database = PgDatabase::create();
    let store = migrated(&database).await;
    let id = || "0f8fad5b-d9cb-469f-a165-70867728950e".into();
    let time = || "2026-12-01 23:00:52.440530".into();
    for (sql, values, index) in [
        (
            sessions::delete_access_tokens_of_sql(Postgres),
            vec![id()],
            "ix_portcullis_accesstoken_user_id",
        ),
        (
            sessions::get_access_token_sql(Postgres),
            vec![TOKEN.into(), time()],
            "accesstoken_pkey",
        ),
        (
            // The read lane's, with a one-token array.
            sessions::get_access_tokens_any_sql().replace("ANY($1)", "ANY(ARRAY[$1])"),
            vec![TOKEN.into()],
            "accesstoken_pkey",
        ),
        (
            sessions::purge_access_tokens_sql(Postgres),
            vec![time()],
            "ix_accesstoken_created_at",
        ),
        (
            throttle::purge_sql(Postgres),
            vec!["login_failure".into(), 0i64.into()],
            "ix_portcullis_throttle_kind_window_start",
        ),
        (
            r#"DELETE FROM "user" WHERE id = CAST($1 AS UUID)"#.to_owned(),
            vec![id()],
            "user_pkey",
        ),
    ] {
        let plan = plan_of(&store, &sql, values).await;
        assert!(plan.contains(index), "{sql}\n{plan}");
        assert!(!plan.contains("Seq Scan"), "{sql}\n{plan}");
    }
    // The cascade of a user's deletion looks up the same column: the
    // foreign key's referencing side is indexed.
    let indexed = texts(
        db(&store),
        "SELECT indexdef FROM pg_indexes WHERE tablename = 'accesstoken' \
         AND indexdef LIKE '%(user_id)'",
    )
    .await;
    assert_eq!(indexed.len(), 1, "{indexed:?}");
}

/// Eight stores (as eight instances would) migrate one fresh database at
/// once: all succeed, exactly one applies the migrations.
#[tokio::test(flavor = "multi_thread")]
async fn racing_migrations_take_turns_and_apply_once() {
    let database = PgDatabase::create();
    let url = Arc::new(database.url.clone());
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (url, barrier) = (Arc::clone(&url), Arc::clone(&barrier));
            tokio::spawn(async move {
                let store = PostgresUserStore::open(&url).await.unwrap();
                barrier.wait().await;
                store.migrate().await
            })
        })
        .collect();
    let mut applied = Vec::new();
    for task in tasks {
        applied.push(
            task.await
                .unwrap()
                .expect("every racing migration succeeds"),
        );
    }
    assert_eq!(
        applied.iter().filter(|a| !a.is_empty()).count(),
        1,
        "{applied:?}"
    );
    let store = open(&database).await;
    assert_eq!(
        texts(
            db(&store),
            "SELECT version FROM seaql_migrations ORDER BY version"
        )
        .await,
        [
            "m20250101_000001_create_user",
            "m20250101_000002_email_case_insensitive_index",
            "m20250101_000003_create_throttle",
            "m20250101_000004_sessions",
            "m20250101_000005_oauth_accounts",
            "m20261202_160000_accesstoken_user_index"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_server_fails_fast_and_the_password_is_never_shown() {
    let started = Instant::now();
    let err = PostgresUserStore::open("postgres://portcullis:s3cret@127.0.0.1:1/users")
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    let text = err.to_string();
    assert!(matches!(err, PostgresStoreError::Connect { .. }), "{text}");
    assert!(text.contains("portcullis@127.0.0.1:1/users"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");

    assert!(text.contains("is the server running"), "{text}");

    for bad in ["postgres://h:notaport/db", "sqlite://x.db", "nonsense"] {
        let err = PostgresUserStore::open(bad).await.unwrap_err();
        assert!(
            matches!(err, PostgresStoreError::InvalidUrl { .. }),
            "{bad}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_database_name_is_a_clear_connect_error() {
    let url = portcullis_tests::postgres::with_database(&server_url(), "no_such_database_here");
    let err = PostgresUserStore::open(&url).await.unwrap_err().to_string();
    assert!(
        err.contains("no_such_database_here") && err.contains("does not exist"),
        "{err}"
    );
}

/// A statement that waits (here on a row another transaction holds) is
/// cancelled by `statement_timeout`: the operation answers `Unavailable`
/// within the bound instead of hanging.
#[tokio::test(flavor = "multi_thread")]
async fn a_blocked_statement_is_cut_off_by_the_statement_timeout() {
    let database = PgDatabase::create();
    let options = PostgresStoreOptions {
        statement_timeout: Duration::from_millis(500),
        ..PostgresStoreOptions::default()
    };
    let store = PostgresUserStore::open_with(&database.url, options)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let ann = store
        .create(User::new(email("ann@example.com"), HASH.into()))
        .await
        .unwrap();

    let holder = open(&database).await;
    let txn = db(&holder).begin().await.unwrap();
    txn.execute_unprepared(&format!(
        r#"SELECT * FROM "user" WHERE id = '{}' FOR UPDATE"#,
        ann.id
    ))
    .await
    .unwrap();
    let verify = || UserPatch {
        is_verified: Some(true),
        ..UserPatch::default()
    };
    let started = Instant::now();
    let result = store.patch(ann.id, verify()).await;
    let elapsed = started.elapsed();
    txn.rollback().await.unwrap();
    let err = result.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("canceling statement due to statement timeout"),
        "{err}"
    );
    assert!(
        err.source().is_some(),
        "the driver's error is kept: {err:?}"
    );
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    // and the store works on
    assert!(store.patch(ann.id, verify()).await.is_ok());
}

/// Connections the server ends (a restart, a failover, an administrator)
/// are noticed as they leave the pool and replaced: no error reaches the
/// caller.
#[tokio::test(flavor = "multi_thread")]
async fn connections_the_server_killed_are_replaced() {
    let database = PgDatabase::create();
    let store = migrated(&database).await;
    let ann = store
        .create(User::new(email("ann@example.com"), HASH.into()))
        .await
        .unwrap();
    // Warm several pooled connections.
    let reads: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.get(ann.id).await })
        })
        .collect();
    for read in reads {
        read.await.unwrap().unwrap();
    }
    // The store's backends, seen from another connection to the server.
    let watcher = PostgresUserStore::open(&server_url()).await.unwrap();
    let store_backends = format!(
        "SELECT pid::text FROM pg_stat_activity \
         WHERE datname = '{}' AND application_name = 'portcullis' AND pid <> pg_backend_pid()",
        database.name
    );
    let before = texts(db(&watcher), &store_backends).await;
    assert!(!before.is_empty(), "the store has pooled connections");
    let terminated = texts(
        db(&watcher),
        &format!(
            "SELECT pg_terminate_backend(pid::int)::text FROM ({store_backends}) AS backends(pid)"
        ),
    )
    .await;
    assert!(
        !terminated.is_empty() && terminated.iter().all(|t| t == "true"),
        "the server ended every pooled connection: {terminated:?}"
    );
    // Wait until they are gone for good.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = texts(db(&watcher), &store_backends).await;
        if !left.iter().any(|pid| before.contains(pid)) {
            break;
        }
        assert!(Instant::now() < deadline, "still there: {left:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..16 {
        assert_eq!(store.get(ann.id).await, Ok(Some(ann.clone())));
    }
    assert_eq!(store.ping().await, Ok(()));
    // on new connections
    let after = texts(db(&watcher), &store_backends).await;
    assert!(
        !after.is_empty() && after.iter().all(|pid| !before.contains(pid)),
        "before {before:?}, after {after:?}"
    );
}

/// Counts the read lane's batches: the `reads` of each `read lane batch`
/// debug event.
#[derive(Clone, Default)]
struct Batches(Arc<std::sync::Mutex<Vec<u64>>>);

impl Batches {
    fn seen(&self) -> Vec<u64> {
        self.0.lock().unwrap().clone()
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Batches {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Reads(Option<u64>);
        impl tracing::field::Visit for Reads {
            fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
                if field.name() == "reads" {
                    self.0 = Some(value);
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        if event.metadata().target() != "portcullis_store_sea_orm_postgres::read_lane" {
            return;
        }
        let mut reads = Reads(None);
        event.record(&mut reads);
        if let Some(reads) = reads.0 {
            self.0.lock().unwrap().push(reads);
        }
    }
}

async fn users(store: &PostgresUserStore, count: usize) -> Vec<User> {
    let mut users = Vec::with_capacity(count);
    for i in 0..count {
        let user = User::new(email(&format!("user{i}@example.com")), HASH.into());
        users.push(store.create(user).await.unwrap());
    }
    users
}

/// Reads by id that wait together leave together: one query per batch of
/// at most 128 ids, and each read gets its own row (a user asked for twice
/// gets it twice; an id nobody has, nothing). On one thread, every read is
/// queued before the first reader runs, so the batches are known.
#[tokio::test]
async fn reads_waiting_together_leave_in_one_query_each_with_its_own_answer() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let database = PgDatabase::create();
    let store = migrated(&database).await;
    let users = users(&store, 100).await;
    let batches = Batches::default();
    let _events =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(batches.clone()));

    let mut reads = Vec::new();
    for round in 0..3 {
        for user in &users {
            let (id, expected) = if round < 2 {
                (user.id, Some(user.clone()))
            } else {
                (UserId::random(), None)
            };
            let store = store.clone();
            reads.push(tokio::spawn(async move { (store.get(id).await, expected) }));
        }
    }
    for read in reads {
        let (got, expected) = read.await.unwrap();
        assert_eq!(got, Ok(expected));
    }
    let seen = batches.seen();
    assert_eq!(
        seen.iter().sum::<u64>(),
        300,
        "every read in a batch: {seen:?}"
    );
    assert!(
        seen.len() <= 3 && seen.iter().all(|&reads| reads <= 128),
        "300 reads waiting together take at most 3 queries of at most 128: {seen:?}"
    );
    // Alone, a read is a batch of its own.
    assert_eq!(store.get(users[7].id).await, Ok(Some(users[7].clone())));
    assert_eq!(batches.seen().last(), Some(&1));
}

/// A database session's request looks its token up on the read lane too:
/// token and user reads waiting together leave in one batch (a query per
/// kind), each read with its own answer — the token's row whatever its age,
/// bounded by the caller's `not_before` to the microsecond; a user read
/// through a store with extra fields gets them, one through a store without
/// gets none, though both stores share the lane.
#[tokio::test]
async fn token_and_user_reads_waiting_together_share_a_batch_each_with_its_own_answer() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let database = PgDatabase::create();
    let plain = migrated(&database).await;
    let fielded = plain.clone().with_user_fields(contract_fields());
    fielded.migrate().await.unwrap();
    let users = users(&plain, 30).await;
    let created = UNIX_EPOCH + Duration::from_micros(1_796_166_052_440_530);
    let mut records = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let record = AccessTokenRecord {
            token: format!("{i:0>43}"),
            user_id: user.id,
            created_at: created + Duration::from_micros(i as u64),
        };
        plain.create_access_token(&record).await.unwrap();
        records.push(record);
    }
    let with_fields = |user: &User| {
        let mut user = user.clone();
        user.fields = contract_fields()
            .iter()
            .map(|spec| (spec.name.clone(), spec.default.clone()))
            .collect();
        user
    };
    let batches = Batches::default();
    let _events =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(batches.clone()));

    let mut tokens = Vec::new();
    let mut gets = Vec::new();
    for (i, (user, record)) in users.iter().zip(&records).enumerate() {
        // Every token asked with its own bound: at its creation (found), one
        // microsecond after (too old), or a token nobody has.
        let (token, not_before, expected) = match i % 3 {
            0 => (
                record.token.clone(),
                record.created_at,
                Some(record.clone()),
            ),
            1 => (
                record.token.clone(),
                record.created_at + Duration::from_micros(1),
                None,
            ),
            _ => ("n".repeat(43), created, None),
        };
        let store = plain.clone();
        tokens.push(tokio::spawn(async move {
            (store.get_access_token(&token, not_before).await, expected)
        }));
        for (store, expected) in [(&plain, user.clone()), (&fielded, with_fields(user))] {
            let (store, id) = (store.clone(), user.id);
            gets.push(tokio::spawn(async move {
                (store.get(id).await, Some(expected))
            }));
        }
    }
    for read in tokens {
        let (got, expected) = read.await.unwrap();
        assert_eq!(got, Ok(expected));
    }
    for read in gets {
        let (got, expected) = read.await.unwrap();
        assert_eq!(got, Ok(expected));
    }
    let seen = batches.seen();
    assert_eq!(seen, vec![90], "every read of the lane, in one batch");
    // Alone, a token read is a batch of its own.
    assert_eq!(
        plain.get_access_token(&records[4].token, created).await,
        Ok(Some(records[4].clone()))
    );
    assert_eq!(batches.seen().last(), Some(&1));
}

/// Batching never answers a read with a row read before it was asked for:
/// while reads of a user pour in from many tasks, every read asked after a
/// write returned sees that write (a read joins only a query not yet sent).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_asked_after_a_write_sees_it_while_reads_pour_in() {
    let database = PgDatabase::create();
    let store = migrated(&database).await;
    let ann = store
        .create(User::new(email("ann@example.com"), HASH.into()))
        .await
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..16)
        .map(|_| {
            let (store, stop) = (store.clone(), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut reads = 0_u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    assert!(store.get(ann.id).await.unwrap().is_some());
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for round in 0..40 {
        let active = round % 2 == 1;
        let patch = UserPatch {
            is_active: Some(active),
            ..UserPatch::default()
        };
        store.patch(ann.id, patch).await.unwrap();
        let checks: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.get(ann.id).await.unwrap().unwrap().is_active })
            })
            .collect();
        for check in checks {
            assert_eq!(
                check.await.unwrap(),
                active,
                "round {round}: a read saw the row before the write"
            );
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut background = 0;
    for task in load {
        background += task.await.unwrap();
    }
    assert!(background > 0, "reads poured in meanwhile");
}

/// A read that waits longer than the acquire timeout for a connection
/// (every one busy) fails as `Unavailable`; a read already sent keeps
/// waiting for its answer; and the lane serves again once the connection
/// is free. The only lane connection is held by a read PostgreSQL blocks
/// (an `ACCESS EXCLUSIVE` lock on `user`).
#[tokio::test(flavor = "multi_thread")]
async fn a_read_waiting_past_the_acquire_timeout_fails_and_the_lane_recovers() {
    let database = PgDatabase::create();
    migrated(&database).await;
    let options = PostgresStoreOptions {
        // one pool connection, one lane connection
        max_connections: 2,
        acquire_timeout: Duration::from_millis(300),
        ..PostgresStoreOptions::default()
    };
    let store = PostgresUserStore::open_with(&database.url, options)
        .await
        .unwrap();
    let ann = store
        .create(User::new(email("ann@example.com"), HASH.into()))
        .await
        .unwrap();
    let locker = open(&database).await;
    let lock = db(&locker).begin().await.unwrap();
    lock.execute_unprepared(r#"LOCK TABLE "user" IN ACCESS EXCLUSIVE MODE"#)
        .await
        .unwrap();
    let blocked = {
        let store = store.clone();
        tokio::spawn(async move { store.get(ann.id).await })
    };
    // The blocked read is in PostgreSQL, waiting for the lock.
    let waiting_for_lock = format!(
        "SELECT pid::text FROM pg_stat_activity WHERE datname = '{}' \
         AND application_name = 'portcullis' AND wait_event_type = 'Lock'",
        database.name
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while texts(db(&locker), &waiting_for_lock).await.is_empty() {
        assert!(Instant::now() < deadline, "the read never reached the lock");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    let refused = store.get(ann.id).await;
    assert!(
        matches!(&refused, Err(StoreError::Unavailable(e)) if e.to_string().contains("no connection for a read")),
        "{refused:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    assert!(
        !blocked.is_finished(),
        "the first read still waits for its answer"
    );
    lock.commit().await.unwrap();
    assert_eq!(blocked.await.unwrap(), Ok(Some(ann.clone())));
    assert_eq!(store.get(ann.id).await, Ok(Some(ann)));
}

/// Callers that give up (their tasks aborted) strand nobody: the reads
/// they left are answered to no one, the others get their rows.
#[tokio::test(flavor = "multi_thread")]
async fn reads_whose_callers_gave_up_strand_no_other_read() {
    let database = PgDatabase::create();
    let store = migrated(&database).await;
    let users = users(&store, 40).await;
    for _ in 0..5 {
        let reads: Vec<_> = users
            .iter()
            .map(|user| {
                let (store, user) = (store.clone(), user.clone());
                tokio::spawn(async move { assert_eq!(store.get(user.id).await, Ok(Some(user))) })
            })
            .collect();
        let mut kept = 0;
        for (i, read) in reads.into_iter().enumerate() {
            if i % 2 == 0 {
                read.abort();
            } else {
                read.await.unwrap();
                kept += 1;
            }
        }
        assert_eq!(kept, 20);
    }
    assert_eq!(store.get(users[0].id).await, Ok(Some(users[0].clone())));
}

/// `postgres://` and `postgresql://` both select this store in `portcullis`
/// (built with the feature), which migrates on the way.
#[tokio::test(flavor = "multi_thread")]
async fn both_url_schemes_select_the_postgres_store_in_portcullis() {
    let database = PgDatabase::create();
    let postgresql = database.url.replacen("postgres://", "postgresql://", 1);
    assert!(postgresql.starts_with("postgresql://"), "{postgresql}");
    let note = portcullis::migrate(&postgresql).await.unwrap();
    assert!(
        note.contains("applied migrations m20250101_000001_create_user"),
        "{note}"
    );
    let note = portcullis::migrate(&database.url).await.unwrap();
    assert!(note.ends_with("schema up to date"), "{note}");
    let store = portcullis::open_store_with(&database.url, 2).await.unwrap();
    assert_eq!(store.ping().await, Ok(()));
}

/// The contract suite's fields: `nickname` (string max 50, nullable),
/// `organisation_id` (integer, default 0), `newsletter` (boolean, default
/// false).
fn contract_fields() -> UserFields {
    portcullis_tests::store_contract::contract_fields()
}

async fn with_fields(database: &PgDatabase, fields: UserFields) -> PostgresUserStore {
    open(database).await.with_user_fields(fields)
}

/// `name type max nullable default` of the columns of `user` named in `names`.
async fn field_columns(db: &DatabaseConnection, names: &str) -> Vec<String> {
    texts(
        db,
        &format!(
            "SELECT column_name || ' ' || data_type || ' ' || \
             coalesce(character_maximum_length::text, '-') || ' ' || is_nullable || ' ' || \
             coalesce(column_default, '-') FROM information_schema.columns \
             WHERE table_name = 'user' AND column_name IN ({names}) ORDER BY column_name"
        ),
    )
    .await
}

const FIELD_NAMES: &str = "'nickname', 'organisation_id', 'newsletter'";

#[tokio::test(flavor = "multi_thread")]
async fn field_columns_are_added_and_rows_already_there_get_the_defaults() {
    let database = PgDatabase::create();
    let before = migrated(&database).await;
    let ann = User::new(email("ann@example.com"), HASH.into());
    before.create(ann.clone()).await.unwrap();

    let store = with_fields(&database, contract_fields()).await;
    assert_eq!(store.migrate().await.unwrap(), Vec::<String>::new());
    assert_eq!(
        field_columns(db(&store), FIELD_NAMES).await,
        [
            "newsletter boolean - NO false",
            "nickname character varying 50 YES -",
            "organisation_id integer - NO 0",
        ]
    );
    let found = store.get(ann.id).await.unwrap().unwrap();
    assert_eq!(found.fields, contract_fields().defaults());
    // Migrating again changes nothing; the store without fields still works.
    store.migrate().await.unwrap();
    assert_eq!(store.get(ann.id).await.unwrap(), Some(found));
    assert_eq!(before.get(ann.id).await.unwrap(), Some(ann));
}

#[tokio::test(flavor = "multi_thread")]
async fn fastapi_users_field_columns_of_compatible_types_are_adopted_with_their_data() {
    let database = PgDatabase::create();
    let store = with_fields(&database, contract_fields()).await;
    exec(db(&store), FASTAPI_USERS_DDL).await;
    // What SQLAlchemy makes of String(60), BigInteger and Boolean.
    exec(
        db(&store),
        r#"ALTER TABLE "user" ADD COLUMN nickname VARCHAR(60);
           ALTER TABLE "user" ADD COLUMN organisation_id BIGINT NOT NULL DEFAULT 5;
           ALTER TABLE "user" ADD COLUMN newsletter BOOLEAN;"#,
    )
    .await;
    exec(
        db(&store),
        &format!(
            r#"INSERT INTO "user" VALUES
               ('0f8fad5b-d9cb-469f-a165-70867728950e', 'Ann@example.com', '{HASH}', true, false, true, 'Annie', 12, true)"#
        ),
    )
    .await;
    let before = field_columns(db(&store), FIELD_NAMES).await;
    store.migrate().await.unwrap();
    assert_eq!(field_columns(db(&store), FIELD_NAMES).await, before);

    let ann = store
        .get_by_email(&email("ann@example.com"))
        .await
        .unwrap()
        .expect("the FastAPI Users row is kept");
    assert_eq!(
        ann.fields.get("nickname"),
        Some(&FieldValue::String("Annie".into()))
    );
    assert_eq!(
        ann.fields.get("organisation_id"),
        Some(&FieldValue::Integer(12))
    );
    assert_eq!(
        ann.fields.get("newsletter"),
        Some(&FieldValue::Boolean(true))
    );

    // And the adopted columns take writes of every kind, nulls included.
    let mut changes = portcullis_domain::FieldValues::new();
    changes.set("organisation_id", FieldValue::Integer(i32::MAX.into()));
    changes.set("newsletter", FieldValue::Boolean(false));
    changes.set("nickname", FieldValue::Null);
    let patched = store
        .patch(
            ann.id,
            UserPatch {
                fields: changes,
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        patched.fields.get("organisation_id"),
        Some(&FieldValue::Integer(i32::MAX.into()))
    );
    assert_eq!(
        patched.fields.get("newsletter"),
        Some(&FieldValue::Boolean(false))
    );
    assert_eq!(patched.fields.get("nickname"), Some(&FieldValue::Null));
    assert_eq!(store.get(ann.id).await.unwrap(), Some(patched));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_field_column_that_cannot_hold_the_field_is_refused_naming_it_and_nothing_changes() {
    let cases = [
        (
            r#"ALTER TABLE "user" ADD COLUMN organisation_id TEXT"#,
            ["\"organisation_id\"", "\"text\"", "integer not null"],
        ),
        (
            r#"ALTER TABLE "user" ADD COLUMN nickname VARCHAR(50) NOT NULL DEFAULT ''"#,
            ["\"nickname\"", "NOT NULL", "nullable"],
        ),
        (
            r#"ALTER TABLE "user" ADD COLUMN nickname VARCHAR(20)"#,
            ["\"nickname\"", "at most 20", "string (max 50)"],
        ),
        (
            r#"ALTER TABLE "user" ADD COLUMN newsletter INTEGER"#,
            ["\"newsletter\"", "\"integer\"", "boolean"],
        ),
    ];
    for (column, parts) in cases {
        let database = PgDatabase::create();
        let store = with_fields(&database, contract_fields()).await;
        exec(db(&store), FASTAPI_USERS_DDL).await;
        exec(db(&store), column).await;
        let before = field_columns(db(&store), FIELD_NAMES).await;
        let err = store.migrate().await.unwrap_err();
        assert!(
            matches!(err, PostgresStoreError::Migration { .. }),
            "{err:?}"
        );
        let shown = err.to_string();
        for part in parts {
            assert!(shown.contains(part), "{column}: {part} in {shown}");
        }
        assert_eq!(
            field_columns(db(&store), FIELD_NAMES).await,
            before,
            "{column}: no column added"
        );
        assert!(
            texts(
                db(&store),
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_name = 'user' AND column_name = 'role'"
            )
            .await
            .is_empty(),
            "{column}: the whole migration was rolled back"
        );
    }
}

/// Four stores with fields migrate one fresh database at once: all succeed
/// and each column is added once (under the migration lock).
#[tokio::test(flavor = "multi_thread")]
async fn racing_migrations_add_each_field_column_once() {
    let database = PgDatabase::create();
    let url = Arc::new(database.url.clone());
    let barrier = Arc::new(tokio::sync::Barrier::new(4));
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (url, barrier) = (Arc::clone(&url), Arc::clone(&barrier));
            tokio::spawn(async move {
                let store = PostgresUserStore::open(&url)
                    .await
                    .unwrap()
                    .with_user_fields(contract_fields());
                barrier.wait().await;
                store.migrate().await
            })
        })
        .collect();
    for task in tasks {
        task.await
            .unwrap()
            .expect("every racing migration succeeds");
    }
    let store = open(&database).await;
    assert_eq!(field_columns(db(&store), FIELD_NAMES).await.len(), 3);
}

//! FastAPI Users and Portcullis on one database at the same time (a
//! rolling switch, both directions), proven with what the real FastAPI
//! Users sends: `tests/fixtures/fastapi_users_sql/` holds the schema
//! FastAPI Users 15 creates and every statement its routes issued
//! (register, login, password change, an admin's update, forgot/reset
//! password, request-verify/verify, delete), captured from the reference
//! service by `scripts/fastapi_users_schema.sh` on SQLite and on
//! PostgreSQL (asyncpg).
//!
//! Per database: create it from FastAPI Users' DDL (or let Portcullis create
//! it: going back), let Portcullis migrate it with extra user fields
//! declared, replay FastAPI Users' statements with their parameters (each
//! must succeed: every column Portcullis adds has a database-side default),
//! and check that Portcullis reads what they wrote; then that a user
//! Portcullis wrote satisfies FastAPI Users' `SELECT`s in the form its
//! SQLAlchemy types read (a hyphenated lowercase text id and 0/1 flags on
//! SQLite), and that its `UPDATE`s and `DELETE` work on such a user.
//!
//! The same for FastAPI Users' OAuth account table
//! (`SQLAlchemyBaseOAuthAccountTableUUID`): the statements of its
//! `add_oauth_account`, `get_by_oauth_account` and `update_oauth_account`
//! replayed on a database Portcullis migrated or created, each side reading
//! and updating the other's links, and the database refusing FastAPI Users'
//! second link of one provider account (Portcullis' unique index).
//!
//! The SQLite half always runs; the PostgreSQL half needs the `postgres`
//! feature and `PORTCULLIS_TEST_POSTGRES_URL` (scripts/with-postgres).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use portcullis_domain::{
    AccessTokenRecord, EmailAddress, FieldSpec, FieldType, FieldValue, FieldWriter, OAuthAccount,
    Role, Store, StoreError, User, UserFields, UserId, UserPatch,
};
use serde_json::{Value, json};

const SQLITE_SCHEMA: &str = include_str!("../fixtures/fastapi_users_sql/sqlite_schema.sql");
const SQLITE_STEPS: &str = include_str!("../fixtures/fastapi_users_sql/sqlite_steps.json");
const SQLITE_OAUTH_SCHEMA: &str =
    include_str!("../fixtures/fastapi_users_sql/sqlite_oauth_schema.sql");
const SQLITE_OAUTH_STEPS: &str =
    include_str!("../fixtures/fastapi_users_sql/sqlite_oauth_steps.json");

/// One statement FastAPI Users sent, with its parameters.
#[derive(Debug, Clone)]
struct Sql {
    sql: String,
    params: Vec<Param>,
}

/// A parameter as the capture tagged it (its Python type).
#[derive(Debug, Clone, PartialEq)]
enum Param {
    Text(String),
    Int(i64),
    Bool(bool),
    Null,
}

/// One route FastAPI Users answered, and what it sent to the database.
#[derive(Debug, Clone)]
struct Step {
    name: String,
    response: Value,
    statements: Vec<Sql>,
}

fn parse_param(value: &Value) -> Param {
    match value {
        Value::Null => Param::Null,
        Value::Object(tagged) => match tagged.iter().next() {
            Some((tag, Value::String(s))) if tag == "text" || tag == "uuid" => {
                Param::Text(s.clone())
            }
            Some((tag, Value::Bool(b))) if tag == "bool" => Param::Bool(*b),
            Some((tag, Value::Number(n))) if tag == "int" => Param::Int(n.as_i64().unwrap()),
            _ => panic!("fixture: unexpected parameter {value}"),
        },
        _ => panic!("fixture: unexpected parameter {value}"),
    }
}

fn steps(fixture: &str) -> Vec<Step> {
    let doc: Value = serde_json::from_str(fixture).expect("fixture is JSON");
    doc["steps"]
        .as_array()
        .expect("fixture: steps")
        .iter()
        .map(|step| Step {
            name: step["step"].as_str().unwrap().to_owned(),
            response: step["response"].clone(),
            statements: step["statements"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| Sql {
                    sql: s["sql"].as_str().unwrap().to_owned(),
                    params: s["params"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(parse_param)
                        .collect(),
                })
                .collect(),
        })
        .collect()
}

/// The DDL statements of a `*_schema.sql` fixture (comments dropped).
fn ddl(schema: &str) -> Vec<String> {
    let body: String = schema
        .lines()
        .filter(|l| !l.starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    body.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn step<'a>(steps: &'a [Step], name: &str) -> &'a Step {
    steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("fixture: no step {name}"))
}

/// The first statement of `step` that starts with `prefix`.
fn statement(steps: &[Step], name: &str, prefix: &str) -> Sql {
    step(steps, name)
        .statements
        .iter()
        .find(|s| s.sql.trim_start().starts_with(prefix))
        .unwrap_or_else(|| panic!("fixture: step {name} sent no {prefix}"))
        .clone()
}

/// The extra user fields the tests declare, one of each kind: FastAPI
/// Users knows none of them, so its `INSERT`s rely on their defaults.
fn user_fields() -> UserFields {
    let spec = |name: &str, ty, nullable, default| FieldSpec {
        name: name.into(),
        ty,
        nullable,
        default,
        writable_by: FieldWriter::User,
    };
    UserFields::new(vec![
        spec(
            "nickname",
            FieldType::String {
                max_length: Some(50),
            },
            true,
            FieldValue::Null,
        ),
        spec("credits", FieldType::Integer, false, FieldValue::Integer(5)),
        spec(
            "newsletter",
            FieldType::Boolean,
            false,
            FieldValue::Boolean(false),
        ),
    ])
    .unwrap()
}

/// A raw connection to the database, as FastAPI Users has one: it sends the
/// captured statements with their parameters.
#[allow(clippy::large_enum_variant)]
enum Raw {
    Sqlite(diesel::SqliteConnection),
    #[cfg(feature = "postgres")]
    Postgres(portcullis_store_sea_orm_postgres::sea_orm::DatabaseConnection),
}

impl Raw {
    /// Runs a statement that returns no rows; the number of rows changed.
    async fn execute(&mut self, sql: &str, params: &[Param]) -> u64 {
        match self {
            Raw::Sqlite(conn) => sqlite::execute(conn, sql, params),
            #[cfg(feature = "postgres")]
            Raw::Postgres(db) => postgres::execute(db, sql, params).await,
        }
    }

    /// Runs a `SELECT` of FastAPI Users and gives each row as FastAPI Users'
    /// column types would see it: `id`, `email`, `hashed_password`,
    /// `is_active`, `is_superuser`, `is_verified`, `role`, and the
    /// database's own type names of the id and the flags (`id_type`,
    /// `flag_types`).
    async fn rows(&mut self, sql: &str, params: &[Param]) -> Vec<Value> {
        match self {
            Raw::Sqlite(conn) => sqlite::rows(conn, sql, params),
            #[cfg(feature = "postgres")]
            Raw::Postgres(db) => postgres::rows(db, sql, params).await,
        }
    }

    /// Runs a statement that may fail: the number of rows changed, or the
    /// database's refusal.
    async fn try_execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, String> {
        match self {
            Raw::Sqlite(conn) => sqlite::try_execute(conn, sql, params),
            #[cfg(feature = "postgres")]
            Raw::Postgres(db) => postgres::try_execute(db, sql, params).await,
        }
    }

    /// Runs one of FastAPI Users' `SELECT`s of a user joined with its OAuth
    /// accounts (`get_by_oauth_account`) and gives each row's user id and
    /// address and the joined-loaded account's columns (`oauth_account_1`,
    /// its id as `id_1`), with the database's type name of the account id.
    async fn oauth_rows(&mut self, sql: &str, params: &[Param]) -> Vec<Value> {
        match self {
            Raw::Sqlite(conn) => sqlite::oauth_rows(conn, sql, params),
            #[cfg(feature = "postgres")]
            Raw::Postgres(db) => postgres::oauth_rows(db, sql, params).await,
        }
    }

    /// What FastAPI Users' column types need of a row: on SQLite a text id
    /// in the hyphenated lowercase form it binds (its `WHERE id = ?`
    /// compares text) and integer flags (`bool(int)`); on PostgreSQL a
    /// native `uuid` and `boolean`s.
    fn expected_types(&self) -> (&'static str, &'static str) {
        match self {
            Raw::Sqlite(_) => ("text", "integer integer integer"),
            #[cfg(feature = "postgres")]
            Raw::Postgres(_) => ("uuid", "boolean boolean boolean"),
        }
    }

    /// FastAPI Users' parameter for a user id on this database: `str(uuid)`
    /// (the capture shows both drivers get text).
    fn id_param(id: UserId) -> Param {
        Param::Text(id.to_string())
    }

    /// A statement FastAPI Users sent, on every statement: replays it as is.
    async fn replay(&mut self, statement: &Sql) {
        if statement.sql.trim_start().starts_with("SELECT") {
            self.rows(&statement.sql, &statement.params).await;
        } else {
            self.execute(&statement.sql, &statement.params).await;
        }
    }
}

mod sqlite {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Bool, Nullable, Text};
    use diesel::sqlite::Sqlite;

    use super::{Param, Value};

    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        row: String,
    }

    /// A connection as Python's `sqlite3` (aiosqlite) opens one: foreign
    /// keys off (SQLite's default), a 5 s busy timeout.
    pub(super) fn connect(path: &str) -> SqliteConnection {
        let mut conn = SqliteConnection::establish(path).expect("open the SQLite file");
        conn.batch_execute("PRAGMA busy_timeout = 5000").unwrap();
        conn
    }

    fn bound<'a>(
        sql: &str,
        params: &'a [Param],
    ) -> diesel::query_builder::BoxedSqlQuery<'a, Sqlite, diesel::query_builder::SqlQuery> {
        let mut query = diesel::sql_query(sql).into_boxed::<Sqlite>();
        for param in params {
            query = match param {
                Param::Text(s) => query.bind::<Text, _>(s.as_str()),
                Param::Int(i) => query.bind::<BigInt, _>(*i),
                Param::Bool(b) => query.bind::<Bool, _>(*b),
                Param::Null => query.bind::<Nullable<Text>, _>(None::<&str>),
            };
        }
        query
    }

    pub(super) fn execute(conn: &mut SqliteConnection, sql: &str, params: &[Param]) -> u64 {
        let n = bound(sql, params)
            .execute(conn)
            .unwrap_or_else(|e| panic!("FastAPI Users' statement failed: {sql}: {e}"));
        n as u64
    }

    pub(super) fn try_execute(
        conn: &mut SqliteConnection,
        sql: &str,
        params: &[Param],
    ) -> Result<u64, String> {
        bound(sql, params)
            .execute(conn)
            .map(|n| n as u64)
            .map_err(|e| e.to_string())
    }

    pub(super) fn oauth_rows(
        conn: &mut SqliteConnection,
        sql: &str,
        params: &[Param],
    ) -> Vec<Value> {
        let wrapped = format!(
            "SELECT json_object('user_id', q.id, 'email', q.email, 'id', q.id_1, \
             'account_user_id', q.user_id, 'oauth_name', q.oauth_name, \
             'access_token', q.access_token, 'expires_at', q.expires_at, \
             'refresh_token', q.refresh_token, 'account_id', q.account_id, \
             'account_email', q.account_email, 'id_type', typeof(q.id_1)) AS row \
             FROM ({sql}) AS q"
        );
        bound(&wrapped, params)
            .load::<Row>(conn)
            .unwrap_or_else(|e| panic!("FastAPI Users' SELECT failed: {sql}: {e}"))
            .into_iter()
            .map(|r| serde_json::from_str(&r.row).unwrap())
            .collect()
    }

    pub(super) fn rows(conn: &mut SqliteConnection, sql: &str, params: &[Param]) -> Vec<Value> {
        let wrapped = format!(
            "SELECT json_object('id', q.id, 'email', q.email, 'hashed_password', \
             q.hashed_password, 'is_active', q.is_active, 'is_superuser', q.is_superuser, \
             'is_verified', q.is_verified, 'role', q.role, 'id_type', typeof(q.id), \
             'flag_types', typeof(q.is_active) || ' ' || typeof(q.is_superuser) || ' ' || \
             typeof(q.is_verified)) AS row FROM ({sql}) AS q"
        );
        bound(&wrapped, params)
            .load::<Row>(conn)
            .unwrap_or_else(|e| panic!("FastAPI Users' SELECT failed: {sql}: {e}"))
            .into_iter()
            .map(|r| serde_json::from_str(&r.row).unwrap())
            .collect()
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use portcullis_store_sea_orm_postgres::sea_orm::{
        ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value as SqlValue,
    };

    use super::{Param, Value};

    fn values(params: &[Param]) -> Vec<SqlValue> {
        params
            .iter()
            .map(|p| match p {
                Param::Text(s) => SqlValue::String(Some(s.clone())),
                Param::Int(i) => SqlValue::BigInt(Some(*i)),
                Param::Bool(b) => SqlValue::Bool(Some(*b)),
                Param::Null => SqlValue::String(None),
            })
            .collect()
    }

    pub(super) async fn execute(db: &DatabaseConnection, sql: &str, params: &[Param]) -> u64 {
        db.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values(params),
        ))
        .await
        .unwrap_or_else(|e| panic!("FastAPI Users' statement failed: {sql}: {e}"))
        .rows_affected()
    }

    pub(super) async fn try_execute(
        db: &DatabaseConnection,
        sql: &str,
        params: &[Param],
    ) -> Result<u64, String> {
        db.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values(params),
        ))
        .await
        .map(|r| r.rows_affected())
        .map_err(|e| e.to_string())
    }

    pub(super) async fn oauth_rows(
        db: &DatabaseConnection,
        sql: &str,
        params: &[Param],
    ) -> Vec<Value> {
        let wrapped = format!(
            "SELECT json_build_object('user_id', q.id, 'email', q.email, 'id', q.id_1, \
             'account_user_id', q.user_id, 'oauth_name', q.oauth_name, \
             'access_token', q.access_token, 'expires_at', q.expires_at, \
             'refresh_token', q.refresh_token, 'account_id', q.account_id, \
             'account_email', q.account_email, 'id_type', pg_typeof(q.id_1)::text)::text \
             FROM ({sql}) AS q"
        );
        db.query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            &wrapped,
            values(params),
        ))
        .await
        .unwrap_or_else(|e| panic!("FastAPI Users' SELECT failed: {sql}: {e}"))
        .iter()
        .map(|row| serde_json::from_str(&row.try_get_by_index::<String>(0).unwrap()).unwrap())
        .collect()
    }

    pub(super) async fn rows(db: &DatabaseConnection, sql: &str, params: &[Param]) -> Vec<Value> {
        let wrapped = format!(
            "SELECT json_build_object('id', q.id, 'email', q.email, 'hashed_password', \
             q.hashed_password, 'is_active', q.is_active, 'is_superuser', q.is_superuser, \
             'is_verified', q.is_verified, 'role', q.role, 'id_type', pg_typeof(q.id)::text, \
             'flag_types', pg_typeof(q.is_active)::text || ' ' || \
             pg_typeof(q.is_superuser)::text || ' ' || pg_typeof(q.is_verified)::text)::text \
             FROM ({sql}) AS q"
        );
        db.query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            &wrapped,
            values(params),
        ))
        .await
        .unwrap_or_else(|e| panic!("FastAPI Users' SELECT failed: {sql}: {e}"))
        .iter()
        .map(|row| serde_json::from_str(&row.try_get_by_index::<String>(0).unwrap()).unwrap())
        .collect()
    }
}

/// A row as FastAPI Users reads it, in the shape of its `UserRead` (flags
/// as booleans whatever the database stores).
fn as_user_read(row: &Value) -> Value {
    let flag = |v: &Value| match v {
        Value::Bool(b) => json!(b),
        Value::Number(n) => json!(n.as_i64() != Some(0)),
        other => panic!("a flag FastAPI Users cannot read: {other}"),
    };
    json!({
        "id": row["id"],
        "email": row["email"],
        "is_active": flag(&row["is_active"]),
        "is_superuser": flag(&row["is_superuser"]),
        "is_verified": flag(&row["is_verified"]),
        "role": row["role"],
    })
}

/// The same, of a user Portcullis holds.
fn user_read(user: &User) -> Value {
    json!({
        "id": user.id.to_string(),
        "email": user.email.as_str(),
        "is_active": user.is_active,
        "is_superuser": user.is_superuser,
        "is_verified": user.is_verified,
        "role": user.role.as_str(),
    })
}

fn uuid_of(value: &Value) -> UserId {
    UserId::from_uuid(value.as_str().unwrap().parse().unwrap())
}

fn email(text: &str) -> EmailAddress {
    EmailAddress::parse(text).unwrap()
}

/// The last password hash `step` wrote (its INSERT's or UPDATE's).
fn hash_written(step: &Step) -> Option<String> {
    step.statements.iter().rev().find_map(|s| {
        s.params.iter().find_map(|p| match p {
            Param::Text(t) if t.starts_with("$argon2") => Some(t.clone()),
            _ => None,
        })
    })
}

/// Replays every step of FastAPI Users on a migrated database, checking
/// after each one that its `SELECT`s read what it answered and that
/// Portcullis reads the same user, the same hash, and its own columns'
/// defaults.
async fn fastapi_users_writes_portcullis_reads(
    raw: &mut Raw,
    store: &Arc<dyn Store>,
    steps: &[Step],
) {
    let (id_type, flag_types) = raw.expected_types();
    let registered = uuid_of(&step(steps, "register").response["id"]);
    // The registered user's hash, as FastAPI Users last wrote it.
    let mut hash = None;
    for step in steps {
        for statement in &step.statements {
            raw.replay(statement).await;
        }
        let subject = match step.name.as_str() {
            "register_second" => uuid_of(&step.response["id"]),
            "admin_delete" => {
                let second = uuid_of(&self::step(steps, "register_second").response["id"]);
                assert_eq!(
                    store.get(second).await.unwrap(),
                    None,
                    "FastAPI Users' DELETE is seen by Portcullis"
                );
                continue;
            }
            _ => registered,
        };
        let user = store
            .get(subject)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("after {}: Portcullis finds the user", step.name));
        // Its own SELECT by id reads the row as it answered.
        let by_id = statement(steps, "me", "SELECT");
        let rows = raw.rows(&by_id.sql, &[Raw::id_param(subject)]).await;
        assert_eq!(rows.len(), 1, "after {}: {rows:?}", step.name);
        assert_eq!(rows[0]["id_type"], id_type, "{rows:?}");
        assert_eq!(rows[0]["flag_types"], flag_types, "{rows:?}");
        if step.response.get("id").is_some() {
            assert_eq!(
                as_user_read(&rows[0]),
                step.response,
                "after {}: FastAPI Users reads what it answered",
                step.name
            );
            assert_eq!(
                user_read(&user),
                step.response,
                "after {}: Portcullis reads what FastAPI Users answered",
                step.name
            );
        }
        assert_eq!(
            user_read(&user),
            as_user_read(&rows[0]),
            "after {}",
            step.name
        );
        if subject == registered {
            hash = hash_written(step).or(hash);
            assert_eq!(
                Some(&user.hashed_password),
                hash.as_ref(),
                "after {}",
                step.name
            );
        }
        assert_eq!(
            user.session_stamp, 0,
            "a row FastAPI Users wrote has stamp 0"
        );
        assert_eq!(user.fields.get("nickname"), Some(&FieldValue::Null));
        assert_eq!(user.fields.get("credits"), Some(&FieldValue::Integer(5)));
        assert_eq!(
            user.fields.get("newsletter"),
            Some(&FieldValue::Boolean(false))
        );
        // Portcullis finds it by any spelling of its address.
        let upper = email(&user.email.as_str().to_uppercase());
        assert_eq!(
            store.get_by_email(&upper).await.unwrap().map(|u| u.id),
            Some(subject)
        );
    }
    let final_user = store.get(registered).await.unwrap().unwrap();
    assert_eq!(final_user.email.as_str(), "Fleet.Renamed@example.com");
    assert_eq!(final_user.role, Role::Instructor);
    assert!(final_user.is_verified);
}

/// A user Portcullis creates and changes satisfies FastAPI Users' `SELECT`s
/// (by address in any case, by id in its text form), and FastAPI Users'
/// `UPDATE`s and `DELETE` work on it, also once Portcullis has raised its
/// session stamp and holds an access token of it.
async fn portcullis_writes_fastapi_users_reads(
    raw: &mut Raw,
    store: &Arc<dyn Store>,
    steps: &[Step],
) {
    let (id_type, flag_types) = raw.expected_types();
    let mut new = User::new(
        email("Porta.User@EXAMPLE.com"),
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$4nNwXf7y1cYzpSuq7d7vuuMJcuxRVBm6WDCwwz8R0zU".into(),
    );
    new.fields = user_fields().defaults();
    let created = store.create(new).await.unwrap();
    let user = store
        .patch(
            created.id,
            UserPatch {
                end_sessions: Some(1_700_000_000_123),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(user.session_stamp, 1_700_000_000_123);
    assert_eq!(user.email.as_str(), "Porta.User@example.com");

    let by_email = statement(steps, "login", "SELECT");
    for typed in [
        "porta.user@example.com",
        "PORTA.USER@EXAMPLE.COM",
        "Porta.User@example.com",
    ] {
        let rows = raw.rows(&by_email.sql, &[Param::Text(typed.into())]).await;
        assert_eq!(rows.len(), 1, "FastAPI Users finds {typed}: {rows:?}");
        assert_eq!(as_user_read(&rows[0]), user_read(&user));
        assert_eq!(rows[0]["hashed_password"], user.hashed_password);
        assert_eq!(rows[0]["id_type"], id_type);
        assert_eq!(rows[0]["flag_types"], flag_types);
    }
    let by_id = statement(steps, "me", "SELECT");
    let rows = raw.rows(&by_id.sql, &[Raw::id_param(user.id)]).await;
    assert_eq!(
        rows.len(),
        1,
        "FastAPI Users finds the user by id: {rows:?}"
    );
    assert_eq!(as_user_read(&rows[0]), user_read(&user));

    // FastAPI Users changes the password, verifies, renames.
    let change = statement(steps, "change_password", "UPDATE");
    let hash = "$argon2id$v=19$m=65536,t=3,p=4$bmV3c2FsdG5ld3NhbHQ$newnewnewnewnewnewnewnewnewnewnewnewnewnew";
    let n = raw
        .execute(
            &change.sql,
            &[Param::Text(hash.into()), Raw::id_param(user.id)],
        )
        .await;
    assert_eq!(n, 1, "FastAPI Users' password UPDATE hits the user");
    let verify = statement(steps, "verify", "UPDATE");
    let mut params = verify.params.clone();
    *params.last_mut().unwrap() = Raw::id_param(user.id);
    assert_eq!(raw.execute(&verify.sql, &params).await, 1);
    let rename = statement(steps, "admin_update", "UPDATE");
    let n = raw
        .execute(
            &rename.sql,
            &[
                Param::Text("admin".into()),
                Param::Text("Porta.Renamed@example.com".into()),
                Raw::id_param(user.id),
            ],
        )
        .await;
    assert_eq!(n, 1);
    let seen = store.get(user.id).await.unwrap().unwrap();
    assert_eq!(seen.hashed_password, hash);
    assert!(seen.is_verified);
    assert_eq!(seen.role, Role::Admin);
    assert_eq!(seen.email.as_str(), "Porta.Renamed@example.com");
    assert_eq!(
        seen.session_stamp, 1_700_000_000_123,
        "FastAPI Users' writes keep the stamp"
    );
    assert_eq!(seen.fields, user.fields, "and the extra fields");

    // FastAPI Users deletes a user Portcullis holds a session of.
    store
        .create_access_token(&AccessTokenRecord {
            token: "kX3vQ0m9Zb1pYtR7cW2eH5uJ8nL4sD6fA0gB3iK-_yz".into(),
            user_id: user.id,
            created_at: SystemTime::now(),
        })
        .await
        .unwrap();
    let delete = statement(steps, "admin_delete", "DELETE");
    assert_eq!(raw.execute(&delete.sql, &[Raw::id_param(user.id)]).await, 1);
    assert_eq!(store.get(user.id).await.unwrap(), None);
    assert!(
        store
            .get_by_email(&email("porta.renamed@example.com"))
            .await
            .unwrap()
            .is_none()
    );
    // Portcullis' own purge still works on what is left (on SQLite,
    // FastAPI Users' connection does not enforce the foreign key, so the
    // token may outlive its user; it is of no use without one).
    store
        .purge_access_tokens(SystemTime::now() + Duration::from_secs(1))
        .await
        .unwrap();
}

/// An account as FastAPI Users' `get_by_oauth_account` row (see
/// [`Raw::oauth_rows`]) or its captured answers show it.
fn account_read(account: &OAuthAccount) -> Value {
    json!({
        "id": account.id.to_string(),
        "oauth_name": account.oauth_name,
        "access_token": account.access_token,
        "expires_at": account.expires_at,
        "refresh_token": account.refresh_token,
        "account_id": account.account_id,
        "account_email": account.account_email,
        "user_id": account.user_id.to_string(),
    })
}

/// The account columns of an [`Raw::oauth_rows`] row, in [`account_read`]'s
/// shape.
fn row_account(row: &Value) -> Value {
    json!({
        "id": row["id"],
        "oauth_name": row["oauth_name"],
        "access_token": row["access_token"],
        "expires_at": row["expires_at"],
        "refresh_token": row["refresh_token"],
        "account_id": row["account_id"],
        "account_email": row["account_email"],
        "user_id": row["account_user_id"],
    })
}

/// FastAPI Users' OAuth statements (add, look up, update a linked account)
/// replayed on a migrated database: Portcullis reads each link as FastAPI
/// Users answered it; then links Portcullis makes are found and updated by
/// FastAPI Users' statements, the database refuses FastAPI Users' second
/// link of a provider account Portcullis linked, and deleting the user
/// takes its links.
async fn fastapi_users_oauth_both_ways(raw: &mut Raw, store: &Arc<dyn Store>, steps: &[Step]) {
    let (id_type, _) = raw.expected_types();
    let registered = uuid_of(&step(steps, "register").response["id"]);
    for name in ["register", "add_oauth_account"] {
        for statement in &step(steps, name).statements {
            raw.replay(statement).await;
        }
    }
    let added = &step(steps, "add_oauth_account").response[0];
    let linked = store
        .get_oauth_account("github", "4242")
        .await
        .unwrap()
        .expect("Portcullis finds the link FastAPI Users made");
    assert_eq!(account_read(&linked), *added);
    assert_eq!(linked.user_id, registered);
    assert_eq!(
        store.oauth_accounts_of(registered).await.unwrap(),
        vec![linked.clone()]
    );

    // Its own look-ups read what it wrote.
    let lookup = statement(steps, "get_by_oauth_account", "SELECT");
    let rows = raw.oauth_rows(&lookup.sql, &lookup.params).await;
    let answered = &step(steps, "get_by_oauth_account").response;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["user_id"], answered["id"]);
    assert_eq!(row_account(&rows[0]), answered["oauth_accounts"][0]);
    let unknown = statement(steps, "get_by_oauth_account_unknown", "SELECT");
    assert!(
        raw.oauth_rows(&unknown.sql, &unknown.params)
            .await
            .is_empty()
    );

    // It refreshes the tokens; Portcullis reads the new ones.
    for statement in &step(steps, "update_oauth_account").statements {
        raw.replay(statement).await;
    }
    let updated = store
        .get_oauth_account("github", "4242")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        account_read(&updated),
        step(steps, "update_oauth_account").response[0]
    );

    // Portcullis links an account of a user it created.
    let mut new = User::new(email("porta.social@example.com"), "$argon2id$x".into());
    new.fields = user_fields().defaults();
    let porta = store.create(new).await.unwrap();
    let mine = OAuthAccount {
        id: uuid::Uuid::new_v4(),
        user_id: porta.id,
        oauth_name: "google".into(),
        access_token: "ya29.portcullis".into(),
        expires_at: None,
        refresh_token: Some("1//refresh".into()),
        account_id: "117".into(),
        account_email: "Porta.Social@example.com".into(),
    };
    store.add_oauth_account(&mine).await.unwrap();
    let params = [Param::Text("google".into()), Param::Text("117".into())];
    let rows = raw.oauth_rows(&lookup.sql, &params).await;
    assert_eq!(rows.len(), 1, "FastAPI Users finds the link: {rows:?}");
    assert_eq!(rows[0]["user_id"], porta.id.to_string());
    assert_eq!(rows[0]["email"], "porta.social@example.com");
    assert_eq!(rows[0]["id_type"], id_type, "{rows:?}");
    assert_eq!(row_account(&rows[0]), account_read(&mine));

    // FastAPI Users refreshes that link's tokens.
    let update = statement(steps, "update_oauth_account", "UPDATE");
    let refreshed = OAuthAccount {
        access_token: "ya29.fastapi-users".into(),
        expires_at: Some(1_767_229_200),
        refresh_token: None,
        account_email: "porta.social@example.com".into(),
        ..mine.clone()
    };
    let params = [
        Param::Text(refreshed.access_token.clone()),
        Param::Int(1_767_229_200),
        Param::Null,
        Param::Text(refreshed.account_email.clone()),
        Param::Text(mine.id.to_string()),
    ];
    assert_eq!(raw.execute(&update.sql, &params).await, 1);
    assert_eq!(
        store.get_oauth_account("google", "117").await.unwrap(),
        Some(refreshed.clone())
    );

    // FastAPI Users' second link of that provider account (it only looks
    // first; two callbacks may race) is refused by the database.
    let insert = statement(steps, "add_oauth_account", "INSERT");
    let mut params = insert.params.clone();
    params[0] = Param::Text(uuid::Uuid::new_v4().to_string());
    params[2] = Param::Text("google".into());
    params[6] = Param::Text("117".into());
    let refused = raw.try_execute(&insert.sql, &params).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_lowercase().contains("unique")),
        "{refused:?}"
    );
    assert_eq!(
        store.oauth_accounts_of(registered).await.unwrap(),
        vec![updated],
        "FastAPI Users' user has only its own link"
    );
    // Deleting the user takes its link, for FastAPI Users too; linking to
    // a user that is gone is NotFound.
    store.delete(porta.id).await.unwrap();
    let google = [Param::Text("google".into()), Param::Text("117".into())];
    assert!(raw.oauth_rows(&lookup.sql, &google).await.is_empty());
    assert_eq!(
        store.add_oauth_account(&mine).await,
        Err(StoreError::NotFound)
    );
}

struct TempDatabase(std::path::PathBuf);

impl Drop for TempDatabase {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A SQLite file, created by FastAPI Users' DDL when `fastapi_users_first`,
/// else by Portcullis alone; then migrated by Portcullis with extra fields.
async fn sqlite_database(fastapi_users_first: bool) -> (TempDatabase, Raw, Arc<dyn Store>) {
    use portcullis_store_diesel_sqlite::SqliteUserStore;
    let file = TempDatabase(std::env::temp_dir().join(format!(
        "portcullis-fastapi-users-{}.db",
        uuid::Uuid::new_v4()
    )));
    let path = file.0.display().to_string();
    let mut raw = Raw::Sqlite(sqlite::connect(&path));
    if fastapi_users_first {
        for statement in ddl(SQLITE_SCHEMA)
            .into_iter()
            .chain(ddl(SQLITE_OAUTH_SCHEMA))
        {
            raw.execute(&statement, &[]).await;
        }
    }
    let store = SqliteUserStore::open(&format!("sqlite://{path}"))
        .await
        .unwrap()
        .with_user_fields(user_fields());
    store.migrate().await.unwrap();
    (file, raw, Arc::new(store))
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_fastapi_users_runs_on_the_database_portcullis_migrated() {
    let steps = steps(SQLITE_STEPS);
    let (_file, mut raw, store) = sqlite_database(true).await;
    fastapi_users_writes_portcullis_reads(&mut raw, &store, &steps).await;
    portcullis_writes_fastapi_users_reads(&mut raw, &store, &steps).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_fastapi_users_runs_on_a_database_portcullis_created() {
    let steps = steps(SQLITE_STEPS);
    let (_file, mut raw, store) = sqlite_database(false).await;
    fastapi_users_writes_portcullis_reads(&mut raw, &store, &steps).await;
    portcullis_writes_fastapi_users_reads(&mut raw, &store, &steps).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_fastapi_users_oauth_accounts_on_the_database_portcullis_migrated() {
    let steps = steps(SQLITE_OAUTH_STEPS);
    let (_file, mut raw, store) = sqlite_database(true).await;
    fastapi_users_oauth_both_ways(&mut raw, &store, &steps).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_fastapi_users_oauth_accounts_on_a_database_portcullis_created() {
    let steps = steps(SQLITE_OAUTH_STEPS);
    let (_file, mut raw, store) = sqlite_database(false).await;
    fastapi_users_oauth_both_ways(&mut raw, &store, &steps).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_portcullis_migrates_fastapi_users_schema_keeping_its_columns_and_index() {
    use diesel::prelude::*;
    let (file, _raw, _store) = sqlite_database(true).await;
    let conn = &mut sqlite::connect(&file.0.display().to_string());
    #[derive(QueryableByName, Debug, PartialEq)]
    struct Column {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        r#type: String,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        notnull: bool,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        dflt_value: Option<String>,
    }
    let columns = diesel::sql_query(
        r#"SELECT name, type, "notnull", dflt_value FROM pragma_table_info('user') ORDER BY cid"#,
    )
    .load::<Column>(conn)
    .unwrap();
    let col = |name: &str, ty: &str, notnull, default: Option<&str>| Column {
        name: name.into(),
        r#type: ty.into(),
        notnull,
        dflt_value: default.map(Into::into),
    };
    assert_eq!(
        columns,
        [
            // FastAPI Users' own columns, as it made them.
            col("role", "VARCHAR(20)", true, None),
            col("id", "CHAR(36)", true, None),
            col("email", "VARCHAR(320)", true, None),
            col("hashed_password", "VARCHAR(1024)", true, None),
            col("is_active", "BOOLEAN", true, None),
            col("is_superuser", "BOOLEAN", true, None),
            col("is_verified", "BOOLEAN", true, None),
            // Portcullis' columns: each NOT NULL one has a default.
            col("portcullis_session_stamp", "BIGINT", true, Some("0")),
            col("nickname", "VARCHAR(50)", false, None),
            col("credits", "INTEGER", true, Some("5")),
            col("newsletter", "BOOLEAN", true, Some("0")),
        ]
    );
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let triggers = diesel::sql_query("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        .load::<Name>(conn)
        .unwrap();
    assert!(
        triggers.is_empty(),
        "no trigger: {:?}",
        triggers.iter().map(|n| &n.name).collect::<Vec<_>>()
    );
    let indexes = diesel::sql_query(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'user' \
         AND name NOT LIKE 'sqlite_autoindex%' ORDER BY name",
    )
    .load::<Name>(conn)
    .unwrap();
    assert_eq!(
        indexes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
        ["ix_user_email", "ix_user_email_lower"],
        "FastAPI Users' index kept; the case-insensitive one uses only SQLite's own lower()"
    );
}

#[cfg(feature = "postgres")]
mod on_postgres {
    use std::sync::Arc;

    use portcullis_domain::Store;
    use portcullis_store_sea_orm_postgres::PostgresUserStore;
    use portcullis_store_sea_orm_postgres::sea_orm::{ConnectionTrait, Database};
    use portcullis_tests::postgres::PgDatabase;

    use super::*;

    const POSTGRES_SCHEMA: &str = include_str!("../fixtures/fastapi_users_sql/postgres_schema.sql");
    const POSTGRES_STEPS: &str = include_str!("../fixtures/fastapi_users_sql/postgres_steps.json");
    const POSTGRES_OAUTH_SCHEMA: &str =
        include_str!("../fixtures/fastapi_users_sql/postgres_oauth_schema.sql");
    const POSTGRES_OAUTH_STEPS: &str =
        include_str!("../fixtures/fastapi_users_sql/postgres_oauth_steps.json");

    async fn database(fastapi_users_first: bool) -> (PgDatabase, Raw, Arc<dyn Store>) {
        let database = PgDatabase::create();
        let db = Database::connect(&database.url).await.unwrap();
        if fastapi_users_first {
            for statement in ddl(POSTGRES_SCHEMA)
                .into_iter()
                .chain(ddl(POSTGRES_OAUTH_SCHEMA))
            {
                db.execute_unprepared(&statement)
                    .await
                    .unwrap_or_else(|e| panic!("{statement}: {e}"));
            }
        }
        let store = PostgresUserStore::open(&database.url)
            .await
            .unwrap()
            .with_user_fields(user_fields());
        store.migrate().await.unwrap();
        (database, Raw::Postgres(db), Arc::new(store))
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn postgres_fastapi_users_runs_on_the_database_portcullis_migrated() {
        let steps = steps(POSTGRES_STEPS);
        let (_database, mut raw, store) = database(true).await;
        fastapi_users_writes_portcullis_reads(&mut raw, &store, &steps).await;
        portcullis_writes_fastapi_users_reads(&mut raw, &store, &steps).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn postgres_fastapi_users_runs_on_a_database_portcullis_created() {
        let steps = steps(POSTGRES_STEPS);
        let (_database, mut raw, store) = database(false).await;
        fastapi_users_writes_portcullis_reads(&mut raw, &store, &steps).await;
        portcullis_writes_fastapi_users_reads(&mut raw, &store, &steps).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn postgres_fastapi_users_oauth_accounts_on_the_database_portcullis_migrated() {
        let steps = steps(POSTGRES_OAUTH_STEPS);
        let (_database, mut raw, store) = database(true).await;
        fastapi_users_oauth_both_ways(&mut raw, &store, &steps).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn postgres_fastapi_users_oauth_accounts_on_a_database_portcullis_created() {
        let steps = steps(POSTGRES_OAUTH_STEPS);
        let (_database, mut raw, store) = database(false).await;
        fastapi_users_oauth_both_ways(&mut raw, &store, &steps).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn postgres_portcullis_migrates_fastapi_users_schema_with_defaults_and_no_triggers() {
        let (_database, raw, _store) = database(true).await;
        let Raw::Postgres(db) = &raw else {
            unreachable!()
        };
        let rows = db
            .query_all_raw(portcullis_store_sea_orm_postgres::sea_orm::Statement::from_string(
                portcullis_store_sea_orm_postgres::sea_orm::DbBackend::Postgres,
                "SELECT column_name::text || ' ' || data_type::text || ' ' || is_nullable::text \
                 || ' ' || coalesce(column_default::text, '-') FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = 'user' \
                 ORDER BY ordinal_position",
            ))
            .await
            .unwrap();
        let columns: Vec<String> = rows
            .iter()
            .map(|r| r.try_get_by_index::<String>(0).unwrap())
            .collect();
        assert_eq!(
            columns,
            [
                "role character varying NO -",
                "id uuid NO -",
                "email character varying NO -",
                "hashed_password character varying NO -",
                "is_active boolean NO -",
                "is_superuser boolean NO -",
                "is_verified boolean NO -",
                "portcullis_session_stamp bigint NO 0",
                "nickname character varying YES -",
                "credits integer NO 5",
                "newsletter boolean NO false",
            ]
        );
        let triggers = db
            .query_all_raw(
                portcullis_store_sea_orm_postgres::sea_orm::Statement::from_string(
                    portcullis_store_sea_orm_postgres::sea_orm::DbBackend::Postgres,
                    "SELECT tgname::text FROM pg_trigger WHERE tgrelid = '\"user\"'::regclass \
                 AND NOT tgisinternal",
                ),
            )
            .await
            .unwrap();
        assert!(triggers.is_empty(), "no trigger on \"user\"");
    }
}

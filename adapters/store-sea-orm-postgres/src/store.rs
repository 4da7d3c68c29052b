//! [`PostgresUserStore`]: the pool, opening, migrating, and the port.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use portcullis_domain::{
    EmailAddress, FieldValue, FieldValues, StoreError, User, UserFields, UserId, UserPatch,
    UserRepository,
};
use portcullis_store_sql_common::fields::{
    Dialect, FIELDS_COLUMN, fields_json_sql, values_to_create, values_to_patch,
};
use portcullis_store_sql_common::sessions::raised_session_stamp_sql;
use sea_orm::sea_query::{Alias, Expr, Query};
use sea_orm::sqlx::postgres::PgConnectOptions;
use sea_orm::{
    ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr,
    EntityTrait, FromQueryResult, IntoActiveModel, Iterable, QueryFilter, QuerySelect, QueryTrait,
    RuntimeErr, Select, Statement,
};

use crate::PostgresStoreError;
use crate::entity::{self, Column, Entity as Users, Stored, field_value};
use crate::error::{Failure, migration_reason};
use crate::migration::{self, EMAIL_KEY};
use crate::read_lane::ReadLane;
use sea_orm::sqlx::ConnectOptions as _;

/// Tuning for [`PostgresUserStore::open_with`]. The defaults suit a small
/// server; [`PostgresUserStore::open`] uses them.
///
/// The timeouts bound how long a request waits while PostgreSQL is away:
/// an operation answers [`StoreError::Unavailable`] after at most
/// [`operation_timeout`](Self::operation_timeout), usually after
/// [`acquire_timeout`](Self::acquire_timeout) (refused connections are
/// retried until then).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresStoreOptions {
    /// Most connections the store holds (at least 1); `DATABASE_MAX_CONNECTIONS`.
    /// Mind PostgreSQL's `max_connections` (100 by default) across every
    /// instance. Default 10. From 2 on, half of them (rounded down) serve
    /// the lookups by id (what every authenticated request makes, see
    /// [`UserRepository::get`]), the others everything else.
    pub max_connections: u32,
    /// How long opening one connection may take. Default 3 s.
    pub connect_timeout: Duration,
    /// How long an operation waits for a pooled connection (including
    /// opening a new one, retried while the server refuses) before failing
    /// as [`StoreError::Unavailable`]. Default 3 s.
    pub acquire_timeout: Duration,
    /// PostgreSQL's `statement_timeout` on every pooled connection: the
    /// server cancels a statement running longer. Not applied to
    /// migrations. Default 10 s.
    pub statement_timeout: Duration,
    /// The bound, measured here, on a whole operation of the port, whatever
    /// the network does (a server that stops answering without closing the
    /// connection). Default 15 s.
    pub operation_timeout: Duration,
}

impl PostgresStoreOptions {
    /// The default pool size.
    pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;
}

impl Default for PostgresStoreOptions {
    fn default() -> Self {
        Self {
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            connect_timeout: Duration::from_secs(3),
            acquire_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(15),
        }
    }
}

/// A [`UserRepository`] in a PostgreSQL database, through SeaORM (sqlx,
/// Tokio, rustls) and a connection pool. Fully async: nothing blocks the
/// executor. Must be used from within a Tokio runtime.
///
/// Cheap to clone: clones share the pool.
#[derive(Clone)]
pub struct PostgresUserStore {
    db: DatabaseConnection,
    location: Arc<str>,
    operation_timeout: Duration,
    fields: UserFields,
    /// [`fields_json_sql`] of `fields`: what every lookup also selects.
    fields_json: Arc<str>,
    /// The connections of [`UserRepository::get`] (none with one
    /// connection in all: it then goes through the pool).
    read_lane: Option<Arc<ReadLane>>,
    /// [`get_by_id_sql`] of `fields_json`.
    get_sql: Arc<str>,
}

/// The statement of [`UserRepository::get`]: every column, the fields'
/// JSON object, by primary key (`$1`, an array of UUIDs: the read lane
/// sends a batch of reads as one query).
fn get_by_id_sql(fields_json: &str) -> String {
    format!(
        r#"SELECT "id", "email", "hashed_password", "is_active", "is_superuser", "is_verified", "role", "portcullis_session_stamp", {fields_json} AS "{FIELDS_COLUMN}" FROM "user" WHERE "id" = ANY($1)"#
    )
}

impl fmt::Debug for PostgresUserStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresUserStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// `user@host:port/database` of a parsed URL: what logs and errors name
/// (never the password).
fn describe(options: &PgConnectOptions) -> String {
    format!(
        "{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or(options.get_username())
    )
}

impl PostgresUserStore {
    /// Connects to the database `url` names (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`
    /// or `postgresql://…`, with libpq's query parameters such as
    /// `sslmode`) with the default [`PostgresStoreOptions`].
    pub async fn open(url: &str) -> Result<Self, PostgresStoreError> {
        Self::open_with(url, PostgresStoreOptions::default()).await
    }

    /// Connects with these options. The pool opens one connection now, so a
    /// wrong host, port, password or database name fails here, within
    /// `acquire_timeout`.
    pub async fn open_with(
        url: &str,
        options: PostgresStoreOptions,
    ) -> Result<Self, PostgresStoreError> {
        let invalid = |reason: String| PostgresStoreError::InvalidUrl { reason };
        let trimmed = url.trim();
        let scheme = trimmed
            .split_once("://")
            .map(|(s, _)| s.to_ascii_lowercase());
        if !matches!(scheme.as_deref(), Some("postgres" | "postgresql")) {
            return Err(invalid(
                "expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE".into(),
            ));
        }
        // sqlx parses it (and SeaORM would panic on a URL it cannot parse).
        let parsed: PgConnectOptions = trimmed.parse().map_err(|e| {
            invalid(format!(
                "{e}; expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
            ))
        })?;
        let location = describe(&parsed);
        let max_connections = options.max_connections.max(1);
        let lane_connections = max_connections / 2;
        let mut connect = ConnectOptions::new(trimmed.to_owned());
        connect
            .max_connections(max_connections - lane_connections)
            .min_connections(0)
            .connect_timeout(options.connect_timeout)
            .acquire_timeout(options.acquire_timeout)
            .statement_timeout(options.statement_timeout)
            // Ping each connection as it leaves the pool: the ones a
            // PostgreSQL restart killed are replaced before use, so the
            // service recovers by itself.
            .test_before_acquire(true)
            .set_application_name("portcullis")
            .sqlx_logging(false);
        let db = Database::connect(connect)
            .await
            .map_err(|e| PostgresStoreError::Connect {
                location: location.clone(),
                reason: connect_reason(e),
            })?;
        tracing::debug!(%location, max_connections = options.max_connections, "PostgreSQL pool open");
        let read_lane = (lane_connections > 0).then(|| {
            // As the pool's connections are set up (see above).
            let lane = parsed
                .application_name("portcullis")
                .options([(
                    "statement_timeout",
                    options.statement_timeout.as_millis().to_string(),
                )])
                .disable_statement_logging();
            Arc::new(ReadLane::new(
                lane,
                lane_connections as usize,
                options.connect_timeout,
                options.acquire_timeout,
            ))
        });
        let fields_json = fields_json_sql(&UserFields::none(), Dialect::Postgres);
        Ok(Self {
            db,
            location: location.into(),
            operation_timeout: options.operation_timeout,
            fields: UserFields::none(),
            get_sql: get_by_id_sql(&fields_json).into(),
            fields_json: fields_json.into(),
            read_lane,
        })
    }

    /// The store with the deployment's extra user `fields`, each a column of
    /// `user`: lookups return a value for each, `create` writes each (its
    /// default when the user has none), `patch` writes those it names.
    /// [`PostgresUserStore::migrate`] adds the missing columns.
    pub fn with_user_fields(mut self, fields: UserFields) -> Self {
        let fields_json = fields_json_sql(&fields, Dialect::Postgres);
        self.get_sql = get_by_id_sql(&fields_json).into();
        self.fields_json = fields_json.into();
        self.fields = fields;
        self
    }

    /// The fields' JSON object, `AS` [`FIELDS_COLUMN`]: selected by every
    /// lookup, in the same query.
    fn fields_expr(&self) -> Expr {
        Expr::cust(self.fields_json.to_string())
    }

    /// Brings the schema up to date: creates FastAPI Users' `user` table and
    /// the indexes when missing, adopts an existing FastAPI Users table
    /// (adding `role`). Safe to run from any number of instances at once
    /// (an advisory lock makes them take turns); harmless when up to date.
    /// Returns the migrations applied now; none when already up to date.
    ///
    /// Then, under the same lock and in the same transaction, each extra
    /// user field ([`PostgresUserStore::with_user_fields`]) gets its column
    /// (`ALTER TABLE "user" ADD COLUMN`; existing users get the default)
    /// unless the table has it already: an existing column (FastAPI Users
    /// made it) is adopted, with its data, if its type
    /// (`information_schema.columns`) is of the field's kind, it is not
    /// `NOT NULL` for a nullable field and not shorter than the field's
    /// longest value; otherwise nothing is changed and the error names the
    /// field, the column's type and the declared one.
    pub async fn migrate(&self) -> Result<Vec<String>, PostgresStoreError> {
        migration::run(&self.db, &self.fields)
            .await
            .map_err(|e| PostgresStoreError::Migration {
                location: self.location.to_string(),
                reason: migration_reason(e),
            })
    }

    /// What [`PostgresUserStore::migrate`] would apply, without applying it:
    /// the names of the pending migrations, then `column NAME (user field)`
    /// for each extra user field without its column. Empty when the schema is
    /// up to date. An existing column that cannot hold its field is an
    /// error, as with `migrate`.
    pub async fn pending_migrations(&self) -> Result<Vec<String>, PostgresStoreError> {
        migration::pending(&self.db, &self.fields)
            .await
            .map_err(|e| PostgresStoreError::Migration {
                location: self.location.to_string(),
                reason: migration_reason(e),
            })
    }

    /// `user@host:port/database`, for logs.
    pub fn location(&self) -> String {
        self.location.to_string()
    }

    /// The SeaORM connection (pool) underneath.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Runs one operation of the port, statements through the pool, within
    /// the operation timeout.
    pub(crate) async fn bounded<T>(
        &self,
        operation: impl Future<Output = Result<T, DbErr>>,
    ) -> Result<T, StoreError> {
        self.within_timeout(operation).await
    }

    /// Runs one read of the read lane within the operation timeout.
    pub(crate) async fn bounded_read<T>(
        &self,
        read: impl Future<Output = Result<T, crate::read_lane::LaneError>>,
    ) -> Result<T, StoreError> {
        self.within_timeout(read).await
    }

    async fn within_timeout<T, E>(
        &self,
        operation: impl Future<Output = Result<T, E>>,
    ) -> Result<T, StoreError>
    where
        Failure: From<E>,
    {
        match tokio::time::timeout(self.operation_timeout, operation).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(Failure::from(error).into()),
            Err(source) => Err(Failure::TimedOut {
                after: self.operation_timeout,
                source,
            }
            .into()),
        }
    }

    /// The read lane, when the store has one.
    pub(crate) fn read_lane(&self) -> Option<&Arc<ReadLane>> {
        self.read_lane.as_ref()
    }
}

impl PostgresUserStore {
    /// [`UserRepository::get`] through SeaORM and the pool, for a store of
    /// one connection (no read lane).
    async fn get_through_pool(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let query = Users::find_by_id(*id.as_uuid())
            .column_as(self.fields_expr(), FIELDS_COLUMN)
            .into_model::<Stored>();
        let row = self.bounded(query.one(&self.db)).await?;
        Ok(row.map(|row| row.into_user(&self.fields)).transpose()?)
    }
}

/// The query of [`UserRepository::get_by_email`]: the expression of the
/// unique index `ix_user_email_lower`, so that a lookup is one probe.
fn by_email(email: &EmailAddress) -> Select<Users> {
    let matches = Expr::cust_with_values(
        format!(r#"{EMAIL_KEY} = lower($1 COLLATE "und-x-icu")"#),
        [email.as_str().to_owned()],
    );
    Users::find().filter(matches)
}

/// The statement [`UserRepository::get_by_email`] sends for `email` (its
/// query with the `LIMIT 1` that `.one()` adds), for tests that `EXPLAIN`
/// it: the plan of the store's own query, not of a copy of it.
#[doc(hidden)]
pub fn get_by_email_statement(email: &EmailAddress) -> Statement {
    by_email(email).limit(1).build(DbBackend::Postgres)
}

/// What a failed connection says, in plain words where we know better.
fn connect_reason(error: DbErr) -> String {
    let timed_out = match &error {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Conn(RuntimeErr::SqlxError(e)) => matches!(**e, sea_orm::sqlx::Error::PoolTimedOut),
        _ => false,
    };
    if timed_out {
        "no connection could be opened before the timeout (is the server running and reachable \
         at this host and port?)"
            .into()
    } else {
        match error {
            DbErr::Conn(e) => e.to_string(),
            other => other.to_string(),
        }
    }
}

#[async_trait]
impl UserRepository for PostgresUserStore {
    async fn get(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let Some(lane) = &self.read_lane else {
            return self.get_through_pool(id).await;
        };
        self.bounded_read(lane.fetch_by_id(&self.get_sql, *id.as_uuid()))
            .await?
            .map(|stored| stored.into_user(&self.fields))
            .transpose()
            .map_err(StoreError::from)
    }

    async fn get_by_email(&self, email: &EmailAddress) -> Result<Option<User>, StoreError> {
        let query = by_email(email)
            .column_as(self.fields_expr(), FIELDS_COLUMN)
            .into_model::<Stored>();
        let row = self.bounded(query.one(&self.db)).await?;
        Ok(row.map(|row| row.into_user(&self.fields)).transpose()?)
    }

    async fn create(&self, mut user: User) -> Result<User, StoreError> {
        user.fields = values_to_create(&self.fields, &user.fields)?;
        // A plain INSERT: the primary key and the unique indexes decide,
        // atomically; a violation is a Conflict.
        let model = entity::Model::from(&user);
        if self.fields.is_empty() {
            let row = model.into_active_model();
            self.bounded(Users::insert(row).exec_without_returning(&self.db))
                .await?;
            return Ok(user);
        }
        // The same INSERT, with a column per extra field, built at run time.
        let mut columns: Vec<Alias> = Column::iter()
            .map(|c| Alias::new(sea_orm::IdenStatic::as_str(&c)))
            .collect();
        let mut values: Vec<Expr> = vec![
            Expr::val(model.id),
            Expr::val(model.email),
            Expr::val(model.hashed_password),
            Expr::val(model.is_active),
            Expr::val(model.is_superuser),
            Expr::val(model.is_verified),
            Expr::val(model.role),
            Expr::val(model.portcullis_session_stamp),
        ];
        for spec in self.fields.iter() {
            let value = user
                .fields
                .get(&spec.name)
                .cloned()
                .unwrap_or(FieldValue::Null);
            columns.push(Alias::new(spec.name.as_str()));
            values.push(Expr::val(field_value(spec, value)));
        }
        let insert = Query::insert()
            .into_table(Users)
            .columns(columns)
            .values(values)
            .map_err(|e| StoreError::unavailable(e.to_string()))?
            .to_owned();
        self.bounded(self.db.execute(&insert)).await?;
        Ok(user)
    }

    async fn patch(&self, id: UserId, patch: UserPatch) -> Result<User, StoreError> {
        let field_changes = values_to_patch(&self.fields, &patch.fields)?;
        let columns = UserPatch {
            fields: FieldValues::new(),
            ..patch
        };
        if columns.is_empty() && field_changes.is_empty() {
            // No `SET` list to send; there is nothing to write.
            return self.get(id).await?.ok_or(StoreError::NotFound);
        }
        // One UPDATE of the named columns (and fields) only, RETURNING the
        // row as it is now: the unique indexes decide an address clash
        // atomically (a Conflict), and a concurrent change to another column
        // is kept.
        let mut update = Users::update_many()
            .set(entity::patch_changes(&columns))
            .filter(Column::Id.eq(*id.as_uuid()));
        if let Some(now_ms) = columns.end_sessions {
            // max(stamp + 1, now), from the row's current value in this same
            // UPDATE: concurrent patches each count.
            update = update.col_expr(
                Column::PortcullisSessionStamp,
                Expr::cust(raised_session_stamp_sql(now_ms)),
            );
        }
        for (spec, value) in field_changes {
            QueryTrait::query(&mut update)
                .value(Alias::new(spec.name.as_str()), field_value(spec, value));
        }
        let returning = Column::iter()
            .map(|c| Expr::col((Users, c)))
            .chain([Expr::cust(format!(
                "{} AS \"{FIELDS_COLUMN}\"",
                self.fields_json
            ))]);
        QueryTrait::query(&mut update).returning(Query::returning().exprs(returning));
        let statement = update.build(DbBackend::Postgres);
        let row = self
            .bounded(Stored::find_by_statement(statement).one(&self.db))
            .await?;
        match row {
            Some(row) => Ok(row.into_user(&self.fields)?),
            None => Err(StoreError::NotFound),
        }
    }

    async fn replace_password_hash(
        &self,
        id: UserId,
        current: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        // One conditional UPDATE: of concurrent ones, the first to lock the
        // row wins; the others re-check the condition on the new row version
        // (READ COMMITTED) and change nothing.
        let result = self
            .bounded(
                Users::update_many()
                    .col_expr(Column::HashedPassword, Expr::value(new.to_owned()))
                    .filter(Column::Id.eq(*id.as_uuid()))
                    .filter(Column::HashedPassword.eq(current.to_owned()))
                    .exec(&self.db),
            )
            .await?;
        Ok(result.rows_affected == 1)
    }

    async fn delete(&self, id: UserId) -> Result<(), StoreError> {
        let result = self
            .bounded(Users::delete_by_id(*id.as_uuid()).exec(&self.db))
            .await?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    fn user_fields(&self) -> Option<UserFields> {
        Some(self.fields.clone())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.bounded(async { self.db.execute_unprepared("SELECT 1").await.map(|_| ()) })
            .await
    }
}

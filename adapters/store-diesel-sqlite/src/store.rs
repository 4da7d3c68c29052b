//! [`SqliteUserStore`]: the pool, opening, migrating, and the port.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::r2d2::{ConnectionManager, Pool};
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use diesel::sqlite::{Sqlite, SqliteConnection};
use portcullis_domain::{
    EmailAddress, FieldSpec, FieldValue, FieldValues, StoreError, User, UserFields, UserId,
    UserPatch, UserRepository,
};
use portcullis_store_sql_common::CorruptRow;
use portcullis_store_sql_common::fields::{
    Dialect, fields_json_sql, quote, values_from_json, values_to_create, values_to_patch,
};
use portcullis_store_sql_common::sessions::{SESSION_STAMP_COLUMN, raise_session_stamp};

use crate::connection::ConnectionSetup;
use crate::email_key::{lower_email_ranges, needs_unicode_match};
use crate::error::Failure;
use crate::inline_read::InlineReads;
use crate::location::Location;
use crate::schema::{SqliteUserRow, UserPatchRow, lower, portcullis_email_key, users};
use crate::{SqliteStoreError, migrate};

type SqlitePool = Pool<ConnectionManager<SqliteConnection>>;

/// Tuning for [`SqliteUserStore::open_with`]. The defaults suit a small
/// server; [`SqliteUserStore::open`] uses them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteStoreOptions {
    /// Most connections the pool holds (at least 1). Readers run side by
    /// side (WAL); writers take turns whatever this is. An in-memory database
    /// always has exactly one connection. Default 8.
    pub max_connections: u32,
    /// How long a statement waits for another connection's write lock before
    /// failing as [`StoreError::Unavailable`] (`PRAGMA busy_timeout`).
    /// Default 5 s.
    pub busy_timeout: Duration,
    /// How long an operation waits for a free pooled connection before
    /// failing as [`StoreError::Unavailable`]. Default 10 s.
    pub connection_timeout: Duration,
    /// How much of the file, in bytes, each thread's read-only connection
    /// (the lookups by id, by ASCII address and of a database session's
    /// token; see the crate's Threads section) reads through a
    /// memory map rather than `pread` (`PRAGMA mmap_size`; `0`: none). The
    /// pool's connections, which write, never map the file. Default 1 GiB:
    /// with a million users, a random user's pages are no longer in the
    /// connection's page cache, and each would otherwise be a system call
    /// and a copy. Mapped pages are the OS's page cache shared, counted in
    /// the process' resident memory (as file pages) while mapped. An I/O
    /// error while reading a mapped page is a `SIGBUS` rather than an error:
    /// set `0` on storage that can fail that way (a network file system).
    pub read_mmap_size: u64,
}

impl Default for SqliteStoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            busy_timeout: Duration::from_millis(5000),
            connection_timeout: Duration::from_secs(10),
            read_mmap_size: 1 << 30,
        }
    }
}

/// A [`UserRepository`] in an SQLite database, through Diesel and an r2d2
/// connection pool. Every database call runs on Tokio's blocking pool, so
/// the methods must be called from within a Tokio runtime (outside one they
/// answer [`StoreError::Unavailable`] rather than panic) — but for a file
/// database's lookups by id, by ASCII address and of a database session's
/// token, which run on the calling thread's own read-only connection (see
/// the crate's Threads section).
///
/// Cheap to clone: clones share the pool.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use portcullis_domain::{EmailAddress, User, UserRepository};
/// use portcullis_store_diesel_sqlite::SqliteUserStore;
///
/// let store = SqliteUserStore::open("sqlite::memory:").await?;
/// store.migrate().await?;
/// let ann = User::new(EmailAddress::parse("Ann@example.com").unwrap(), "$argon2id$…".into());
/// store.create(ann.clone()).await.unwrap();
/// let found = store.get_by_email(&EmailAddress::parse("ANN@example.com").unwrap()).await.unwrap();
/// assert_eq!(found, Some(ann));
/// # Ok::<(), portcullis_store_diesel_sqlite::SqliteStoreError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct SqliteUserStore {
    pub(crate) pool: SqlitePool,
    location: Arc<Location>,
    fields: Fields,
    /// Lookups by id, by ASCII address and of a token on the calling thread
    /// (a file database only).
    pub(crate) inline_reads: Option<InlineReads>,
}

/// The deployment's extra fields, and the expression that reads them.
#[derive(Clone)]
struct Fields {
    spec: UserFields,
    /// [`fields_json_sql`] of `spec`.
    json: Arc<str>,
}

impl Fields {
    fn new(spec: UserFields) -> Self {
        let json = fields_json_sql(&spec, Dialect::Sqlite).into();
        Self { spec, json }
    }

    /// The extra column every lookup selects: the fields as a JSON object.
    fn select(&self) -> FieldsJson {
        FieldsJsonOf(self.json.clone())
    }

    /// The user of a row and its fields' JSON object.
    fn user(&self, (row, json): (SqliteUserRow, String)) -> Result<User, CorruptRow> {
        let mut user = User::try_from(row)?;
        user.fields = values_from_json(&self.spec, user.id, &json)?;
        Ok(user)
    }
}

impl fmt::Debug for SqliteUserStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteUserStore")
            .field("location", &self.location.to_string())
            .field("connections", &self.pool.state().connections)
            .finish()
    }
}

impl SqliteUserStore {
    /// Opens (creating the file if it does not exist) the database at `url`
    /// with the default [`SqliteStoreOptions`]. Does not change the schema:
    /// call [`SqliteUserStore::migrate`] for that.
    ///
    /// `url` is `sqlite://PATH` (relative, `sqlite://portcullis.db`, or
    /// absolute, `sqlite:///var/lib/portcullis/users.db`), `sqlite:PATH`, a
    /// plain path, or `sqlite::memory:` / `sqlite://:memory:` / `:memory:`
    /// for a private in-memory database (tests, demos). `PATH` is taken
    /// literally. Note that SQLAlchemy's `sqlite:///relative.db` (three
    /// slashes, relative) is an absolute path here.
    ///
    /// Fails with [`SqliteStoreError::InvalidUrl`] or
    /// [`SqliteStoreError::Open`] (the folder does not exist, the path is a
    /// folder, the file is not a database or cannot be read or written), at
    /// once and with SQLite's reason.
    pub async fn open(url: &str) -> Result<Self, SqliteStoreError> {
        Self::open_with(url, SqliteStoreOptions::default()).await
    }

    /// [`SqliteUserStore::open`] for a database that must exist already: a
    /// missing file is [`SqliteStoreError::Open`] ("no database file here")
    /// instead of created. For checks that must leave the disk as it is.
    pub async fn open_existing(
        url: &str,
        options: SqliteStoreOptions,
    ) -> Result<Self, SqliteStoreError> {
        let location = Location::parse(url)?;
        // A missing folder is named as such first.
        location.check()?;
        if let Location::File(path) = location
            && !path.exists()
        {
            return Err(SqliteStoreError::Open {
                location: path.display().to_string(),
                reason: "no database file here".into(),
            });
        }
        Self::open_with(url, options).await
    }

    /// [`SqliteUserStore::open`] with the given options.
    pub async fn open_with(
        url: &str,
        options: SqliteStoreOptions,
    ) -> Result<Self, SqliteStoreError> {
        let location = Location::parse(url)?;
        let shown = location.to_string();
        blocking(move || Self::open_blocking(location, options))
            .await
            .unwrap_or_else(|failure| {
                Err(SqliteStoreError::Open {
                    location: shown,
                    reason: failure.to_string(),
                })
            })
    }

    fn open_blocking(
        location: Location,
        options: SqliteStoreOptions,
    ) -> Result<Self, SqliteStoreError> {
        location.check()?;
        let open_error = |reason: String| SqliteStoreError::Open {
            location: location.to_string(),
            reason,
        };
        let setup = ConnectionSetup {
            busy_timeout: options.busy_timeout,
        };
        let target = location.open_string();
        let reopen = location.reopen_string();
        let fields = Fields::new(UserFields::none());
        let inline_reads = match location {
            Location::File(_) => Some(InlineReads::new(
                reopen.clone(),
                fields.json.clone(),
                options.read_mmap_size,
            )),
            Location::Memory => None,
        };

        // One connection, set up and asked a question now, so that a bad file
        // fails here with SQLite's words instead of in the pool's background
        // thread after a timeout.
        let mut probe =
            SqliteConnection::establish(&target).map_err(|e| open_error(e.to_string()))?;
        setup
            .apply(&mut probe)
            .and_then(|()| {
                diesel::sql_query("SELECT count(*) FROM sqlite_master").execute(&mut probe)
            })
            .map_err(|e| open_error(e.to_string()))?;
        drop(probe);

        let builder = Pool::builder()
            .connection_timeout(options.connection_timeout)
            .test_on_check_out(false)
            .connection_customizer(Box::new(setup));
        let manager = ConnectionManager::<SqliteConnection>::new(reopen);
        let pool = match location {
            // The one connection *is* the database: never let the pool
            // retire it.
            Location::Memory => builder
                .max_size(1)
                .min_idle(Some(1))
                .max_lifetime(None)
                .idle_timeout(None)
                .build(manager)
                .map_err(|e| open_error(e.to_string()))?,
            Location::File(_) => builder
                .max_size(options.max_connections.max(1))
                .min_idle(Some(1))
                .build_unchecked(manager),
        };
        Ok(Self {
            pool,
            location: Arc::new(location),
            fields,
            inline_reads,
        })
    }

    /// The store with the deployment's extra user `fields`, each a column of
    /// `user`: lookups return a value for each, `create` writes each (its
    /// default when the user has none), `patch` writes those it names.
    /// [`SqliteUserStore::migrate`] adds the missing columns.
    pub fn with_user_fields(mut self, fields: UserFields) -> Self {
        self.fields = Fields::new(fields);
        // New readers: theirs only ever read with one expression.
        self.inline_reads = self
            .inline_reads
            .map(|reads| reads.with_fields_json(self.fields.json.clone()));
        self
    }

    /// Brings the schema up to date with the migrations compiled into this
    /// crate, and returns the versions it applied (none when up to date:
    /// running it again is harmless).
    ///
    /// A `user` table FastAPI Users created is adopted in place: kept with its
    /// rows, given a `role` column (`'student'` for existing users) if it has
    /// none, and the case-insensitive unique index. If the table holds two
    /// addresses that are the same account (differing only in letter case),
    /// nothing is changed and the error names them.
    ///
    /// Then each extra user field ([`SqliteUserStore::with_user_fields`])
    /// gets its column (`ALTER TABLE "user" ADD COLUMN`; existing users get
    /// the default) unless the table has it already: an existing column
    /// (FastAPI Users made it) is adopted, with its data, if its declared
    /// type is of the field's kind and it is not `NOT NULL` for a nullable
    /// field; otherwise nothing is changed and the error names the field,
    /// the column's type and the declared one.
    pub async fn migrate(&self) -> Result<Vec<String>, SqliteStoreError> {
        let location = self.location.to_string();
        let pool = self.pool.clone();
        let fields = self.fields.spec.clone();
        let result = blocking(move || {
            let mut conn = pool.get().map_err(|e| e.to_string())?;
            migrate::run(&mut conn, &fields).map_err(|e| e.0)
        })
        .await
        .unwrap_or_else(|failure| Err(failure.to_string()));
        result.map_err(|reason| SqliteStoreError::Migration { location, reason })
    }

    /// What [`SqliteUserStore::migrate`] would apply, without applying it:
    /// the versions of the pending migrations, then `column NAME (user
    /// field)` for each extra user field without its column. Empty when the
    /// schema is up to date. An existing column that cannot hold its field
    /// is an error, as with `migrate`.
    pub async fn pending_migrations(&self) -> Result<Vec<String>, SqliteStoreError> {
        let location = self.location.to_string();
        let pool = self.pool.clone();
        let fields = self.fields.spec.clone();
        let result = blocking(move || {
            let mut conn = pool.get().map_err(|e| e.to_string())?;
            migrate::pending(&mut conn, &fields).map_err(|e| e.0)
        })
        .await
        .unwrap_or_else(|failure| Err(failure.to_string()));
        result.map_err(|reason| SqliteStoreError::Migration { location, reason })
    }

    /// Runs SQLite's `PRAGMA integrity_check`: `Ok(vec!["ok"])` for a sound
    /// database, otherwise the problems SQLite lists.
    pub async fn integrity_check(&self) -> Result<Vec<String>, StoreError> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Text)]
            integrity_check: String,
        }
        self.with_conn(|conn| {
            diesel::sql_query("PRAGMA integrity_check")
                .load::<Row>(conn)
                .map(|rows| rows.into_iter().map(|r| r.integrity_check).collect())
        })
        .await
    }

    /// The database path (or `:memory:`), for logs.
    pub fn location(&self) -> String {
        self.location.to_string()
    }

    /// Runs `f` with a pooled connection on the blocking pool; whatever
    /// fails on the way becomes the port's error in one place,
    /// `From<Failure> for StoreError`.
    pub(crate) async fn with_conn<T, E, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut SqliteConnection) -> Result<T, E> + Send + 'static,
        Failure: From<E>,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        let run = move || -> Result<T, Failure> {
            let mut conn = pool.get()?;
            Ok(f(&mut conn)?)
        };
        Ok(blocking(run).await??)
    }
}

/// Runs `f` on Tokio's blocking pool; `Err` when there is no runtime or `f`
/// panicked.
async fn blocking<T, F>(f: F) -> Result<T, Failure>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let runtime = tokio::runtime::Handle::try_current()?;
    Ok(runtime.spawn_blocking(f).await?)
}

/// The extra fields' JSON object ([`fields_json_sql`]), a column of
/// every lookup. Diesel's own `sql()` literal makes a statement that is
/// prepared anew at every call (it is never cached); this expression's SQL
/// is fixed for the store, so the statements that select it are prepared
/// once per connection (Diesel's cache, keyed by their SQL).
///
/// `FIXED` is for a connection that only ever reads with one expression (an
/// inline reader's, see [`InlineReads`]): its statements are then cached by
/// their Rust type, and Diesel does not write their SQL again at each call
/// to look them up — on any other connection that would run another
/// store's SQL.
#[derive(Debug, Clone)]
pub(crate) struct FieldsJsonOf<const FIXED: bool>(pub(crate) Arc<str>);

/// [`FieldsJsonOf`] for any connection.
pub(crate) type FieldsJson = FieldsJsonOf<false>;

impl<const FIXED: bool> diesel::expression::Expression for FieldsJsonOf<FIXED> {
    type SqlType = Text;
}

impl<const FIXED: bool> diesel::query_builder::QueryFragment<Sqlite> for FieldsJsonOf<FIXED> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, Sqlite>,
    ) -> QueryResult<()> {
        out.push_sql(&self.0);
        Ok(())
    }
}

impl<const FIXED: bool> diesel::query_builder::QueryId for FieldsJsonOf<FIXED> {
    type QueryId = Self;
    const HAS_STATIC_QUERY_ID: bool = FIXED;
}

impl<QS, const FIXED: bool> diesel::expression::SelectableExpression<QS> for FieldsJsonOf<FIXED> {}

impl<QS, const FIXED: bool> diesel::expression::AppearsOnTable<QS> for FieldsJsonOf<FIXED> {}

impl<GB, const FIXED: bool> diesel::expression::ValidGrouping<GB> for FieldsJsonOf<FIXED> {
    type IsAggregate = diesel::expression::is_aggregate::Never;
}

/// A row and its extra fields' JSON object.
type RowWithFields = (SqliteUserRow, String);

/// SQLite's `rowid` of a `user` row: its key in the table's own B-tree
/// (FastAPI Users' `user` table has no `INTEGER PRIMARY KEY`; its `id` is
/// found through the index `sqlite_autoindex_user_1`, then the row by
/// rowid). See [`RowidHints`](crate::inline_read::RowidHints).
#[derive(Debug, Clone, Copy, diesel::query_builder::QueryId)]
pub(crate) struct Rowid;

impl diesel::expression::Expression for Rowid {
    type SqlType = BigInt;
}

impl diesel::query_builder::QueryFragment<Sqlite> for Rowid {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, Sqlite>,
    ) -> QueryResult<()> {
        out.push_sql("`user`.rowid");
        Ok(())
    }
}

impl diesel::expression::SelectableExpression<users::table> for Rowid {}

impl diesel::expression::AppearsOnTable<users::table> for Rowid {}

impl<GB> diesel::expression::ValidGrouping<GB> for Rowid {
    type IsAggregate = diesel::expression::is_aggregate::Never;
}

/// The rowid and row of the user whose id is `key` (the id's index, then
/// the table), with `fields`.
#[allow(clippy::type_complexity)]
pub(crate) fn by_id<const FIXED: bool>(
    key: String,
    fields: FieldsJsonOf<FIXED>,
) -> diesel::dsl::Select<
    diesel::dsl::Find<users::table, String>,
    (
        Rowid,
        diesel::dsl::AsSelect<SqliteUserRow, Sqlite>,
        FieldsJsonOf<FIXED>,
    ),
> {
    users::table
        .find(key)
        .select((Rowid, SqliteUserRow::as_select(), fields))
}

/// The user whose id is `key` if its row is at `rowid` (the table's B-tree
/// alone), with `fields`.
#[allow(clippy::type_complexity)]
pub(crate) fn by_rowid_and_id<const FIXED: bool>(
    rowid: i64,
    key: String,
    fields: FieldsJsonOf<FIXED>,
) -> diesel::dsl::Select<
    diesel::dsl::Filter<
        users::table,
        diesel::dsl::And<diesel::dsl::Eq<Rowid, i64>, diesel::dsl::Eq<users::id, String>>,
    >,
    (
        diesel::dsl::AsSelect<SqliteUserRow, Sqlite>,
        FieldsJsonOf<FIXED>,
    ),
> {
    users::table
        .filter(Rowid.eq(rowid).and(users::id.eq(key)))
        .select((SqliteUserRow::as_select(), fields))
}

/// The row whose address is the same account as `email`, with its fields
/// (`fields`: [`Fields::select`]).
fn find_by_email(
    conn: &mut SqliteConnection,
    email: &str,
    fields: FieldsJson,
) -> QueryResult<Option<RowWithFields>> {
    let key = email.to_lowercase();
    if !needs_unicode_match(email) {
        return find_by_ascii_email(conn, key, fields);
    }
    unicode_candidates(&key)
        .select((SqliteUserRow::as_select(), fields))
        .first(conn)
        .optional()
}

/// The row whose lower-cased address is `key`, an ASCII address lower-cased
/// (`lower()` is then the whole key): one probe of the unique index
/// `ix_user_email_lower`.
fn find_by_ascii_email<const FIXED: bool>(
    conn: &mut SqliteConnection,
    key: String,
    fields: FieldsJsonOf<FIXED>,
) -> QueryResult<Option<RowWithFields>> {
    users::table
        .filter(lower(users::email).eq(key))
        .select((SqliteUserRow::as_select(), fields))
        .first(conn)
        .optional()
}

/// A statement built at run time (columns of the extra fields), its values
/// bound.
type Dynamic = BoxedSqlQuery<'static, Sqlite, SqlQuery>;

/// `query` with `value` bound as the next `?`.
fn bind_field(query: Dynamic, value: FieldValue) -> Dynamic {
    match value {
        FieldValue::Null => query.bind::<Nullable<Text>, _>(None::<String>),
        FieldValue::String(s) => query.bind::<Text, _>(s),
        FieldValue::Integer(i) => query.bind::<BigInt, _>(i),
        FieldValue::Boolean(b) => query.bind::<Bool, _>(b),
    }
}

/// `INSERT INTO "user" (<every column>, <every field>) VALUES (?, …)`.
fn insert_with_fields(row: SqliteUserRow, fields: &UserFields, values: &FieldValues) -> Dynamic {
    let mut columns = vec![
        ("id".to_owned(), FieldValue::String(row.id)),
        ("email".to_owned(), FieldValue::String(row.email)),
        (
            "hashed_password".to_owned(),
            FieldValue::String(row.hashed_password),
        ),
        ("is_active".to_owned(), FieldValue::Boolean(row.is_active)),
        (
            "is_superuser".to_owned(),
            FieldValue::Boolean(row.is_superuser),
        ),
        (
            "is_verified".to_owned(),
            FieldValue::Boolean(row.is_verified),
        ),
        ("role".to_owned(), FieldValue::String(row.role)),
        (
            SESSION_STAMP_COLUMN.to_owned(),
            FieldValue::Integer(row.portcullis_session_stamp),
        ),
    ];
    for spec in fields.iter() {
        let value = values.get(&spec.name).cloned().unwrap_or(FieldValue::Null);
        columns.push((spec.name.clone(), value));
    }
    let names: Vec<String> = columns.iter().map(|(name, _)| quote(name)).collect();
    let marks = vec!["?"; columns.len()].join(", ");
    let query = diesel::sql_query(format!(
        r#"INSERT INTO "user" ({}) VALUES ({marks})"#,
        names.join(", ")
    ))
    .into_boxed::<Sqlite>();
    columns
        .into_iter()
        .fold(query, |query, (_, value)| bind_field(query, value))
}

/// `UPDATE "user" SET <named columns> = ?, <named fields> = ?[, stamp =
/// max(stamp + 1, now)] WHERE "id" = ?`: with `end_sessions`, the stamp is
/// raised from its current value in the same statement
/// ([`raise_session_stamp`]).
fn update_with_fields(
    id: String,
    changes: UserPatchRow,
    fields: Vec<(&FieldSpec, FieldValue)>,
    end_sessions: Option<i64>,
) -> Dynamic {
    let text =
        |name: &str, value: Option<String>| value.map(|v| (name.to_owned(), FieldValue::String(v)));
    let flag =
        |name: &str, value: Option<bool>| value.map(|v| (name.to_owned(), FieldValue::Boolean(v)));
    let columns: Vec<(String, FieldValue)> = [
        text("email", changes.email),
        text("hashed_password", changes.hashed_password),
        flag("is_active", changes.is_active),
        flag("is_superuser", changes.is_superuser),
        flag("is_verified", changes.is_verified),
        text("role", changes.role),
    ]
    .into_iter()
    .flatten()
    .chain(
        fields
            .into_iter()
            .map(|(spec, value)| (spec.name.clone(), value)),
    )
    .collect();
    let set: Vec<String> = columns
        .iter()
        .map(|(name, _)| format!("{} = ?", quote(name)))
        .chain(end_sessions.map(raise_session_stamp))
        .collect();
    let query = diesel::sql_query(format!(
        r#"UPDATE "user" SET {} WHERE "id" = ?"#,
        set.join(", ")
    ))
    .into_boxed::<Sqlite>();
    columns
        .into_iter()
        .map(|(_, value)| value)
        .chain([FieldValue::String(id)])
        .fold(query, bind_field)
}

/// Whether a user other than `except` has the same account key as `email`
/// (for non-ASCII addresses; ASCII clashes are the index's business).
fn key_taken(conn: &mut SqliteConnection, email: &str, except: Option<&str>) -> QueryResult<bool> {
    let mut query = unicode_candidates(&email.to_lowercase()).select(users::id);
    if let Some(id) = except {
        query = query.filter(users::id.ne(id.to_owned()));
    }
    Ok(query.first::<String>(conn).optional()?.is_some())
}

/// Rows whose [`EmailAddress::key`] is `key`: compared with the registered
/// key function, on the few ranges of the `lower(email)` index that must hold
/// them (see [`crate::email_key`]), or on the whole table when the key allows
/// no range (it starts with `i` + U+0307).
pub(crate) fn unicode_candidates(key: &str) -> users::BoxedQuery<'static, Sqlite> {
    type Condition = Box<dyn BoxableExpression<users::table, Sqlite, SqlType = Bool>>;
    let in_ranges = lower_email_ranges(key)
        .into_iter()
        .map(|(low, high)| -> Condition {
            Box::new(
                lower(users::email)
                    .ge(low)
                    .and(lower(users::email).lt(high)),
            )
        })
        .reduce(|either, or| Box::new(either.or(or)));
    let mut query = users::table
        .filter(portcullis_email_key(users::email).eq(key.to_owned()))
        .into_boxed();
    if let Some(in_ranges) = in_ranges {
        query = query.filter(in_ranges);
    }
    query
}

#[async_trait]
impl UserRepository for SqliteUserStore {
    /// On the calling thread's own connection, in its next batch of reads
    /// (see `inline_read`), else through the pool on the blocking pool.
    async fn get(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let key = id.to_string();
        let inline = match &self.inline_reads {
            Some(reads) => {
                let key = key.clone();
                reads
                    .batched(move |conn, hints, json| {
                        let fields = FieldsJsonOf::<true>(json.clone());
                        let uuid = id.as_uuid();
                        if let Some(rowid) = hints.get(uuid) {
                            let hinted = by_rowid_and_id(rowid, key.clone(), fields.clone())
                                .first::<RowWithFields>(conn)
                                .optional()?;
                            if hinted.is_some() {
                                return Ok(hinted);
                            }
                            hints.forget(uuid);
                        }
                        let found = by_id(key, fields)
                            .first::<(i64, SqliteUserRow, String)>(conn)
                            .optional()?;
                        Ok(found.map(|(rowid, row, fields)| {
                            hints.put(uuid, rowid);
                            (row, fields)
                        }))
                    })
                    .await
            }
            None => None,
        };
        let row = match inline {
            Some(row) => row,
            None => {
                let fields = self.fields.select();
                self.with_conn(move |conn| {
                    by_id(key, fields)
                        .first::<(i64, SqliteUserRow, String)>(conn)
                        .optional()
                })
                .await?
                .map(|(_, row, fields)| (row, fields))
            }
        };
        Ok(row.map(|row| self.fields.user(row)).transpose()?)
    }

    /// An ASCII address (one probe of an index) on the calling thread's own
    /// connection, as [`get`](Self::get) (every login looks its address up);
    /// any other, or when that connection fails, through the pool on the
    /// blocking pool.
    async fn get_by_email(&self, email: &EmailAddress) -> Result<Option<User>, StoreError> {
        let email = email.as_str();
        let inline = if needs_unicode_match(email) {
            None
        } else {
            self.inline_reads.as_ref().and_then(|reads| {
                reads.run(|conn, _, json| {
                    find_by_ascii_email(
                        conn,
                        email.to_lowercase(),
                        FieldsJsonOf::<true>(json.clone()),
                    )
                })
            })
        };
        let row = match inline {
            Some(row) => row,
            None => {
                let email = email.to_owned();
                let fields = self.fields.select();
                self.with_conn(move |conn| find_by_email(conn, &email, fields))
                    .await?
            }
        };
        Ok(row.map(|row| self.fields.user(row)).transpose()?)
    }

    async fn create(&self, mut user: User) -> Result<User, StoreError> {
        user.fields = values_to_create(&self.fields.spec, &user.fields)?;
        let row = SqliteUserRow::from(&user);
        let email = row.email.clone();
        let (spec, values) = (self.fields.spec.clone(), user.fields.clone());
        let insert = move |conn: &mut SqliteConnection| {
            if spec.is_empty() {
                diesel::insert_into(users::table).values(&row).execute(conn)
            } else {
                insert_with_fields(row, &spec, &values).execute(conn)
            }
        };
        self.with_conn(move |conn| {
            if !needs_unicode_match(&email) {
                // The unique indexes decide, atomically.
                insert(conn)?;
                return Ok(());
            }
            conn.immediate_transaction(|conn| {
                if key_taken(conn, &email, None)? {
                    return Err(Failure::from(StoreError::Conflict));
                }
                insert(conn)?;
                Ok(())
            })
        })
        .await?;
        Ok(user)
    }

    async fn patch(&self, id: UserId, patch: UserPatch) -> Result<User, StoreError> {
        let field_changes = values_to_patch(&self.fields.spec, &patch.fields)?;
        let columns = UserPatch {
            fields: FieldValues::new(),
            ..patch
        };
        if columns.is_empty() && field_changes.is_empty() {
            // Diesel refuses an empty `SET` list; there is nothing to write.
            return self.get(id).await?.ok_or(StoreError::NotFound);
        }
        let changes = UserPatchRow::from(&columns);
        let update = if field_changes.is_empty() && columns.end_sessions.is_none() {
            None
        } else {
            Some(update_with_fields(
                id.to_string(),
                changes.clone(),
                field_changes,
                columns.end_sessions,
            ))
        };
        let fields = self.fields.select();
        let id = id.to_string();
        let row = self
            .with_conn(move |conn| {
                // One write transaction (SQLite's write lock): the clash check
                // of a non-ASCII address, the UPDATE of the named columns only
                // and the read-back see no other writer in between. ASCII
                // clashes are the unique index's (a Conflict from the UPDATE).
                conn.immediate_transaction(|conn| {
                    if let Some(email) = changes.email.as_deref().filter(|e| needs_unicode_match(e))
                    {
                        let exists = users::table
                            .find(&id)
                            .select(users::id)
                            .first::<String>(conn)
                            .optional()?
                            .is_some();
                        if !exists {
                            return Err(Failure::from(StoreError::NotFound));
                        }
                        if key_taken(conn, email, Some(&id))? {
                            return Err(Failure::from(StoreError::Conflict));
                        }
                    }
                    let changed = match update {
                        // Extra fields or the stamp raised: the same single
                        // UPDATE, built at run time.
                        Some(update) => update.execute(conn)?,
                        None => diesel::update(users::table.find(&id))
                            .set(&changes)
                            .execute(conn)?,
                    };
                    if changed == 0 {
                        return Err(Failure::from(StoreError::NotFound));
                    }
                    Ok(users::table
                        .find(&id)
                        .select((SqliteUserRow::as_select(), fields))
                        .first::<RowWithFields>(conn)?)
                })
            })
            .await?;
        Ok(self.fields.user(row)?)
    }

    async fn replace_password_hash(
        &self,
        id: UserId,
        current: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        let (current, new) = (current.to_owned(), new.to_owned());
        self.with_conn(move |conn| {
            // One conditional UPDATE: SQLite runs it under its write lock.
            let changed = diesel::update(
                users::table
                    .find(id.to_string())
                    .filter(users::hashed_password.eq(current)),
            )
            .set(users::hashed_password.eq(new))
            .execute(conn)?;
            Ok::<_, Failure>(changed == 1)
        })
        .await
    }

    async fn delete(&self, id: UserId) -> Result<(), StoreError> {
        self.with_conn(move |conn| {
            let deleted = diesel::delete(users::table.find(id.to_string())).execute(conn)?;
            if deleted == 0 {
                Err(Failure::from(StoreError::NotFound))
            } else {
                Ok(())
            }
        })
        .await
    }

    fn user_fields(&self) -> Option<UserFields> {
        Some(self.fields.spec.clone())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.with_conn(|conn| diesel::sql_query("SELECT 1").execute(conn).map(|_| ()))
            .await
    }
}

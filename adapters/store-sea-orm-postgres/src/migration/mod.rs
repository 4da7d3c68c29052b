//! The migrations (`sea-orm-migration`), and how they are applied: under a
//! PostgreSQL advisory lock, in one transaction, so that any number of
//! instances starting at once on one database take turns and the schema is
//! changed once.

mod m20250101_000001_create_user;
mod m20250101_000002_email_case_insensitive_index;
mod m20250101_000003_create_throttle;
mod m20250101_000004_sessions;
mod m20250101_000005_oauth_accounts;

use portcullis_domain::UserFields;
use portcullis_store_sql_common::fields::{
    Dialect, ExistingColumn, add_column_sql, check_existing_column,
};
use portcullis_store_sql_common::oauth::{
    OAUTH_ACCOUNT_TABLE, OAUTH_ACCOUNT_UNIQUE_INDEX, duplicate_links_refusal, duplicate_links_sql,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, TransactionTrait};
use sea_orm_migration::{MigrationTrait, MigratorTrait};

/// The collation whose `lower()` is the domain's `EmailAddress::key`: ICU's
/// root locale lowercases with Unicode's full mappings (`İ` → `i̇`, a final
/// `Σ` → `ς`), as Rust's `str::to_lowercase` does. The libc `C.UTF-8` ctype
/// would map one character at a time (`İ` → `i`, `Σ` → `σ` everywhere).
pub(crate) const KEY_COLLATION: &str = "und-x-icu";

/// The expression of the unique index `ix_user_email_lower`; lookups compare
/// it so that they use the index.
pub(crate) const EMAIL_KEY: &str = r#"lower("email" COLLATE "und-x-icu")"#;

/// The key of the advisory lock held while migrating (`"portcull"` in
/// ASCII): every Portcullis instance on the database uses the same.
pub const MIGRATION_LOCK_KEY: i64 = 0x706f_7274_6375_6c6c;

/// Every migration, oldest first. Portcullis records them in
/// `seaql_migrations` (SeaORM's table).
#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20250101_000001_create_user::Migration),
            Box::new(m20250101_000002_email_case_insensitive_index::Migration),
            Box::new(m20250101_000003_create_throttle::Migration),
            Box::new(m20250101_000004_sessions::Migration),
            Box::new(m20250101_000005_oauth_accounts::Migration),
        ]
    }
}

/// Applies the pending migrations in one transaction that first takes the
/// transaction-level advisory lock [`MIGRATION_LOCK_KEY`]: a second instance
/// waits for the first to commit, then finds nothing pending. No statement
/// timeout applies inside (an index built on a large adopted table may take
/// a while). Then, in the same transaction, each field of `fields` gets its
/// column ([`add_field_columns`]). Returns the names of the migrations
/// applied now.
pub(crate) async fn run(
    db: &DatabaseConnection,
    fields: &UserFields,
) -> Result<Vec<String>, DbErr> {
    let txn = db.begin().await?;
    txn.execute_unprepared("SET LOCAL statement_timeout = 0")
        .await?;
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1)",
        [MIGRATION_LOCK_KEY.into()],
    ))
    .await?;
    let pending: Vec<String> = Migrator::get_pending_migrations(&txn)
        .await?
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    if !pending.is_empty() {
        Migrator::up(&txn, None).await?;
    }
    add_field_columns(&txn, fields).await?;
    txn.commit().await?;
    Ok(pending)
}

/// What [`run`] would do, without doing it: the names of the migrations not
/// yet applied, then `column NAME (user field)` for each field of `fields`
/// whose column `user` lacks (an existing column that cannot hold its field
/// is an error, as in [`run`]). SeaORM creates its `seaql_migrations` table
/// to list what is applied; that happens in a transaction rolled back here,
/// so the database is left as it was.
pub(crate) async fn pending(
    db: &DatabaseConnection,
    fields: &UserFields,
) -> Result<Vec<String>, DbErr> {
    let txn = db.begin().await?;
    // What `run` would refuse, check-config reports.
    refuse_duplicate_links(&txn).await?;
    let mut pending: Vec<String> = Migrator::get_pending_migrations(&txn)
        .await?
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    if !fields.is_empty() {
        let columns = user_columns(&txn).await?;
        for spec in fields.iter() {
            match columns.iter().find(|(name, _)| *name == spec.name) {
                Some((_, column)) => {
                    check_existing_column(spec, column).map_err(|e| refuse(e.to_string()))?;
                }
                None => pending.push(format!("column {} (user field)", spec.name)),
            }
        }
    }
    txn.rollback().await?;
    Ok(pending)
}

/// The columns of `user` as [`check_existing_column`] reads them.
async fn user_columns<C: ConnectionTrait>(db: &C) -> Result<Vec<(String, ExistingColumn)>, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT column_name::text, data_type::text, is_nullable = 'YES', \
             character_maximum_length::int4 FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = 'user'",
        ))
        .await?;
    let mut columns = Vec::with_capacity(rows.len());
    for row in rows {
        let name: String = row.try_get_by_index(0)?;
        let max_length: Option<i32> = row.try_get_by_index(3)?;
        let column = ExistingColumn {
            data_type: row.try_get_by_index(1)?,
            nullable: row.try_get_by_index(2)?,
            max_length: max_length.and_then(|n| u32::try_from(n).ok()),
        };
        columns.push((name, column));
    }
    Ok(columns)
}

/// Adds the column of each field of `fields` that `user` lacks (existing
/// rows get the default), and checks that each one it has can hold the
/// field ([`check_existing_column`], from `information_schema.columns`),
/// adopting it with its data. Run under the migration lock, so instances
/// starting together add each column once.
async fn add_field_columns<C: ConnectionTrait>(db: &C, fields: &UserFields) -> Result<(), DbErr> {
    if fields.is_empty() {
        return Ok(());
    }
    let columns = user_columns(db).await?;
    for spec in fields.iter() {
        match columns.iter().find(|(name, _)| *name == spec.name) {
            Some((_, column)) => {
                check_existing_column(spec, column).map_err(|e| refuse(e.to_string()))?;
            }
            None => {
                db.execute_unprepared(&add_column_sql(spec, Dialect::Postgres))
                    .await?;
            }
        }
    }
    Ok(())
}

/// A migration's refusal, in words for the operator.
pub(crate) fn refuse(reason: impl Into<String>) -> DbErr {
    DbErr::Migration(reason.into())
}

/// The first column of each row, as text.
pub(crate) async fn texts<C: ConnectionTrait>(
    db: &C,
    sql: &str,
    values: Vec<sea_orm::Value>,
) -> Result<Vec<String>, DbErr> {
    db.query_all_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        values,
    ))
    .await?
    .iter()
    .map(|row| row.try_get_by_index::<String>(0))
    .collect()
}

/// An `oauth_account` table FastAPI Users made may link one provider
/// account more than once (it only looks before it links). While
/// Portcullis' unique index on (`oauth_name`, `account_id`) does not exist
/// yet, such accounts are looked for and refused by name, with nothing
/// changed: which link to keep is the operator's call.
pub(crate) async fn refuse_duplicate_links<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    let found = |kind: &'static str, name: &'static str| {
        let sql = match kind {
            "table" => {
                "SELECT tablename::text FROM pg_tables \
                 WHERE schemaname = current_schema() AND tablename = $1"
            }
            _ => {
                "SELECT indexname::text FROM pg_indexes \
                 WHERE schemaname = current_schema() AND indexname = $1"
            }
        };
        texts(db, sql, vec![name.into()])
    };
    if found("table", OAUTH_ACCOUNT_TABLE).await?.is_empty()
        || !found("index", OAUTH_ACCOUNT_UNIQUE_INDEX).await?.is_empty()
    {
        return Ok(());
    }
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            duplicate_links_sql(),
        ))
        .await?;
    let mut duplicates = Vec::with_capacity(rows.len());
    for row in rows {
        duplicates.push((
            row.try_get_by_index::<String>(0)?,
            row.try_get_by_index::<String>(1)?,
            row.try_get_by_index::<String>(2)?,
        ));
    }
    match duplicate_links_refusal(&duplicates) {
        Some(refusal) => Err(refuse(refusal)),
        None => Ok(()),
    }
}

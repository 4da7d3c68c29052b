//! Embedded migrations, and adopting a table FastAPI Users made.

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use portcullis_domain::{FieldSpec, UserFields};
use portcullis_store_sql_common::fields::{
    Dialect, ExistingColumn, add_column_sql, check_existing_column,
};
use portcullis_store_sql_common::oauth::{
    OAUTH_ACCOUNT_TABLE, OAUTH_ACCOUNT_UNIQUE_INDEX, duplicate_links_refusal, duplicate_links_sql,
};
use portcullis_store_sql_common::{FASTAPI_USERS_COLUMNS, ROLE_COLUMN};

/// The SQL in `adapters/store-diesel-sqlite/migrations/`, compiled in.
pub(crate) const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

const CASE_INSENSITIVE_INDEX: &str = "ix_user_email_lower";
/// How many clashing addresses a migration error names.
const EXAMPLES: usize = 5;

/// What went wrong; becomes [`crate::SqliteStoreError::Migration`].
#[derive(Debug)]
pub(crate) struct MigrateError(pub String);

impl From<diesel::result::Error> for MigrateError {
    fn from(e: diesel::result::Error) -> Self {
        MigrateError(e.to_string())
    }
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Email {
    #[diesel(sql_type = Text)]
    email: String,
}

#[derive(QueryableByName)]
struct Column {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    r#type: String,
    #[diesel(sql_type = Bool)]
    notnull: bool,
}

/// Brings the schema up to date, in one `BEGIN IMMEDIATE` transaction (so
/// two processes migrating at once take turns, and a failure changes
/// nothing), then gives each extra field of `fields` its column. Returns the
/// versions applied now; none when already up to date.
pub(crate) fn run(
    conn: &mut SqliteConnection,
    fields: &UserFields,
) -> Result<Vec<String>, MigrateError> {
    conn.immediate_transaction(|conn| {
        adopt_existing_table(conn)?;
        refuse_duplicate_links(conn)?;
        let applied: Vec<String> = conn
            .run_pending_migrations(MIGRATIONS)
            .map_err(|e| MigrateError(e.to_string()))?
            .iter()
            .map(ToString::to_string)
            .collect();
        add_field_columns(conn, fields)?;
        Ok(applied)
    })
}

/// What [`run`] would do, without doing it: the versions of the migrations
/// not yet applied, then `column NAME (user field)` for each field of
/// `fields` whose column `user` lacks. An existing column that cannot hold
/// its field is an error, as in [`run`]. Diesel creates its bookkeeping
/// table to list what is applied; that happens in a transaction rolled
/// back here, so the database is left as it was.
pub(crate) fn pending(
    conn: &mut SqliteConnection,
    fields: &UserFields,
) -> Result<Vec<String>, MigrateError> {
    let mut found = None;
    // Always rolled back; the answer leaves through `found`.
    let _ = conn.transaction::<(), diesel::result::Error, _>(|conn| {
        found = Some(pending_in(conn, fields));
        Err(diesel::result::Error::RollbackTransaction)
    });
    found.unwrap_or_else(|| Err(MigrateError("the transaction could not begin".into())))
}

fn pending_in(
    conn: &mut SqliteConnection,
    fields: &UserFields,
) -> Result<Vec<String>, MigrateError> {
    // What `run` would refuse, check-config reports.
    refuse_duplicate_links(conn)?;
    let mut pending: Vec<String> = conn
        .pending_migrations(MIGRATIONS)
        .map_err(|e| MigrateError(e.to_string()))?
        .iter()
        .map(|m| m.name().to_string())
        .collect();
    pending.extend(
        missing_field_columns(conn, fields)?
            .into_iter()
            .map(|spec| format!("column {} (user field)", spec.name)),
    );
    Ok(pending)
}

/// Adds the column of each field of `fields` that `user` lacks (existing
/// rows get the default), and checks that each one it has can hold the
/// field (declared type of the field's kind, compared case-insensitively;
/// not `NOT NULL` for a nullable field), adopting it with its data.
fn add_field_columns(conn: &mut SqliteConnection, fields: &UserFields) -> Result<(), MigrateError> {
    for spec in missing_field_columns(conn, fields)? {
        diesel::sql_query(add_column_sql(spec, Dialect::Sqlite)).execute(conn)?;
    }
    Ok(())
}

/// The fields of `fields` whose column `user` lacks, after checking that
/// each column it has can hold its field (an error otherwise).
fn missing_field_columns<'a>(
    conn: &mut SqliteConnection,
    fields: &'a UserFields,
) -> Result<Vec<&'a FieldSpec>, MigrateError> {
    if fields.is_empty() {
        return Ok(Vec::new());
    }
    let columns =
        diesel::sql_query(r#"SELECT name, type, "notnull" FROM pragma_table_info('user')"#)
            .load::<Column>(conn)?;
    let mut missing = Vec::new();
    for spec in fields.iter() {
        match columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(&spec.name))
        {
            Some(column) => {
                let existing = ExistingColumn {
                    data_type: column.r#type.clone(),
                    nullable: !column.notnull,
                    // SQLite does not enforce a VARCHAR's length.
                    max_length: None,
                };
                check_existing_column(spec, &existing).map_err(|e| MigrateError(e.to_string()))?;
            }
            None => missing.push(spec),
        }
    }
    Ok(missing)
}

/// A `user` table that exists already (FastAPI Users made it, or an earlier
/// run) is kept. What it lacks is added here, since SQLite's DDL cannot say
/// "add this column if missing": `role` (existing users become students).
/// Before the case-insensitive unique index is first created, addresses that
/// are the same account (same [`EmailAddress::key`]) are looked for, so the
/// operator gets their names rather than a bare constraint failure.
///
/// [`EmailAddress::key`]: portcullis_domain::EmailAddress::key
fn adopt_existing_table(conn: &mut SqliteConnection) -> Result<(), MigrateError> {
    let columns: Vec<String> = diesel::sql_query("SELECT name FROM pragma_table_info('user')")
        .load::<Name>(conn)?
        .into_iter()
        .map(|n| n.name)
        .collect();
    if columns.is_empty() {
        return Ok(()); // a new database: the migrations create everything
    }
    let missing: Vec<&str> = FASTAPI_USERS_COLUMNS
        .into_iter()
        .filter(|c| !columns.iter().any(|have| have.eq_ignore_ascii_case(c)))
        .collect();
    if !missing.is_empty() {
        return Err(MigrateError(format!(
            "a table `user` exists but has no column {}: it is not a FastAPI Users user table; \
             use another database",
            missing.join(", ")
        )));
    }
    if !columns.iter().any(|c| c.eq_ignore_ascii_case(ROLE_COLUMN)) {
        diesel::sql_query(
            "ALTER TABLE user ADD COLUMN role VARCHAR(20) NOT NULL DEFAULT 'student'",
        )
        .execute(conn)?;
    }
    let has_index =
        !diesel::sql_query("SELECT name FROM sqlite_master WHERE type = 'index' AND name = ?")
            .bind::<Text, _>(CASE_INSENSITIVE_INDEX)
            .load::<Name>(conn)?
            .is_empty();
    if !has_index {
        refuse_same_account_twice(conn)?;
    }
    Ok(())
}

#[derive(QueryableByName)]
struct Link {
    #[diesel(sql_type = Text)]
    oauth_name: String,
    #[diesel(sql_type = Text)]
    account_id: String,
    #[diesel(sql_type = Text)]
    links: String,
}

/// An `oauth_account` table FastAPI Users made may link one provider
/// account more than once (it only looks before it links). Before
/// Portcullis' unique index on (`oauth_name`, `account_id`) is first
/// created, such accounts are looked for, and the migration refuses,
/// naming them, with nothing changed: which link to keep is the operator's
/// call, not the migration's.
fn refuse_duplicate_links(conn: &mut SqliteConnection) -> Result<(), MigrateError> {
    let named = |conn: &mut SqliteConnection, kind: &str, name: &str| {
        diesel::sql_query("SELECT name FROM sqlite_master WHERE type = ? AND name = ?")
            .bind::<Text, _>(kind.to_owned())
            .bind::<Text, _>(name.to_owned())
            .load::<Name>(conn)
            .map(|found| !found.is_empty())
    };
    if !named(conn, "table", OAUTH_ACCOUNT_TABLE)?
        || named(conn, "index", OAUTH_ACCOUNT_UNIQUE_INDEX)?
    {
        return Ok(());
    }
    let duplicates: Vec<(String, String, String)> = diesel::sql_query(duplicate_links_sql())
        .load::<Link>(conn)?
        .into_iter()
        .map(|l| (l.oauth_name, l.account_id, l.links))
        .collect();
    match duplicate_links_refusal(&duplicates) {
        Some(refusal) => Err(MigrateError(refusal)),
        None => Ok(()),
    }
}

fn refuse_same_account_twice(conn: &mut SqliteConnection) -> Result<(), MigrateError> {
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for Email { email } in diesel::sql_query("SELECT email FROM user").load::<Email>(conn)? {
        by_key.entry(email.to_lowercase()).or_default().push(email);
    }
    let clashes: Vec<String> = by_key
        .into_values()
        .filter(|spellings| spellings.len() > 1)
        .map(|mut spellings| {
            spellings.sort();
            spellings.join(" / ")
        })
        .collect();
    if clashes.is_empty() {
        return Ok(());
    }
    let shown = clashes
        .iter()
        .take(EXAMPLES)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    let more = clashes.len().saturating_sub(EXAMPLES);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    Err(MigrateError(format!(
        "{} e-mail address(es) are stored more than once, differing only in letter case \
         ({shown}{more}); Portcullis treats each as one account. Merge or rename these users, \
         then migrate again",
        clashes.len()
    )))
}

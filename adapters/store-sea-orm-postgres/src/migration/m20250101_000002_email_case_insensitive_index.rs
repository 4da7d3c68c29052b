//! Case-insensitive uniqueness of e-mail addresses, decided by the database.

use sea_orm_migration::prelude::*;

use super::{EMAIL_KEY, KEY_COLLATION, refuse, texts};

/// How many clashing addresses a migration error names.
const EXAMPLES: usize = 5;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let encoding = texts(
            db,
            "SELECT pg_encoding_to_char(encoding)::text FROM pg_database \
             WHERE datname = current_database()",
            vec![],
        )
        .await?;
        if encoding.first().map(String::as_str) != Some("UTF8") {
            return Err(refuse(format!(
                "the database's encoding is {}; Portcullis needs a UTF8 database \
                 (CREATE DATABASE … ENCODING 'UTF8' TEMPLATE template0)",
                encoding.first().map_or("unknown", String::as_str)
            )));
        }
        let icu = texts(
            db,
            "SELECT collname::text FROM pg_collation WHERE collname = $1",
            vec![KEY_COLLATION.into()],
        )
        .await?;
        if icu.is_empty() {
            return Err(refuse(format!(
                "collation \"{KEY_COLLATION}\" does not exist: Portcullis needs a PostgreSQL \
                 built with ICU (the usual packages are) to compare e-mail addresses \
                 case-insensitively in every script"
            )));
        }
        let has_index = !texts(
            db,
            "SELECT indexname::text FROM pg_indexes \
             WHERE schemaname = current_schema() AND indexname = 'ix_user_email_lower'",
            vec![],
        )
        .await?
        .is_empty();
        if !has_index {
            refuse_same_account_twice(db).await?;
        }
        // Two addresses whose full Unicode lowercase is the same are one
        // account, whoever writes the table (Portcullis, FastAPI Users, psql).
        db.execute_unprepared(&format!(
            r#"CREATE UNIQUE INDEX IF NOT EXISTS ix_user_email_lower ON "user" ({EMAIL_KEY})"#
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS ix_user_email_lower")
            .await?;
        Ok(())
    }
}

/// Before the index is first created on an adopted table, addresses that
/// are the same account are looked for, so that the operator gets their
/// names rather than a bare constraint failure.
async fn refuse_same_account_twice(db: &SchemaManagerConnection<'_>) -> Result<(), DbErr> {
    let clashes = texts(
        db,
        &format!(
            r#"SELECT string_agg(email, ' / ' ORDER BY email) FROM "user"
               GROUP BY {EMAIL_KEY} HAVING count(*) > 1 ORDER BY 1"#
        ),
        vec![],
    )
    .await?;
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
    Err(refuse(format!(
        "{} e-mail address(es) are stored more than once, differing only in letter case \
         ({shown}{more}); Portcullis treats each as one account. Merge or rename these users, \
         then migrate again",
        clashes.len()
    )))
}

//! FastAPI Users' `user` table, plus `role`; an existing one is adopted.

use portcullis_store_sql_common::FASTAPI_USERS_COLUMNS;
use sea_orm_migration::prelude::*;

use super::{refuse, texts};

/// The table SQLAlchemy creates for FastAPI Users' `SQLAlchemyBaseUserTableUUID`
/// on PostgreSQL (its `GUID` type is a native `UUID` there), plus `role`.
/// `IF NOT EXISTS` everywhere: an existing FastAPI Users table is kept, rows
/// and all, and gains `role` (existing users become students).
const UP: &str = r#"
CREATE TABLE IF NOT EXISTS "user" (
    id UUID NOT NULL,
    email VARCHAR(320) NOT NULL,
    hashed_password VARCHAR(1024) NOT NULL,
    is_active BOOLEAN NOT NULL,
    is_superuser BOOLEAN NOT NULL,
    is_verified BOOLEAN NOT NULL,
    role VARCHAR(20) NOT NULL DEFAULT 'student',
    PRIMARY KEY (id)
);
ALTER TABLE "user" ADD COLUMN IF NOT EXISTS role VARCHAR(20) NOT NULL DEFAULT 'student';
-- FastAPI Users' own index: unique on the address exactly as stored.
CREATE UNIQUE INDEX IF NOT EXISTS ix_user_email ON "user" (email);
"#;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let columns = texts(
            db,
            "SELECT column_name::text || ' ' || data_type::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = 'user'",
            vec![],
        )
        .await?;
        if !columns.is_empty() {
            check_adoptable(&columns)?;
        }
        db.execute_unprepared(UP).await?;
        Ok(())
    }

    /// Destroys every user. Never run by Portcullis itself.
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(r#"DROP TABLE IF EXISTS "user""#)
            .await?;
        Ok(())
    }
}

/// An existing `user` table (`name type` per column) is kept only if it is
/// FastAPI Users' (on PostgreSQL: a `uuid` id).
fn check_adoptable(columns: &[String]) -> Result<(), DbErr> {
    let type_of = |name: &str| {
        columns.iter().find_map(|c| {
            c.split_once(' ')
                .filter(|(n, _)| *n == name)
                .map(|(_, t)| t.to_owned())
        })
    };
    let missing: Vec<&str> = FASTAPI_USERS_COLUMNS
        .into_iter()
        .filter(|c| type_of(c).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(refuse(format!(
            "a table \"user\" exists but has no column {}: it is not a FastAPI Users user table; \
             use another database or schema",
            missing.join(", ")
        )));
    }
    match type_of("id").as_deref() {
        Some("uuid") => Ok(()),
        other => Err(refuse(format!(
            "the existing table \"user\" has an id of type {}, not uuid (FastAPI Users' \
             SQLAlchemyBaseUserTableUUID); Portcullis cannot adopt it",
            other.unwrap_or("?")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn adopts_only_a_fastapi_users_table() {
        let fastapi = cols(&[
            "id uuid",
            "email character varying",
            "hashed_password character varying",
            "is_active boolean",
            "is_superuser boolean",
            "is_verified boolean",
        ]);
        assert!(check_adoptable(&fastapi).is_ok());
        let err = check_adoptable(&cols(&["id uuid", "name text"])).unwrap_err();
        assert!(
            err.to_string().contains("no column email, hashed_password"),
            "{err}"
        );
        let mut text_id = fastapi.clone();
        text_id[0] = "id character".into();
        let err = check_adoptable(&text_id).unwrap_err();
        assert!(err.to_string().contains("not uuid"), "{err}");
    }
}

//! Sessions: the stamp column on `user` and FastAPI Users' `accesstoken`
//! table, both kept when they exist (an adopted FastAPI Users database that
//! used the `DatabaseStrategy` keeps its sessions). The DDL is
//! `store-sql-common`'s.

use portcullis_store_sql_common::fields::Dialect;
use portcullis_store_sql_common::sessions::{
    ADD_SESSION_STAMP_COLUMN_IF_MISSING_PG, create_access_token_table,
};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        // DEFAULT 0: FastAPI Users inserts users without the column.
        db.execute_unprepared(ADD_SESSION_STAMP_COLUMN_IF_MISSING_PG)
            .await?;
        for statement in create_access_token_table(Dialect::Postgres) {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }

    /// Ends every session. Never run by Portcullis itself.
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                r#"DROP TABLE IF EXISTS accesstoken;
ALTER TABLE "user" DROP COLUMN IF EXISTS portcullis_session_stamp;"#,
            )
            .await?;
        Ok(())
    }
}

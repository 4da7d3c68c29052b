//! `portcullis_throttle`: the failed-login and mail windows of the
//! `ThrottleLedger`, shared by every instance on the database (FastAPI
//! Users ignores the table). The DDL is `store-sql-common`'s, the same as
//! the SQLite store's.

use portcullis_store_sql_common::throttle::CREATE_THROTTLE_TABLE;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for statement in CREATE_THROTTLE_TABLE {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE IF EXISTS portcullis_throttle")
            .await?;
        Ok(())
    }
}

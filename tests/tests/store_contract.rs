//! The store contract suite (`portcullis_tests::store_contract`) run against
//! every store built in this workspace: each case once per store, each on a
//! fresh store, made with the extra user fields the case asks for. The
//! two-instance cases open a second store on the same database: the same
//! file for SQLite, the same database for PostgreSQL, the one store of the
//! process for memory.
//! PostgreSQL's with the `postgres` feature, on the server
//! `PORTCULLIS_TEST_POSTGRES_URL` names (scripts/with-postgres).

use std::path::PathBuf;
use std::sync::Arc;

use portcullis_domain::{Store, UserFields};
use portcullis_store_diesel_sqlite::SqliteUserStore;
use portcullis_store_memory::MemoryUserStore;
use portcullis_tests::store_contract::Fresh;
use portcullis_tests::store_contract_tests;

async fn memory(fields: UserFields) -> Fresh {
    let store: Arc<dyn Store> = Arc::new(MemoryUserStore::new().with_user_fields(fields));
    let same = Arc::clone(&store);
    Fresh::new(store).with_second_instance(move || std::future::ready(Arc::clone(&same)))
}

/// A database file in the temp folder with a random name, removed with its
/// WAL and shared-memory files when dropped.
struct TempDatabase(PathBuf);

impl Drop for TempDatabase {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

async fn sqlite(fields: UserFields) -> Fresh {
    let file = TempDatabase(
        std::env::temp_dir().join(format!("portcullis-contract-{}.db", uuid::Uuid::new_v4())),
    );
    let url = format!("sqlite://{}", file.0.display());
    let open = move || {
        let (url, fields) = (url.clone(), fields.clone());
        async move {
            let store = SqliteUserStore::open(&url)
                .await
                .expect("open a temporary SQLite database")
                .with_user_fields(fields);
            store.migrate().await.expect("migrate");
            Arc::new(store) as Arc<dyn Store>
        }
    };
    Fresh::new(open().await)
        .with_second_instance(open)
        .with_cleanup(file)
}

/// A fresh database on the server `PORTCULLIS_TEST_POSTGRES_URL` names,
/// migrated; dropped after the test.
#[cfg(feature = "postgres")]
async fn postgres(fields: UserFields) -> Fresh {
    use portcullis_store_sea_orm_postgres::PostgresUserStore;
    let database = portcullis_tests::postgres::PgDatabase::create();
    let url = database.url.clone();
    let open = move || {
        let (url, fields) = (url.clone(), fields.clone());
        async move {
            let store = PostgresUserStore::open(&url)
                .await
                .expect("open a fresh PostgreSQL database")
                .with_user_fields(fields);
            store.migrate().await.expect("migrate");
            Arc::new(store) as Arc<dyn Store>
        }
    };
    Fresh::new(open().await)
        .with_second_instance(open)
        .with_cleanup(database)
}

store_contract_tests!(memory);
store_contract_tests!(sqlite);
#[cfg(feature = "postgres")]
store_contract_tests!(postgres);

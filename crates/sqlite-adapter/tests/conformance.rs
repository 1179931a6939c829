//! The store conformance suite on SQLite: one fresh database file per test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sqlite_adapter::{SqliteLocation, SqliteStore};

struct Sqlite {
    dir: PathBuf,
    store: Arc<SqliteStore>,
}

fn open(dir: &std::path::Path) -> Arc<SqliteStore> {
    let location = SqliteLocation::File(dir.join("tickets.db"));
    Arc::new(
        SqliteStore::open(location, 8, Duration::from_secs(30)).expect("open the test database"),
    )
}

impl store_conformance::Harness for Sqlite {
    type Store = SqliteStore;

    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "ticketing-sqlite-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let store = open(&dir);
        store.migrate().unwrap();
        Self { dir, store }
    }

    fn store(&self) -> Arc<SqliteStore> {
        Arc::clone(&self.store)
    }

    fn another_store(&self) -> Arc<SqliteStore> {
        open(&self.dir)
    }
}

impl Drop for Sqlite {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

store_conformance::conformance_tests!(Sqlite);

//! The store conformance suite on PostgreSQL: one fresh database per test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use postgres_adapter::{migrate_url, PgStore, PoolSettings, MIGRATIONS_DIR};
use test_support::TestDatabase;

struct Postgres {
    db: TestDatabase,
    store: Arc<PgStore>,
}

fn pool(url: &str) -> Arc<PgStore> {
    // Enough connections for real contention, few enough that parallel tests fit in the
    // server's max_connections.
    let settings = PoolSettings {
        max_size: 8,
        checkout_timeout: Duration::from_secs(30),
        ..PoolSettings::default()
    };
    Arc::new(PgStore::connect(url, settings).expect("connect to the test database"))
}

impl store_conformance::Harness for Postgres {
    type Store = PgStore;

    fn new() -> Self {
        let db = TestDatabase::create(MIGRATIONS_DIR, &|url| {
            migrate_url(url).map(drop).map_err(|e| e.to_string())
        });
        let store = pool(db.url());
        Self { db, store }
    }

    fn store(&self) -> Arc<PgStore> {
        Arc::clone(&self.store)
    }

    fn another_store(&self) -> Arc<PgStore> {
        pool(self.db.url())
    }
}

store_conformance::conformance_tests!(Postgres);

//! The store conformance suite on SQLite: one fresh database file per test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use domain::EventId;
use sqlite_adapter::{SqliteLocation, SqliteStore};
use store_conformance::{StoredEvent, StoredRow};

/// One table row of counters or of a reservation, read by hand.
#[derive(QueryableByName)]
struct Tickets {
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = BigInt)]
    a: i64,
    #[diesel(sql_type = BigInt)]
    b: i64,
    #[diesel(sql_type = Nullable<Text>)]
    until: Option<String>,
}

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

    fn stored_event(&self, event: EventId) -> StoredEvent {
        let path = self.dir.join("tickets.db");
        let mut conn = SqliteConnection::establish(&path.to_string_lossy()).unwrap();
        // The event's counters (kind `event`), and one line per reservation (kind: its status).
        let lines: Vec<Tickets> = diesel::sql_query(
            "SELECT 'event' AS kind, purchased_count AS a, reserved_count AS b,
                    CAST(capacity AS TEXT) AS until
               FROM events WHERE id = ?1
             UNION ALL
             SELECT status, quantity, 0, expires_at FROM reservations WHERE event_id = ?1",
        )
        .bind::<BigInt, _>(event.get())
        .load(&mut conn)
        .unwrap();
        let (heads, rows): (Vec<&Tickets>, Vec<&Tickets>) =
            lines.iter().partition(|l| l.kind == "event");
        let head = heads.first().expect("the event exists");
        StoredEvent {
            capacity: head.until.as_deref().unwrap().parse().unwrap(),
            purchased_counter: head.a,
            held_counter: head.b,
            rows: rows
                .iter()
                .map(|r| StoredRow {
                    status: r.kind.clone(),
                    quantity: r.a,
                    expires_at: r
                        .until
                        .as_deref()
                        .map(|t| DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc)),
                })
                .collect(),
        }
    }
}

impl Drop for Sqlite {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

store_conformance::conformance_tests!(Sqlite);

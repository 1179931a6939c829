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

/// One row of the event, a reservation, a line, a quota or a ticket type, read by hand and
/// told apart by `kind`.
#[derive(QueryableByName)]
struct Item {
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = BigInt)]
    a: i64,
    #[diesel(sql_type = BigInt)]
    b: i64,
    #[diesel(sql_type = BigInt)]
    c: i64,
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
        let items: Vec<Item> = diesel::sql_query(
            "SELECT 'event' AS kind, '' AS key, capacity AS a, purchased_count AS b,
                    reserved_count AS c, NULL AS until
               FROM events WHERE id = ?1
             UNION ALL
             SELECT 'row', id, quantity, 0, 0, status || ' ' || expires_at
               FROM reservations WHERE event_id = ?1
             UNION ALL
             SELECT 'line', r.id, json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]'), 0, NULL
               FROM reservations r, json_each(r.lines) j WHERE r.event_id = ?1
             UNION ALL
             SELECT 'quota', '', id, capacity, purchased_count, CAST(reserved_count AS TEXT)
               FROM quotas WHERE event_id = ?1
             UNION ALL
             SELECT 'type', COALESCE((SELECT group_concat(quota_id) FROM ticket_type_quotas x
                                       WHERE x.event_id = t.event_id AND x.ticket_type_id = t.id), ''),
                    id, purchased_count, reserved_count, NULL
               FROM ticket_types t WHERE event_id = ?1",
        )
        .bind::<BigInt, _>(event.get())
        .load(&mut conn)
        .unwrap();
        let of = |kind: &'static str| items.iter().filter(move |i| i.kind == kind);
        let head = of("event").next().expect("the event exists");
        StoredEvent {
            capacity: head.a,
            purchased_counter: head.b,
            held_counter: head.c,
            rows: of("row")
                .map(|r| {
                    let text = r.until.as_deref().unwrap_or_default();
                    let (status, expires_at) = text.split_once(' ').unwrap_or((text, ""));
                    StoredRow {
                        status: status.to_owned(),
                        quantity: r.a,
                        expires_at: DateTime::parse_from_rfc3339(expires_at)
                            .ok()
                            .map(|t| t.with_timezone(&Utc)),
                        lines: of("line")
                            .filter(|l| l.key == r.key)
                            .map(|l| (l.a, l.b))
                            .collect(),
                    }
                })
                .collect(),
            quotas: of("quota")
                .map(|q| {
                    let reserved = q.until.as_deref().unwrap_or_default().parse().unwrap();
                    (q.a, q.b, q.c, reserved)
                })
                .collect(),
            types: of("type")
                .map(|t| {
                    let quotas = t.key.split(',').filter_map(|q| q.parse().ok()).collect();
                    (t.a, quotas, t.b, t.c)
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

#[test]
fn the_database_refuses_a_second_holder_of_a_seat() {
    store_conformance::seating::the_database_refuses_a_second_holder_of_a_seat::<Sqlite>(
        |h, event, seat, reservation| {
            let path = h.dir.join("tickets.db");
            let mut conn =
                SqliteConnection::establish(&path.to_string_lossy()).map_err(|e| e.to_string())?;
            diesel::sql_query(
                "INSERT INTO seat_holds (event_id, seat_id, reservation_id) VALUES (?1, ?2, ?3)",
            )
            .bind::<BigInt, _>(event.get())
            .bind::<BigInt, _>(seat)
            .bind::<diesel::sql_types::Text, _>(reservation)
            .execute(&mut conn)
            .map(drop)
            .map_err(|e| e.to_string())
        },
    );
}

//! The store conformance suite on PostgreSQL: one fresh database per test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};
use domain::EventId;
use postgres_adapter::{migrate_url, PgStore, PoolSettings, MIGRATIONS_DIR};
use store_conformance::{StoredEvent, StoredRow};
use test_support::TestDatabase;

#[derive(QueryableByName)]
struct Counters {
    #[diesel(sql_type = BigInt)]
    capacity: i64,
    #[diesel(sql_type = BigInt)]
    purchased: i64,
    #[diesel(sql_type = BigInt)]
    held: i64,
}

#[derive(QueryableByName)]
struct Item {
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    a: String,
    #[diesel(sql_type = BigInt)]
    b: i64,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = BigInt)]
    p: i64,
    #[diesel(sql_type = BigInt)]
    h: i64,
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = BigInt)]
    quantity: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    expires_at: Option<DateTime<Utc>>,
}

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

    fn stored_event(&self, event: EventId) -> StoredEvent {
        let mut conn = PgConnection::establish(self.db.url()).unwrap();
        let counters: Counters = diesel::sql_query(
            "SELECT capacity::int8 AS capacity, purchased_count::int8 AS purchased, \
                    reserved_count::int8 AS held FROM events WHERE id = $1",
        )
        .bind::<BigInt, _>(event.get())
        .get_result(&mut conn)
        .unwrap();
        let rows: Vec<Row> = diesel::sql_query(
            "SELECT id::text AS id, status, quantity::int8 AS quantity, expires_at \
               FROM reservations WHERE event_id = $1",
        )
        .bind::<BigInt, _>(event.get())
        .load(&mut conn)
        .unwrap();
        // Lines (a = reservation, b = type, n = tickets), quotas (b = id, n = capacity, p and
        // h the counters) and types (b = id, a = its quotas) in one list, told apart by `kind`.
        let items: Vec<Item> = diesel::sql_query(
            "SELECT 'line' AS kind, r.id::text AS a, (j.value->>0)::int8 AS b,
                    (j.value->>1)::int8 AS n, 0::int8 AS p, 0::int8 AS h
               FROM reservations r CROSS JOIN LATERAL jsonb_array_elements(r.lines::jsonb) j
              WHERE r.event_id = $1
             UNION ALL
             SELECT 'quota', '', id, capacity::int8, purchased_count::int8, reserved_count::int8
               FROM quotas WHERE event_id = $1
             UNION ALL
             SELECT 'type', COALESCE((SELECT string_agg(quota_id::text, ',')
                                        FROM ticket_type_quotas x
                                       WHERE x.event_id = t.event_id AND x.ticket_type_id = t.id), ''),
                    id, 0, purchased_count::int8, reserved_count::int8
               FROM ticket_types t WHERE event_id = $1",
        )
        .bind::<BigInt, _>(event.get())
        .load(&mut conn)
        .unwrap();
        StoredEvent {
            capacity: counters.capacity,
            purchased_counter: counters.purchased,
            held_counter: counters.held,
            rows: rows
                .into_iter()
                .map(|r| StoredRow {
                    lines: items
                        .iter()
                        .filter(|i| i.kind == "line" && i.a == r.id)
                        .map(|i| (i.b, i.n))
                        .collect(),
                    status: r.status,
                    quantity: r.quantity,
                    expires_at: r.expires_at,
                })
                .collect(),
            quotas: items
                .iter()
                .filter(|i| i.kind == "quota")
                .map(|i| (i.b, i.n, i.p, i.h))
                .collect(),
            types: items
                .iter()
                .filter(|i| i.kind == "type")
                .map(|i| {
                    let quotas = i.a.split(',').filter_map(|q| q.parse().ok()).collect();
                    (i.b, quotas, i.p, i.h)
                })
                .collect(),
        }
    }
}

store_conformance::conformance_tests!(Postgres);

#[test]
fn the_database_refuses_a_second_holder_of_a_seat() {
    store_conformance::seating::the_database_refuses_a_second_holder_of_a_seat::<Postgres>(
        |h, event, seat, reservation| {
            let mut conn = PgConnection::establish(h.db.url()).map_err(|e| e.to_string())?;
            diesel::sql_query(
                "INSERT INTO seat_holds (event_id, seat_id, reservation_id) VALUES ($1, $2, $3::uuid)",
            )
            .bind::<BigInt, _>(event.get())
            .bind::<diesel::sql_types::Integer, _>(i32::try_from(seat).unwrap())
            .bind::<Text, _>(reservation)
            .execute(&mut conn)
            .map(drop)
            .map_err(|e| e.to_string())
        },
    );
}

//! The conformance suite on the domain's in-memory store: the suite's own check, with no
//! database, and a reference for what every store must do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use domain::memory::MemoryStore;
use domain::EventId;
use store_conformance::{StoredEvent, StoredRow};

struct Memory(Arc<MemoryStore>);

impl store_conformance::Harness for Memory {
    type Store = MemoryStore;

    fn new() -> Self {
        Self(Arc::new(MemoryStore::new()))
    }

    fn store(&self) -> Arc<MemoryStore> {
        Arc::clone(&self.0)
    }

    fn another_store(&self) -> Arc<MemoryStore> {
        Arc::clone(&self.0)
    }

    fn stored_event(&self, event: EventId) -> StoredEvent {
        let (quotas, types) = self.0.inventory_rows(event);
        let (event, purchased, held, rows) = self.0.event_rows(event).expect("the event exists");
        StoredEvent {
            capacity: i64::from(event.capacity),
            purchased_counter: i64::from(purchased),
            held_counter: i64::from(held),
            rows: rows
                .into_iter()
                .map(|r| StoredRow {
                    status: r.status.as_str().to_owned(),
                    quantity: r.tickets(),
                    expires_at: r.expires_at,
                    lines: r
                        .lines
                        .iter()
                        .map(|l| (l.ticket_type.get(), i64::from(l.quantity)))
                        .collect(),
                })
                .collect(),
            quotas: quotas
                .into_iter()
                .map(|(q, c)| {
                    let (capacity, purchased, held) = (q.capacity, c.purchased, c.held);
                    (q.id.get(), capacity.into(), purchased.into(), held.into())
                })
                .collect(),
            types: types
                .into_iter()
                .map(|(t, c)| {
                    let quotas = t.quotas.iter().map(|q| q.get()).collect();
                    (t.id.get(), quotas, c.purchased.into(), c.held.into())
                })
                .collect(),
        }
    }
}

store_conformance::conformance_tests!(Memory);

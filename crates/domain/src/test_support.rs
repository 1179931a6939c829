//! Fixtures for the use-case tests.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::{
    Event, EventId, FixedClock, HoldTtl, MockEventStore, MockReservationStore, Reservation,
    ReservationId, ReservationStatus, Ticketing,
};

/// The fixed time every use-case test runs at.
pub const NOW: DateTime<Utc> = DateTime::from_timestamp_nanos(1_800_000_000_000_000_000);

pub fn ticketing(events: MockEventStore, reservations: MockReservationStore) -> Ticketing {
    let ttl = HoldTtl::from_seconds(600).unwrap_or_else(|| unreachable!());
    Ticketing::new(
        Arc::new(events),
        Arc::new(reservations),
        Arc::new(FixedClock::at(NOW)),
        ttl,
    )
}

pub fn reservation(id: ReservationId, event_id: EventId, status: ReservationStatus) -> Reservation {
    Reservation {
        id,
        event_id,
        status,
        purchased_at: (status == ReservationStatus::Purchased).then_some(NOW),
        expires_at: Some(NOW + chrono::TimeDelta::seconds(600)),
        payment_reference: None,
        created_at: NOW,
        updated_at: NOW,
    }
}

pub fn event(id: EventId, capacity: i32) -> Event {
    Event {
        id,
        name: "Gala".into(),
        capacity,
        created_at: NOW,
        updated_at: NOW,
    }
}

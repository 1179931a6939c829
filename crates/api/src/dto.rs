//! The JSON bodies of the answers, also printed by `ticketctl`. Timestamps are RFC 3339 in UTC.

use chrono::{DateTime, Utc};
use domain::{EventSummary, Reservation};
use serde::Serialize;

/// `201` of `POST /api/events/{event}/reserve`.
#[derive(Debug, Serialize)]
pub struct HoldCreated {
    id: String,
    event_id: i64,
    status: &'static str,
    expires_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl From<Reservation> for HoldCreated {
    fn from(r: Reservation) -> Self {
        Self {
            id: r.id.to_string(),
            event_id: r.event_id.get(),
            status: r.status.as_str(),
            expires_at: r.expires_at,
            created_at: r.created_at,
        }
    }
}

/// A reservation after a purchase, a cancel, or a read.
#[derive(Debug, Serialize)]
pub struct ReservationBody {
    id: String,
    event_id: i64,
    status: &'static str,
    expires_at: Option<DateTime<Utc>>,
    purchased_at: Option<DateTime<Utc>>,
    payment_reference: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Reservation> for ReservationBody {
    fn from(r: Reservation) -> Self {
        Self {
            id: r.id.to_string(),
            event_id: r.event_id.get(),
            status: r.status.as_str(),
            expires_at: r.expires_at,
            purchased_at: r.purchased_at,
            payment_reference: r.payment_reference,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// An event with its counts: `purchased + reserved + available = capacity`.
#[derive(Debug, Serialize)]
pub struct EventBody {
    id: i64,
    name: String,
    capacity: i32,
    purchased: i32,
    reserved: i32,
    available: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<EventSummary> for EventBody {
    fn from(s: EventSummary) -> Self {
        Self {
            id: s.event.id.get(),
            name: s.event.name,
            capacity: s.event.capacity,
            purchased: s.purchased,
            reserved: s.reserved,
            available: s.available,
            created_at: s.event.created_at,
            updated_at: s.event.updated_at,
        }
    }
}

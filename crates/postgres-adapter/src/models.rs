//! Rows as Diesel reads and writes them, and their conversion to domain types.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use domain::{Event, EventId, Reservation, ReservationId, ReservationStatus};
use uuid::Uuid;

use crate::error::PgStoreError;
use diesel::sql_types as sql;

use crate::schema::events;

#[derive(Debug, Queryable, Selectable, QueryableByName)]
#[diesel(table_name = events, check_for_backend(diesel::pg::Pg))]
pub(crate) struct EventRow {
    pub id: i64,
    pub name: String,
    pub capacity: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<EventRow> for Event {
    fn from(row: EventRow) -> Self {
        Self {
            id: EventId::new(row.id),
            name: row.name,
            capacity: row.capacity,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// A reservation as `store_sql::reservations_statement` reads it.
#[derive(Debug, QueryableByName)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub(crate) struct ReservationRow {
    #[diesel(sql_type = sql::Uuid)]
    pub id: Uuid,
    #[diesel(sql_type = sql::BigInt)]
    pub event_id: i64,
    #[diesel(sql_type = sql::Text)]
    pub status: String,
    #[diesel(sql_type = sql::Integer)]
    pub quantity: i32,
    #[diesel(sql_type = sql::Nullable<sql::Text>)]
    pub customer: Option<String>,
    #[diesel(sql_type = sql::Nullable<sql::Timestamptz>)]
    pub purchased_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = sql::Nullable<sql::Timestamptz>)]
    pub expires_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = sql::Nullable<sql::Text>)]
    pub payment_reference: Option<String>,
    #[diesel(sql_type = sql::Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = sql::Timestamptz)]
    pub updated_at: DateTime<Utc>,
    /// The hold's lines, as `store_sql::lines_column` reads them.
    #[diesel(sql_type = sql::Text)]
    pub lines: String,
    /// The hold's seats, as `store_sql::seats_column` reads them.
    #[diesel(sql_type = sql::Text)]
    pub seats: String,
}

impl TryFrom<ReservationRow> for Reservation {
    type Error = PgStoreError;

    fn try_from(row: ReservationRow) -> Result<Self, Self::Error> {
        let status = row
            .status
            .parse::<ReservationStatus>()
            .map_err(|e| PgStoreError::CorruptRow(format!("reservation {}: {e}", row.id)))?;
        Ok(Self {
            id: ReservationId::from_uuid(row.id),
            event_id: EventId::new(row.event_id),
            status,
            quantity: row.quantity,
            customer: row.customer,
            purchased_at: row.purchased_at,
            expires_at: row.expires_at,
            payment_reference: row.payment_reference,
            created_at: row.created_at,
            updated_at: row.updated_at,
            lines: store_sql::parse_lines(&row.lines)
                .map_err(|_| PgStoreError::CorruptRow(format!("lines of {}", row.id)))?,
            seats: store_sql::parse_seats(&row.seats)
                .map_err(|_| PgStoreError::CorruptRow(format!("seats of {}", row.id)))?,
        })
    }
}

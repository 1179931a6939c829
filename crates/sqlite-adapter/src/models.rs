//! Rows as Diesel reads and writes them, and their conversion to domain types.

use diesel::prelude::*;
use domain::{Event, EventId, Reservation, ReservationId, ReservationStatus};

use crate::error::SqliteStoreError;
use crate::schema::{events, reservations};
use crate::time::{from_optional, from_text};

#[derive(Debug, Queryable, Selectable, QueryableByName)]
#[diesel(table_name = events, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct EventRow {
    pub id: i64,
    pub name: String,
    pub capacity: i32,
    pub created_at: String,
    pub updated_at: String,
}

impl TryFrom<EventRow> for Event {
    type Error = SqliteStoreError;

    fn try_from(row: EventRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: EventId::new(row.id),
            name: row.name,
            capacity: row.capacity,
            created_at: from_text(&row.created_at)?,
            updated_at: from_text(&row.updated_at)?,
        })
    }
}

#[derive(Debug, QueryableByName)]
#[diesel(table_name = reservations, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct ReservationRow {
    pub id: String,
    pub event_id: i64,
    pub status: String,
    pub quantity: i32,
    pub customer: Option<String>,
    pub purchased_at: Option<String>,
    pub expires_at: Option<String>,
    pub payment_reference: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The hold's lines, as `store_sql::lines_column` reads them.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub lines: String,
    /// The hold's seats, as `store_sql::seats_column` reads them.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub seats: String,
}

impl TryFrom<ReservationRow> for Reservation {
    type Error = SqliteStoreError;

    fn try_from(row: ReservationRow) -> Result<Self, Self::Error> {
        let corrupt =
            |what: String| SqliteStoreError::CorruptRow(format!("reservation {}: {what}", row.id));
        let id = row
            .id
            .parse::<ReservationId>()
            .map_err(|e| corrupt(e.to_string()))?;
        let status = row
            .status
            .parse::<ReservationStatus>()
            .map_err(|e| corrupt(e.to_string()))?;
        Ok(Self {
            id,
            event_id: EventId::new(row.event_id),
            status,
            quantity: row.quantity,
            customer: row.customer,
            purchased_at: from_optional(row.purchased_at.as_deref())?,
            expires_at: from_optional(row.expires_at.as_deref())?,
            payment_reference: row.payment_reference,
            created_at: from_text(&row.created_at)?,
            updated_at: from_text(&row.updated_at)?,
            lines: store_sql::parse_lines(&row.lines)
                .map_err(|_| corrupt(format!("lines {:?}", row.lines)))?,
            seats: store_sql::parse_seats(&row.seats)
                .map_err(|_| corrupt(format!("seats {:?}", row.seats)))?,
        })
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = reservations)]
pub(crate) struct NewHoldRow<'a> {
    pub id: String,
    pub event_id: i64,
    pub status: &'static str,
    pub quantity: i32,
    pub customer: Option<&'a str>,
    pub expires_at: Option<String>,
    pub lines: Option<String>,
    pub seats: Option<String>,
    pub created_at: &'a str,
    pub updated_at: &'a str,
}

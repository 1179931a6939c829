//! The JSON bodies of requests and answers, also printed by `ticketctl`, and described in the
//! OpenAPI document. Timestamps are RFC 3339 in UTC.
//!
//! Request bodies are read by hand (see [`crate::body`]) so that every refusal gets the answer
//! the API gives it (README, "HTTP API"); the request types here describe them for the OpenAPI
//! document.

use chrono::{DateTime, Utc};
use domain::{EventPage, EventSummary, Line, QuotaSummary, Reservation, TypeSummary};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// `201` of `POST /api/events/{event}/reserve`: the seed's body, with the quantity.
#[derive(Debug, Serialize, ToSchema)]
pub struct HoldCreated {
    /// The reservation id: pass it to purchase or cancel.
    #[schema(format = "uuid", example = "019a2b3c-4d5e-7f60-8a9b-0c1d2e3f4a5b")]
    id: String,
    /// The event.
    #[schema(format = Int64, example = 1)]
    event_id: i64,
    /// Always `reserved`.
    #[schema(value_type = String, pattern = "^reserved$", example = "reserved")]
    status: &'static str,
    /// When the hold ends unless purchased.
    expires_at: Option<DateTime<Utc>>,
    /// When it was made.
    created_at: DateTime<Utc>,
    /// How many tickets it holds.
    #[schema(minimum = 1, example = 2)]
    quantity: i32,
    /// Its tickets by type, for a typed hold (absent otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    lines: Vec<LineBody>,
    /// Its seats' labels (`A-1-7`), for a hold of a seated event (absent otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    seats: Vec<String>,
}

impl From<Reservation> for HoldCreated {
    fn from(r: Reservation) -> Self {
        Self {
            id: r.id.to_string(),
            event_id: r.event_id.get(),
            status: r.status.as_str(),
            expires_at: r.expires_at,
            created_at: r.created_at,
            quantity: r.quantity,
            lines: r.lines.iter().map(LineBody::from).collect(),
            seats: r.seats.iter().map(|s| s.label.clone()).collect(),
        }
    }
}

/// Tickets of one type in a hold.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineBody {
    /// The ticket type.
    #[schema(format = Int64, minimum = 1)]
    ticket_type: i64,
    /// How many tickets of it.
    #[schema(minimum = 1)]
    quantity: i32,
}

impl From<&Line> for LineBody {
    fn from(l: &Line) -> Self {
        Self {
            ticket_type: l.ticket_type.get(),
            quantity: l.quantity,
        }
    }
}

/// Where a reservation is in its life.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    /// Holds its tickets until `expires_at`.
    Reserved,
    /// Bought; final.
    Purchased,
    /// Its hold ran out; final.
    Expired,
    /// Released by the client; final.
    Canceled,
}

impl From<domain::ReservationStatus> for ReservationStatus {
    fn from(s: domain::ReservationStatus) -> Self {
        match s {
            domain::ReservationStatus::Reserved => Self::Reserved,
            domain::ReservationStatus::Purchased => Self::Purchased,
            domain::ReservationStatus::Expired => Self::Expired,
            domain::ReservationStatus::Canceled => Self::Canceled,
        }
    }
}

/// A reservation after a purchase, a cancel, or a read.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReservationBody {
    /// The reservation id.
    #[schema(format = "uuid")]
    id: String,
    /// The event.
    #[schema(format = Int64)]
    event_id: i64,
    /// Where it is in its life; a hold past its `expires_at` reads `expired`.
    status: ReservationStatus,
    /// When the hold ends (or ended).
    expires_at: Option<DateTime<Utc>>,
    /// When it was purchased, if it was.
    purchased_at: Option<DateTime<Utc>>,
    /// What the client recorded with the purchase.
    payment_reference: Option<String>,
    /// When it was made.
    created_at: DateTime<Utc>,
    /// When it last changed.
    updated_at: DateTime<Utc>,
    /// How many tickets it holds.
    #[schema(minimum = 1)]
    quantity: i32,
    /// The shop's reference for the customer, when the reserve named one.
    customer: Option<String>,
    /// Its tickets by type, for a typed hold (absent otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    lines: Vec<LineBody>,
    /// Its seats' labels (`A-1-7`), for a hold of a seated event (absent otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    seats: Vec<String>,
}

impl From<Reservation> for ReservationBody {
    fn from(r: Reservation) -> Self {
        Self {
            id: r.id.to_string(),
            event_id: r.event_id.get(),
            status: r.status.into(),
            expires_at: r.expires_at,
            purchased_at: r.purchased_at,
            payment_reference: r.payment_reference,
            created_at: r.created_at,
            updated_at: r.updated_at,
            quantity: r.quantity,
            customer: r.customer,
            lines: r.lines.iter().map(LineBody::from).collect(),
            seats: r.seats.iter().map(|s| s.label.clone()).collect(),
        }
    }
}

/// An event with its counts in tickets: `purchased + reserved + available = capacity`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventBody {
    /// The event id.
    #[schema(format = Int64, minimum = 1, example = 1)]
    id: i64,
    /// Its name.
    #[schema(example = "Opening night")]
    name: String,
    /// Its tickets.
    #[schema(minimum = 1, example = 100)]
    capacity: i32,
    /// Tickets purchased.
    #[schema(minimum = 0)]
    purchased: i32,
    /// Tickets held by active holds (past-due holds do not count).
    #[schema(minimum = 0)]
    reserved: i32,
    /// Tickets that may still be reserved.
    #[schema(minimum = 0)]
    available: i32,
    /// When it was created.
    created_at: DateTime<Utc>,
    /// When its name or capacity last changed.
    updated_at: DateTime<Utc>,
    /// Its named quotas, when it has quotas or ticket types (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    quotas: Option<Vec<QuotaBody>>,
    /// Its ticket types, when it has quotas or ticket types (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    ticket_types: Option<Vec<TicketTypeBody>>,
}

impl From<EventSummary> for EventBody {
    fn from(s: EventSummary) -> Self {
        let (quotas, ticket_types) = match s.inventory {
            Some(inventory) => (
                Some(inventory.quotas.into_iter().map(QuotaBody::from).collect()),
                Some(
                    inventory
                        .ticket_types
                        .into_iter()
                        .map(TicketTypeBody::from)
                        .collect(),
                ),
            ),
            None => (None, None),
        };
        Self {
            id: s.event.id.get(),
            name: s.event.name,
            capacity: s.event.capacity,
            purchased: s.purchased,
            reserved: s.reserved,
            available: s.available,
            created_at: s.event.created_at,
            updated_at: s.event.updated_at,
            quotas,
            ticket_types,
        }
    }
}

/// A named quota of an event, with its counts in tickets:
/// `purchased + reserved + available = capacity`.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuotaBody {
    /// The quota id.
    #[schema(format = Int64, minimum = 1, example = 1)]
    id: i64,
    /// Its event.
    #[schema(format = Int64, minimum = 1)]
    event_id: i64,
    /// Its name.
    #[schema(example = "Saturday")]
    name: String,
    /// Its tickets: those of every type that draws from it.
    #[schema(minimum = 1, example = 30)]
    capacity: i32,
    /// Tickets purchased.
    #[schema(minimum = 0)]
    purchased: i32,
    /// Tickets held by active holds.
    #[schema(minimum = 0)]
    reserved: i32,
    /// Tickets that may still be held (the event's own limit aside).
    #[schema(minimum = 0)]
    available: i32,
}

impl From<QuotaSummary> for QuotaBody {
    fn from(q: QuotaSummary) -> Self {
        Self {
            id: q.quota.id.get(),
            event_id: q.quota.event_id.get(),
            name: q.quota.name,
            capacity: q.quota.capacity,
            purchased: q.purchased,
            reserved: q.reserved,
            available: q.available,
        }
    }
}

/// A ticket type of an event, with its counts in tickets; `available` is the least of its
/// quotas' and the event's.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketTypeBody {
    /// The ticket type id.
    #[schema(format = Int64, minimum = 1, example = 3)]
    id: i64,
    /// Its event.
    #[schema(format = Int64, minimum = 1)]
    event_id: i64,
    /// Its name.
    #[schema(example = "Weekend pass")]
    name: String,
    /// The named quotas it draws from (the event's capacity always counts too).
    quotas: Vec<i64>,
    /// Its tickets purchased.
    #[schema(minimum = 0)]
    purchased: i32,
    /// Its tickets held by active holds.
    #[schema(minimum = 0)]
    reserved: i32,
    /// Its tickets that may still be held.
    #[schema(minimum = 0)]
    available: i32,
    /// The most tickets of this type one hold may have (`null`: no limit of its own).
    #[schema(minimum = 1)]
    max_per_reservation: Option<u32>,
}

impl From<TypeSummary> for TicketTypeBody {
    fn from(t: TypeSummary) -> Self {
        Self {
            id: t.ticket_type.id.get(),
            event_id: t.ticket_type.event_id.get(),
            name: t.ticket_type.name,
            quotas: t.ticket_type.quotas.iter().map(|q| q.get()).collect(),
            purchased: t.purchased,
            reserved: t.reserved,
            available: t.available,
            max_per_reservation: t.ticket_type.max_per_reservation,
        }
    }
}

/// A page of events, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    /// The events of this page.
    events: Vec<EventBody>,
    /// Pass as `after` for the next page; `null` on the last page.
    #[schema(format = Int64, minimum = 1)]
    next: Option<i64>,
}

impl From<EventPage> for EventList {
    fn from(page: EventPage) -> Self {
        Self {
            events: page.events.into_iter().map(EventBody::from).collect(),
            next: page.next.map(domain::EventId::get),
        }
    }
}

/// `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(value_type = String, pattern = "^ok$")]
    pub status: &'static str,
    /// Webhook deliveries waiting to be sent (`GET /health/ready` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = Int64, minimum = 0)]
    pub webhook_backlog: Option<i64>,
}

/// Every `error` code an answer may carry.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 404: unknown route, event or reservation.
    NotFound,
    /// 409: fewer tickets available than asked for.
    SoldOut,
    /// 409: the customer's limit for this event would be exceeded.
    CustomerLimitReached,
    /// 409: an extend would make the hold last longer than `MAX_HOLD_SECONDS`.
    HoldLifetimeExceeded,
    /// 409: the reservation was purchased before.
    AlreadyPurchased,
    /// 409: the hold expired, was canceled, or is past due.
    InvalidOrExpiredReservation,
    /// 409: the new capacity is below the tickets purchased and held.
    CapacityBelowSold,
    /// 409: a request with this Idempotency-Key is still being served; retry after
    /// `Retry-After`.
    IdempotencyKeyInProgress,
    /// 422: this Idempotency-Key was used for a different request.
    IdempotencyKeyReused,
    /// 401: no valid admin bearer token.
    Unauthorized,
    /// 400: the body is not valid JSON.
    MalformedJson,
    /// 400: the request is malformed.
    BadRequest,
    /// 413: the body is larger than 64 KiB.
    PayloadTooLarge,
    /// 415: a body not sent as `application/json`.
    UnsupportedMediaType,
    /// 405: the route does not accept this method (see `Allow`).
    MethodNotAllowed,
    /// 429: too many requests from this client (see `Retry-After`).
    RateLimited,
    /// 503: not served; nothing was done. Retry after `Retry-After`.
    ServiceUnavailable,
    /// 503: the request may or may not have taken effect; retry with the same
    /// Idempotency-Key.
    OutcomeUnknown,
    /// 500: a bug.
    InternalError,
}

/// The envelope of every error answer but validation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for programs.
    pub error: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
    /// With `sold_out` of a reserve naming ticket types: each short type and its tickets
    /// left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<Vec<Unavailable>>,
}

/// A ticket type short of tickets.
#[derive(Debug, Serialize, ToSchema)]
pub struct Unavailable {
    /// The type.
    #[schema(format = Int64, minimum = 1)]
    pub ticket_type: i64,
    /// Its tickets left.
    #[schema(minimum = 0)]
    pub available: i64,
}

/// A validation answer, in the shape existing (Laravel) clients parse.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationErrorBody {
    /// Always "The given data was invalid."
    pub message: String,
    /// Field → what is wrong with it.
    pub errors: std::collections::BTreeMap<String, Vec<String>>,
}

/// Body of `POST /api/events/{event}/reserve`, optional (an empty body or `{}` reserves one
/// ticket). Unknown fields are ignored. On an event with ticket types, name them: a
/// `ticket_type` with its `quantity`, or `lines`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ReserveRequest {
    /// How many tickets, all or nothing (default 1; the maximum is the server's
    /// `MAX_TICKETS_PER_RESERVATION`).
    #[schema(minimum = 1, maximum = 10, example = 2)]
    quantity: Option<u32>,
    /// The ticket type of the tickets (required on an event with ticket types).
    #[schema(format = Int64, minimum = 1, example = 3)]
    ticket_type: Option<i64>,
    /// Several types at once, instead of `ticket_type` and `quantity`: 1 to 10 lines of
    /// distinct types, at most `MAX_TICKETS_PER_RESERVATION` tickets in all.
    #[schema(min_items = 1, max_items = 10)]
    lines: Option<Vec<LineRequestBody>>,
    /// On an event with a seating plan: these seats, by label (distinct), instead of a
    /// quantity.
    #[schema(min_items = 1, max_items = 10, example = json!(["A-1-7", "A-1-8"]))]
    seats: Option<Vec<String>>,
    /// On an event with a seating plan: the best free seats, instead of a quantity.
    best_available: Option<BestAvailableRequest>,
    /// The shop's own account id for the customer, for the optional per-customer limit
    /// (`MAX_TICKETS_PER_CUSTOMER`). It is whatever the shop sends: not an authenticated
    /// identity.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*$",
        example = "acct-8841"
    )]
    customer: Option<String>,
}

/// Tickets of one type, asked for.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct LineRequestBody {
    /// The ticket type.
    #[schema(format = Int64, minimum = 1)]
    ticket_type: i64,
    /// How many (default 1).
    #[schema(minimum = 1, maximum = 10)]
    quantity: Option<u32>,
}

/// Body of `POST /api/reservations/{reservation}/extend`, optional.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ExtendRequest {
    /// How long from now the hold should last at least, from 1 to the hold TTL
    /// (`RESERVATION_TTL_SECONDS`, the default).
    #[schema(minimum = 1, maximum = 600, example = 300)]
    seconds: Option<u32>,
}

/// Body of `POST /api/reservations/{reservation}/release`: what to give back, fewer than all
/// of the hold's tickets.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ReleaseRequest {
    /// Tickets of an untyped hold.
    #[schema(minimum = 1, maximum = 10, example = 1)]
    quantity: Option<u32>,
    /// Tickets of a typed hold, by type.
    #[schema(min_items = 1, max_items = 10)]
    lines: Option<Vec<LineRequestBody>>,
    /// Seats of a seated hold, by label.
    #[schema(min_items = 1, max_items = 10)]
    seats: Option<Vec<String>>,
}

/// A row of a seating plan as sent.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct SeatRowRequest {
    /// Its name within its section (1 to 40 characters, no `-`).
    #[schema(example = "1")]
    name: String,
    /// How many seats (labelled `1` to n), or their labels in order (adjacent seats adjacent).
    #[schema(value_type = Object, example = 20)]
    seats: Value,
    /// Lower is better (default: the order given).
    rank: Option<i32>,
}

/// A section of a seating plan as sent.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct SeatSectionRequest {
    /// Its name (1 to 40 characters, no `-`).
    #[schema(example = "A")]
    name: String,
    /// The ticket type its seats are sold as (required on an event with ticket types).
    #[schema(format = Int64, minimum = 1)]
    ticket_type: Option<i64>,
    /// Its rows.
    #[schema(min_items = 1)]
    rows: Vec<SeatRowRequest>,
}

/// Body of `PUT /api/events/{event}/seats`: 1 to 100,000 seats.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct SeatPlanRequest {
    /// The sections, in order.
    #[schema(min_items = 1)]
    sections: Vec<SeatSectionRequest>,
}

/// A row of a seat map.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeatMapRow {
    /// Its name.
    name: String,
    /// Its seats' own labels, in order; a seat's full label is `SECTION-ROW-SEAT`.
    labels: Vec<String>,
    /// One letter per seat, in order: `F` free, `H` held, `S` sold.
    #[schema(pattern = "^[FHS]*$", example = "FFHS")]
    status: String,
}

/// A section of a seat map.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeatMapSection {
    /// Its name.
    name: String,
    /// Its rows.
    rows: Vec<SeatMapRow>,
    /// The ticket type its seats are sold as, if any.
    #[schema(format = Int64)]
    ticket_type: Option<i64>,
}

/// `GET /api/events/{event}/seats`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeatMapBody {
    /// The map's version, also its `ETag`: it changes exactly when a seat's status does.
    #[schema(format = Int64, minimum = 0)]
    version: i64,
    /// The sections, in order.
    sections: Vec<SeatMapSection>,
}

impl From<&domain::SeatMapView> for SeatMapBody {
    fn from(view: &domain::SeatMapView) -> Self {
        let plan = view.map.plan();
        let statuses = view.map.statuses(view.now);
        let mut sections: Vec<SeatMapSection> = plan
            .sections()
            .iter()
            .map(|s| SeatMapSection {
                name: s.name.clone(),
                rows: Vec::new(),
                ticket_type: s.ticket_type.map(domain::TicketTypeId::get),
            })
            .collect();
        for row in plan.rows() {
            let status = row
                .seats()
                .filter_map(|seat| {
                    let index = usize::try_from(seat.get() - 1).ok()?;
                    statuses.get(index).map(|s| s.letter())
                })
                .collect();
            if let Some(section) = sections.get_mut(row.section) {
                section.rows.push(SeatMapRow {
                    name: row.name.clone(),
                    labels: row.labels.clone(),
                    status,
                });
            }
        }
        Self {
            version: view.version,
            sections,
        }
    }
}

/// `best_available` of a reserve.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct BestAvailableRequest {
    /// How many seats.
    #[schema(minimum = 1, maximum = 10, example = 2)]
    quantity: u32,
    /// Only seats sold as this type.
    #[schema(format = Int64, minimum = 1)]
    ticket_type: Option<i64>,
    /// Adjacent in one row (default `true`).
    together: Option<bool>,
}

/// Body of `POST /api/events/{event}/ticket-types`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct NewTicketTypeRequest {
    /// 1 to 200 characters, as an event's name.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$",
        example = "Weekend pass"
    )]
    name: String,
    /// The event's quotas it draws from (distinct; none: the event's capacity only).
    #[schema(max_items = 16)]
    quotas: Option<Vec<i64>>,
    /// The most tickets of this type one hold may have.
    #[schema(minimum = 1, maximum = 10_000)]
    max_per_reservation: Option<u32>,
}

/// Body of `POST /api/reservations/{reservation}/purchase`, optional.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct PurchaseRequest {
    /// What the client records with the purchase (an empty string records none); no control
    /// characters.
    #[schema(
        max_length = 64,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*$",
        example = "pay_8f2k"
    )]
    payment_reference: Option<String>,
}

/// Body of `POST /api/events`, and of `POST /api/events/{event}/quotas`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct NewEventRequest {
    /// 1 to 200 characters, not all white space, no control characters; surrounding white
    /// space is trimmed.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$",
        example = "Opening night"
    )]
    name: String,
    /// Tickets, at least 1.
    #[schema(minimum = 1, maximum = 2_147_483_647, example = 100)]
    capacity: i64,
}

/// Body of `PATCH /api/events/{event}` and `PATCH /api/events/{event}/quotas/{quota}`: each
/// field present is changed.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct EventPatchRequest {
    /// A new name (as for `POST /api/events`).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$",
        example = "Matinee"
    )]
    name: Option<String>,
    /// A new capacity, never below the tickets purchased and held by active holds.
    #[schema(minimum = 1, maximum = 2_147_483_647, example = 120)]
    capacity: Option<i64>,
}

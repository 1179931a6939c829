//! Every write of a transaction in one statement: one round trip while the events are locked,
//! one text whatever the batch holds. A status or hold change finds its row only while it is
//! `reserved`; the counts returned let the caller check that every write found its row.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{
    Array, BigInt, Int2, Int4, Int8, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use domain::store::{Changes, CounterDelta, Stored, Timestamp};
use domain::{DomainError, EventId, ReservationStatus};
use store_sql::still_reserved;
use uuid::Uuid;

use crate::error::PgStoreError;
use crate::statement::Prepared;

#[derive(QueryableByName)]
struct AppliedRow {
    #[diesel(sql_type = Int8)]
    inserted: i64,
    #[diesel(sql_type = Int8)]
    changed: i64,
    #[diesel(sql_type = Int8)]
    counted: i64,
    #[diesel(sql_type = Int8)]
    quotas: i64,
    #[diesel(sql_type = Int8)]
    types: i64,
    #[diesel(sql_type = Int8)]
    answered: i64,
    #[diesel(sql_type = Int8)]
    seated: i64,
    #[diesel(sql_type = Int8)]
    unseated: i64,
    #[diesel(sql_type = Int8)]
    reseated: i64,
}

/// Status and hold changes are one `UPDATE` per row (a row may not be updated twice in one
/// statement): a hold that only changes keeps `status = 'reserved'`, and a NULL expiry,
/// quantity or lines keeps the row's. A typed hold's lines are its row's `lines` text.
static APPLY_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "
WITH inserted AS (
    INSERT INTO reservations (id, event_id, status, quantity, customer, expires_at, lines, seats,
                              created_at, updated_at)
    SELECT h.id, h.event_id, 'reserved', h.quantity, h.customer, h.expires_at, h.lines, h.seats,
           $1, $1
      FROM unnest($2::uuid[], $3::bigint[], $4::int4[], $5::text[], $6::timestamptz[], $7::text[],
                  $8::text[])
           AS h (id, event_id, quantity, customer, expires_at, lines, seats)
    RETURNING 1
), changed AS (
    UPDATE reservations r
       SET status = c.status, updated_at = $1,
           purchased_at = CASE WHEN c.status = 'purchased' THEN $1 END,
           payment_reference = CASE WHEN c.status = 'purchased' THEN c.reference END,
           expires_at = COALESCE(c.expires_at, r.expires_at),
           quantity = COALESCE(c.quantity, r.quantity),
           lines = COALESCE(c.lines, r.lines),
           seats = COALESCE(c.seats, r.seats)
      FROM unnest($9::uuid[], $10::bigint[], $11::text[], $12::text[], $13::timestamptz[],
                  $14::int4[], $15::text[], $16::text[])
           AS c (id, event_id, status, reference, expires_at, quantity, lines, seats)
     WHERE r.id = c.id AND r.event_id = c.event_id AND {guard}
    RETURNING 1
), counted AS (
    UPDATE events e
       SET reserved_count = e.reserved_count + d.held,
           purchased_count = e.purchased_count + d.purchased,
           seat_version = e.seat_version + d.seats
      FROM unnest($17::bigint[], $18::int4[], $19::int4[], $20::int8[])
           AS d (id, held, purchased, seats)
     WHERE e.id = d.id
    RETURNING 1
), {quotas}, {types}, answered AS (
    UPDATE idempotency_keys k
       SET status = a.status, body = a.body
      FROM unnest($29::text[], $30::int2[], $31::text[]) AS a (key, status, body)
     WHERE k.key = a.key
    RETURNING 1
), seated AS (
    INSERT INTO seat_holds (event_id, seat_id, reservation_id)
    SELECT * FROM unnest($32::bigint[], $33::int4[], $34::uuid[])
    RETURNING 1
), unseated AS (
    DELETE FROM seat_holds h
     USING unnest($35::bigint[], $36::int4[]) AS d (event_id, seat_id)
     WHERE h.event_id = d.event_id AND h.seat_id = d.seat_id
    RETURNING 1
), reseated AS (
    UPDATE seat_holds h
       SET reservation_id = m.to_id
      FROM unnest($37::bigint[], $38::int4[], $39::uuid[], $40::uuid[])
           AS m (event_id, seat_id, from_id, to_id)
     WHERE h.event_id = m.event_id AND h.seat_id = m.seat_id AND h.reservation_id = m.from_id
    RETURNING 1
)
SELECT (SELECT count(*) FROM inserted) AS inserted,
       (SELECT count(*) FROM changed) AS changed,
       (SELECT count(*) FROM counted) AS counted,
       (SELECT count(*) FROM quotas) AS quotas,
       (SELECT count(*) FROM ticket_types) AS types,
       (SELECT count(*) FROM answered) AS answered,
       (SELECT count(*) FROM seated) AS seated,
       (SELECT count(*) FROM unseated) AS unseated,
       (SELECT count(*) FROM reseated) AS reseated",
        guard = still_reserved("r"),
        quotas = pool_counters("quotas", 21),
        types = pool_counters("ticket_types", 25),
    )
});

/// The CTE `table` (a pool of an event's tickets: `quotas` or `ticket_types`) that adds to
/// its rows' counters the deltas of the arrays at placeholders `first` to `first + 3`: events,
/// ids, held, purchased.
fn pool_counters(table: &str, first: u8) -> String {
    let [events, ids, held, purchased] = [first, first + 1, first + 2, first + 3];
    format!(
        "{table} AS (
    UPDATE {table} p
       SET reserved_count = p.reserved_count + d.held,
           purchased_count = p.purchased_count + d.purchased
      FROM unnest(${events}::bigint[], ${ids}::bigint[], ${held}::int4[], ${purchased}::int4[])
           AS d (event_id, id, held, purchased)
     WHERE p.event_id = d.event_id AND p.id = d.id
    RETURNING 1
)"
    )
}

fn delta(value: i64) -> Result<i32, DomainError> {
    i32::try_from(value).map_err(|_| {
        DomainError::from(PgStoreError::CorruptRow(format!(
            "counter change {value} out of range"
        )))
    })
}

/// Counter changes as three arrays: ids, held, purchased (and, for quotas and types, their
/// events).
#[derive(Default)]
struct CounterColumns {
    events: Vec<i64>,
    ids: Vec<i64>,
    held: Vec<i32>,
    purchased: Vec<i32>,
}

impl CounterColumns {
    fn push(&mut self, event: i64, id: i64, d: CounterDelta) -> Result<(), DomainError> {
        self.events.push(event);
        self.ids.push(id);
        self.held.push(delta(d.held)?);
        self.purchased.push(delta(d.purchased)?);
        Ok(())
    }
}

/// A reservation row's one update: a status change, a hold change, or both.
#[derive(Default)]
struct RowChange<'a> {
    event: i64,
    status: &'a str,
    reference: Option<&'a str>,
    expires_at: Option<DateTime<Utc>>,
    quantity: Option<i32>,
    lines: Option<String>,
    seats: Option<String>,
}

/// Seats of the batch's holds as columns: events, seats, holds (and, for a move, the hold the
/// seat leaves).
#[derive(Default)]
struct SeatColumns {
    events: Vec<i64>,
    seats: Vec<i32>,
    to: Vec<Uuid>,
    from: Vec<Uuid>,
}

impl SeatColumns {
    fn push(&mut self, event: i64, seat: i64, to: Option<Uuid>, from: Option<Uuid>) -> Stored<()> {
        self.events.push(event);
        self.seats.push(i32::try_from(seat).map_err(|_| {
            DomainError::from(PgStoreError::CorruptRow(format!(
                "seat {seat} out of range"
            )))
        })?);
        self.to.extend(to);
        self.from.extend(from);
        Ok(())
    }
}

// One statement's 40 values, bound in the order of its placeholders, and the check of what it
// wrote: splitting it would only scatter that order.
#[allow(clippy::too_many_lines)]
pub(crate) fn apply(conn: &mut PgConnection, changes: &Changes, now: Timestamp) -> Stored<()> {
    let holds = &changes.holds;
    let mut rows: BTreeMap<Uuid, RowChange<'_>> = BTreeMap::new();
    for change in &changes.hold_changes {
        let row = rows.entry(*change.id.as_uuid()).or_default();
        row.event = change.event.get();
        row.status = ReservationStatus::Reserved.as_str();
        row.expires_at = Some(change.expires_at);
        row.quantity = Some(change.quantity);
        row.lines = store_sql::lines_text(&change.lines);
        row.seats = store_sql::seats_text(&change.seats);
    }
    for change in &changes.statuses {
        let row = rows.entry(*change.id().as_uuid()).or_default();
        row.event = change.event.get();
        row.status = change.status().as_str();
        row.reference = change.payment_reference();
    }
    let (row_ids, row_changes): (Vec<Uuid>, Vec<RowChange<'_>>) = rows.into_iter().unzip();

    // An event's counters and seat version in one update (a row is updated once).
    let mut events: BTreeMap<EventId, (CounterDelta, i64)> = BTreeMap::new();
    for (event, d) in &changes.counters {
        events.entry(*event).or_default().0 = *d;
    }
    for (event, by) in &changes.seat_versions {
        events.entry(*event).or_default().1 = *by;
    }
    let mut counters = CounterColumns::default();
    let mut seat_bumps = Vec::with_capacity(events.len());
    for (event, (d, by)) in &events {
        counters.push(event.get(), event.get(), *d)?;
        seat_bumps.push(*by);
    }
    let mut taken = SeatColumns::default();
    for t in &changes.seats_taken {
        taken.push(
            t.event.get(),
            t.seat.get(),
            Some(*t.reservation.as_uuid()),
            None,
        )?;
    }
    let mut freed = SeatColumns::default();
    for (event, seat) in &changes.seats_freed {
        freed.push(event.get(), seat.get(), None, None)?;
    }
    let mut moved = SeatColumns::default();
    for (t, from) in &changes.seats_moved {
        moved.push(
            t.event.get(),
            t.seat.get(),
            Some(*t.reservation.as_uuid()),
            Some(*from.as_uuid()),
        )?;
    }
    let mut quotas = CounterColumns::default();
    for (quota, (event, d)) in &changes.quota_counters {
        quotas.push(event.get(), quota.get(), *d)?;
    }
    let mut types = CounterColumns::default();
    for (ticket_type, (event, d)) in &changes.type_counters {
        types.push(event.get(), ticket_type.get(), *d)?;
    }

    let applied: AppliedRow = Prepared::new(&APPLY_SQL)
        .bind::<Timestamptz, _>(now)
        .bind::<Array<SqlUuid>, _>(holds.iter().map(|h| *h.id.as_uuid()).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(holds.iter().map(|h| h.event_id.get()).collect::<Vec<_>>())
        .bind::<Array<Int4>, _>(holds.iter().map(|h| h.quantity).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(
            holds
                .iter()
                .map(|h| h.customer.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Timestamptz>, _>(
            holds
                .iter()
                .map(|h| h.expires_at.unwrap_or(now))
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<Text>>, _>(
            holds
                .iter()
                .map(|h| store_sql::lines_text(&h.lines))
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<Text>>, _>(
            holds
                .iter()
                .map(|h| store_sql::seats_text(&h.seats))
                .collect::<Vec<_>>(),
        )
        .bind::<Array<SqlUuid>, _>(row_ids)
        .bind::<Array<BigInt>, _>(row_changes.iter().map(|r| r.event).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(row_changes.iter().map(|r| r.status).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(
            row_changes.iter().map(|r| r.reference).collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<Timestamptz>>, _>(
            row_changes.iter().map(|r| r.expires_at).collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<Int4>>, _>(
            row_changes.iter().map(|r| r.quantity).collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<Text>>, _>(
            row_changes
                .iter()
                .map(|r| r.lines.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<Text>>, _>(
            row_changes
                .iter()
                .map(|r| r.seats.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<BigInt>, _>(counters.ids)
        .bind::<Array<Int4>, _>(counters.held)
        .bind::<Array<Int4>, _>(counters.purchased)
        .bind::<Array<Int8>, _>(seat_bumps)
        .bind::<Array<BigInt>, _>(quotas.events)
        .bind::<Array<BigInt>, _>(quotas.ids)
        .bind::<Array<Int4>, _>(quotas.held)
        .bind::<Array<Int4>, _>(quotas.purchased)
        .bind::<Array<BigInt>, _>(types.events)
        .bind::<Array<BigInt>, _>(types.ids)
        .bind::<Array<Int4>, _>(types.held)
        .bind::<Array<Int4>, _>(types.purchased)
        .bind::<Array<Text>, _>(
            changes
                .answers
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Int2>, _>(
            changes
                .answers
                .iter()
                .map(|(_, a)| i16::try_from(a.status).unwrap_or(500))
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Text>, _>(
            changes
                .answers
                .iter()
                .map(|(_, a)| a.body.as_str())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<BigInt>, _>(taken.events)
        .bind::<Array<Int4>, _>(taken.seats)
        .bind::<Array<SqlUuid>, _>(taken.to)
        .bind::<Array<BigInt>, _>(freed.events)
        .bind::<Array<Int4>, _>(freed.seats)
        .bind::<Array<BigInt>, _>(moved.events)
        .bind::<Array<Int4>, _>(moved.seats)
        .bind::<Array<SqlUuid>, _>(moved.from)
        .bind::<Array<SqlUuid>, _>(moved.to)
        .get_result(conn)
        .map_err(PgStoreError::from)?;
    let expected = [
        holds.len(),
        row_changes.len(),
        events.len(),
        changes.quota_counters.len(),
        changes.type_counters.len(),
        changes.answers.len(),
        changes.seats_taken.len(),
        changes.seats_freed.len(),
        changes.seats_moved.len(),
    ];
    let got = [
        applied.inserted,
        applied.changed,
        applied.counted,
        applied.quotas,
        applied.types,
        applied.answered,
        applied.seated,
        applied.unseated,
        applied.reseated,
    ];
    if expected
        .iter()
        .zip(got)
        .any(|(e, g)| i64::try_from(*e).ok() != Some(g))
    {
        // Only a writer outside the lock protocol can get here: change nothing.
        return Err(PgStoreError::CorruptRow(format!(
            "writes found fewer rows than decided (holds, rows, events, quotas, types, keys, \
             seats taken, freed, moved): expected {expected:?}, wrote {got:?}"
        ))
        .into());
    }
    Ok(())
}

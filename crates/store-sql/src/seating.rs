//! The seating plans and seat holders of events, alike on both stores: a plan is its rows
//! (`seat_rows`, each with its seats' labels as JSON), a seat's holder is a row of
//! `seat_holds` (at most one per seat: its primary key), and a hold's seats are the JSON
//! `[[seat, "label"], ...]` of its own row.

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel::QueryableByName;
use domain::store::{Seating, Stored, Timestamp};
use domain::{
    EventId, HeldSeat, Holder, ReservationId, SeatId, SeatPlan, SeatRow, Section, StoreError,
    TicketTypeId,
};

use crate::edit::IdRow;
use crate::run::{Bind, Runner};
use crate::Dialect;

fn corrupt(what: &str) -> domain::DomainError {
    StoreError::internal(format!("corrupt row: {what}")).into()
}

/// The text a hold's `seats` column stores: `None` (NULL) for a hold without seats.
pub fn seats_text(seats: &[HeldSeat]) -> Option<String> {
    if seats.is_empty() {
        return None;
    }
    let pairs: Vec<(i64, &str)> = seats
        .iter()
        .map(|s| (s.id.get(), s.label.as_str()))
        .collect();
    serde_json::to_string(&pairs).ok()
}

/// A hold's seats from their text (`""` for none).
///
/// # Errors
/// [`domain::DomainError::Store`] for text no statement of this crate writes.
pub fn parse_seats(text: &str) -> Stored<Vec<HeldSeat>> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let pairs: Vec<(i64, String)> =
        serde_json::from_str(text).map_err(|_| corrupt(&format!("seats {text:?}")))?;
    let mut seats: Vec<HeldSeat> = pairs
        .into_iter()
        .map(|(id, label)| HeldSeat {
            id: SeatId::new(id),
            label,
        })
        .collect();
    seats.sort_unstable();
    Ok(seats)
}

/// The text of the seats of the hold `r`, for a column (`''` for none).
pub fn seats_column(r: &str) -> String {
    format!("COALESCE({r}.seats, '')")
}

/// An instant as fixed-width UTC text (`2026-12-04T21:03:19.198223Z`), whatever the column's
/// type.
fn time_text(dialect: Dialect, expr: &str) -> String {
    match dialect {
        Dialect::Postgres => {
            format!("to_char({expr} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
        }
        Dialect::Sqlite => expr.to_owned(),
    }
}

/// The seated events among the list (placeholder) 1, with their seat versions.
pub fn seat_versions_statement(dialect: Dialect) -> String {
    format!(
        "SELECT e.id AS a, e.seat_version AS b FROM events e \
          WHERE {} AND e.seat_count > 0 ORDER BY e.id",
        dialect.in_list("e.id", 1)
    )
}

/// An event's (placeholder 1) plan rows and its seats' holders, with its seat version, in
/// one statement (one snapshot).
pub fn seating_statement(dialect: Dialect) -> String {
    let event = dialect.param(1);
    format!(
        "SELECT 'row' AS kind, {} AS a, {} AS b, r.rank AS rank,
                r.section_index AS section, r.section_name AS section_name,
                r.ticket_type_id AS ticket_type, r.name AS name, r.labels AS labels,
                e.seat_version AS version, '' AS holder, '' AS status, '' AS until
           FROM events e JOIN seat_rows r ON r.event_id = e.id
          WHERE e.id = {event} AND e.seat_count > 0
         UNION ALL
         SELECT 'seat', {}, 0, 0, 0, '', CAST(NULL AS BIGINT), '', '', e.seat_version,
                {}, x.status, COALESCE({}, '')
           FROM events e
           JOIN seat_holds h ON h.event_id = e.id
           JOIN reservations x ON x.event_id = h.event_id AND x.id = h.reservation_id
          WHERE e.id = {event} AND e.seat_count > 0",
        dialect.int8("r.id"),
        dialect.int8("r.first_seat"),
        dialect.int8("h.seat_id"),
        match dialect {
            Dialect::Postgres => "h.reservation_id::text",
            Dialect::Sqlite => "h.reservation_id",
        },
        time_text(dialect, "x.expires_at"),
    )
}

/// A row of [`seating_statement`]: a plan row (`kind` `row`) or a seat's holder (`seat`).
#[derive(Debug, QueryableByName)]
pub struct SeatingRow {
    /// `row` or `seat`.
    #[diesel(sql_type = Text)]
    pub kind: String,
    /// The row's place in the plan, or the seat.
    #[diesel(sql_type = BigInt)]
    pub a: i64,
    /// The row's first seat.
    #[diesel(sql_type = BigInt)]
    pub b: i64,
    /// The row's rank.
    #[diesel(sql_type = Integer)]
    pub rank: i32,
    /// The row's section, by place.
    #[diesel(sql_type = Integer)]
    pub section: i32,
    /// The section's name.
    #[diesel(sql_type = Text)]
    pub section_name: String,
    /// The section's ticket type.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub ticket_type: Option<i64>,
    /// The row's name.
    #[diesel(sql_type = Text)]
    pub name: String,
    /// The row's seats' labels, as JSON.
    #[diesel(sql_type = Text)]
    pub labels: String,
    /// The event's seat version.
    #[diesel(sql_type = BigInt)]
    pub version: i64,
    /// The seat's holder.
    #[diesel(sql_type = Text)]
    pub holder: String,
    /// The holder's status.
    #[diesel(sql_type = Text)]
    pub status: String,
    /// When the holder's hold ends.
    #[diesel(sql_type = Text)]
    pub until: String,
}

/// A pair of integers.
#[derive(Debug, QueryableByName)]
pub struct PairRow {
    /// The first.
    #[diesel(sql_type = BigInt)]
    pub a: i64,
    /// The second.
    #[diesel(sql_type = BigInt)]
    pub b: i64,
}

fn into_seating(rows: Vec<SeatingRow>) -> Stored<Option<Seating>> {
    let Some(version) = rows.first().map(|r| r.version) else {
        return Ok(None);
    };
    let mut plan_rows: Vec<(i64, SeatRow, String, Option<i64>)> = Vec::new();
    let mut holders = Vec::new();
    for row in rows {
        if row.kind == "row" {
            let labels: Vec<String> = serde_json::from_str(&row.labels)
                .map_err(|_| corrupt(&format!("labels {:?}", row.labels)))?;
            plan_rows.push((
                row.a,
                SeatRow {
                    section: usize::try_from(row.section).map_err(|_| corrupt("section"))?,
                    name: row.name,
                    rank: row.rank,
                    first: SeatId::new(row.b),
                    labels,
                },
                row.section_name,
                row.ticket_type,
            ));
            continue;
        }
        let reservation: ReservationId = row
            .holder
            .parse()
            .map_err(|_| corrupt(&format!("holder {:?}", row.holder)))?;
        let holder = match row.status.as_str() {
            "purchased" => Holder::Sold { reservation },
            "reserved" => Holder::Held {
                reservation,
                until: DateTime::parse_from_rfc3339(&row.until)
                    .map_err(|_| corrupt(&format!("instant {:?}", row.until)))?
                    .with_timezone(&Utc),
            },
            other => return Err(corrupt(&format!("seat held by a {other} reservation"))),
        };
        holders.push((SeatId::new(row.a), holder));
    }
    plan_rows.sort_by_key(|(place, ..)| *place);
    let mut sections: Vec<Section> = Vec::new();
    for (_, row, section_name, ticket_type) in &plan_rows {
        if sections.len() <= row.section {
            sections.resize(
                row.section + 1,
                Section {
                    name: String::new(),
                    ticket_type: None,
                },
            );
        }
        sections[row.section] = Section {
            name: section_name.clone(),
            ticket_type: ticket_type.map(TicketTypeId::new),
        };
    }
    let rows = plan_rows.into_iter().map(|(_, row, ..)| row).collect();
    Ok(Some(Seating {
        version,
        plan: SeatPlan::new(sections, rows),
        holders,
    }))
}

/// The statements that replace a plan, in one dialect.
#[derive(Debug)]
pub struct SeatingStatements {
    seat_versions: String,
    seating: String,
    clear: String,
    insert: String,
    set_event: String,
}

impl SeatingStatements {
    /// Builds them.
    pub fn new(dialect: Dialect) -> Self {
        let p = |n| dialect.param(n);
        let field = |name: &str| format!("(j.value ->> '{name}')");
        let rows = match dialect {
            Dialect::Postgres => format!("jsonb_array_elements({}::jsonb) AS j", p(2)),
            Dialect::Sqlite => format!("json_each({}) AS j", p(2)),
        };
        Self {
            seat_versions: seat_versions_statement(dialect),
            seating: seating_statement(dialect),
            clear: format!(
                "DELETE FROM seat_rows WHERE event_id = {} RETURNING {} AS id",
                p(1),
                dialect.int8("id")
            ),
            insert: format!(
                "INSERT INTO seat_rows (event_id, id, section_index, section_name, ticket_type_id,
                                        name, rank, first_seat, labels)
                 SELECT {}, {}, {}, {}, {}, {}, {}, {}, {} FROM {rows}
                 RETURNING {} AS id",
                p(1),
                dialect.int4(&field("id")),
                dialect.int4(&field("section")),
                field("section_name"),
                dialect.int8(&field("ticket_type")),
                field("name"),
                dialect.int4(&field("rank")),
                dialect.int4(&field("first")),
                field("labels"),
                dialect.int8("id"),
            ),
            set_event: format!(
                "UPDATE events SET capacity = {}, seat_count = {}, seat_version = seat_version + 1,
                                   updated_at = {}
                  WHERE id = {} RETURNING id",
                p(2),
                p(2),
                p(3),
                p(1)
            ),
        }
    }
}

fn statements<R: Runner>() -> &'static SeatingStatements {
    static POSTGRES: std::sync::LazyLock<SeatingStatements> =
        std::sync::LazyLock::new(|| SeatingStatements::new(Dialect::Postgres));
    static SQLITE: std::sync::LazyLock<SeatingStatements> =
        std::sync::LazyLock::new(|| SeatingStatements::new(Dialect::Sqlite));
    match R::DIALECT {
        Dialect::Postgres => &POSTGRES,
        Dialect::Sqlite => &SQLITE,
    }
}

/// [`domain::store::Reads::seat_versions`].
///
/// # Errors
/// [`domain::DomainError::Store`].
pub fn seat_versions<R: Runner>(run: &mut R, ids: &[EventId]) -> Stored<Vec<(EventId, i64)>>
where
    PairRow: QueryableByName<R::Backend>,
{
    let rows: Vec<PairRow> = run.load(&statements::<R>().seat_versions, vec![Bind::events(ids)])?;
    Ok(rows.into_iter().map(|r| (EventId::new(r.a), r.b)).collect())
}

/// [`domain::store::Reads::seating`].
///
/// # Errors
/// [`domain::DomainError::Store`].
pub fn seating<R: Runner>(run: &mut R, event: EventId) -> Stored<Option<Seating>>
where
    SeatingRow: QueryableByName<R::Backend>,
{
    let rows: Vec<SeatingRow> =
        run.load(&statements::<R>().seating, vec![Bind::Int8(event.get())])?;
    into_seating(rows)
}

/// [`domain::store::UnitOfWork::save_seating`].
///
/// # Errors
/// [`domain::DomainError::Store`].
pub fn save_seating<R: Runner>(
    run: &mut R,
    event: EventId,
    plan: &SeatPlan,
    now: Timestamp,
) -> Stored<()>
where
    IdRow: QueryableByName<R::Backend>,
{
    let sql = statements::<R>();
    let _: Vec<IdRow> = run.load(&sql.clear, vec![Bind::Int8(event.get())])?;
    let rows: Vec<serde_json::Value> = plan
        .rows()
        .iter()
        .enumerate()
        .map(|(place, row)| {
            let section = &plan.sections()[row.section];
            serde_json::json!({
                "id": place,
                "section": row.section,
                "section_name": section.name,
                "ticket_type": section.ticket_type.map(TicketTypeId::get),
                "name": row.name,
                "rank": row.rank,
                "first": row.first.get(),
                "labels": serde_json::to_string(&row.labels).unwrap_or_default(),
            })
        })
        .collect();
    let text = serde_json::Value::Array(rows).to_string();
    let inserted: Vec<IdRow> = run.load(
        &sql.insert,
        vec![Bind::Int8(event.get()), Bind::Text(text.into())],
    )?;
    if inserted.len() != plan.rows().len() {
        return Err(StoreError::internal("a seating plan was not stored whole").into());
    }
    let seats = i32::try_from(plan.seat_count()).map_err(|_| corrupt("seat count"))?;
    let set: Vec<IdRow> = run.load(
        &sql.set_event,
        vec![Bind::Int8(event.get()), Bind::Int4(seats), Bind::At(now)],
    )?;
    if set.len() == 1 {
        Ok(())
    } else {
        Err(StoreError::internal(format!("event {event} to seat is gone")).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seats_round_trip_through_their_text() {
        let seats = vec![HeldSeat {
            id: SeatId::new(7),
            label: "A-1-7".into(),
        }];
        let text = seats_text(&seats).unwrap_or_default();
        assert_eq!(text, r#"[[7,"A-1-7"]]"#);
        assert_eq!(parse_seats(&text).ok(), Some(seats));
        assert_eq!(parse_seats("").ok(), Some(vec![]));
        assert!(parse_seats("[7]").is_err());
        assert_eq!(seats_text(&[]), None);
    }

    #[test]
    fn instants_read_as_the_same_text_on_both_stores() {
        assert!(time_text(Dialect::Postgres, "x.t").contains("to_char(x.t AT TIME ZONE 'UTC'"));
        assert_eq!(time_text(Dialect::Sqlite, "x.t"), "x.t");
    }
}

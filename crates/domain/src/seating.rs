//! Assigned seating: an event's plan of sections, rows and seats; which hold or sale has each
//! seat ([`SeatMap`]); and the choice of the best free seats ([`SeatMap::best_available`]).
//!
//! A seat is numbered by its place in the plan ([`SeatId`]: 1 for the first seat of the first
//! row of the first section) and labelled `SECTION-ROW-SEAT` (`A-1-7`). The seats of a row are
//! adjacent in the order given; `rank` orders the rows, lower first (by default, the order
//! given). The database guarantees that a seat belongs to at most one hold or sale (a unique
//! key on the seat); the batch decision never asks it to break that.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use crate::error::{DomainError, StoreError};
use crate::ids::{EventId, ReservationId, SeatId, TicketTypeId};
use crate::store::Timestamp;

/// The most seats a plan may have.
pub const MAX_SEATS: usize = 100_000;

/// The longest name of a section or a row, or label of a seat, in characters.
pub const MAX_PART: usize = 40;

/// A row of a plan as an operator sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRow {
    /// Its name within its section.
    pub name: String,
    /// Its seats' labels, in order: adjacent seats are adjacent here.
    pub seats: Vec<String>,
    /// Lower is better; `None`: its place in the plan.
    pub rank: Option<i32>,
}

/// A section of a plan as an operator sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSection {
    /// Its name.
    pub name: String,
    /// The ticket type its seats are sold as, if any.
    pub ticket_type: Option<TicketTypeId>,
    /// Its rows.
    pub rows: Vec<NewRow>,
}

/// A seating plan as an operator sends it: checked by [`NewPlan::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPlan {
    /// Its sections, in order.
    pub sections: Vec<NewSection>,
}

/// A section of a stored plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Its name.
    pub name: String,
    /// The ticket type its seats are sold as, if any.
    pub ticket_type: Option<TicketTypeId>,
}

/// A row of a stored plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatRow {
    /// Its section, by place in the plan.
    pub section: usize,
    /// Its name within the section.
    pub name: String,
    /// Lower is better.
    pub rank: i32,
    /// Its first seat.
    pub first: SeatId,
    /// Its seats' own labels, in order.
    pub labels: Vec<String>,
}

impl SeatRow {
    /// The seats of the row, in order.
    pub fn seats(&self) -> impl Iterator<Item = SeatId> + '_ {
        (0..self.labels.len()).map(|i| SeatId::new(self.first.get() + offset(i)))
    }
}

/// A count or place as a seat-number offset (plans hold at most [`MAX_SEATS`] seats).
fn offset(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn invalid(message: impl Into<String>) -> DomainError {
    DomainError::Validation {
        field: "sections",
        message: message.into(),
    }
}

fn check_part(what: &str, name: &str) -> Result<(), DomainError> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_PART {
        return Err(invalid(format!(
            "Each {what} must have 1 to {MAX_PART} characters."
        )));
    }
    if name.trim() != name || name.chars().any(|c| c.is_control() || c == '-') {
        return Err(invalid(format!(
            "A {what} may not contain '-' (the label's separator), control characters or \
             surrounding white space: {name:?}."
        )));
    }
    Ok(())
}

impl NewPlan {
    /// The stored form of the plan: seats numbered in order, ranks filled in.
    ///
    /// # Errors
    /// [`DomainError::Validation`] on `sections`: no seat or more than [`MAX_SEATS`], a
    /// section without rows or a row without seats, a name
    /// or label that is empty, too long, or holds a `-`, a control character or surrounding
    /// white space, two sections (or two rows of a section, or two seats of a row) of one name.
    pub fn check(&self) -> Result<SeatPlan, DomainError> {
        let total: usize = self
            .sections
            .iter()
            .flat_map(|s| &s.rows)
            .map(|r| r.seats.len())
            .sum();
        if total == 0 || total > MAX_SEATS {
            return Err(invalid(format!(
                "A seating plan has 1 to {MAX_SEATS} seats (this one has {total})."
            )));
        }
        let mut sections = Vec::with_capacity(self.sections.len());
        let mut rows = Vec::new();
        let mut names = HashSet::new();
        let mut next: i64 = 1;
        for (s, section) in self.sections.iter().enumerate() {
            check_part("section name", &section.name)?;
            if section.rows.is_empty() {
                return Err(invalid(format!("Section {:?} has no rows.", section.name)));
            }
            if !names.insert(section.name.as_str()) {
                return Err(invalid(format!(
                    "Two sections are named {:?}.",
                    section.name
                )));
            }
            let mut row_names = HashSet::new();
            for row in &section.rows {
                check_part("row name", &row.name)?;
                if row.seats.is_empty() {
                    return Err(invalid(format!(
                        "Row {:?} of section {:?} has no seats.",
                        row.name, section.name
                    )));
                }
                if !row_names.insert(row.name.as_str()) {
                    return Err(invalid(format!(
                        "Two rows of section {:?} are named {:?}.",
                        section.name, row.name
                    )));
                }
                let mut labels = HashSet::new();
                for label in &row.seats {
                    check_part("seat label", label)?;
                    if !labels.insert(label.as_str()) {
                        return Err(invalid(format!(
                            "Row {:?} of section {:?} has two seats {label:?}.",
                            row.name, section.name
                        )));
                    }
                }
                let place = i32::try_from(rows.len()).unwrap_or(i32::MAX);
                rows.push(SeatRow {
                    section: s,
                    name: row.name.clone(),
                    rank: row.rank.unwrap_or(place),
                    first: SeatId::new(next),
                    labels: row.seats.clone(),
                });
                next += offset(row.seats.len());
            }
            sections.push(Section {
                name: section.name.clone(),
                ticket_type: section.ticket_type,
            });
        }
        Ok(SeatPlan::new(sections, rows))
    }
}

/// A stored seating plan, with what finding seats needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatPlan {
    sections: Vec<Section>,
    rows: Vec<SeatRow>,
    /// Row of each seat (by seat number - 1).
    row_of: Vec<u32>,
    /// Rows, best first: by rank, then place.
    best_first: Vec<u32>,
    by_label: HashMap<String, SeatId>,
}

impl SeatPlan {
    /// The plan of `sections` and `rows` (as stored: rows in plan order, seats numbered from 1
    /// without gaps).
    pub fn new(sections: Vec<Section>, rows: Vec<SeatRow>) -> Self {
        let mut row_of = Vec::new();
        let mut by_label = HashMap::new();
        for (r, row) in rows.iter().enumerate() {
            let section = sections.get(row.section).map_or("", |s| s.name.as_str());
            for (seat, label) in row.seats().zip(&row.labels) {
                row_of.push(u32::try_from(r).unwrap_or(u32::MAX));
                by_label.insert(format!("{section}-{}-{label}", row.name), seat);
            }
        }
        let mut best_first: Vec<u32> = (0..rows.len())
            .map(|r| u32::try_from(r).unwrap_or(u32::MAX))
            .collect();
        best_first.sort_by_key(|&r| (rows[r as usize].rank, r));
        Self {
            sections,
            rows,
            row_of,
            best_first,
            by_label,
        }
    }

    /// Its sections, in order.
    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    /// Its rows, in plan order.
    pub fn rows(&self) -> &[SeatRow] {
        &self.rows
    }

    /// How many seats it has.
    pub fn seat_count(&self) -> usize {
        self.row_of.len()
    }

    fn row(&self, seat: SeatId) -> Option<&SeatRow> {
        let index = usize::try_from(seat.get() - 1).ok()?;
        self.rows.get(*self.row_of.get(index)? as usize)
    }

    /// The seat's label (`A-1-7`), if the plan has it.
    pub fn label(&self, seat: SeatId) -> Option<String> {
        let row = self.row(seat)?;
        let place = usize::try_from(seat.get() - row.first.get()).ok()?;
        Some(format!(
            "{}-{}-{}",
            self.sections.get(row.section)?.name,
            row.name,
            row.labels.get(place)?
        ))
    }

    /// The seat labelled `label`, if any.
    pub fn seat(&self, label: &str) -> Option<SeatId> {
        self.by_label.get(label).copied()
    }

    /// The ticket type the seat is sold as.
    pub fn ticket_type(&self, seat: SeatId) -> Option<TicketTypeId> {
        let row = self.row(seat)?;
        self.sections.get(row.section)?.ticket_type
    }

    /// Seats per ticket type (`None`: seats of sections without one).
    pub fn seats_by_type(&self) -> HashMap<Option<TicketTypeId>, i64> {
        let mut counts = HashMap::new();
        for row in &self.rows {
            let ticket_type = self.sections.get(row.section).and_then(|s| s.ticket_type);
            *counts.entry(ticket_type).or_default() += offset(row.labels.len());
        }
        counts
    }
}

/// Who has a seat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// A hold, until it ends.
    Held {
        /// The hold.
        reservation: ReservationId,
        /// When it ends.
        until: Timestamp,
    },
    /// A purchase.
    Sold {
        /// The purchased reservation.
        reservation: ReservationId,
    },
}

impl Holder {
    /// The reservation.
    pub fn reservation(self) -> ReservationId {
        match self {
            Self::Held { reservation, .. } | Self::Sold { reservation } => reservation,
        }
    }
}

/// A seat's state as a seat map shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatStatus {
    /// Free (a seat of a past-due hold is free).
    Free,
    /// Held by an active hold.
    Held,
    /// Sold.
    Sold,
}

impl SeatStatus {
    /// Its letter in a seat map: `F`, `H` or `S`.
    pub fn letter(self) -> char {
        match self {
            Self::Free => 'F',
            Self::Held => 'H',
            Self::Sold => 'S',
        }
    }
}

/// What finding seats for a reserve asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeatRequest {
    /// These seats, by label (distinct).
    Labels(Vec<String>),
    /// The best `quantity` free seats (of the ticket type, if one is named), adjacent in one
    /// row when `together`.
    Best {
        /// How many.
        quantity: u32,
        /// Only seats sold as this type.
        ticket_type: Option<TicketTypeId>,
        /// Adjacent, in one row.
        together: bool,
    },
}

/// A seat of a hold or sale: its number and label.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HeldSeat {
    /// Its number in the plan.
    pub id: SeatId,
    /// Its label (`A-1-7`).
    pub label: String,
}

/// Which hold or sale has each seat of an event, as of the store's seat version `version`
/// (the number of seat changes the event has seen: every hold, purchase, cancel, expiry,
/// extend and release of seats adds one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatMap {
    /// The event.
    pub event: EventId,
    /// The store's seat version this map is at.
    pub version: i64,
    plan: Arc<SeatPlan>,
    holders: Vec<Option<Holder>>,
    /// Seats without a holder, per row.
    free: Vec<u32>,
    /// The longest run of adjacent seats without a holder, per row.
    longest: Vec<u32>,
    /// Holds still marked `reserved`: when each ends, and its seats.
    holds: HashMap<ReservationId, (Timestamp, Vec<SeatId>)>,
    /// The same holds by when they end.
    due: BTreeSet<(Timestamp, ReservationId)>,
}

fn index(seat: SeatId) -> usize {
    usize::try_from(seat.get() - 1).unwrap_or(usize::MAX)
}

impl SeatMap {
    /// The map of `plan` at seat version `version`, with `holders` (each seat at most once).
    ///
    /// # Errors
    /// [`DomainError::Store`] for a seat the plan does not have, one with two holders, or a
    /// hold whose seats end at different instants: the store's own guarantees say none can
    /// happen.
    pub fn new(
        event: EventId,
        version: i64,
        plan: Arc<SeatPlan>,
        holders: impl IntoIterator<Item = (SeatId, Holder)>,
    ) -> Result<Self, DomainError> {
        let broken = |what: String| DomainError::from(StoreError::internal(what));
        let mut seats = vec![None; plan.seat_count()];
        let mut holds: HashMap<ReservationId, (Timestamp, Vec<SeatId>)> = HashMap::new();
        for (seat, holder) in holders {
            let slot = seats.get_mut(index(seat)).ok_or_else(|| {
                broken(format!("seat {seat} of event {event} is not in its plan"))
            })?;
            if slot.replace(holder).is_some() {
                return Err(broken(format!(
                    "seat {seat} of event {event} has two holders"
                )));
            }
            if let Holder::Held { reservation, until } = holder {
                let hold = holds.entry(reservation).or_insert((until, Vec::new()));
                if hold.0 != until {
                    return Err(broken(format!("hold {reservation} ends at two instants")));
                }
                hold.1.push(seat);
            }
        }
        let due = holds.iter().map(|(id, (until, _))| (*until, *id)).collect();
        let mut map = Self {
            event,
            version,
            free: vec![0; plan.rows.len()],
            longest: vec![0; plan.rows.len()],
            plan,
            holders: seats,
            holds,
            due,
        };
        for r in 0..map.plan.rows.len() {
            map.recount(r);
        }
        Ok(map)
    }

    /// The plan.
    pub fn plan(&self) -> &Arc<SeatPlan> {
        &self.plan
    }

    fn recount(&mut self, r: usize) {
        let Some(row) = self.plan.rows.get(r) else {
            return;
        };
        let (mut free, mut run, mut longest) = (0, 0, 0);
        for seat in row.seats() {
            if self.holders[index(seat)].is_none() {
                free += 1;
                run += 1;
                longest = longest.max(run);
            } else {
                run = 0;
            }
        }
        self.free[r] = free;
        self.longest[r] = longest;
    }

    fn set(&mut self, seats: &[SeatId], holder: Option<Holder>) {
        let mut rows = Vec::new();
        for seat in seats {
            if let Some(slot) = self.holders.get_mut(index(*seat)) {
                *slot = holder;
                if let Some(r) = self.plan.row_of.get(index(*seat)) {
                    rows.push(*r as usize);
                }
            }
        }
        rows.sort_unstable();
        rows.dedup();
        for r in rows {
            self.recount(r);
        }
    }

    /// The holder of `seat`, whatever the instant.
    pub fn holder(&self, seat: SeatId) -> Option<Holder> {
        self.holders.get(index(seat)).copied().flatten()
    }

    /// Each seat's status at `now`, in plan order.
    pub fn statuses(&self, now: Timestamp) -> Vec<SeatStatus> {
        self.holders
            .iter()
            .map(|h| match h {
                None => SeatStatus::Free,
                Some(Holder::Held { until, .. }) if *until <= now => SeatStatus::Free,
                Some(Holder::Held { .. }) => SeatStatus::Held,
                Some(Holder::Sold { .. }) => SeatStatus::Sold,
            })
            .collect()
    }

    /// How many holds are past due at `now` (their seats read free, though they are still
    /// marked `reserved`).
    pub fn past_due(&self, now: Timestamp) -> i64 {
        let due = self
            .due
            .iter()
            .take_while(|(until, _)| *until <= now)
            .count();
        i64::try_from(due).unwrap_or(i64::MAX)
    }

    /// The version of what the map shows at `now`: the store's seat version and the holds
    /// that fell due since. A hold's falling due changes what the map shows without a write;
    /// releasing it later adds one to the store's version and takes one from the past-due
    /// holds, so the version stays: it changes exactly when what the map shows does.
    pub fn shown_version(&self, now: Timestamp) -> i64 {
        self.version + self.past_due(now)
    }

    /// Whether any hold is past due at `now`.
    pub fn has_past_due(&self, now: Timestamp) -> bool {
        self.due.first().is_some_and(|(until, _)| *until <= now)
    }

    /// The seats among `seats` that have a holder.
    pub fn taken(&self, seats: &[SeatId]) -> Vec<SeatId> {
        seats
            .iter()
            .copied()
            .filter(|s| self.holder(*s).is_some())
            .collect()
    }

    /// Gives `seats` (free: the caller checked) to the new hold `reservation`, until `until`.
    pub fn take(&mut self, seats: &[SeatId], reservation: ReservationId, until: Timestamp) {
        self.set(seats, Some(Holder::Held { reservation, until }));
        self.holds.insert(reservation, (until, seats.to_vec()));
        self.due.insert((until, reservation));
    }

    /// The hold `reservation` is purchased: its seats are sold.
    pub fn sell(&mut self, reservation: ReservationId) {
        if let Some((until, seats)) = self.holds.remove(&reservation) {
            self.due.remove(&(until, reservation));
            self.set(&seats, Some(Holder::Sold { reservation }));
        }
    }

    /// The hold `reservation` now ends at `until`.
    pub fn extend(&mut self, reservation: ReservationId, until: Timestamp) {
        if let Some((was, seats)) = self.holds.remove(&reservation) {
            self.due.remove(&(was, reservation));
            self.set(&seats, Some(Holder::Held { reservation, until }));
            self.holds.insert(reservation, (until, seats));
            self.due.insert((until, reservation));
        }
    }

    /// The hold `reservation` gives back `seats` (all of its seats: it ends).
    pub fn free(&mut self, reservation: ReservationId, seats: &[SeatId]) {
        let mine: Vec<SeatId> = seats
            .iter()
            .copied()
            .filter(|s| {
                self.holder(*s)
                    .is_some_and(|h| h.reservation() == reservation)
            })
            .collect();
        self.set(&mine, None);
        if let Some((until, kept)) = self.holds.get_mut(&reservation) {
            kept.retain(|s| !mine.contains(s));
            if kept.is_empty() {
                let until = *until;
                self.holds.remove(&reservation);
                self.due.remove(&(until, reservation));
            }
        }
    }

    /// The seats of the hold `reservation` still marked `reserved`, if any.
    pub fn seats_of(&self, reservation: ReservationId) -> Option<&[SeatId]> {
        self.holds
            .get(&reservation)
            .map(|(_, seats)| seats.as_slice())
    }

    /// The best `quantity` seats without a holder (of `ticket_type`, if one is named): when
    /// `together`, adjacent in one row of the best rank that has such a block, as near the
    /// row's middle as can be, and leaving no lone free seat between taken ones where another
    /// block of that rank would not; else the best free seats one by one in the same order.
    /// `None` when there are not that many. Only rows that can hold the block are looked at
    /// seat by seat: the cost does not grow with the seats sold.
    pub fn best_available(
        &self,
        quantity: u32,
        ticket_type: Option<TicketTypeId>,
        together: bool,
    ) -> Option<Vec<SeatId>> {
        if quantity == 0 {
            return None;
        }
        let of_type = |r: usize| {
            ticket_type.is_none()
                || self
                    .plan
                    .sections
                    .get(self.plan.rows[r].section)
                    .and_then(|s| s.ticket_type)
                    == ticket_type
        };
        if together {
            return self.best_block(quantity, &of_type);
        }
        let mut picked = Vec::new();
        for &r in &self.plan.best_first {
            let r = r as usize;
            if self.free[r] == 0 || !of_type(r) {
                continue;
            }
            let row = &self.plan.rows[r];
            let len = offset(row.labels.len());
            let mut seats: Vec<SeatId> = row
                .seats()
                .filter(|s| self.holders[index(*s)].is_none())
                .collect();
            // Twice the distance to the row's middle, in seats.
            seats.sort_by_key(|s| ((2 * (s.get() - row.first.get()) + 1 - len).abs(), *s));
            for seat in seats {
                picked.push(seat);
                if picked.len() == quantity as usize {
                    picked.sort_unstable();
                    return Some(picked);
                }
            }
        }
        None
    }

    fn best_block(&self, quantity: u32, of_type: &dyn Fn(usize) -> bool) -> Option<Vec<SeatId>> {
        let n = quantity as usize;
        let order = &self.plan.best_first;
        let mut at = 0;
        while at < order.len() {
            let rank = self.plan.rows[order[at] as usize].rank;
            // (leaves a lone seat, distance to the middle, row place, first seat)
            let mut best: Option<(bool, u64, usize, i64)> = None;
            while at < order.len() && self.plan.rows[order[at] as usize].rank == rank {
                let r = order[at] as usize;
                at += 1;
                if (self.longest[r] as usize) < n || !of_type(r) {
                    continue;
                }
                let row = &self.plan.rows[r];
                let len = row.labels.len();
                let free = |i: usize| {
                    self.holders[index(SeatId::new(row.first.get() + offset(i)))].is_none()
                };
                let mut start = 0;
                while start < len {
                    if !free(start) {
                        start += 1;
                        continue;
                    }
                    let mut end = start;
                    while end < len && free(end) {
                        end += 1;
                    }
                    // A free run [start, end): every block of n seats in it.
                    for s in start..=end.saturating_sub(n) {
                        if end - start < n {
                            break;
                        }
                        let left = s - start;
                        let right = end - (s + n);
                        let lone = left == 1 || right == 1;
                        // Twice the distance of the block's middle to the row's, in seats.
                        let distance = (2 * s + n).abs_diff(len) as u64;
                        let key = (lone, distance, r, row.first.get() + offset(s));
                        if best.is_none_or(|b| key < b) {
                            best = Some(key);
                        }
                    }
                    start = end;
                }
            }
            if let Some((_, _, _, first)) = best {
                return Some(
                    (0..quantity)
                        .map(|i| SeatId::new(first + i64::from(i)))
                        .collect(),
                );
            }
        }
        None
    }
}

/// The seat maps kept between batches, by event: a batch whose events' seat versions match
/// takes them instead of reading every holder again, and gives them back after its commit.
#[derive(Debug, Default)]
pub struct SeatMaps {
    maps: Mutex<HashMap<EventId, Arc<SeatMap>>>,
}

impl SeatMaps {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<EventId, Arc<SeatMap>>> {
        // A map is replaced whole, so one left by a panicking thread is still consistent.
        self.maps.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The map of `event` at `version`, if kept; it is no longer kept until given back.
    pub fn take(&self, event: EventId, version: i64) -> Option<SeatMap> {
        let kept = self.lock().remove(&event)?;
        (kept.version == version).then(|| Arc::unwrap_or_clone(kept))
    }

    /// The map of `event` kept, whatever its version.
    pub fn get(&self, event: EventId) -> Option<Arc<SeatMap>> {
        self.lock().get(&event).cloned()
    }

    /// Keeps `map`, unless a newer one of its event is kept.
    pub fn keep(&self, map: SeatMap) {
        let mut maps = self.lock();
        if maps
            .get(&map.event)
            .is_none_or(|kept| kept.version <= map.version)
        {
            maps.insert(map.event, Arc::new(map));
        }
    }

    /// Forgets the map of `event`.
    pub fn forget(&self, event: EventId) {
        self.lock().remove(&event);
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn plan(rows: &[(&str, usize, Option<i32>)]) -> Arc<SeatPlan> {
        let new = NewPlan {
            sections: vec![NewSection {
                name: "A".into(),
                ticket_type: None,
                rows: rows
                    .iter()
                    .map(|(name, seats, rank)| NewRow {
                        name: (*name).into(),
                        seats: (1..=*seats).map(|i| i.to_string()).collect(),
                        rank: *rank,
                    })
                    .collect(),
            }],
        };
        Arc::new(new.check().unwrap())
    }

    fn at(secs: i64) -> Timestamp {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
    }

    fn hold(n: u8) -> ReservationId {
        ReservationId::from_uuid(uuid::Uuid::from_u128(u128::from(n)))
    }

    fn labels(map: &SeatMap, seats: &[SeatId]) -> Vec<String> {
        seats.iter().filter_map(|s| map.plan.label(*s)).collect()
    }

    fn map_with(plan: Arc<SeatPlan>, taken: &[&str]) -> SeatMap {
        let holders: Vec<(SeatId, Holder)> = taken
            .iter()
            .map(|l| {
                let seat = plan.seat(l).unwrap();
                (
                    seat,
                    Holder::Sold {
                        reservation: hold(1),
                    },
                )
            })
            .collect();
        SeatMap::new(EventId::new(1), 0, plan, holders).unwrap()
    }

    #[test]
    fn labels_are_section_row_seat_and_seats_are_numbered_in_plan_order() {
        let p = plan(&[("1", 3, None), ("2", 2, None)]);
        assert_eq!(p.seat_count(), 5);
        assert_eq!(p.label(SeatId::new(4)).as_deref(), Some("A-2-1"));
        assert_eq!(p.seat("A-1-3"), Some(SeatId::new(3)));
        assert_eq!(p.seat("A-3-1"), None);
        assert_eq!(p.label(SeatId::new(6)), None);
    }

    #[test]
    fn a_plan_with_a_dash_a_duplicate_or_no_seat_is_refused() {
        let one = |section: &str, row: &str, seats: Vec<&str>| NewPlan {
            sections: vec![NewSection {
                name: section.into(),
                ticket_type: None,
                rows: vec![NewRow {
                    name: row.into(),
                    seats: seats.into_iter().map(String::from).collect(),
                    rank: None,
                }],
            }],
        };
        assert!(one("A", "1", vec!["1", "2"]).check().is_ok());
        assert!(one("A-B", "1", vec!["1"]).check().is_err());
        assert!(one("A", "1", vec!["1", "1"]).check().is_err());
        assert!(one("A", "1", vec![]).check().is_err());
        assert!(one("A", " 1", vec!["1"]).check().is_err());
        assert!(one("A", "1", vec!["\u{7}"]).check().is_err());
    }

    #[test]
    fn best_available_takes_the_middle_of_the_best_ranked_row() {
        let p = plan(&[("back", 10, Some(2)), ("front", 10, Some(1))]);
        let map = map_with(p, &[]);
        let got = map.best_available(2, None, true).unwrap();
        assert_eq!(labels(&map, &got), vec!["A-front-5", "A-front-6"]);
    }

    #[test]
    fn best_available_avoids_leaving_a_lone_free_seat() {
        // Row of 6, seats 2 taken: free 1 | 3 4 5 6. A pair at 3-4 would leave 5-6 (fine) and
        // 1 is already alone; at 4-5 it leaves 3 and 6 alone.
        let p = plan(&[("1", 6, None)]);
        let map = map_with(p, &["A-1-2"]);
        let got = map.best_available(2, None, true).unwrap();
        assert_eq!(labels(&map, &got), vec!["A-1-3", "A-1-4"]);
    }

    #[test]
    fn best_available_moves_to_the_next_rank_when_no_block_fits_and_fails_when_none_does() {
        let p = plan(&[("1", 4, None), ("2", 4, None)]);
        let map = map_with(p, &["A-1-2", "A-1-4"]);
        // In an empty row of 4, the middle pair would leave two lone seats: an end pair wins.
        let got = map.best_available(2, None, true).unwrap();
        assert_eq!(labels(&map, &got), vec!["A-2-1", "A-2-2"]);
        assert_eq!(map.best_available(5, None, true), None);
        // Not together: the two free seats of row 1 first, then row 2's middle.
        let got = map.best_available(3, None, false).unwrap();
        assert_eq!(labels(&map, &got), vec!["A-1-1", "A-1-3", "A-2-2"]);
    }

    #[test]
    fn taking_selling_and_freeing_seats_updates_what_the_map_shows() {
        let p = plan(&[("1", 3, None)]);
        let mut map = map_with(p, &[]);
        let seats = [SeatId::new(1), SeatId::new(2)];
        map.take(&seats, hold(2), at(60));
        assert_eq!(map.seats_of(hold(2)), Some(&seats[..]));
        assert_eq!(
            map.taken(&[SeatId::new(2), SeatId::new(3)]),
            vec![SeatId::new(2)]
        );
        let letters = |m: &SeatMap, now| -> String {
            m.statuses(now)
                .into_iter()
                .map(SeatStatus::letter)
                .collect()
        };
        assert_eq!(letters(&map, at(0)), "HHF");
        // Past due: free on the map, one more version shown, though still held in store.
        assert_eq!(letters(&map, at(60)), "FFF");
        assert_eq!(map.shown_version(at(60)), map.version + 1);
        assert!(map.has_past_due(at(60)));
        map.sell(hold(2));
        assert_eq!(letters(&map, at(120)), "SSF");
        assert!(!map.has_past_due(at(120)));
        let mut other = map_with(plan(&[("1", 3, None)]), &[]);
        other.take(&seats, hold(3), at(60));
        other.free(hold(3), &[SeatId::new(1)]);
        assert_eq!(letters(&other, at(0)), "FHF");
        assert_eq!(other.best_available(2, None, true), None);
        other.free(hold(3), &[SeatId::new(2)]);
        assert_eq!(other.seats_of(hold(3)), None);
        assert!(other.best_available(3, None, true).is_some());
    }
}

//! Use cases that only read. Every read sees everything committed before it started.

use crate::error::DomainError;
use crate::event::EventSnapshot;
use crate::event::{EventAudit, EventPage, EventSummary};
use crate::ids::{EventId, ReservationId};
use crate::outbox::{StoredMessage, MAX_MESSAGES_PER_READ};
use crate::reservation::Reservation;
use crate::store::{PageRequest, Reads, Stored, Timestamp};
use crate::ticketing::Ticketing;

/// The largest page of `GET /api/events`.
pub const MAX_PAGE_SIZE: u32 = 100;

impl Ticketing {
    /// The event with its ticket counts now: past-due holds count as available, whether or not
    /// the expiry sweep has run.
    ///
    /// # Errors
    /// [`DomainError::EventNotFound`] or [`DomainError::Store`].
    pub fn event_summary(&self, id: EventId) -> Result<EventSummary, DomainError> {
        self.event_summaries(&[id])?
            .pop()
            .ok_or(DomainError::EventNotFound)
    }

    /// The events among `ids` that exist, with their counts, read in one statement (unknown
    /// ids are left out). This is what read coalescing calls with the reads it queued.
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    pub fn event_summaries(&self, ids: &[EventId]) -> Result<Vec<EventSummary>, DomainError> {
        let now = self.clock.now();
        self.read(|r| {
            let snapshots = r.event_snapshots(ids, now)?;
            summarize(r, snapshots, now)
        })
    }

    /// Whether the store can serve now (see [`crate::ReadStore::readiness`]).
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    pub fn readiness(&self) -> Result<crate::Readiness, DomainError> {
        self.read(|r| {
            let mut ready = r.readiness()?;
            if ready.pending_migrations == 0 {
                ready.webhook_backlog = r.delivery_backlog()?;
            }
            Ok(ready)
        })
    }

    /// A page of events, newest first: `limit` (1 to [`MAX_PAGE_SIZE`]) events with ids
    /// below `before`, and where the next page starts.
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    pub fn list_events(
        &self,
        before: Option<EventId>,
        limit: u32,
    ) -> Result<EventPage, DomainError> {
        let limit = limit.clamp(1, MAX_PAGE_SIZE);
        let now = self.clock.now();
        let page = PageRequest {
            before,
            limit: limit + 1,
        };
        let mut events = self.read(|r| {
            let snapshots = r.list_events(page, now)?;
            summarize(r, snapshots, now)
        })?;
        let more = events.len() > limit as usize;
        events.truncate(limit as usize);
        let next = if more {
            events.last().map(|s| s.event.id)
        } else {
            None
        };
        Ok(EventPage { events, next })
    }

    /// The event's counters next to a recount of its rows, for operators' checks.
    ///
    /// # Errors
    /// [`DomainError::EventNotFound`] or [`DomainError::Store`].
    pub fn audit_event(&self, id: EventId) -> Result<EventAudit, DomainError> {
        let now = self.clock.now();
        self.read(|r| r.audit_event(id, now))?
            .ok_or(DomainError::EventNotFound)
    }

    /// A reservation as a client sees it now: a past-due hold reads `expired` before any
    /// sweep has marked it.
    ///
    /// # Errors
    /// [`DomainError::ReservationNotFound`] or [`DomainError::Store`].
    pub fn reservation(&self, id: ReservationId) -> Result<Reservation, DomainError> {
        self.reservations(&[id])?
            .pop()
            .ok_or(DomainError::ReservationNotFound)
    }

    /// The reservations among `ids` that exist, as clients see them now, read in one statement.
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    pub fn reservations(&self, ids: &[ReservationId]) -> Result<Vec<Reservation>, DomainError> {
        let now = self.clock.now();
        Ok(self
            .read(|r| r.reservations(ids))?
            .into_iter()
            .map(|r| r.seen_at(now))
            .collect())
    }

    /// The number of the last message of each event among `ids` that exists (0 before its
    /// first), in id order: one statement, for those who wait for something to happen.
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    pub fn message_heads(&self, ids: &[EventId]) -> Result<Vec<(EventId, i64)>, DomainError> {
        self.read(|r| r.message_heads(ids))
    }

    /// Up to `limit` (at most [`MAX_MESSAGES_PER_READ`]) messages of `event` numbered above
    /// `after`, in number order, and the number of its last message; fails with
    /// [`DomainError::EventNotFound`] for an unknown event.
    ///
    /// # Errors
    /// [`DomainError::EventNotFound`]; [`DomainError::Store`].
    pub fn messages(
        &self,
        event: EventId,
        after: i64,
        limit: u32,
    ) -> Result<(Vec<StoredMessage>, i64), DomainError> {
        let limit = limit.clamp(1, MAX_MESSAGES_PER_READ);
        self.read(|r| {
            let Some(&(_, head)) = r.message_heads(&[event])?.first() else {
                return Err(DomainError::EventNotFound);
            };
            Ok((r.messages(event, after, limit)?, head))
        })
    }
}

/// The summaries of `snapshots`; those of events with quotas or ticket types are taken, with
/// their inventories, from one more statement on the same connection.
fn summarize(
    reads: &mut dyn Reads,
    snapshots: Vec<EventSnapshot>,
    now: Timestamp,
) -> Stored<Vec<EventSummary>> {
    let typed: Vec<EventId> = snapshots
        .iter()
        .filter(|s| s.has_inventory)
        .map(|s| s.event.id)
        .collect();
    let inventories = if typed.is_empty() {
        Vec::new()
    } else {
        reads.inventories(&typed, now)?
    };
    Ok(snapshots
        .into_iter()
        .map(
            |snapshot| match inventories.iter().find(|i| i.event_id == snapshot.event.id) {
                Some(inventory) => EventSummary::with_inventory(snapshot, inventory),
                None => EventSummary::from_snapshot(snapshot),
            },
        )
        .collect())
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::test_support::{memory_ticketing, new_event};
    use crate::{Clock, Reserve};

    #[test]
    fn event_summary_fails_with_event_not_found_for_an_unknown_event() {
        let (t, _) = memory_ticketing(None);
        assert_eq!(
            t.event_summary(EventId::new(3)),
            Err(DomainError::EventNotFound)
        );
        assert_eq!(
            t.audit_event(EventId::new(3)),
            Err(DomainError::EventNotFound)
        );
    }

    #[test]
    fn a_reservation_reads_expired_once_past_due_though_no_sweep_ran() {
        let (t, clock) = memory_ticketing(None);
        let event = t.create_event(&new_event(2)).unwrap().event.id;
        let hold = t
            .reserve(Reserve::untyped(event, crate::Quantity::ONE, None))
            .unwrap();
        assert_eq!(t.reservation(hold.id).unwrap().status.as_str(), "reserved");
        clock.advance(TimeDelta::seconds(600));
        assert_eq!(t.reservation(hold.id).unwrap().status.as_str(), "expired");
        assert_eq!(
            t.reservation(crate::ReservationId::generate(clock.now(), event)),
            Err(DomainError::ReservationNotFound)
        );
        let summary = t.event_summary(event).unwrap();
        assert_eq!((summary.reserved, summary.available), (0, 2));
    }

    #[test]
    fn list_events_pages_newest_first_with_a_cursor() {
        let (t, _) = memory_ticketing(None);
        let ids: Vec<EventId> = (1..=5)
            .map(|c| t.create_event(&new_event(c)).unwrap().event.id)
            .collect();
        let first = t.list_events(None, 2).unwrap();
        assert_eq!(
            first.events.iter().map(|e| e.event.id).collect::<Vec<_>>(),
            vec![ids[4], ids[3]]
        );
        assert_eq!(first.next, Some(ids[3]));
        let second = t.list_events(first.next, 2).unwrap();
        assert_eq!(second.next, Some(ids[1]));
        let last = t.list_events(second.next, 2).unwrap();
        assert_eq!(
            last.events.iter().map(|e| e.event.id).collect::<Vec<_>>(),
            vec![ids[0]]
        );
        assert_eq!(last.next, None);
        let all = t.list_events(None, 500).unwrap();
        assert_eq!((all.events.len(), all.next), (5, None));
    }
}

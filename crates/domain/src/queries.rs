//! Use cases that only read.

use crate::error::DomainError;
use crate::event::{EventAudit, EventSummary};
use crate::ids::{EventId, ReservationId};
use crate::reservation::Reservation;
use crate::ticketing::Ticketing;

impl Ticketing {
    /// The event with its ticket counts now: past-due holds count as available, whether or not
    /// the expiry sweep has run.
    ///
    /// # Errors
    /// [`DomainError::EventNotFound`] or [`DomainError::Store`].
    pub fn event_summary(&self, id: EventId) -> Result<EventSummary, DomainError> {
        let snapshot = self.events.event_snapshot(id, self.clock.now())?;
        Ok(EventSummary::from_snapshot(snapshot))
    }

    /// The event's counters next to a recount of its rows, for operators' checks.
    ///
    /// # Errors
    /// [`DomainError::EventNotFound`] or [`DomainError::Store`].
    pub fn audit_event(&self, id: EventId) -> Result<EventAudit, DomainError> {
        self.events.audit_event(id, self.clock.now())
    }

    /// A reservation as stored.
    ///
    /// # Errors
    /// [`DomainError::ReservationNotFound`] or [`DomainError::Store`].
    pub fn reservation(&self, id: ReservationId) -> Result<Reservation, DomainError> {
        self.reservations.find_reservation(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{event, ticketing, NOW};
    use crate::{EventSnapshot, MockEventStore, MockReservationStore};

    #[test]
    fn event_summary_counts_only_active_holds_as_reserved() {
        let mut events = MockEventStore::new();
        events
            .expect_event_snapshot()
            .withf(|id, now| *id == EventId::new(3) && *now == NOW)
            .returning(|id, _| {
                Ok(EventSnapshot {
                    event: event(id, 10),
                    purchased: 2,
                    held: 5,
                    past_due: 3,
                })
            });
        let summary = ticketing(events, MockReservationStore::new())
            .event_summary(EventId::new(3))
            .unwrap();
        assert_eq!(
            (summary.purchased, summary.reserved, summary.available),
            (2, 2, 6)
        );
    }

    #[test]
    fn event_summary_fails_with_event_not_found_for_an_unknown_event() {
        let mut events = MockEventStore::new();
        events
            .expect_event_snapshot()
            .returning(|_, _| Err(DomainError::EventNotFound));
        let t = ticketing(events, MockReservationStore::new());
        assert_eq!(
            t.event_summary(EventId::new(3)),
            Err(DomainError::EventNotFound)
        );
    }

    #[test]
    fn audit_event_fails_with_event_not_found_for_an_unknown_event() {
        let mut events = MockEventStore::new();
        events
            .expect_audit_event()
            .returning(|_, _| Err(DomainError::EventNotFound));
        let t = ticketing(events, MockReservationStore::new());
        assert_eq!(
            t.audit_event(EventId::new(3)),
            Err(DomainError::EventNotFound)
        );
    }

    #[test]
    fn reservation_fails_with_reservation_not_found_for_an_unknown_id() {
        let mut store = MockReservationStore::new();
        store
            .expect_find_reservation()
            .returning(|_| Err(DomainError::ReservationNotFound));
        let t = ticketing(MockEventStore::new(), store);
        assert_eq!(
            t.reservation(ReservationId::generate(crate::test_support::NOW)),
            Err(DomainError::ReservationNotFound)
        );
    }
}

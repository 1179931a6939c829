//! Use case: create an event.

use crate::error::DomainError;
use crate::event::{EventSummary, NewEvent};
use crate::ticketing::Ticketing;

impl Ticketing {
    /// Creates an event with all its tickets available.
    ///
    /// # Errors
    /// Only [`DomainError::Store`]: the name and capacity are valid by construction.
    pub fn create_event(&self, new: &NewEvent) -> Result<EventSummary, DomainError> {
        let event = self.events.create_event(new, self.clock.now())?;
        Ok(EventSummary::of_new_event(event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{event, ticketing, NOW};
    use crate::{Capacity, EventId, EventName, MockEventStore, MockReservationStore, StoreError};

    fn new_event() -> NewEvent {
        NewEvent {
            name: EventName::parse("Gala").unwrap(),
            capacity: Capacity::new(5).unwrap(),
        }
    }

    #[test]
    fn create_event_starts_with_every_ticket_available() {
        let mut events = MockEventStore::new();
        events
            .expect_create_event()
            .withf(|new, now| new.name.as_str() == "Gala" && *now == NOW)
            .times(1)
            .returning(|new, _| Ok(event(EventId::new(1), new.capacity.get())));
        let summary = ticketing(events, MockReservationStore::new())
            .create_event(&new_event())
            .unwrap();
        assert_eq!(
            (summary.purchased, summary.reserved, summary.available),
            (0, 0, 5)
        );
    }

    #[test]
    fn create_event_passes_store_failures_through() {
        let mut events = MockEventStore::new();
        events
            .expect_create_event()
            .returning(|_, _| Err(StoreError::internal("boom").into()));
        let t = ticketing(events, MockReservationStore::new());
        assert!(matches!(
            t.create_event(&new_event()),
            Err(DomainError::Store(_))
        ));
    }
}

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
        let now = self.clock.now();
        self.transact(|uow| uow.create_event(new, now))
            .map(EventSummary::of_new_event)
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::{memory_ticketing, new_event};

    #[test]
    fn create_event_starts_with_every_ticket_available() {
        let (t, _) = memory_ticketing(None);
        let summary = t.create_event(&new_event(5)).unwrap();
        assert_eq!(
            (summary.purchased, summary.reserved, summary.available),
            (0, 0, 5)
        );
        assert_eq!(t.event_summary(summary.event.id).unwrap(), summary);
    }
}

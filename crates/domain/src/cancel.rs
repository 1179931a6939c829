//! Use case: cancel a hold, releasing its ticket at once.

use crate::error::DomainError;
use crate::ids::ReservationId;
use crate::reservation::Reservation;
use crate::ticketing::Ticketing;

impl Ticketing {
    /// Cancels the active hold `id`.
    ///
    /// # Errors
    /// [`DomainError::ReservationNotFound`], [`DomainError::AlreadyPurchased`],
    /// [`DomainError::InvalidOrExpired`] or [`DomainError::Store`].
    pub fn cancel(&self, id: ReservationId) -> Result<Reservation, DomainError> {
        self.reservations.cancel(id, self.clock.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{reservation, ticketing, NOW};
    use crate::{EventId, MockEventStore, MockReservationStore, ReservationStatus};

    #[test]
    fn cancel_asks_the_store_at_the_clock_time() {
        let id = ReservationId::generate(crate::test_support::NOW);
        let mut store = MockReservationStore::new();
        store
            .expect_cancel()
            .withf(move |got, now| *got == id && *now == NOW)
            .times(1)
            .returning(|id, _| {
                Ok(reservation(
                    id,
                    EventId::new(1),
                    ReservationStatus::Canceled,
                ))
            });
        let canceled = ticketing(MockEventStore::new(), store).cancel(id).unwrap();
        assert_eq!(canceled.status, ReservationStatus::Canceled);
    }

    #[test]
    fn cancel_passes_every_refusal_through() {
        for err in [
            DomainError::ReservationNotFound,
            DomainError::AlreadyPurchased,
            DomainError::InvalidOrExpired,
        ] {
            let mut store = MockReservationStore::new();
            let answer = err.clone();
            store
                .expect_cancel()
                .returning(move |_, _| Err(answer.clone()));
            let t = ticketing(MockEventStore::new(), store);
            assert_eq!(
                t.cancel(ReservationId::generate(crate::test_support::NOW)),
                Err(err)
            );
        }
    }
}

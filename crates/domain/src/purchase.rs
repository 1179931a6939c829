//! Use case: purchase a hold.

use crate::error::DomainError;
use crate::ids::ReservationId;
use crate::reservation::Reservation;
use crate::ticketing::Ticketing;
use crate::validation::PaymentReference;

impl Ticketing {
    /// Purchases the hold `id` while it is active, recording `payment_reference`.
    ///
    /// # Errors
    /// [`DomainError::ReservationNotFound`], [`DomainError::AlreadyPurchased`],
    /// [`DomainError::InvalidOrExpired`] (expired, canceled or past due) or
    /// [`DomainError::Store`].
    pub fn purchase(
        &self,
        id: ReservationId,
        payment_reference: Option<PaymentReference>,
    ) -> Result<Reservation, DomainError> {
        self.reservations
            .purchase(id, payment_reference, self.clock.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{reservation, ticketing, NOW};
    use crate::{EventId, MockEventStore, MockReservationStore, ReservationStatus};

    fn failing_with(err: DomainError) -> Result<Reservation, DomainError> {
        let mut store = MockReservationStore::new();
        store
            .expect_purchase()
            .times(1)
            .returning(move |_, _, _| Err(err.clone()));
        ticketing(MockEventStore::new(), store)
            .purchase(ReservationId::generate(crate::test_support::NOW), None)
    }

    #[test]
    fn purchase_passes_id_reference_and_time_to_the_store() {
        let id = ReservationId::generate(crate::test_support::NOW);
        let reference = PaymentReference::parse("pay_123").unwrap();
        let mut store = MockReservationStore::new();
        let expected = reference.clone();
        store
            .expect_purchase()
            .withf(move |got_id, got_ref, now| *got_id == id && *got_ref == expected && *now == NOW)
            .times(1)
            .returning(|id, _, _| {
                Ok(reservation(
                    id,
                    EventId::new(1),
                    ReservationStatus::Purchased,
                ))
            });
        let bought = ticketing(MockEventStore::new(), store)
            .purchase(id, reference)
            .unwrap();
        assert_eq!(bought.status, ReservationStatus::Purchased);
    }

    #[test]
    fn purchase_fails_with_reservation_not_found_for_an_unknown_id() {
        assert_eq!(
            failing_with(DomainError::ReservationNotFound),
            Err(DomainError::ReservationNotFound)
        );
    }

    #[test]
    fn purchase_fails_with_already_purchased_the_second_time() {
        assert_eq!(
            failing_with(DomainError::AlreadyPurchased),
            Err(DomainError::AlreadyPurchased)
        );
    }

    #[test]
    fn purchase_fails_with_invalid_or_expired_when_the_hold_ran_out() {
        assert_eq!(
            failing_with(DomainError::InvalidOrExpired),
            Err(DomainError::InvalidOrExpired)
        );
    }
}

//! Use case: purchase holds.

use crate::error::{DomainError, StoreError};
use crate::ids::ReservationId;
use crate::purchase_plan::PurchaseRequest;
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
        self.purchase_batch(&[PurchaseRequest {
            id,
            payment_reference,
        }])?
        .pop()
        .unwrap_or_else(|| Err(StoreError::internal("store answered no outcome").into()))
    }

    /// Serves several purchases in one store transaction, in order. This is what group commit
    /// calls with the purchases it queued.
    ///
    /// # Errors
    /// For the whole batch: [`DomainError::Store`]. Per request, in the returned outcomes: the
    /// errors of [`Ticketing::purchase`].
    pub fn purchase_batch(
        &self,
        requests: &[PurchaseRequest],
    ) -> Result<Vec<Result<Reservation, DomainError>>, DomainError> {
        let outcomes = self
            .reservations
            .purchase_batch(requests, self.clock.now())?;
        if outcomes.len() != requests.len() {
            return Err(StoreError::internal(format!(
                "store answered {} outcomes for {} purchases",
                outcomes.len(),
                requests.len()
            ))
            .into());
        }
        Ok(outcomes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{reservation, ticketing, NOW};
    use crate::{EventId, MockEventStore, MockReservationStore, ReservationStatus, StoreErrorKind};

    fn failing_with(err: DomainError) -> Result<Reservation, DomainError> {
        let mut store = MockReservationStore::new();
        store
            .expect_purchase_batch()
            .times(1)
            .returning(move |_, _| Ok(vec![Err(err.clone())]));
        ticketing(MockEventStore::new(), store).purchase(ReservationId::generate(NOW), None)
    }

    #[test]
    fn purchase_passes_id_reference_and_time_to_the_store() {
        let id = ReservationId::generate(NOW);
        let reference = PaymentReference::parse("pay_123").unwrap();
        let mut store = MockReservationStore::new();
        let expected = reference.clone();
        store
            .expect_purchase_batch()
            .withf(move |requests, now| {
                requests
                    == [PurchaseRequest {
                        id,
                        payment_reference: expected.clone(),
                    }]
                    && *now == NOW
            })
            .times(1)
            .returning(|requests, _| {
                Ok(requests
                    .iter()
                    .map(|r| {
                        Ok(reservation(
                            r.id,
                            EventId::new(1),
                            ReservationStatus::Purchased,
                        ))
                    })
                    .collect())
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

    #[test]
    fn purchase_passes_store_failures_through() {
        let mut store = MockReservationStore::new();
        store
            .expect_purchase_batch()
            .returning(|_, _| Err(StoreError::unavailable("down").into()));
        let t = ticketing(MockEventStore::new(), store);
        assert!(matches!(
            t.purchase(ReservationId::generate(NOW), None),
            Err(DomainError::Store(StoreError {
                kind: StoreErrorKind::Unavailable,
                ..
            }))
        ));
    }

    #[test]
    fn purchase_batch_fails_when_the_store_answers_the_wrong_number_of_outcomes() {
        let mut store = MockReservationStore::new();
        store.expect_purchase_batch().returning(|_, _| Ok(vec![]));
        let t = ticketing(MockEventStore::new(), store);
        let requests = vec![PurchaseRequest {
            id: ReservationId::generate(NOW),
            payment_reference: None,
        }];
        assert!(matches!(
            t.purchase_batch(&requests),
            Err(DomainError::Store(StoreError {
                kind: StoreErrorKind::Internal,
                ..
            }))
        ));
    }
}

//! Use case: reserve tickets.

use chrono::{DateTime, Utc};

use crate::error::{DomainError, StoreError};
use crate::ids::{EventId, ReservationId};
use crate::reservation::{HoldRequest, Reservation};
use crate::store::ReserveOutcome;
use crate::ticketing::Ticketing;

impl Ticketing {
    /// Reserves one ticket of `event`, held for the configured TTL.
    ///
    /// # Errors
    /// [`DomainError::SoldOut`] when no ticket is available, [`DomainError::EventNotFound`],
    /// or [`DomainError::Store`].
    pub fn reserve(&self, event: EventId) -> Result<Reservation, DomainError> {
        self.reserve_batch(event, 1)?
            .pop()
            .unwrap_or_else(|| Err(StoreError::internal("store answered no outcome").into()))
    }

    /// Serves `count` reserve requests for `event` in one store transaction, granting them in
    /// order while tickets remain. This is what group commit calls with the requests it queued.
    ///
    /// # Errors
    /// For the whole batch: [`DomainError::EventNotFound`] or [`DomainError::Store`]. Per
    /// request, in the returned outcomes: [`DomainError::SoldOut`].
    pub fn reserve_batch(
        &self,
        event: EventId,
        count: usize,
    ) -> Result<Vec<ReserveOutcome>, DomainError> {
        let now = self.clock.now();
        let requests: Vec<HoldRequest> = (0..count).map(|_| self.hold_request(now)).collect();
        let outcomes = self.reservations.reserve(event, &requests, now)?;
        if outcomes.len() != count {
            return Err(StoreError::internal(format!(
                "store answered {} outcomes for {count} requests",
                outcomes.len()
            ))
            .into());
        }
        Ok(outcomes)
    }

    fn hold_request(&self, now: DateTime<Utc>) -> HoldRequest {
        HoldRequest {
            id: ReservationId::generate(now),
            expires_at: now + self.hold_ttl.get(),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::test_support::{reservation, ticketing, NOW};
    use crate::{MockEventStore, MockReservationStore, ReservationStatus, StoreErrorKind};

    #[test]
    fn reserve_returns_a_hold_that_expires_after_the_ttl() {
        let mut store = MockReservationStore::new();
        store
            .expect_reserve()
            .withf(|event, requests, now| {
                *event == EventId::new(7)
                    && requests.len() == 1
                    && requests[0].expires_at == NOW + TimeDelta::seconds(600)
                    && *now == NOW
            })
            .times(1)
            .returning(|event, requests, _| {
                Ok(requests
                    .iter()
                    .map(|r| Ok(reservation(r.id, event, ReservationStatus::Reserved)))
                    .collect())
            });
        let t = ticketing(MockEventStore::new(), store);
        let hold = t.reserve(EventId::new(7)).unwrap();
        assert_eq!(hold.event_id, EventId::new(7));
        assert_eq!(hold.status, ReservationStatus::Reserved);
    }

    #[test]
    fn reserve_fails_with_sold_out_when_no_ticket_is_left() {
        let mut store = MockReservationStore::new();
        store
            .expect_reserve()
            .returning(|_, _, _| Ok(vec![Err(DomainError::SoldOut)]));
        let t = ticketing(MockEventStore::new(), store);
        assert_eq!(t.reserve(EventId::new(1)), Err(DomainError::SoldOut));
    }

    #[test]
    fn reserve_fails_with_event_not_found_for_an_unknown_event() {
        let mut store = MockReservationStore::new();
        store
            .expect_reserve()
            .returning(|_, _, _| Err(DomainError::EventNotFound));
        let t = ticketing(MockEventStore::new(), store);
        assert_eq!(t.reserve(EventId::new(1)), Err(DomainError::EventNotFound));
    }

    #[test]
    fn reserve_passes_store_failures_through() {
        let mut store = MockReservationStore::new();
        store
            .expect_reserve()
            .returning(|_, _, _| Err(StoreError::unavailable("down").into()));
        let t = ticketing(MockEventStore::new(), store);
        assert!(matches!(
            t.reserve(EventId::new(1)),
            Err(DomainError::Store(StoreError {
                kind: StoreErrorKind::Unavailable,
                ..
            }))
        ));
    }

    #[test]
    fn reserve_fails_when_the_store_answers_the_wrong_number_of_outcomes() {
        let mut store = MockReservationStore::new();
        store.expect_reserve().returning(|_, _, _| Ok(vec![]));
        let t = ticketing(MockEventStore::new(), store);
        assert!(matches!(
            t.reserve(EventId::new(1)),
            Err(DomainError::Store(StoreError {
                kind: StoreErrorKind::Internal,
                ..
            }))
        ));
    }

    #[test]
    fn reserve_batch_sends_one_request_per_hold_with_distinct_ids() {
        let mut store = MockReservationStore::new();
        store
            .expect_reserve()
            .withf(|_, requests, _| {
                let mut ids: Vec<_> = requests.iter().map(|r| r.id).collect();
                ids.sort();
                ids.dedup();
                requests.len() == 3 && ids.len() == 3
            })
            .returning(|event, requests, _| {
                Ok(requests
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        if i < 2 {
                            Ok(reservation(r.id, event, ReservationStatus::Reserved))
                        } else {
                            Err(DomainError::SoldOut)
                        }
                    })
                    .collect())
            });
        let t = ticketing(MockEventStore::new(), store);
        let outcomes = t.reserve_batch(EventId::new(1), 3).unwrap();
        assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 2);
        assert_eq!(outcomes[2], Err(DomainError::SoldOut));
    }
}

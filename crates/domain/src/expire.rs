//! Use case: mark past-due holds `expired`, in bounded batches.

use crate::error::DomainError;
use crate::ticketing::Ticketing;

/// How many holds one expiry transaction marks at most, unless told otherwise.
pub const DEFAULT_EXPIRE_BATCH: u32 = 1_000;

impl Ticketing {
    /// Marks every hold that is past due now `expired`, one short transaction per batch of at
    /// most `batch` holds, and returns how many it marked.
    ///
    /// The time is read once, so a run ends even while new holds keep falling due. It stops at
    /// the first batch that marks nothing rather than the first short one: a batch comes up
    /// short when a concurrent reserve or sweep released some of its rows, not only at the end.
    ///
    /// # Errors
    /// [`DomainError::Store`]; the batches committed before the failure stay committed.
    pub fn expire_due(&self, batch: u32) -> Result<u64, DomainError> {
        let batch = batch.max(1);
        let now = self.clock.now();
        let mut total = 0;
        loop {
            let marked = self.reservations.expire_due(now, batch)?;
            total += u64::from(marked);
            if marked == 0 {
                return Ok(total);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use mockall::Sequence;

    use super::*;
    use crate::test_support::{ticketing, NOW};
    use crate::{MockEventStore, MockReservationStore, StoreError};

    #[test]
    fn expire_due_runs_batches_until_one_marks_nothing() {
        let mut store = MockReservationStore::new();
        let mut seq = Sequence::new();
        for marked in [10, 3, 10, 0] {
            store
                .expect_expire_due()
                .withf(|now, limit| *now == NOW && *limit == 10)
                .times(1)
                .in_sequence(&mut seq)
                .returning(move |_, _| Ok(marked));
        }
        assert_eq!(
            ticketing(MockEventStore::new(), store).expire_due(10),
            Ok(23)
        );
    }

    #[test]
    fn expire_due_treats_a_zero_batch_size_as_one() {
        let mut store = MockReservationStore::new();
        store
            .expect_expire_due()
            .withf(|_, limit| *limit == 1)
            .times(1)
            .returning(|_, _| Ok(0));
        assert_eq!(ticketing(MockEventStore::new(), store).expire_due(0), Ok(0));
    }

    #[test]
    fn expire_due_marks_nothing_when_nothing_is_due() {
        let mut store = MockReservationStore::new();
        store.expect_expire_due().times(1).returning(|_, _| Ok(0));
        assert_eq!(
            ticketing(MockEventStore::new(), store).expire_due(DEFAULT_EXPIRE_BATCH),
            Ok(0)
        );
    }

    #[test]
    fn expire_due_stops_at_the_first_store_failure() {
        let mut store = MockReservationStore::new();
        let mut seq = Sequence::new();
        store
            .expect_expire_due()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _| Ok(5));
        store
            .expect_expire_due()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _| Err(StoreError::unavailable("gone").into()));
        assert!(matches!(
            ticketing(MockEventStore::new(), store).expire_due(5),
            Err(DomainError::Store(_))
        ));
    }
}

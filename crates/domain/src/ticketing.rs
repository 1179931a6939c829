//! The use cases, bundled with the store, the clock and the settings they need.

use std::fmt;
use std::sync::Arc;

use chrono::TimeDelta;

use crate::batch;
use crate::clock::Clock;
use crate::command::{
    Cancel, Command, CommandOutcome, Extend, Operation, Purchase, Release, Reserve,
};
use crate::error::{DomainError, StoreError};
use crate::idempotency::{RenderAnswer, StoredAnswer};
use crate::ledger::Rules;
use crate::reservation::Reservation;
use crate::seating::SeatMaps;
use crate::store::{Reads, Store, Stored, UnitOfWork};
use crate::validation::DEFAULT_MAX_TICKETS_PER_RESERVATION;

/// How long a hold lasts: between one second and one week.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldTtl(TimeDelta);

impl HoldTtl {
    /// The longest hold, in seconds.
    pub const MAX_SECONDS: u64 = 7 * 24 * 3600;

    /// A TTL of `seconds`, if between 1 and [`HoldTtl::MAX_SECONDS`].
    pub fn from_seconds(seconds: u64) -> Option<Self> {
        (1..=Self::MAX_SECONDS)
            .contains(&seconds)
            .then(|| i64::try_from(seconds).ok())
            .flatten()
            .map(|s| Self(TimeDelta::seconds(s)))
    }

    /// The TTL.
    pub const fn get(self) -> TimeDelta {
        self.0
    }
}

/// The default of how long an idempotency key is kept: 24 hours.
pub const DEFAULT_IDEMPOTENCY_TTL_SECONDS: u64 = 24 * 3600;

/// The business settings the use cases apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// How long a new hold lasts.
    pub hold_ttl: HoldTtl,
    /// The most tickets one reservation may hold.
    pub max_tickets_per_reservation: u32,
    /// The most tickets one customer may hold or have bought per event (`None`: no limit).
    pub max_tickets_per_customer: Option<u32>,
    /// How long an idempotency key and its first answer are kept.
    pub idempotency_ttl: TimeDelta,
    /// The longest a hold may last from its creation, extends included.
    pub max_hold: TimeDelta,
    /// How long outbox messages (and webhook deliveries that are done) are kept.
    pub outbox_retention: TimeDelta,
}

/// Outbox messages are kept a week unless told otherwise.
pub const DEFAULT_OUTBOX_RETENTION_HOURS: u32 = 168;

impl Policy {
    /// The defaults, with holds of `hold_ttl` (extended up to three times as long).
    pub fn with_hold_ttl(hold_ttl: HoldTtl) -> Self {
        Self {
            hold_ttl,
            max_tickets_per_reservation: DEFAULT_MAX_TICKETS_PER_RESERVATION,
            max_tickets_per_customer: None,
            idempotency_ttl: TimeDelta::seconds(
                i64::try_from(DEFAULT_IDEMPOTENCY_TTL_SECONDS).unwrap_or(i64::MAX),
            ),
            max_hold: hold_ttl.get() * 3,
            outbox_retention: TimeDelta::hours(i64::from(DEFAULT_OUTBOX_RETENTION_HOURS)),
        }
    }
}

/// The reservation service's use cases: what the HTTP API and the command line call.
#[derive(Clone)]
pub struct Ticketing {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) policy: Policy,
    /// Seat maps kept between batches and reads (by this process).
    pub(crate) seats: Arc<SeatMaps>,
}

impl fmt::Debug for Ticketing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticketing")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// For commands that carry no idempotency key, whose answers are never stored.
struct NoAnswers;

impl RenderAnswer for NoAnswers {
    fn render(
        &self,
        _: crate::command::OperationKind,
        _: &Result<Reservation, DomainError>,
    ) -> StoredAnswer {
        StoredAnswer {
            status: 500,
            body: String::new(),
        }
    }
}

impl Ticketing {
    /// Wires the use cases to their store and clock.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, policy: Policy) -> Self {
        Self {
            store,
            clock,
            policy,
            seats: Arc::new(SeatMaps::default()),
        }
    }

    /// Runs `work` in one write transaction and returns what it made: committed when it
    /// returns `Ok`, rolled back when it returns `Err`.
    pub(crate) fn transact<T>(
        &self,
        mut work: impl FnMut(&mut dyn UnitOfWork) -> Stored<T>,
    ) -> Stored<T> {
        let mut made = None;
        self.store.write(&mut |uow| {
            made = Some(work(uow)?);
            Ok(())
        })?;
        made.ok_or_else(|| StoreError::internal("the transaction did not run").into())
    }

    /// Runs `work` on a connection of its own, outside any write transaction.
    pub(crate) fn read<T>(&self, mut work: impl FnMut(&mut dyn Reads) -> Stored<T>) -> Stored<T> {
        let mut found = None;
        self.store.read(&mut |reads| {
            found = Some(work(reads)?);
            Ok(())
        })?;
        found.ok_or_else(|| StoreError::internal("the read did not run").into())
    }

    /// The settings.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The clock the use cases read.
    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// Serves a batch of reserves, purchases and cancels, of any events, in one store
    /// transaction, deciding them in order exactly as serving them one at a time would. This is
    /// what group commit calls with the requests it queued. The first answer to each command
    /// with an idempotency key is rendered by `render` and stored with the effect.
    ///
    /// # Errors
    /// For the whole batch: [`DomainError::Store`] (nothing took effect, or, with
    /// [`crate::StoreErrorKind::OutcomeUnknown`], maybe everything did). Per command, in the
    /// outcomes: [`DomainError::SoldOut`], [`DomainError::TypesSoldOut`],
    /// [`DomainError::HoldLifetimeExceeded`], [`DomainError::Validation`] (ticket types and
    /// releases that the stored inventory refuses), [`DomainError::CustomerLimitReached`],
    /// [`DomainError::EventNotFound`], [`DomainError::ReservationNotFound`],
    /// [`DomainError::AlreadyPurchased`], [`DomainError::InvalidOrExpired`],
    /// [`DomainError::IdempotencyKeyReused`], [`DomainError::IdempotencyKeyInProgress`].
    pub fn execute(
        &self,
        commands: &[Command],
        render: &dyn RenderAnswer,
    ) -> Result<Vec<CommandOutcome>, DomainError> {
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.clock.now();
        let rules = Rules {
            now,
            hold_ttl: self.policy.hold_ttl,
            max_hold: self.policy.max_hold,
            customer_limit: self.policy.max_tickets_per_customer,
        };
        let keep_until = now + self.policy.idempotency_ttl;
        let decided =
            self.transact(|uow| batch::run(uow, commands, rules, keep_until, render, &self.seats))?;
        // Committed: the maps are the store's state at their versions now.
        for map in decided.maps {
            self.seats.keep(map);
        }
        let outcomes = decided.outcomes;
        if outcomes.len() != commands.len() {
            return Err(StoreError::internal(format!(
                "{} outcomes for {} commands",
                outcomes.len(),
                commands.len()
            ))
            .into());
        }
        Ok(outcomes)
    }

    fn execute_one(&self, operation: Operation) -> Result<Reservation, DomainError> {
        self.execute(&[Command::new(operation)], &NoAnswers)?
            .pop()
            .and_then(CommandOutcome::decided)
            .unwrap_or_else(|| Err(StoreError::internal("no outcome").into()))
    }

    /// Reserves tickets, held for the configured TTL: a batch of one.
    ///
    /// # Errors
    /// [`DomainError::SoldOut`], [`DomainError::CustomerLimitReached`],
    /// [`DomainError::EventNotFound`] or [`DomainError::Store`].
    pub fn reserve(&self, reserve: Reserve) -> Result<Reservation, DomainError> {
        self.execute_one(Operation::Reserve(reserve))
    }

    /// Purchases a hold while it is active: a batch of one.
    ///
    /// # Errors
    /// [`DomainError::ReservationNotFound`], [`DomainError::AlreadyPurchased`],
    /// [`DomainError::InvalidOrExpired`] (expired, canceled or past due) or
    /// [`DomainError::Store`].
    pub fn purchase(&self, purchase: Purchase) -> Result<Reservation, DomainError> {
        self.execute_one(Operation::Purchase(purchase))
    }

    /// Cancels an active hold, releasing its tickets at once: a batch of one.
    ///
    /// # Errors
    /// As [`Ticketing::purchase`].
    pub fn cancel(&self, cancel: Cancel) -> Result<Reservation, DomainError> {
        self.execute_one(Operation::Cancel(cancel))
    }

    /// Makes an active hold last longer: a batch of one.
    ///
    /// # Errors
    /// As [`Ticketing::purchase`], and [`DomainError::HoldLifetimeExceeded`].
    pub fn extend(&self, extend: Extend) -> Result<Reservation, DomainError> {
        self.execute_one(Operation::Extend(extend))
    }

    /// Gives back part of an active hold: a batch of one.
    ///
    /// # Errors
    /// As [`Ticketing::purchase`], and [`DomainError::Validation`] for a part the hold does
    /// not have (or all of it).
    pub fn release(&self, release: Release) -> Result<Reservation, DomainError> {
        self.execute_one(Operation::Release(release))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_ttl_is_between_one_second_and_one_week() {
        assert!(HoldTtl::from_seconds(0).is_none());
        assert_eq!(
            HoldTtl::from_seconds(600).map(HoldTtl::get),
            Some(TimeDelta::seconds(600))
        );
        assert!(HoldTtl::from_seconds(HoldTtl::MAX_SECONDS).is_some());
        assert!(HoldTtl::from_seconds(HoldTtl::MAX_SECONDS + 1).is_none());
    }
}

//! Use cases: operators manage webhook endpoints; a server's dispatcher claims deliveries and
//! records their attempts.

use std::time::Duration;

use chrono::TimeDelta;

use crate::error::DomainError;
use crate::ticketing::Ticketing;
use crate::webhook::{Attempt, Delivery, DeliveryRecord, Endpoint, EndpointId, NewEndpoint};

/// The most deliveries one listing shows.
pub const MAX_DELIVERIES_PER_READ: u32 = 1_000;

impl Ticketing {
    /// Adds an endpoint signed with `secret`: every message it wants from now on is delivered
    /// to it.
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    pub fn add_endpoint(&self, new: &NewEndpoint, secret: &str) -> Result<Endpoint, DomainError> {
        let now = self.clock.now();
        self.transact(|uow| uow.create_endpoint(new, secret, now))
    }

    /// The endpoints, by id (secrets are not read back).
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    pub fn endpoints(&self) -> Result<Vec<Endpoint>, DomainError> {
        self.read(|r| r.endpoints())
    }

    /// Removes an endpoint; its pending deliveries fail, its history stays.
    ///
    /// # Errors
    /// [`DomainError::WebhookNotFound`]; [`DomainError::Store`].
    pub fn remove_endpoint(&self, id: EndpointId) -> Result<(), DomainError> {
        if self.transact(|uow| uow.remove_endpoint(id))? {
            Ok(())
        } else {
            Err(DomainError::WebhookNotFound)
        }
    }

    /// The latest `limit` (1 to [`MAX_DELIVERIES_PER_READ`]) deliveries of an endpoint,
    /// newest first.
    ///
    /// # Errors
    /// [`DomainError::WebhookNotFound`]; [`DomainError::Store`].
    pub fn deliveries(
        &self,
        endpoint: EndpointId,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, DomainError> {
        let limit = limit.clamp(1, MAX_DELIVERIES_PER_READ);
        self.read(|r| {
            if !r.endpoints()?.iter().any(|e| e.id == endpoint) {
                return Err(DomainError::WebhookNotFound);
            }
            r.deliveries(endpoint, limit)
        })
    }

    /// Makes a delivery pending again, due now (an operator's manual retry).
    ///
    /// # Errors
    /// [`DomainError::WebhookNotFound`]; [`DomainError::Store`].
    pub fn retry_delivery(&self, endpoint: EndpointId, delivery: i64) -> Result<(), DomainError> {
        let now = self.clock.now();
        if self.transact(|uow| uow.retry_delivery(endpoint, delivery, now))? {
            Ok(())
        } else {
            Err(DomainError::WebhookNotFound)
        }
    }

    /// Whether any delivery is due now (a read: no lock, no write).
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    pub fn deliveries_due(&self) -> Result<bool, DomainError> {
        let now = self.clock.now();
        self.read(|r| r.deliveries_due(now))
    }

    /// Up to `limit` deliveries due now, leased for `lease` (no other claim gets them before it
    /// ends, so a server that dies with them loses nothing: they are due again then).
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    pub fn claim_deliveries(
        &self,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<Delivery>, DomainError> {
        let now = self.clock.now();
        let until = now + TimeDelta::from_std(lease).unwrap_or(TimeDelta::seconds(60));
        self.transact(|uow| uow.claim_deliveries(now, until, limit))
    }

    /// Records an attempt; `false` when it was recorded already (its lease ran out and another
    /// server made it too).
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    pub fn record_attempt(&self, attempt: &Attempt) -> Result<bool, DomainError> {
        self.transact(|uow| uow.record_attempt(attempt))
    }

    /// Records attempts in one transaction (one commit for many: the dispatcher's group
    /// commit); returns how many were new.
    ///
    /// # Errors
    /// Only [`DomainError::Store`]; then none is recorded (their leases bring them back).
    pub fn record_attempts(&self, attempts: &[Attempt]) -> Result<usize, DomainError> {
        self.transact(|uow| {
            let mut recorded = 0;
            for attempt in attempts {
                recorded += usize::from(uow.record_attempt(attempt)?);
            }
            Ok(recorded)
        })
    }

    /// How many deliveries are pending.
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    pub fn delivery_backlog(&self) -> Result<i64, DomainError> {
        self.read(|r| r.delivery_backlog())
    }

    /// The instant the clock shows (for the dispatcher's attempts).
    pub fn now(&self) -> crate::store::Timestamp {
        self.clock.now()
    }
}

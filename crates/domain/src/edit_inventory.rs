//! Use cases: operators add quotas and ticket types to an event, and change a quota.

use crate::edit_event::release_all_past_due;
use crate::error::DomainError;
use crate::ids::{EventId, QuotaId};
use crate::inventory::{
    InventorySummary, NewQuota, NewTicketType, QuotaPatch, QuotaSummary, TypeSummary,
    MAX_QUOTAS_PER_TYPE,
};
use crate::store::{Timestamp, UnitOfWork};
use crate::ticketing::Ticketing;
use crate::validation::EventName;

impl Ticketing {
    /// Adds a named quota to an event, under its lock.
    ///
    /// # Errors
    /// [`DomainError::EventNotFound`] or [`DomainError::Store`].
    pub fn create_quota(
        &self,
        event: EventId,
        new: &NewQuota,
    ) -> Result<QuotaSummary, DomainError> {
        let now = self.clock.now();
        let quota = self.transact(|uow| {
            lock(uow, event)?;
            uow.create_quota(event, new, now)
        })?;
        Ok(QuotaSummary {
            purchased: 0,
            reserved: 0,
            available: quota.capacity,
            quota,
        })
    }

    /// Changes a quota's name or capacity under its event's lock, so it cannot race a reserve:
    /// a capacity below the quota's tickets purchased and held by active holds is refused and
    /// nothing changes.
    ///
    /// # Errors
    /// [`DomainError::EventNotFound`], [`DomainError::QuotaNotFound`],
    /// [`DomainError::CapacityBelowSold`] or [`DomainError::Store`].
    pub fn update_quota(
        &self,
        event: EventId,
        id: QuotaId,
        patch: &QuotaPatch,
    ) -> Result<QuotaSummary, DomainError> {
        let now = self.clock.now();
        self.transact(|uow| update_quota(uow, event, id, patch, now))?;
        self.inventory(event)?
            .quotas
            .into_iter()
            .find(|q| q.quota.id == id)
            .ok_or(DomainError::QuotaNotFound)
    }

    /// Adds a ticket type to an event, drawing from some of its quotas (and its root).
    ///
    /// # Errors
    /// [`DomainError::EventNotFound`], [`DomainError::Validation`] on `quotas` (unknown,
    /// another event's, repeated or too many), or [`DomainError::Store`].
    pub fn create_ticket_type(
        &self,
        event: EventId,
        new: &NewTicketType,
    ) -> Result<TypeSummary, DomainError> {
        let now = self.clock.now();
        let mut quotas = new.quotas.clone();
        quotas.sort_unstable();
        quotas.dedup();
        if quotas.len() != new.quotas.len() || quotas.len() > MAX_QUOTAS_PER_TYPE {
            return Err(invalid_quotas(format!(
                "The quotas must be distinct, at most {MAX_QUOTAS_PER_TYPE}."
            )));
        }
        let new = NewTicketType {
            quotas,
            ..new.clone()
        };
        let created = self.transact(|uow| {
            lock(uow, event)?;
            let found = uow.read_quotas(event, &new.quotas)?;
            if found.len() != new.quotas.len() {
                return Err(invalid_quotas("The selected quotas are invalid.".into()));
            }
            uow.create_ticket_type(event, &new, now)
        })?;
        self.inventory(event)?
            .ticket_types
            .into_iter()
            .find(|t| t.ticket_type.id == created.id)
            .ok_or_else(|| crate::StoreError::internal("the new ticket type was not read").into())
    }

    /// The event's quotas and ticket types with their counts now.
    ///
    /// # Errors
    /// [`DomainError::EventNotFound`] or [`DomainError::Store`].
    pub fn inventory(&self, event: EventId) -> Result<InventorySummary, DomainError> {
        Ok(self.event_summary(event)?.inventory.unwrap_or_default())
    }
}

fn invalid_quotas(message: String) -> DomainError {
    DomainError::Validation {
        field: "quotas",
        message,
    }
}

fn lock(
    uow: &mut dyn UnitOfWork,
    event: EventId,
) -> Result<crate::store::LockedEvent, DomainError> {
    uow.lock_events(&[event], &[])?
        .pop()
        .ok_or(DomainError::EventNotFound)
}

fn update_quota(
    uow: &mut dyn UnitOfWork,
    event: EventId,
    id: QuotaId,
    patch: &QuotaPatch,
    now: Timestamp,
) -> Result<(), DomainError> {
    let locked = lock(uow, event)?;
    let read = |uow: &mut dyn UnitOfWork| {
        uow.read_quotas(event, &[id])?
            .pop()
            .ok_or(DomainError::QuotaNotFound)
    };
    let (quota, mut counters) = read(uow)?;
    let capacity = match patch.capacity {
        Some(capacity) => capacity,
        None => crate::Capacity::new(i64::from(quota.capacity))?,
    };
    let over = |c: crate::inventory::Counters| {
        i64::from(capacity.get()) < i64::from(c.purchased) + i64::from(c.held)
    };
    if over(counters) && locked.held > 0 {
        // The counters may still hold past-due tickets: free them all (the release writes its
        // changes to the counters, which are read again), so the decision is taken on the
        // truth and the store's own check accepts the change.
        release_all_past_due(uow, event, now)?;
        counters = read(uow)?.1;
    }
    if over(counters) {
        return Err(DomainError::CapacityBelowSold);
    }
    let name = match &patch.name {
        Some(name) => name.clone(),
        None => EventName::parse(&quota.name)?,
    };
    uow.update_quota(&quota, &NewQuota { name, capacity }, now)?;
    Ok(())
}

//! The rules of SPEC 3 and every error of every port, one call at a time.

use chrono::TimeDelta;
use domain::{
    DomainError, EventId, EventStore, PaymentReference, ReservationId, ReservationStatus,
    ReservationStore,
};

use crate::{assert_consistent, create_event, hold, now, purchase_one, reserve_one, Harness, TTL};

const UNKNOWN_EVENT: EventId = EventId::new(i64::MAX);

pub fn create_event_stores_name_and_capacity_with_nothing_taken<H: Harness>() {
    let h = H::new();
    let store = h.store();
    let t = now();
    let event = create_event(&*store, 7, t);
    assert_eq!(
        (event.name.as_str(), event.capacity),
        ("Conformance gala", 7)
    );
    assert_eq!((event.created_at, event.updated_at), (t, t));
    let snap = store.event_snapshot(event.id, t).unwrap();
    assert_eq!(snap.event, event);
    assert_eq!((snap.purchased, snap.held, snap.past_due), (0, 0, 0));
    let other = create_event(&*store, 1, t);
    assert_ne!(other.id, event.id);
}

pub fn event_snapshot_fails_with_event_not_found_for_an_unknown_event<H: Harness>() {
    let h = H::new();
    assert_eq!(
        h.store().event_snapshot(UNKNOWN_EVENT, now()),
        Err(DomainError::EventNotFound)
    );
}

pub fn audit_event_fails_with_event_not_found_for_an_unknown_event<H: Harness>() {
    let h = H::new();
    assert_eq!(
        h.store().audit_event(UNKNOWN_EVENT, now()),
        Err(DomainError::EventNotFound)
    );
}

pub fn reserve_grants_a_hold_that_counts_as_reserved<H: Harness>() {
    let h = H::new();
    let store = h.store();
    let t = now();
    let event = create_event(&*store, 2, t);
    let hold = reserve_one(&*store, event.id, t, TTL).unwrap();
    assert_eq!(hold.event_id, event.id);
    assert_eq!(hold.status, ReservationStatus::Reserved);
    assert_eq!(hold.expires_at, Some(t + TTL));
    assert_eq!(
        (hold.purchased_at, hold.payment_reference.as_deref()),
        (None, None)
    );
    let snap = store.event_snapshot(event.id, t).unwrap();
    assert_eq!((snap.purchased, snap.held, snap.past_due), (0, 1, 0));
    assert_consistent(&*store, event.id, t);
}

pub fn reserve_fails_with_sold_out_when_no_ticket_is_left<H: Harness>() {
    let h = H::new();
    let store = h.store();
    let t = now();
    let event = create_event(&*store, 1, t);
    reserve_one(&*store, event.id, t, TTL).unwrap();
    assert_eq!(
        reserve_one(&*store, event.id, t, TTL),
        Err(DomainError::SoldOut)
    );
    let audit = assert_consistent(&*store, event.id, t);
    assert_eq!(audit.reserved_rows, 1);
}

pub fn reserve_fails_with_event_not_found_for_an_unknown_event<H: Harness>() {
    let h = H::new();
    let t = now();
    assert_eq!(
        h.store().reserve(UNKNOWN_EVENT, &[hold(t, TTL)], t),
        Err(DomainError::EventNotFound)
    );
}

pub fn reserve_batch_grants_in_arrival_order_until_sold_out<H: Harness>() {
    let h = H::new();
    let store = h.store();
    let t = now();
    let event = create_event(&*store, 3, t);
    let requests: Vec<_> = (0..5).map(|_| hold(t, TTL)).collect();
    let outcomes = store.reserve(event.id, &requests, t).unwrap();
    assert_eq!(outcomes.len(), 5);
    for (request, outcome) in requests.iter().zip(&outcomes).take(3) {
        let granted = outcome.as_ref().unwrap();
        assert_eq!(granted.id, request.id);
        assert_eq!(
            store.find_reservation(request.id).unwrap().status,
            ReservationStatus::Reserved
        );
    }
    assert_eq!(
        outcomes[3..],
        [Err(DomainError::SoldOut), Err(DomainError::SoldOut)]
    );
    assert_eq!(
        store.find_reservation(requests[4].id),
        Err(DomainError::ReservationNotFound)
    );
    assert_eq!(assert_consistent(&*store, event.id, t).reserved_rows, 3);
    assert_eq!(store.reserve(event.id, &[], t), Ok(vec![]));
}

pub fn a_past_due_hold_stops_counting_before_any_expire_run<H: Harness>() {
    let h = H::new();
    let store = h.store();
    let t0 = now();
    let ttl = TimeDelta::seconds(30);
    let event = create_event(&*store, 1, t0);
    let first = reserve_one(&*store, event.id, t0, ttl).unwrap();
    assert_eq!(
        reserve_one(
            &*store,
            event.id,
            t0 + ttl - TimeDelta::microseconds(1),
            ttl
        ),
        Err(DomainError::SoldOut)
    );

    // At the expiry instant the hold stops counting, with no expire run in between.
    let t1 = t0 + ttl;
    let snap = store.event_snapshot(event.id, t1).unwrap();
    assert_eq!((snap.purchased, snap.held - snap.past_due), (0, 0));
    let second = reserve_one(&*store, event.id, t1, ttl).unwrap();
    assert_eq!(
        store.find_reservation(first.id).unwrap().status,
        ReservationStatus::Expired
    );
    assert_eq!(
        store.find_reservation(second.id).unwrap().status,
        ReservationStatus::Reserved
    );
    let audit = assert_consistent(&*store, event.id, t1);
    assert_eq!((audit.reserved_rows, audit.active_rows), (1, 1));
}

pub fn reserve_releases_past_due_holds_only_when_the_counters_refuse<H: Harness>() {
    let h = H::new();
    let store = h.store();
    let t0 = now();
    let event = create_event(&*store, 2, t0);
    let short = reserve_one(&*store, event.id, t0, TimeDelta::seconds(5)).unwrap();
    let t1 = t0 + TimeDelta::seconds(6);
    // One ticket is free by the counters: no release needed, the past-due hold stays as it is.
    reserve_one(&*store, event.id, t1, TTL).unwrap();
    assert_eq!(
        store.find_reservation(short.id).unwrap().status,
        ReservationStatus::Reserved
    );
    let snap = store.event_snapshot(event.id, t1).unwrap();
    assert_eq!((snap.held, snap.past_due), (2, 1));
    // Now the counters say sold out; the past-due hold is released and its ticket granted.
    reserve_one(&*store, event.id, t1, TTL).unwrap();
    assert_eq!(
        store.find_reservation(short.id).unwrap().status,
        ReservationStatus::Expired
    );
    assert_eq!(
        reserve_one(&*store, event.id, t1, TTL),
        Err(DomainError::SoldOut)
    );
    assert_consistent(&*store, event.id, t1);
}

pub fn purchase_marks_an_active_hold_purchased_with_its_reference<H: Harness>() {
    let h = H::new();
    let store = h.store();
    let t0 = now();
    let event = create_event(&*store, 1, t0);
    let hold = reserve_one(&*store, event.id, t0, TTL).unwrap();
    let t1 = t0 + TimeDelta::seconds(1);
    let reference = PaymentReference::parse("pay_42").unwrap();
    let bought = purchase_one(&*store, hold.id, reference, t1).unwrap();
    assert_eq!(bought.id, hold.id);
    assert_eq!(bought.status, ReservationStatus::Purchased);
    assert_eq!(bought.purchased_at, Some(t1));
    assert_eq!(bought.updated_at, t1);
    assert_eq!(bought.created_at, t0);
    assert_eq!(bought.payment_reference.as_deref(), Some("pay_42"));
    assert_eq!(store.find_reservation(hold.id).unwrap(), bought);
    let snap = store.event_snapshot(event.id, t1).unwrap();
    assert_eq!((snap.purchased, snap.held), (1, 0));
    // A purchased ticket stays taken forever, long after the hold would have expired.
    let later = t1 + TTL + TTL;
    assert_eq!(
        reserve_one(&*store, event.id, later, TTL),
        Err(DomainError::SoldOut)
    );
    assert_consistent(&*store, event.id, later);
}

pub fn purchase_without_reference_keeps_it_empty<H: Harness>() {
    let h = H::new();
    let store = h.store();
    let t = now();
    let event = create_event(&*store, 1, t);
    let hold = reserve_one(&*store, event.id, t, TTL).unwrap();
    let bought = purchase_one(&*store, hold.id, None, t).unwrap();
    assert_eq!(bought.payment_reference, None);
}

pub fn purchase_fails_with_already_purchased_the_second_time<H: Harness>() {
    let h = H::new();
    let store = h.store();
    let t = now();
    let event = create_event(&*store, 1, t);
    let hold = reserve_one(&*store, event.id, t, TTL).unwrap();
    purchase_one(&*store, hold.id, None, t).unwrap();
    assert_eq!(
        purchase_one(&*store, hold.id, None, t),
        Err(DomainError::AlreadyPurchased)
    );
    // Even after the hold's expiry, a purchased reservation says so.
    assert_eq!(
        purchase_one(&*store, hold.id, None, t + TTL + TTL),
        Err(DomainError::AlreadyPurchased)
    );
    assert_eq!(assert_consistent(&*store, event.id, t).purchased_rows, 1);
}

pub fn purchase_fails_with_invalid_or_expired_when_the_hold_is_past_due<H: Harness>() {
    let h = H::new();
    let store = h.store();
    let t0 = now();
    let event = create_event(&*store, 1, t0);
    let hold = reserve_one(&*store, event.id, t0, TTL).unwrap();
    let due = t0 + TTL;
    assert_eq!(
        purchase_one(&*store, hold.id, None, due),
        Err(DomainError::InvalidOrExpired)
    );
    // The refusal released the ticket in the same transaction.
    assert_eq!(
        store.find_reservation(hold.id).unwrap().status,
        ReservationStatus::Expired
    );
    let snap = store.event_snapshot(event.id, due).unwrap();
    assert_eq!((snap.purchased, snap.held), (0, 0));
    assert_eq!(
        purchase_one(&*store, hold.id, None, due),
        Err(DomainError::InvalidOrExpired)
    );
    assert_consistent(&*store, event.id, due);
}

pub fn purchase_fails_with_invalid_or_expired_when_canceled_or_expired<H: Harness>() {
    let h = H::new();
    let store = h.store();
    let t0 = now();
    let event = create_event(&*store, 2, t0);
    let canceled = reserve_one(&*store, event.id, t0, TTL).unwrap();
    store.cancel(canceled.id, t0).unwrap();
    assert_eq!(
        purchase_one(&*store, canceled.id, None, t0),
        Err(DomainError::InvalidOrExpired)
    );
    let swept = reserve_one(&*store, event.id, t0, TimeDelta::seconds(1)).unwrap();
    let t1 = t0 + TimeDelta::seconds(2);
    assert_eq!(store.expire_due(t1, 100), Ok(1));
    assert_eq!(
        purchase_one(&*store, swept.id, None, t1),
        Err(DomainError::InvalidOrExpired)
    );
    assert_consistent(&*store, event.id, t1);
}

pub fn purchase_fails_with_reservation_not_found_for_an_unknown_id<H: Harness>() {
    let h = H::new();
    assert_eq!(
        purchase_one(
            &*h.store(),
            ReservationId::generate(chrono::Utc::now()),
            None,
            now()
        ),
        Err(DomainError::ReservationNotFound)
    );
}

pub fn cancel_releases_the_ticket_at_once<H: Harness>() {
    let h = H::new();
    let store = h.store();
    let t = now();
    let event = create_event(&*store, 1, t);
    let hold = reserve_one(&*store, event.id, t, TTL).unwrap();
    let canceled = store.cancel(hold.id, t).unwrap();
    assert_eq!(canceled.status, ReservationStatus::Canceled);
    assert_eq!(store.cancel(hold.id, t), Err(DomainError::InvalidOrExpired));
    reserve_one(&*store, event.id, t, TTL).unwrap();
    assert_consistent(&*store, event.id, t);
}

pub fn cancel_fails_with_already_purchased_when_purchased<H: Harness>() {
    let h = H::new();
    let store = h.store();
    let t = now();
    let event = create_event(&*store, 1, t);
    let hold = reserve_one(&*store, event.id, t, TTL).unwrap();
    purchase_one(&*store, hold.id, None, t).unwrap();
    assert_eq!(store.cancel(hold.id, t), Err(DomainError::AlreadyPurchased));
    assert_consistent(&*store, event.id, t);
}

pub fn cancel_fails_with_reservation_not_found_for_an_unknown_id<H: Harness>() {
    let h = H::new();
    assert_eq!(
        h.store()
            .cancel(ReservationId::generate(chrono::Utc::now()), now()),
        Err(DomainError::ReservationNotFound)
    );
}

pub fn find_reservation_reads_back_what_reserve_wrote<H: Harness>() {
    let h = H::new();
    let store = h.store();
    let t = now();
    let event = create_event(&*store, 1, t);
    let hold = reserve_one(&*store, event.id, t, TTL).unwrap();
    assert_eq!(store.find_reservation(hold.id).unwrap(), hold);
}

pub fn find_reservation_fails_with_reservation_not_found_for_an_unknown_id<H: Harness>() {
    let h = H::new();
    assert_eq!(
        h.store()
            .find_reservation(ReservationId::generate(chrono::Utc::now())),
        Err(DomainError::ReservationNotFound)
    );
}

pub fn expire_due_marks_only_past_due_holds_in_bounded_batches<H: Harness>() {
    let h = H::new();
    let store = h.store();
    let t0 = now();
    let a = create_event(&*store, 30, t0);
    let b = create_event(&*store, 30, t0);
    let short = TimeDelta::seconds(1);
    let due_a: Vec<_> = (0..15).map(|_| crate::hold(t0, short)).collect();
    let due_b: Vec<_> = (0..10).map(|_| crate::hold(t0, short)).collect();
    let live: Vec<_> = (0..5).map(|_| crate::hold(t0, TTL)).collect();
    assert!(store
        .reserve(a.id, &due_a, t0)
        .unwrap()
        .iter()
        .all(Result::is_ok));
    assert!(store
        .reserve(b.id, &due_b, t0)
        .unwrap()
        .iter()
        .all(Result::is_ok));
    assert!(store
        .reserve(a.id, &live, t0)
        .unwrap()
        .iter()
        .all(Result::is_ok));
    let t1 = t0 + TimeDelta::seconds(2);

    let mut batches = vec![];
    loop {
        let marked = store.expire_due(t1, 10).unwrap();
        assert!(marked <= 10, "a batch marked {marked} > 10");
        if marked == 0 {
            break;
        }
        batches.push(marked);
    }
    assert_eq!(batches.iter().sum::<u32>(), 25);
    for r in due_a.iter().chain(&due_b) {
        assert_eq!(
            store.find_reservation(r.id).unwrap().status,
            ReservationStatus::Expired
        );
    }
    for r in &live {
        assert_eq!(
            store.find_reservation(r.id).unwrap().status,
            ReservationStatus::Reserved
        );
    }
    let audit = assert_consistent(&*store, a.id, t1);
    assert_eq!((audit.reserved_rows, audit.active_rows), (5, 5));
    assert_eq!(assert_consistent(&*store, b.id, t1).reserved_rows, 0);
}

pub fn expire_due_is_idempotent<H: Harness>() {
    let h = H::new();
    let store = h.store();
    let t0 = now();
    let event = create_event(&*store, 3, t0);
    reserve_one(&*store, event.id, t0, TimeDelta::seconds(1)).unwrap();
    let t1 = t0 + TimeDelta::seconds(1);
    assert_eq!(store.expire_due(t1, 1_000), Ok(1));
    assert_eq!(store.expire_due(t1, 1_000), Ok(0));
    assert_eq!(assert_consistent(&*store, event.id, t1).reserved_rows, 0);
}

pub fn a_purchased_hold_is_never_expired<H: Harness>() {
    let h = H::new();
    let store = h.store();
    let t0 = now();
    let event = create_event(&*store, 1, t0);
    let hold = reserve_one(&*store, event.id, t0, TimeDelta::seconds(1)).unwrap();
    purchase_one(&*store, hold.id, None, t0).unwrap();
    assert_eq!(store.expire_due(t0 + TTL, 1_000), Ok(0));
    assert_eq!(
        store.find_reservation(hold.id).unwrap().status,
        ReservationStatus::Purchased
    );
    assert_consistent(&*store, event.id, t0 + TTL);
}

pub fn purchase_batch_decides_in_order_with_one_winner_per_hold<H: Harness>() {
    let h = H::new();
    let store = h.store();
    let t0 = now();
    let event = create_event(&*store, 5, t0);
    let a = reserve_one(&*store, event.id, t0, TTL).unwrap();
    let b = reserve_one(&*store, event.id, t0, TTL).unwrap();
    let due = reserve_one(&*store, event.id, t0, TimeDelta::seconds(1)).unwrap();
    let t1 = t0 + TimeDelta::seconds(2);
    let unknown = ReservationId::generate(t1);
    let request = |id, reference: Option<&str>| domain::PurchaseRequest {
        id,
        payment_reference: reference.and_then(|r| PaymentReference::parse(r).unwrap()),
    };
    let outcomes = store
        .purchase_batch(
            &[
                request(a.id, Some("first")),
                request(b.id, None),
                request(a.id, Some("second")),
                request(unknown, None),
                request(due.id, None),
            ],
            t1,
        )
        .unwrap();
    assert_eq!(outcomes.len(), 5);
    let first = outcomes[0].as_ref().unwrap();
    assert_eq!(
        (first.id, first.status, first.payment_reference.as_deref()),
        (a.id, ReservationStatus::Purchased, Some("first"))
    );
    assert_eq!(first.purchased_at, Some(t1));
    assert_eq!(outcomes[1].as_ref().map(|r| r.id), Ok(b.id));
    assert_eq!(
        outcomes[2..],
        [
            Err(DomainError::AlreadyPurchased),
            Err(DomainError::ReservationNotFound),
            Err(DomainError::InvalidOrExpired)
        ]
    );
    assert_eq!(
        store
            .find_reservation(a.id)
            .unwrap()
            .payment_reference
            .as_deref(),
        Some("first")
    );
    assert_eq!(
        store.find_reservation(due.id).unwrap().status,
        ReservationStatus::Expired
    );
    let audit = assert_consistent(&*store, event.id, t1);
    assert_eq!((audit.purchased_rows, audit.reserved_rows), (2, 0));
    assert_eq!(store.purchase_batch(&[], t1), Ok(vec![]));
}

pub fn purchase_batch_spanning_events_updates_each_events_counters<H: Harness>() {
    let h = H::new();
    let store = h.store();
    let t = now();
    let first = create_event(&*store, 2, t);
    let second = create_event(&*store, 2, t);
    let holds = [
        reserve_one(&*store, second.id, t, TTL).unwrap(),
        reserve_one(&*store, first.id, t, TTL).unwrap(),
        reserve_one(&*store, second.id, t, TTL).unwrap(),
    ];
    let requests: Vec<_> = holds
        .iter()
        .map(|r| domain::PurchaseRequest {
            id: r.id,
            payment_reference: None,
        })
        .collect();
    let outcomes = store.purchase_batch(&requests, t).unwrap();
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    assert_eq!(assert_consistent(&*store, first.id, t).purchased_counter, 1);
    assert_eq!(
        assert_consistent(&*store, second.id, t).purchased_counter,
        2
    );
    assert_eq!(
        reserve_one(&*store, second.id, t, TTL),
        Err(DomainError::SoldOut)
    );
}

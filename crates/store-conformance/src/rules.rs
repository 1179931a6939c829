//! The availability rule and every error of reserve, purchase, cancel and the reads, one request
//! at a time and in batches.

use chrono::TimeDelta;
use domain::{DomainError, EventId, ReservationId, ReservationStatus, Reserve};

use crate::{assert_consistent, batch, cancel, one, purchase, reserve, Fixture, Harness, TTL};

const UNKNOWN_EVENT: EventId = EventId::new(i64::MAX);

fn unknown_hold(f: &Fixture) -> ReservationId {
    ReservationId::generate(f.now(), EventId::new(1))
}

pub fn create_event_stores_name_and_capacity_with_nothing_taken<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let created =
        f.t.create_event(&domain::NewEvent {
            name: domain::EventName::parse(" Conformance gala ").unwrap(),
            capacity: domain::Capacity::new(7).unwrap(),
        })
        .unwrap();
    let event = &created.event;
    assert_eq!(
        (event.name.as_str(), event.capacity),
        ("Conformance gala", 7)
    );
    assert_eq!((event.created_at, event.updated_at), (f.now(), f.now()));
    let read = f.t.event_summary(event.id).unwrap();
    assert_eq!(read, created);
    assert_eq!((read.purchased, read.reserved, read.available), (0, 0, 7));
    assert_ne!(f.event(1).id, event.id);
}

pub fn event_summary_fails_with_event_not_found_for_an_unknown_event<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    assert_eq!(
        f.t.event_summary(UNKNOWN_EVENT),
        Err(DomainError::EventNotFound)
    );
    assert_eq!(
        f.t.audit_event(UNKNOWN_EVENT),
        Err(DomainError::EventNotFound)
    );
    assert_eq!(f.t.event_summaries(&[UNKNOWN_EVENT]), Ok(vec![]));
}

pub fn reserve_grants_a_hold_that_counts_as_reserved<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = f.event(2);
    let hold = one(&f.t, reserve(event.id, 1)).unwrap();
    assert_eq!(hold.event_id, event.id);
    assert_eq!(
        (hold.status, hold.quantity),
        (ReservationStatus::Reserved, 1)
    );
    assert_eq!(hold.expires_at, Some(f.now() + TTL));
    assert_eq!(
        (hold.purchased_at, hold.payment_reference.as_deref()),
        (None, None)
    );
    let s = f.t.event_summary(event.id).unwrap();
    assert_eq!((s.purchased, s.reserved, s.available), (0, 1, 1));
    assert_consistent(&h, &f.t, event.id);
}

pub fn reserve_fails_with_sold_out_when_no_ticket_is_left<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = f.event(1);
    one(&f.t, reserve(event.id, 1)).unwrap();
    assert_eq!(one(&f.t, reserve(event.id, 1)), Err(DomainError::SoldOut));
    assert_eq!(assert_consistent(&h, &f.t, event.id).reserved_tickets, 1);
}

pub fn reserve_fails_with_event_not_found_for_an_unknown_event<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    assert_eq!(
        one(&f.t, reserve(UNKNOWN_EVENT, 1)),
        Err(DomainError::EventNotFound)
    );
}

pub fn reserve_of_several_tickets_takes_them_all_or_none<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = f.event(5);
    let three = one(&f.t, reserve(event.id, 3)).unwrap();
    assert_eq!(three.quantity, 3);
    // Two are left: a reserve of three gets none of them.
    assert_eq!(one(&f.t, reserve(event.id, 3)), Err(DomainError::SoldOut));
    let s = f.t.event_summary(event.id).unwrap();
    assert_eq!((s.reserved, s.available), (3, 2));
    assert_eq!(one(&f.t, reserve(event.id, 2)).unwrap().quantity, 2);
    let audit = assert_consistent(&h, &f.t, event.id);
    assert_eq!((audit.held_counter, audit.reserved_tickets), (5, 5));
    assert_eq!(f.t.reservation(three.id).unwrap().quantity, 3);
}

pub fn a_batch_grants_in_arrival_order_until_sold_out<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = f.event(4);
    let outcomes = batch(
        &f.t,
        vec![
            reserve(event.id, 2),
            reserve(event.id, 3),
            reserve(event.id, 1),
            reserve(event.id, 1),
            reserve(event.id, 1),
        ],
    );
    let granted: Vec<Option<i32>> = outcomes
        .iter()
        .map(|o| o.as_ref().ok().map(|r| r.quantity))
        .collect();
    assert_eq!(granted, vec![Some(2), None, Some(1), Some(1), None]);
    assert_eq!(outcomes[1], Err(DomainError::SoldOut));
    for hold in outcomes.iter().flatten() {
        assert_eq!(f.t.reservation(hold.id).unwrap(), *hold);
    }
    assert_eq!(assert_consistent(&h, &f.t, event.id).reserved_tickets, 4);
    assert_eq!(batch(&f.t, vec![]), vec![]);
}

pub fn a_past_due_hold_stops_counting_before_any_expire_run<H: Harness>() {
    let h = H::new();
    let f = Fixture::on(h.store(), |p| {
        p.hold_ttl = crate::ttl(TimeDelta::seconds(30));
    });
    let event = f.event(2);
    let first = one(&f.t, reserve(event.id, 2)).unwrap();
    f.advance(TimeDelta::seconds(30) - TimeDelta::microseconds(1));
    assert_eq!(one(&f.t, reserve(event.id, 1)), Err(DomainError::SoldOut));
    // At the expiry instant the hold stops counting, with no expire run in between.
    f.advance(TimeDelta::microseconds(1));
    let s = f.t.event_summary(event.id).unwrap();
    assert_eq!((s.purchased, s.reserved, s.available), (0, 0, 2));
    assert_eq!(
        f.t.reservation(first.id).unwrap().status,
        ReservationStatus::Expired
    );
    let second = one(&f.t, reserve(event.id, 2)).unwrap();
    assert_eq!(
        f.t.reservation(second.id).unwrap().status,
        ReservationStatus::Reserved
    );
    let audit = assert_consistent(&h, &f.t, event.id);
    assert_eq!((audit.reserved_tickets, audit.active_tickets), (2, 2));
}

pub fn reserve_releases_past_due_holds_only_when_the_counters_refuse<H: Harness>() {
    let h = H::new();
    let f = Fixture::on(h.store(), |p| {
        p.hold_ttl = crate::ttl(TimeDelta::seconds(5));
    });
    let event = f.event(3);
    let short = one(&f.t, reserve(event.id, 2)).unwrap();
    f.advance(TimeDelta::seconds(6));
    // One ticket is free by the counters: no release, the past-due hold stays `reserved` in
    // the store (its tickets are counted free all the same).
    one(&f.t, reserve(event.id, 1)).unwrap();
    let audit = f.t.audit_event(event.id).unwrap();
    assert_eq!((audit.held_counter, audit.active_tickets), (3, 1));
    // Now the counters say sold out: the past-due hold is released and its tickets granted.
    one(&f.t, reserve(event.id, 2)).unwrap();
    let audit = assert_consistent(&h, &f.t, event.id);
    assert_eq!((audit.held_counter, audit.active_tickets), (3, 3));
    assert_eq!(f.stored_status(short.id), ReservationStatus::Expired);
    assert_eq!(one(&f.t, reserve(event.id, 1)), Err(DomainError::SoldOut));
}

pub fn purchase_marks_an_active_hold_purchased_with_its_reference<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = f.event(3);
    let t0 = f.now();
    let hold = one(&f.t, reserve(event.id, 3)).unwrap();
    f.advance(TimeDelta::seconds(1));
    let bought = one(&f.t, purchase(hold.id, Some("pay_42"))).unwrap();
    assert_eq!(bought.id, hold.id);
    assert_eq!(
        (bought.status, bought.quantity),
        (ReservationStatus::Purchased, 3)
    );
    assert_eq!(bought.purchased_at, Some(f.now()));
    assert_eq!((bought.updated_at, bought.created_at), (f.now(), t0));
    assert_eq!(bought.payment_reference.as_deref(), Some("pay_42"));
    assert_eq!(f.t.reservation(hold.id).unwrap(), bought);
    let s = f.t.event_summary(event.id).unwrap();
    assert_eq!((s.purchased, s.reserved, s.available), (3, 0, 0));
    // Purchased tickets stay taken forever, long after the hold would have expired.
    f.advance(TTL + TTL);
    assert_eq!(one(&f.t, reserve(event.id, 1)), Err(DomainError::SoldOut));
    assert_eq!(
        f.t.reservation(hold.id).unwrap().status,
        ReservationStatus::Purchased
    );
    assert_consistent(&h, &f.t, event.id);
}

pub fn purchase_without_reference_keeps_it_empty<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = f.event(1);
    let hold = one(&f.t, reserve(event.id, 1)).unwrap();
    let bought = one(&f.t, purchase(hold.id, None)).unwrap();
    assert_eq!(bought.payment_reference, None);
}

pub fn purchase_fails_with_already_purchased_the_second_time<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = f.event(1);
    let hold = one(&f.t, reserve(event.id, 1)).unwrap();
    one(&f.t, purchase(hold.id, None)).unwrap();
    assert_eq!(
        one(&f.t, purchase(hold.id, None)),
        Err(DomainError::AlreadyPurchased)
    );
    // Even after the hold's expiry, a purchased reservation says so.
    f.advance(TTL + TTL);
    assert_eq!(
        one(&f.t, purchase(hold.id, None)),
        Err(DomainError::AlreadyPurchased)
    );
    assert_eq!(assert_consistent(&h, &f.t, event.id).purchased_tickets, 1);
}

pub fn purchase_fails_with_invalid_or_expired_when_the_hold_is_past_due<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = f.event(2);
    let hold = one(&f.t, reserve(event.id, 2)).unwrap();
    f.advance(TTL);
    assert_eq!(
        one(&f.t, purchase(hold.id, None)),
        Err(DomainError::InvalidOrExpired)
    );
    // The refusal released the tickets in the same transaction.
    let audit = assert_consistent(&h, &f.t, event.id);
    assert_eq!((audit.held_counter, audit.purchased_counter), (0, 0));
    assert_eq!(f.stored_status(hold.id), ReservationStatus::Expired);
    assert_eq!(
        one(&f.t, purchase(hold.id, None)),
        Err(DomainError::InvalidOrExpired)
    );
}

pub fn purchase_fails_with_invalid_or_expired_when_canceled_or_expired<H: Harness>() {
    let h = H::new();
    let f = Fixture::on(h.store(), |p| {
        p.hold_ttl = crate::ttl(TimeDelta::seconds(1));
    });
    let event = f.event(2);
    let canceled = one(&f.t, reserve(event.id, 1)).unwrap();
    one(&f.t, cancel(canceled.id)).unwrap();
    assert_eq!(
        one(&f.t, purchase(canceled.id, None)),
        Err(DomainError::InvalidOrExpired)
    );
    let swept = one(&f.t, reserve(event.id, 1)).unwrap();
    f.advance(TimeDelta::seconds(2));
    assert_eq!(f.t.expire_due(100).unwrap().holds, 1);
    assert_eq!(
        one(&f.t, purchase(swept.id, None)),
        Err(DomainError::InvalidOrExpired)
    );
    assert_consistent(&h, &f.t, event.id);
}

pub fn purchase_fails_with_reservation_not_found_for_an_unknown_id<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    assert_eq!(
        one(&f.t, purchase(unknown_hold(&f), None)),
        Err(DomainError::ReservationNotFound)
    );
}

pub fn cancel_releases_all_its_tickets_at_once<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = f.event(3);
    let hold = one(&f.t, reserve(event.id, 3)).unwrap();
    f.advance(TimeDelta::seconds(1));
    let canceled = one(&f.t, cancel(hold.id)).unwrap();
    assert_eq!(
        (canceled.status, canceled.updated_at),
        (ReservationStatus::Canceled, f.now())
    );
    assert_eq!(
        one(&f.t, cancel(hold.id)),
        Err(DomainError::InvalidOrExpired)
    );
    assert_eq!(f.t.event_summary(event.id).unwrap().available, 3);
    one(&f.t, reserve(event.id, 3)).unwrap();
    assert_consistent(&h, &f.t, event.id);
}

pub fn cancel_fails_with_already_purchased_when_purchased<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = f.event(1);
    let hold = one(&f.t, reserve(event.id, 1)).unwrap();
    one(&f.t, purchase(hold.id, None)).unwrap();
    assert_eq!(
        one(&f.t, cancel(hold.id)),
        Err(DomainError::AlreadyPurchased)
    );
    assert_consistent(&h, &f.t, event.id);
}

pub fn cancel_fails_with_invalid_or_expired_when_the_hold_is_past_due<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = f.event(2);
    let hold = one(&f.t, reserve(event.id, 2)).unwrap();
    f.advance(TTL);
    assert_eq!(
        one(&f.t, cancel(hold.id)),
        Err(DomainError::InvalidOrExpired)
    );
    // It is marked expired, not canceled, and its tickets are free in the counters too.
    assert_eq!(f.stored_status(hold.id), ReservationStatus::Expired);
    let audit = assert_consistent(&h, &f.t, event.id);
    assert_eq!(audit.held_counter, 0);
    assert_eq!(
        one(&f.t, cancel(hold.id)),
        Err(DomainError::InvalidOrExpired)
    );
}

pub fn cancel_fails_with_reservation_not_found_for_an_unknown_id<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    assert_eq!(
        one(&f.t, cancel(unknown_hold(&f))),
        Err(DomainError::ReservationNotFound)
    );
}

pub fn reservation_reads_back_what_reserve_wrote<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = f.event(1);
    let mut request = Reserve::untyped(
        event.id,
        domain::Quantity::ONE,
        Some(domain::Customer::parse("acct-7").unwrap()),
    );
    let hold = f.t.reserve(request.clone()).unwrap();
    assert_eq!(f.t.reservation(hold.id).unwrap(), hold);
    assert_eq!(hold.customer.as_deref(), Some("acct-7"));
    assert_eq!(
        f.t.reservations(&[hold.id, unknown_hold(&f)]),
        Ok(vec![hold])
    );
    request.customer = None;
    assert_eq!(f.t.reserve(request), Err(DomainError::SoldOut));
}

pub fn reservation_fails_with_reservation_not_found_for_an_unknown_id<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    assert_eq!(
        f.t.reservation(unknown_hold(&f)),
        Err(DomainError::ReservationNotFound)
    );
}

pub fn expire_due_marks_only_past_due_holds_in_bounded_batches<H: Harness>() {
    let h = H::new();
    let short = Fixture::on(h.store(), |p| {
        p.hold_ttl = crate::ttl(TimeDelta::seconds(1));
    });
    let a = short.event(40);
    let b = short.event(30);
    let due: Vec<_> = batch(
        &short.t,
        (0..25)
            .map(|i| reserve(if i < 15 { a.id } else { b.id }, 1 + i % 2))
            .collect(),
    )
    .into_iter()
    .map(|o| o.unwrap().id)
    .collect();
    // Live holds, by use cases on the same store with the same clock and a long TTL.
    let long = Fixture::on(h.store(), |_| {});
    long.clock.advance(short.now() - long.now());
    let live: Vec<_> = batch(&long.t, (0..5).map(|_| reserve(a.id, 1)).collect())
        .into_iter()
        .map(|o| o.unwrap().id)
        .collect();
    short.advance(TimeDelta::seconds(2));

    assert_eq!(short.t.expire_due(10).unwrap().holds, 25);
    for id in &due {
        assert_eq!(short.stored_status(*id), ReservationStatus::Expired);
    }
    for id in &live {
        assert_eq!(
            short.t.reservation(*id).unwrap().status,
            ReservationStatus::Reserved
        );
    }
    let audit = assert_consistent(&h, &short.t, a.id);
    assert_eq!((audit.reserved_tickets, audit.active_tickets), (5, 5));
    assert_eq!(assert_consistent(&h, &short.t, b.id).reserved_tickets, 0);
}

pub fn expire_due_is_idempotent<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = f.event(3);
    one(&f.t, reserve(event.id, 2)).unwrap();
    f.advance(TTL);
    assert_eq!(f.t.expire_due(1_000).unwrap().holds, 1);
    assert_eq!(f.t.expire_due(1_000).unwrap().holds, 0);
    assert_eq!(assert_consistent(&h, &f.t, event.id).reserved_tickets, 0);
}

pub fn a_purchased_hold_is_never_expired<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = f.event(1);
    let hold = one(&f.t, reserve(event.id, 1)).unwrap();
    one(&f.t, purchase(hold.id, None)).unwrap();
    f.advance(TTL + TTL);
    assert_eq!(f.t.expire_due(1_000).unwrap().holds, 0);
    assert_eq!(
        f.t.reservation(hold.id).unwrap().status,
        ReservationStatus::Purchased
    );
    assert_consistent(&h, &f.t, event.id);
}

pub fn a_batch_of_purchases_decides_in_order_with_one_winner_per_hold<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = f.event(5);
    let a = one(&f.t, reserve(event.id, 1)).unwrap();
    let b = one(&f.t, reserve(event.id, 2)).unwrap();
    let short = Fixture::on(h.store(), |p| {
        p.hold_ttl = crate::ttl(TimeDelta::seconds(1));
    });
    short.clock.advance(f.now() - short.now());
    let due = one(&short.t, reserve(event.id, 1)).unwrap();
    f.advance(TimeDelta::seconds(2));
    let outcomes = batch(
        &f.t,
        vec![
            purchase(a.id, Some("first")),
            purchase(b.id, None),
            purchase(a.id, Some("second")),
            purchase(unknown_hold(&f), None),
            purchase(due.id, None),
        ],
    );
    let first = outcomes[0].as_ref().unwrap();
    assert_eq!(
        (first.id, first.status, first.payment_reference.as_deref()),
        (a.id, ReservationStatus::Purchased, Some("first"))
    );
    assert_eq!(first.purchased_at, Some(f.now()));
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
        f.t.reservation(a.id).unwrap().payment_reference.as_deref(),
        Some("first")
    );
    assert_eq!(f.stored_status(due.id), ReservationStatus::Expired);
    let audit = assert_consistent(&h, &f.t, event.id);
    assert_eq!((audit.purchased_tickets, audit.reserved_tickets), (3, 0));
}

pub fn a_batch_spanning_events_updates_each_events_counters<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let first = f.event(2);
    let second = f.event(3);
    let holds = batch(
        &f.t,
        vec![
            reserve(second.id, 2),
            reserve(first.id, 1),
            reserve(second.id, 1),
        ],
    );
    let outcomes = batch(
        &f.t,
        holds
            .iter()
            .map(|h| purchase(h.as_ref().unwrap().id, None))
            .chain([reserve(first.id, 1), reserve(second.id, 1)])
            .collect(),
    );
    assert!(outcomes[..4].iter().all(Result::is_ok), "{outcomes:?}");
    assert_eq!(outcomes[4], Err(DomainError::SoldOut));
    assert_eq!(assert_consistent(&h, &f.t, first.id).purchased_counter, 1);
    let audit = assert_consistent(&h, &f.t, second.id);
    assert_eq!((audit.purchased_counter, audit.held_counter), (3, 0));
}

pub fn a_batch_mixing_reserves_purchases_and_cancels_decides_in_arrival_order<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = f.event(4);
    let held = one(&f.t, reserve(event.id, 3)).unwrap();
    let other = one(&f.t, reserve(event.id, 1)).unwrap();
    let outcomes = batch(
        &f.t,
        vec![
            // Sold out until the cancel right after it frees three tickets.
            reserve(event.id, 2),
            cancel(held.id),
            reserve(event.id, 2),
            purchase(other.id, None),
            reserve(event.id, 1),
            reserve(event.id, 1),
            cancel(other.id),
        ],
    );
    let shape: Vec<Result<i32, DomainError>> = outcomes
        .iter()
        .map(|o| o.as_ref().map(|r| r.quantity).map_err(Clone::clone))
        .collect();
    assert_eq!(
        shape,
        vec![
            Err(DomainError::SoldOut),
            Ok(3),
            Ok(2),
            Ok(1),
            Ok(1),
            Err(DomainError::SoldOut),
            Err(DomainError::AlreadyPurchased),
        ]
    );
    let audit = assert_consistent(&h, &f.t, event.id);
    assert_eq!((audit.purchased_tickets, audit.reserved_tickets), (1, 3));
}

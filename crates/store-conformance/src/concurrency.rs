//! The concurrency guarantees, with real threads on separate connections released together by
//! a barrier. Counts are exact.

use std::sync::{Arc, Barrier};
use std::thread;

use chrono::TimeDelta;
use domain::{DomainError, EventId, EventStore, ReservationId, ReservationStore};

use crate::{assert_consistent, create_event, now, purchase_one, reserve_one, Harness, TTL};

/// Runs `f(i)` on `n` threads at once and collects the results in thread order.
fn together<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let barrier = Barrier::new(n);
    thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (barrier, f) = (&barrier, &f);
                s.spawn(move || {
                    barrier.wait();
                    f(i)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker panicked"))
            .collect()
    })
}

pub fn fifty_simultaneous_reserves_on_capacity_ten_grant_exactly_ten<H: Harness>() {
    let h = H::new();
    let store = h.store();
    let event = create_event(&*store, 10, now());
    let outcomes = together(50, |_| reserve_one(&*store, event.id, now(), TTL));
    let granted = outcomes.iter().filter(|o| o.is_ok()).count();
    let sold_out = outcomes
        .iter()
        .filter(|o| **o == Err(DomainError::SoldOut))
        .count();
    assert_eq!((granted, sold_out), (10, 40), "{outcomes:?}");
    let audit = assert_consistent(&*store, event.id, now());
    assert_eq!(audit.reserved_rows, 10);
}

pub fn twenty_simultaneous_purchases_of_one_hold_let_exactly_one_win<H: Harness>() {
    let h = H::new();
    let store = h.store();
    let event = create_event(&*store, 1, now());
    let hold = reserve_one(&*store, event.id, now(), TTL).unwrap();
    let outcomes = together(20, |_| purchase_one(&*store, hold.id, None, now()));
    let won = outcomes.iter().filter(|o| o.is_ok()).count();
    let already = outcomes
        .iter()
        .filter(|o| **o == Err(DomainError::AlreadyPurchased))
        .count();
    assert_eq!((won, already), (1, 19), "{outcomes:?}");
    let audit = assert_consistent(&*store, event.id, now());
    assert_eq!(
        (
            audit.purchased_rows,
            audit.purchased_counter,
            audit.held_counter
        ),
        (1, 1, 0)
    );
}

pub fn concurrent_purchase_batches_over_shared_holds_neither_deadlock_nor_double_sell<
    H: Harness,
>() {
    let h = H::new();
    let stores = [h.store(), h.another_store()];
    let t = now();
    let events: Vec<_> = (0..3).map(|_| create_event(&*stores[0], 10, t)).collect();
    let holds: Vec<ReservationId> = events
        .iter()
        .flat_map(|e| {
            (0..6)
                .map(|_| reserve_one(&*stores[0], e.id, t, TTL).unwrap().id)
                .collect::<Vec<_>>()
        })
        .collect();
    // Every worker asks for every hold, in its own order, in batches of 6.
    let outcomes = together(8, |i| {
        let mut mine = holds.clone();
        mine.rotate_left(i * 5 % holds.len());
        if i % 2 == 1 {
            mine.reverse();
        }
        mine.chunks(6)
            .flat_map(|chunk| {
                let requests: Vec<_> = chunk
                    .iter()
                    .map(|id| domain::PurchaseRequest {
                        id: *id,
                        payment_reference: None,
                    })
                    .collect();
                stores[i % 2].purchase_batch(&requests, now()).unwrap()
            })
            .collect::<Vec<_>>()
    });
    let all: Vec<_> = outcomes.into_iter().flatten().collect();
    let won = all.iter().filter(|o| o.is_ok()).count();
    let already = all
        .iter()
        .filter(|o| **o == Err(DomainError::AlreadyPurchased))
        .count();
    assert_eq!((won, already), (holds.len(), holds.len() * 7), "{all:?}");
    for event in &events {
        let audit = assert_consistent(&*stores[1], event.id, now());
        assert_eq!((audit.purchased_rows, audit.held_counter), (6, 0));
    }
}

pub fn two_stores_on_one_database_never_oversell_between_them<H: Harness>() {
    let h = H::new();
    let stores = [h.store(), h.another_store()];
    let event = create_event(&*stores[0], 7, now());
    let outcomes = together(40, |i| reserve_one(&*stores[i % 2], event.id, now(), TTL));
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 7);
    assert!(outcomes
        .iter()
        .all(|o| o.is_ok() || *o == Err(DomainError::SoldOut)));
    assert_consistent(&*stores[1], event.id, now());
}

pub fn concurrent_expire_runs_mark_each_hold_once<H: Harness>() {
    let h = H::new();
    let store = h.store();
    let t0 = now();
    let events: Vec<_> = (0..3).map(|_| create_event(&*store, 200, t0)).collect();
    for event in &events {
        let requests: Vec<_> = (0..150)
            .map(|_| crate::hold(t0, TimeDelta::seconds(1)))
            .collect();
        assert!(store
            .reserve(event.id, &requests, t0)
            .unwrap()
            .iter()
            .all(Result::is_ok));
    }
    let t1 = t0 + TimeDelta::seconds(1);
    let totals = together(4, |_| {
        let mut total = 0;
        loop {
            match store.expire_due(t1, 40).unwrap() {
                0 => return total,
                n => total += n,
            }
        }
    });
    assert_eq!(totals.iter().sum::<u32>(), 450, "{totals:?}");
    for event in &events {
        assert_eq!(assert_consistent(&*store, event.id, t1).reserved_rows, 0);
    }
}

/// A tiny deterministic generator, so a failing storm can be replayed.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

pub fn a_storm_of_reserves_purchases_and_expiries_never_oversells_nor_deadlocks<H: Harness>() {
    const THREADS: usize = 12;
    const OPS: usize = 150;
    let h = H::new();
    let stores = [h.store(), h.another_store()];
    let events: Vec<EventId> = (0..3)
        .map(|i| create_event(&*stores[0], 15 + i * 5, now()).id)
        .collect();

    let failures = together(THREADS, |i| {
        let store = &stores[i % 2];
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1));
        let mut mine: Vec<ReservationId> = Vec::new();
        let mut failures: Vec<String> = Vec::new();
        for _ in 0..OPS {
            let event = events[usize::try_from(rng.below(3)).unwrap_or(0)];
            let t = now();
            let result = match rng.below(20) {
                0..=9 => {
                    // Short holds, so many fall due while the storm runs.
                    let ttl =
                        TimeDelta::milliseconds(i64::try_from(5 + rng.below(60)).unwrap_or(5));
                    reserve_one(&**store, event, t, ttl).map(|r| mine.push(r.id))
                }
                10..=13 => match mine.pop() {
                    Some(id) => purchase_one(&**store, id, None, t).map(drop),
                    None => Ok(()),
                },
                14 => match mine.pop() {
                    Some(id) => store.cancel(id, t).map(drop),
                    None => Ok(()),
                },
                15..=16 => store.expire_due(t, 7).map(drop),
                _ => store.event_snapshot(event, t).map(|s| {
                    let summary = domain::EventSummary::from_snapshot(s);
                    assert!(summary.available >= 0 && summary.reserved >= 0);
                    assert_eq!(
                        summary.purchased + summary.reserved + summary.available,
                        summary.event.capacity
                    );
                }),
            };
            match result {
                Ok(())
                | Err(
                    DomainError::SoldOut
                    | DomainError::AlreadyPurchased
                    | DomainError::InvalidOrExpired,
                ) => {}
                Err(other) => failures.push(other.to_string()),
            }
        }
        failures
    });
    let failures: Vec<_> = failures.into_iter().flatten().collect();
    assert!(
        failures.is_empty(),
        "store errors (deadlocks?) during the storm: {failures:?}"
    );

    let t = now();
    for event in events {
        let audit = assert_consistent(&*stores[0], event, t);
        assert!(audit.purchased_rows <= i64::from(audit.capacity));
        let _ = stores[1].event_snapshot(event, t).unwrap();
    }
    let _: &Arc<H::Store> = &stores[0];
}

//! Webhooks: endpoints, deliveries written with their messages, claims that never hand one
//! delivery to two servers at once, attempts, retries and the 410 that turns an endpoint off.

use std::collections::HashSet;
use std::time::Duration;

use chrono::TimeDelta;
use domain::webhook::{
    Attempt, AttemptOutcome, DeliveryStatus, EndpointUrl, KindFilter, NewEndpoint, Next,
};
use domain::{DomainError, MessageKind, Ticketing};

use crate::concurrency::{together, two_servers};
use crate::{batch, create_event, one, purchase, reserve, Fixture, Harness, TTL};

const LEASE: Duration = Duration::from_secs(60);

fn endpoint(t: &Ticketing, url: &str, kinds: &[&str]) -> domain::webhook::Endpoint {
    let names: Vec<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
    let new = NewEndpoint {
        url: EndpointUrl::parse(url).unwrap(),
        kinds: KindFilter::parse(&names).unwrap(),
    };
    t.add_endpoint(&new, "whsec_c2VjcmV0").unwrap()
}

fn attempt(
    d: &domain::webhook::Delivery,
    at: chrono::DateTime<chrono::Utc>,
    code: u16,
    next: Next,
) -> Attempt {
    Attempt {
        delivery: d.id,
        endpoint: d.endpoint,
        number: d.attempts + 1,
        at,
        outcome: AttemptOutcome::Status(code),
        duration: Duration::from_millis(3),
        next,
    }
}

pub fn each_message_an_endpoint_wants_gets_a_delivery_in_its_transaction<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = f.event(5).id;
    // Messages before the endpoint existed are not delivered to it.
    one(&f.t, reserve(event, 1)).unwrap();
    let all = endpoint(&f.t, "https://shop.example/all", &["*"]);
    let sales = endpoint(
        &f.t,
        "https://shop.example/sales",
        &["reservation.purchased"],
    );
    assert_eq!(f.t.endpoints().unwrap().len(), 2);
    assert!(f.t.endpoints().unwrap().iter().all(|e| e.enabled));

    let hold = one(&f.t, reserve(event, 2)).unwrap();
    one(&f.t, purchase(hold.id, None)).unwrap();
    assert!(f.t.deliveries_due().unwrap());
    assert_eq!(f.t.delivery_backlog().unwrap(), 3);

    let claimed = f.t.claim_deliveries(LEASE, 100).unwrap();
    let got: Vec<(i64, MessageKind, i64)> = claimed
        .iter()
        .map(|d| (d.endpoint.get(), d.kind, d.seq))
        .collect();
    assert_eq!(
        got,
        vec![
            (all.id.get(), MessageKind::ReservationCreated, 2),
            (all.id.get(), MessageKind::ReservationPurchased, 3),
            (sales.id.get(), MessageKind::ReservationPurchased, 3),
        ]
    );
    let first = &claimed[0];
    assert_eq!((first.event, first.reservation), (event, Some(hold.id)));
    assert_eq!(first.url, "https://shop.example/all");
    assert_eq!(first.secret, "whsec_c2VjcmV0");
    assert_eq!(first.message_id(), format!("msg_{event}_2"));
    assert_eq!(first.attempts, 0);
    // Leased: nothing more to claim until the lease ends.
    assert!(f.t.claim_deliveries(LEASE, 100).unwrap().is_empty());
    assert!(!f.t.deliveries_due().unwrap());
    f.advance(TimeDelta::seconds(61));
    assert_eq!(f.t.claim_deliveries(LEASE, 100).unwrap().len(), 3);
}

pub fn attempts_are_recorded_once_and_a_410_turns_the_endpoint_off<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = f.event(5).id;
    let shop = endpoint(&f.t, "https://shop.example/in", &["*"]);
    let gone = endpoint(&f.t, "https://old.example/in", &["reservation.created"]);
    one(&f.t, reserve(event, 1)).unwrap();
    one(&f.t, reserve(event, 1)).unwrap();
    let claimed = f.t.claim_deliveries(LEASE, 100).unwrap();
    assert_eq!(claimed.len(), 4);
    let now = f.now();
    let retry_at = now + TimeDelta::seconds(5);
    let mine: Vec<_> = claimed.iter().filter(|d| d.endpoint == shop.id).collect();
    let (failing, ok) = (mine[0], mine[1]);
    assert!(f
        .t
        .record_attempt(&attempt(failing, now, 500, Next::RetryAt(retry_at)))
        .unwrap());
    // The same attempt a second time (a lease that ran out) changes nothing.
    assert!(!f
        .t
        .record_attempt(&attempt(failing, now, 500, Next::RetryAt(retry_at)))
        .unwrap());
    assert!(f
        .t
        .record_attempt(&attempt(ok, now, 204, Next::Delivered))
        .unwrap());
    let refused = claimed.iter().find(|d| d.endpoint == gone.id).unwrap();
    assert!(f
        .t
        .record_attempt(&attempt(refused, now, 410, Next::Disable))
        .unwrap());

    let listed = f.t.endpoints().unwrap();
    let off = listed.iter().find(|e| e.id == gone.id).unwrap();
    assert!(!off.enabled);
    assert!(off.disabled_reason.as_deref().unwrap().contains("410"));
    let mine = f.t.deliveries(shop.id, 10).unwrap();
    let by_id = |id| mine.iter().find(|d| d.id == id).unwrap();
    assert_eq!(
        (
            by_id(failing.id).status,
            by_id(failing.id).attempts,
            by_id(failing.id).last_status
        ),
        (DeliveryStatus::Pending, 1, Some(500))
    );
    assert_eq!(by_id(failing.id).next_attempt_at, Some(retry_at));
    assert_eq!(by_id(ok.id).status, DeliveryStatus::Delivered);
    // The 410 failed the other pending delivery of that endpoint.
    let theirs = f.t.deliveries(gone.id, 10).unwrap();
    assert!(
        theirs.iter().all(|d| d.status == DeliveryStatus::Failed),
        "{theirs:?}"
    );
    // The retry is due at its time, not before; it comes with its attempts so far.
    f.advance(TimeDelta::seconds(4));
    assert!(f.t.claim_deliveries(LEASE, 100).unwrap().is_empty());
    f.advance(TimeDelta::seconds(2));
    let again = f.t.claim_deliveries(LEASE, 100).unwrap();
    assert_eq!(
        again.iter().map(|d| (d.id, d.attempts)).collect::<Vec<_>>(),
        [(failing.id, 1)]
    );
    // A manual retry makes a delivered one pending again; unknown ones are refused.
    f.t.retry_delivery(shop.id, ok.id).unwrap();
    assert_eq!(f.t.claim_deliveries(LEASE, 100).unwrap()[0].id, ok.id);
    assert_eq!(
        f.t.retry_delivery(shop.id, refused.id),
        Err(DomainError::WebhookNotFound)
    );
    // Removed: gone from the list, pending deliveries failed, nothing new delivered.
    f.t.remove_endpoint(shop.id).unwrap();
    assert_eq!(
        f.t.remove_endpoint(shop.id),
        Err(DomainError::WebhookNotFound)
    );
    assert!(f.t.endpoints().unwrap().iter().all(|e| e.id != shop.id));
    one(&f.t, reserve(event, 1)).unwrap();
    f.advance(TimeDelta::seconds(120));
    assert!(f.t.claim_deliveries(LEASE, 100).unwrap().is_empty());
    assert_eq!(
        f.t.deliveries(shop.id, 10),
        Err(DomainError::WebhookNotFound)
    );
}

pub fn servers_claiming_at_once_never_get_the_same_delivery<H: Harness>() {
    let h = H::new();
    let servers = two_servers(&h, TTL);
    let event = create_event(&servers[0], 500).id;
    endpoint(&servers[0], "https://shop.example/in", &["*"]);
    let made = batch(&servers[0], (0..120).map(|_| reserve(event, 1)).collect());
    assert!(made.iter().all(Result::is_ok));
    let claims = together(8, |i| {
        let mut mine = Vec::new();
        loop {
            let got = servers[i % 2].claim_deliveries(LEASE, 7).unwrap();
            if got.is_empty() {
                return mine;
            }
            mine.extend(got.into_iter().map(|d| d.id));
        }
    });
    let all: Vec<i64> = claims.into_iter().flatten().collect();
    let distinct: HashSet<i64> = all.iter().copied().collect();
    assert_eq!((all.len(), distinct.len()), (120, 120));
}

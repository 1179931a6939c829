//! The webhook dispatcher: every server claims due deliveries (any number of servers at once:
//! the store gives each claim different ones), POSTs them signed as Standard Webhooks says,
//! and records each attempt and what follows it. It runs beside the request path and shares
//! nothing with it but the database pool: a slow or dead receiver costs a delivery slot, never
//! a reserve.
//!
//! Where a delivery may go is checked when it is sent, on the address the host resolves to
//! then (so a name that later resolves to an internal address is refused too): private,
//! loopback, link-local and other non-public addresses are refused unless
//! `WEBHOOK_ALLOW_PRIVATE_NETWORKS=true`. Redirects are not followed.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_tls::connect::{ConnectorService, Resolve, Resolver};
use actix_web::web;
use base64::Engine;
use domain::webhook::{
    after_attempt, Attempt, AttemptOutcome, Delivery, EndpointId, Next, RetrySchedule,
};
use domain::{EventId, ReservationId, Ticketing};
use futures_util::future::LocalBoxFuture;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::dto::{EventBody, ReservationBody};

/// How deliveries are made.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// The delays between attempts.
    pub schedule: RetrySchedule,
    /// Whether private, loopback and link-local targets may be reached.
    pub allow_private_networks: bool,
    /// How long a receiver has to answer.
    pub timeout: Duration,
    /// Attempts in flight at once to one endpoint.
    pub per_endpoint: usize,
    /// Attempts in flight at once on this server.
    pub in_flight: usize,
    /// How long a claimed delivery is this server's before another may try it.
    pub lease: Duration,
    /// How often the store is asked for due deliveries when there were none.
    pub poll: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            schedule: RetrySchedule::default(),
            allow_private_networks: false,
            timeout: Duration::from_secs(10),
            per_endpoint: 16,
            in_flight: 1024,
            lease: Duration::from_secs(60),
            poll: Duration::from_millis(100),
        }
    }
}

/// Whether `ip` is a public unicast address (not private, loopback, link-local, unspecified,
/// shared, documentation, multicast or broadcast).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
        }
    }
}

/// Resolves names and refuses any that resolve to a non-public address.
struct Guard {
    allow_private: bool,
}

impl Resolve for Guard {
    fn lookup<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> LocalBoxFuture<'a, Result<Vec<SocketAddr>, Box<dyn StdError>>> {
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
            if !self.allow_private {
                if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
                    return Err(
                        format!("{host} resolves to {}, not a public address", bad.ip()).into(),
                    );
                }
            }
            Ok(addrs)
        })
    }
}

/// The host of a checked endpoint URL, as an address if it is one.
fn literal_address(url: &str) -> Option<IpAddr> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.split(':').next()?,
    };
    host.parse().ok()
}

fn client(config: &DeliveryConfig) -> awc::Client {
    // Only ring is compiled in; installing it is for clarity (a second install is refused).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let resolver = Resolver::custom(Guard {
        allow_private: config.allow_private_networks,
    });
    let tcp: ConnectorService = actix_tls::connect::Connector::new(resolver).service();
    let connector = awc::Connector::new()
        .connector(tcp)
        .timeout(config.timeout)
        .limit(config.in_flight);
    awc::Client::builder()
        .connector(connector)
        .disable_redirects()
        .timeout(config.timeout)
        .add_default_header(("user-agent", "ticketing-webhooks/1"))
        .finish()
}

/// The Standard Webhooks signature of `body` sent as message `id` at `timestamp` with
/// `secret` (`whsec_` and the key in base64): `v1,` and the base64 of its HMAC-SHA256.
///
/// # Errors
/// A secret that is not `whsec_` and base64.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Result<String, String> {
    let key = secret
        .strip_prefix("whsec_")
        .and_then(|k| base64::engine::general_purpose::STANDARD.decode(k).ok())
        .ok_or("the secret is not whsec_ and base64")?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|e| e.to_string())?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Ok(format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The bodies of the deliveries' messages: each reservation or event as it is now.
async fn bodies(ticketing: &Ticketing, deliveries: &[Delivery]) -> HashMap<i64, Value> {
    let holds: Vec<ReservationId> = deliveries.iter().filter_map(|d| d.reservation).collect();
    let events: Vec<EventId> = deliveries
        .iter()
        .filter(|d| d.reservation.is_none())
        .map(|d| d.event)
        .collect();
    let t = ticketing.clone();
    let read = web::block(move || {
        let holds = if holds.is_empty() {
            Vec::new()
        } else {
            t.reservations(&holds)?
        };
        let events = if events.is_empty() {
            Vec::new()
        } else {
            t.event_summaries(&events)?
        };
        Ok::<_, domain::DomainError>((holds, events))
    })
    .await;
    let (holds, events) = match read {
        Ok(Ok(found)) => found,
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "webhook bodies could not be read; retrying later");
            return HashMap::new();
        }
        Err(_) => return HashMap::new(),
    };
    let mut out = HashMap::new();
    for d in deliveries {
        let data = match d.reservation {
            Some(id) => holds
                .iter()
                .find(|r| r.id == id)
                .map(|r| serde_json::to_value(ReservationBody::from(r.clone()))),
            None => events
                .iter()
                .find(|s| s.event.id == d.event)
                .map(|s| serde_json::to_value(EventBody::from(s.clone()))),
        };
        if let Some(Ok(data)) = data {
            out.insert(
                d.id,
                json!({
                    "type": d.kind.as_str(),
                    "timestamp": d.happened_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    "event_id": d.event.get(),
                    "seq": d.seq,
                    "data": data,
                }),
            );
        }
    }
    out
}

/// One attempt: what came back.
async fn send(
    client: &awc::Client,
    config: &DeliveryConfig,
    d: &Delivery,
    body: &str,
) -> AttemptOutcome {
    if let Some(ip) = literal_address(&d.url) {
        if !config.allow_private_networks && !is_public(ip) {
            return AttemptOutcome::NoAnswer(format!("refused: {ip} is not a public address"));
        }
    }
    let id = d.message_id();
    let timestamp = chrono::Utc::now().timestamp();
    let signature = match sign(&d.secret, &id, timestamp, body) {
        Ok(s) => s,
        Err(e) => return AttemptOutcome::NoAnswer(e),
    };
    let sent = client
        .post(&d.url)
        .insert_header(("content-type", "application/json"))
        .insert_header(("webhook-id", id))
        .insert_header(("webhook-timestamp", timestamp.to_string()))
        .insert_header(("webhook-signature", signature))
        .send_body(body.to_owned())
        .await;
    match sent {
        Ok(mut response) => {
            // Read (and drop) a little of the answer so the connection can be reused.
            let _ = response.body().limit(64 * 1024).await;
            AttemptOutcome::Status(response.status().as_u16())
        }
        Err(err) => AttemptOutcome::NoAnswer(err.to_string()),
    }
}

/// How often the pending deliveries are counted for `webhook_deliveries_pending`.
const BACKLOG_EVERY: Duration = Duration::from_secs(5);

fn jitter() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() & 0xFFFF_FFFF;
    #[allow(clippy::cast_precision_loss)]
    let fraction = bits as f64 / f64::from(u32::MAX);
    fraction
}

/// Claims and sends deliveries until `draining`.
pub async fn run(ticketing: Ticketing, config: DeliveryConfig, draining: Arc<AtomicBool>) {
    let client = client(&config);
    let total = Arc::new(Semaphore::new(config.in_flight));
    // An attempt keeps its slot until it is recorded, so at most `in_flight` wait here.
    let (done, finished) = mpsc::unbounded_channel::<Finished>();
    let _recording = Recording(actix_web::rt::spawn(record(ticketing.clone(), finished)));
    let mut full = false;
    let mut per_endpoint: HashMap<EndpointId, Rc<Semaphore>> = HashMap::new();
    let mut counted: Option<Instant> = None;
    loop {
        if draining.load(Ordering::Acquire) {
            return;
        }
        if counted.is_none_or(|at| at.elapsed() >= BACKLOG_EVERY) {
            counted = Some(Instant::now());
            let t = ticketing.clone();
            if let Ok(Ok(pending)) = web::block(move || t.delivery_backlog()).await {
                #[allow(clippy::cast_precision_loss)]
                metrics::gauge!("webhook_deliveries_pending").set(pending as f64);
            }
        }
        let room = total.available_permits();
        if room == 0 {
            tokio::time::sleep(config.poll).await;
            continue;
        }
        let t = ticketing.clone();
        // After a full claim there is surely more: claim again without asking.
        let due = if full {
            Ok(Ok(true))
        } else {
            web::block(move || t.deliveries_due()).await
        };
        match due {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                tokio::time::sleep(config.poll).await;
                continue;
            }
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "looking for due webhook deliveries failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(_) => return,
        }
        let t = ticketing.clone();
        let lease = config.lease;
        let limit = u32::try_from(room.min(CLAIM_BATCH)).unwrap_or(1);
        let claimed = match web::block(move || t.claim_deliveries(lease, limit)).await {
            Ok(Ok(claimed)) => claimed,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "claiming webhook deliveries failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(_) => return,
        };
        full = claimed.len() >= limit as usize;
        if claimed.is_empty() {
            tokio::time::sleep(config.poll).await;
            continue;
        }
        let bodies = bodies(&ticketing, &claimed).await;
        for d in claimed {
            let Some(body) = bodies.get(&d.id).map(Value::to_string) else {
                // Its body could not be read now; the lease brings it back.
                continue;
            };
            let Ok(slot) = Arc::clone(&total).acquire_owned().await else {
                return;
            };
            let endpoint = Rc::clone(
                per_endpoint
                    .entry(d.endpoint)
                    .or_insert_with(|| Rc::new(Semaphore::new(config.per_endpoint))),
            );
            let (client, config, ticketing) = (client.clone(), config.clone(), ticketing.clone());
            let done = done.clone();
            actix_web::rt::spawn(async move {
                let made = {
                    let Ok(_turn) = endpoint.acquire().await else {
                        return;
                    };
                    attempt(&client, &config, &ticketing, d, &body).await
                };
                let _ = done.send((made, slot));
            });
        }
    }
}

/// An attempt made, and the slot it holds until it is recorded.
type Finished = (Attempt, OwnedSemaphorePermit);

/// The recorder's task, stopped with the dispatcher.
struct Recording(actix_web::rt::task::JoinHandle<()>);

impl Drop for Recording {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Records finished attempts, as many as have finished, in one transaction at a time: one
/// commit for many attempts, as group commit does for reserves.
async fn record(ticketing: Ticketing, mut finished: mpsc::UnboundedReceiver<Finished>) {
    while let Some(first) = finished.recv().await {
        let mut batch = vec![first];
        while batch.len() < RECORD_BATCH {
            match finished.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        let (attempts, slots): (Vec<Attempt>, Vec<OwnedSemaphorePermit>) =
            batch.into_iter().unzip();
        let t = ticketing.clone();
        if let Ok(Err(err)) = web::block(move || t.record_attempts(&attempts)).await {
            tracing::warn!(error = %err, "webhook attempts were not recorded; their leases bring them back");
        }
        drop(slots);
    }
}

/// The most attempts recorded in one transaction.
const RECORD_BATCH: usize = 512;

/// The most deliveries one claim takes.
const CLAIM_BATCH: usize = 512;

async fn attempt(
    client: &awc::Client,
    config: &DeliveryConfig,
    ticketing: &Ticketing,
    d: Delivery,
    body: &str,
) -> Attempt {
    let started = Instant::now();
    let at = ticketing.now();
    let outcome = send(client, config, &d, body).await;
    let number = d.attempts + 1;
    let next = after_attempt(&outcome, number, &config.schedule, at, jitter());
    match (&outcome, next) {
        (_, Next::Delivered) => {}
        (AttemptOutcome::Status(code), _) => {
            tracing::info!(
                webhook = d.endpoint.get(),
                delivery = d.id,
                attempt = number,
                status = code,
                "webhook attempt refused"
            );
        }
        (AttemptOutcome::NoAnswer(why), _) => {
            tracing::info!(webhook = d.endpoint.get(), delivery = d.id, attempt = number, error = %why, "webhook attempt failed");
        }
    }
    if next == Next::Disable {
        tracing::warn!(
            webhook = d.endpoint.get(),
            "the receiver answered 410 Gone: endpoint turned off"
        );
    }
    Attempt {
        delivery: d.id,
        endpoint: d.endpoint,
        number,
        at,
        outcome,
        duration: started.elapsed(),
        next,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "::",
            "255.255.255.255",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn literal_hosts_are_found_in_urls() {
        assert_eq!(
            literal_address("http://127.0.0.1:9/x"),
            Some("127.0.0.1".parse().unwrap())
        );
        assert_eq!(
            literal_address("https://[::1]:8443/"),
            Some("::1".parse().unwrap())
        );
        assert_eq!(literal_address("https://shop.example/h"), None);
    }

    #[test]
    fn the_signature_is_the_standard_webhooks_one() {
        // The example of the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        let signature = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body).unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(sign("not-a-secret", "m", 1, "{}").is_err());
    }
}

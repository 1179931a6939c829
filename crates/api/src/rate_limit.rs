//! A per-client rate limit on the requests that change something (every method but `GET`,
//! `HEAD` and `OPTIONS`): a token bucket per client IP address (`governor`'s GCRA), answered 429
//! `rate_limited` with `Retry-After` once spent.
//!
//! The client is the TCP peer, unless the peer is a trusted proxy: then it is the nearest
//! address in `X-Forwarded-For` that is not a trusted proxy. Addresses from anyone else's
//! `X-Forwarded-For` are ignored, so a client cannot pick its own bucket.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

use crate::error::ApiError;

/// The limit, shared by the workers of one server.
#[derive(Debug)]
pub struct RateLimit {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    trusted_proxies: Vec<IpNet>,
}

impl RateLimit {
    /// One more request per client every `interval`, with bursts of up to `burst`.
    pub fn new(interval: Duration, burst: NonZeroU32, trusted_proxies: Vec<IpNet>) -> Self {
        // None only for a zero interval, a rate past a billion a second.
        let quota =
            Quota::with_period(interval).unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX));
        Self {
            limiter: RateLimiter::keyed(quota.allow_burst(burst)),
            trusted_proxies,
        }
    }

    /// Forgets clients whose buckets are full again, so memory follows the active clients.
    pub(crate) fn forget_idle_clients(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// `Ok` when `client` may send a request now; else the whole seconds until it may.
    fn check(&self, client: IpAddr) -> Result<(), u64> {
        self.limiter.check_key(&client).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }

    /// The client a request comes from: see the module documentation.
    pub fn client_ip<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl IntoIterator<Item = &'a str>,
    ) -> IpAddr {
        if !self.is_trusted(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded_for
            .into_iter()
            .flat_map(|header| header.split(','))
            .collect();
        let mut client = peer;
        // From the nearest hop outwards: each trusted proxy vouches for the one before it.
        for hop in hops.into_iter().rev() {
            let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                // A garbled entry vouches for nothing: the last trusted hop is the client.
                break;
            };
            client = ip;
            if !self.is_trusted(ip) {
                break;
            }
        }
        client
    }
}

/// The middleware: writes over the limit are answered 429 without reaching a handler.
pub(crate) async fn limit_writes(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let exempt = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if let (false, Some(limit), Some(peer)) = (
        exempt,
        req.app_data::<web::Data<RateLimit>>(),
        req.peer_addr(),
    ) {
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok());
        let client = limit.client_ip(peer.ip(), forwarded);
        if let Err(seconds) = limit.check(client) {
            metrics::counter!("rate_limited_total").increment(1);
            let answer = ApiError::RateLimited(seconds.max(1)).error_response();
            return Ok(req.into_response(answer).map_into_right_body());
        }
    }
    Ok(next.call(req).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(trusted: &[&str]) -> RateLimit {
        RateLimit::new(
            Duration::from_secs(1),
            NonZeroU32::MIN,
            trusted.iter().map(|t| t.parse().unwrap()).collect(),
        )
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let limit = limit(&["10.0.0.0/8"]);
        assert_eq!(
            limit.client_ip(ip("203.0.113.9"), ["1.2.3.4"]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn a_trusted_proxy_names_the_nearest_untrusted_hop() {
        let limit = limit(&["10.0.0.0/8", "192.168.1.1/32"]);
        // client, a hop the client made up, then two proxies of ours
        let forwarded = ["6.6.6.6, 198.51.100.7", "10.1.1.1"];
        assert_eq!(
            limit.client_ip(ip("192.168.1.1"), forwarded),
            ip("198.51.100.7")
        );
        assert_eq!(limit.client_ip(ip("10.0.0.2"), []), ip("10.0.0.2"));
        assert_eq!(
            limit.client_ip(ip("10.0.0.2"), ["garbage, 10.0.0.3"]),
            ip("10.0.0.3")
        );
        assert_eq!(
            limit.client_ip(ip("10.0.0.2"), ["2001:db8::1"]),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn a_client_over_its_burst_is_told_when_to_come_back() {
        let limit = limit(&[]);
        assert_eq!(limit.check(ip("198.51.100.1")), Ok(()));
        assert_eq!(limit.check(ip("198.51.100.1")), Err(1));
        assert_eq!(limit.check(ip("198.51.100.2")), Ok(()));
    }
}

//! Webhooks: endpoints that operators subscribe to the outbox, and the rules of delivering
//! to them (what a receiver's answer means, when to try again).
//!
//! A delivery is one message for one endpoint. It is written in the transaction that writes
//! the message (a store joins the messages with the enabled endpoints that want them), so a
//! message is never without its deliveries; sending it is left to any server that claims it.
//! Signing and HTTP belong to the caller; this module decides.

use std::time::Duration;

use chrono::TimeDelta;

use crate::error::DomainError;
use crate::ids::EventId;
use crate::outbox::MessageKind;
use crate::store::Timestamp;

/// The id of a webhook endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointId(i64);

impl EndpointId {
    /// Wraps a raw id as stored.
    pub const fn new(raw: i64) -> Self {
        Self(raw)
    }

    /// The raw id.
    pub const fn get(self) -> i64 {
        self.0
    }
}

impl std::fmt::Display for EndpointId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for EndpointId {
    type Err = crate::ids::MalformedId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<EventId>().map(|e| Self(e.get()))
    }
}

/// The most characters of an endpoint's URL.
pub const MAX_URL_LENGTH: usize = 2_000;

/// Which messages an endpoint wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KindFilter {
    /// Every kind (`["*"]`).
    All,
    /// These kinds, each once, in [`MessageKind::ALL`] order.
    Only(Vec<MessageKind>),
}

impl KindFilter {
    /// The filter of `names` (`*` alone for all); 422 on `events` for an unknown or empty one.
    ///
    /// # Errors
    /// [`DomainError::Validation`] on `events`.
    pub fn parse(names: &[String]) -> Result<Self, DomainError> {
        if names.is_empty() {
            return Err(invalid(
                "events",
                "Name at least one kind of message, or \"*\".",
            ));
        }
        let mut kinds = Vec::new();
        for name in names.iter().filter(|n| *n != "*") {
            let kind = MessageKind::parse(name)
                .ok_or_else(|| invalid("events", format!("{name:?} is not a kind of message.")))?;
            kinds.push(kind);
        }
        // `*` is every kind, whatever else the list names.
        if names.iter().any(|n| n == "*") {
            return Ok(Self::All);
        }
        kinds.sort_unstable();
        kinds.dedup();
        Ok(Self::Only(kinds))
    }

    /// Whether it wants `kind`.
    pub fn wants(&self, kind: MessageKind) -> bool {
        match self {
            Self::All => true,
            Self::Only(kinds) => kinds.contains(&kind),
        }
    }

    /// Its stored form: `*`, or the kinds' names joined by commas.
    pub fn stored(&self) -> String {
        match self {
            Self::All => "*".into(),
            Self::Only(kinds) => kinds
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(","),
        }
    }

    /// The filter of its stored form.
    ///
    /// # Errors
    /// [`DomainError::Validation`] for text no store writes.
    pub fn from_stored(text: &str) -> Result<Self, DomainError> {
        let names: Vec<String> = text.split(',').map(str::to_owned).collect();
        Self::parse(&names)
    }

    /// Its names, as an API shows them.
    pub fn names(&self) -> Vec<&'static str> {
        match self {
            Self::All => vec!["*"],
            Self::Only(kinds) => kinds.iter().map(|k| k.as_str()).collect(),
        }
    }
}

/// A checked endpoint URL: `http` or `https`, a host, no credentials, at most
/// [`MAX_URL_LENGTH`] characters. Whether its host may be reached is decided when sending, on
/// the address it resolves to then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointUrl(String);

impl EndpointUrl {
    /// Checks `raw`.
    ///
    /// # Errors
    /// [`DomainError::Validation`] on `url`.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let bad = |why: &str| invalid("url", format!("The url {why}."));
        if raw.len() > MAX_URL_LENGTH {
            return Err(bad("must not be longer than 2000 characters"));
        }
        if !raw.chars().all(|c| c.is_ascii_graphic()) {
            return Err(bad(
                "must be printable ASCII without spaces (percent-encode anything else)",
            ));
        }
        let rest = raw
            .strip_prefix("https://")
            .or_else(|| raw.strip_prefix("http://"))
            .ok_or_else(|| bad("must be http:// or https://"))?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        if authority.contains('@') {
            return Err(bad("must not carry a user name or password"));
        }
        // A host name or an IPv4 address: bracketed IPv6 literals are not taken (name the
        // receiver instead), so what the API accepts is what its documented pattern says.
        let (name, port) = authority
            .find(':')
            .map_or((authority, ""), |at| authority.split_at(at));
        let host = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        if !host {
            return Err(bad("must name a host (letters, digits, dots and dashes)"));
        }
        let port_ok = match port.strip_prefix(':') {
            None => port.is_empty(),
            Some(digits) => {
                (1..=5).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit())
            }
        };
        if !port_ok {
            return Err(bad("must have a port of 1 to 5 digits, if any"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What an operator asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEndpoint {
    /// Where to send.
    pub url: EndpointUrl,
    /// What to send.
    pub kinds: KindFilter,
}

/// An endpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Its id.
    pub id: EndpointId,
    /// Where messages go.
    pub url: String,
    /// Which messages.
    pub kinds: KindFilter,
    /// Whether messages are still sent (a 410 turns it off).
    pub enabled: bool,
    /// Why it was turned off.
    pub disabled_reason: Option<String>,
    /// When it was added.
    pub created_at: Timestamp,
}

/// Where a delivery is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// A 2xx came back.
    Delivered,
    /// Every attempt of the schedule failed, or the endpoint was turned off.
    Failed,
}

impl DeliveryStatus {
    /// Its stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    /// The status of its stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// The delays between attempts: the first attempt at once, then one after each of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

impl Default for RetrySchedule {
    /// About 5 s, 30 s, 2 min, 10 min, 1 h, 6 h, 24 h: eight attempts over a day and a half.
    fn default() -> Self {
        Self(
            [5, 30, 120, 600, 3_600, 21_600, 86_400]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
        )
    }
}

impl RetrySchedule {
    /// A schedule of `delays` (empty: one attempt only).
    pub fn new(delays: Vec<Duration>) -> Self {
        Self(delays)
    }

    /// The schedule of a comma-separated list of seconds, e.g. `5,30,120`.
    ///
    /// # Errors
    /// A message naming the bad item.
    pub fn parse(text: &str) -> Result<Self, String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<u64>()
                    .ok()
                    .filter(|n| *n >= 1 && *n <= 7 * 86_400)
                    .map(Duration::from_secs)
                    .ok_or_else(|| format!("{s:?} is not a number of seconds from 1 to 604800"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// The delays.
    pub fn delays(&self) -> &[Duration] {
        &self.0
    }
}

/// What a receiver's answer to an attempt was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// An HTTP status came back.
    Status(u16),
    /// No answer: the connection failed, timed out, or the address was refused; the reason.
    NoAnswer(String),
}

/// What follows an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Delivered: nothing more.
    Delivered,
    /// Try again at this instant.
    RetryAt(Timestamp),
    /// Give up: the schedule is spent.
    GiveUp,
    /// The receiver answered 410 Gone: turn the endpoint off and stop.
    Disable,
}

/// What follows attempt number `attempt` (1 for the first) of a delivery made at `now` that got
/// `outcome`. `jitter` (0 to 1, from the caller's randomness) spreads retries over ±20% of
/// their delay so that a receiver coming back is not hit by every retry at once.
pub fn after_attempt(
    outcome: &AttemptOutcome,
    attempt: u32,
    schedule: &RetrySchedule,
    now: Timestamp,
    jitter: f64,
) -> Next {
    match outcome {
        AttemptOutcome::Status(code) if (200..300).contains(code) => Next::Delivered,
        AttemptOutcome::Status(410) => Next::Disable,
        _ => {
            let index = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
            let Some(delay) = schedule.delays().get(index) else {
                return Next::GiveUp;
            };
            let spread = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
            let millis = (delay.as_secs_f64() * 1000.0 * spread).round();
            // A delay of at most 7 days, in whole milliseconds: exact in an f64.
            #[allow(clippy::cast_possible_truncation)]
            let delay = TimeDelta::milliseconds(millis as i64);
            Next::RetryAt(now + delay)
        }
    }
}

/// A delivery claimed for an attempt: the message, and where and how to send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Its id.
    pub id: i64,
    /// The endpoint.
    pub endpoint: EndpointId,
    /// Its URL.
    pub url: String,
    /// Its signing secret (`whsec_...`).
    pub secret: String,
    /// The message's event and number.
    pub event: EventId,
    /// The message's number among the event's.
    pub seq: i64,
    /// What happened.
    pub kind: MessageKind,
    /// The reservation it happened to.
    pub reservation: Option<crate::ids::ReservationId>,
    /// When the change was committed.
    pub happened_at: Timestamp,
    /// Attempts made before this one.
    pub attempts: u32,
}

impl Delivery {
    /// The `webhook-id` of the message: the same on every attempt and on every endpoint.
    pub fn message_id(&self) -> String {
        format!("msg_{}_{}", self.event, self.seq)
    }
}

/// A delivery as operators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// Its id.
    pub id: i64,
    /// The message's event.
    pub event: EventId,
    /// The message's number.
    pub seq: i64,
    /// What happened.
    pub kind: MessageKind,
    /// Where it is.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due (pending ones).
    pub next_attempt_at: Option<Timestamp>,
    /// The last attempt's HTTP status, if it got one.
    pub last_status: Option<u16>,
    /// The last attempt's error, if it got no answer.
    pub last_error: Option<String>,
}

/// The result of an attempt, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The delivery.
    pub delivery: i64,
    /// Its endpoint.
    pub endpoint: EndpointId,
    /// Its number (1 for the first).
    pub number: u32,
    /// When it was made.
    pub at: Timestamp,
    /// What came back.
    pub outcome: AttemptOutcome,
    /// How long it took.
    pub duration: Duration,
    /// What follows.
    pub next: Next,
}

fn invalid(field: &'static str, message: impl Into<String>) -> DomainError {
    DomainError::Validation {
        field,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_filter_is_every_kind_or_known_kinds_only() {
        assert_eq!(KindFilter::parse(&names(&["*"])), Ok(KindFilter::All));
        let some = KindFilter::parse(&names(&["reservation.purchased", "event.sold_out"])).unwrap();
        assert!(some.wants(MessageKind::EventSoldOut));
        assert!(!some.wants(MessageKind::ReservationCreated));
        assert_eq!(KindFilter::from_stored(&some.stored()), Ok(some));
        assert_eq!(
            KindFilter::parse(&names(&["event.updated", "*"])),
            Ok(KindFilter::All)
        );
        for bad in [&[][..], &["reservation.deleted"], &["*", "nope"]] {
            assert!(KindFilter::parse(&names(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_endpoint_url_is_http_or_https_with_a_host_and_no_credentials() {
        for good in [
            "https://shop.example/hooks",
            "http://127.0.0.1:9000/in?x=1",
            "https://a-b.example:443/x/%C3%A9?q=1#f",
        ] {
            assert!(EndpointUrl::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "ftp://shop.example/",
            "https://",
            "https://user:pw@shop.example/",
            "https://shop .example/",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "https://e:0*",
            "https://e:123456/",
            "https://-e/",
            "https://e\u{e9}.example/",
            "https://[zz]/",
            "https://[::1]:8443/",
        ] {
            assert!(EndpointUrl::parse(bad).is_err(), "{bad}");
        }
        assert!(EndpointUrl::parse(&format!("https://a.example/{}", "x".repeat(2_000))).is_err());
    }

    #[test]
    fn a_2xx_delivers_a_410_disables_and_anything_else_retries_until_the_schedule_is_spent() {
        let now = DateTime::UNIX_EPOCH;
        let schedule = RetrySchedule::new(vec![Duration::from_secs(5), Duration::from_secs(30)]);
        let after =
            |outcome, attempt, jitter| after_attempt(&outcome, attempt, &schedule, now, jitter);
        assert_eq!(after(AttemptOutcome::Status(204), 1, 0.5), Next::Delivered);
        assert_eq!(after(AttemptOutcome::Status(410), 1, 0.5), Next::Disable);
        assert_eq!(
            after(AttemptOutcome::Status(500), 1, 0.5),
            Next::RetryAt(now + TimeDelta::seconds(5))
        );
        assert_eq!(
            after(AttemptOutcome::NoAnswer("timeout".into()), 2, 0.0),
            Next::RetryAt(now + TimeDelta::seconds(24))
        );
        assert_eq!(
            after(AttemptOutcome::Status(301), 2, 1.0),
            Next::RetryAt(now + TimeDelta::seconds(36))
        );
        assert_eq!(after(AttemptOutcome::Status(503), 3, 0.5), Next::GiveUp);
    }

    #[test]
    fn a_schedule_reads_from_seconds_and_the_default_spans_a_day_and_a_half() {
        assert_eq!(
            RetrySchedule::parse("5, 30,120").unwrap().delays(),
            &[5, 30, 120].map(Duration::from_secs)
        );
        assert!(RetrySchedule::parse("5,0").is_err());
        assert!(RetrySchedule::parse("soon").is_err());
        let total: u64 = RetrySchedule::default()
            .delays()
            .iter()
            .map(Duration::as_secs)
            .sum();
        assert_eq!(total, 5 + 30 + 120 + 600 + 3_600 + 21_600 + 86_400);
    }
}

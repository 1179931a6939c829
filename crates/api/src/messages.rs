//! `GET /api/events/{event}/messages`: an event's outbox, for operators and the shop's
//! back office. Messages name reservations, whose ids let their holders buy or cancel them,
//! so the list is behind the admin token; the public stream carries availability only.

use actix_web::HttpResponse;
use domain::{EventId, StoredMessage, MAX_MESSAGES_PER_READ};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, FieldErrors};
use crate::extract::AdminRequest;
use crate::params::EventPath;
use crate::state::Effect;

/// Messages per page unless `limit` says otherwise.
const DEFAULT_LIMIT: u32 = 100;

/// One thing that happened to an event.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageBody {
    /// Its number among the event's messages: 1, 2, 3, ... with no gap.
    #[schema(minimum = 1)]
    pub seq: i64,
    /// What happened: `reservation.created`, `.purchased`, `.canceled`, `.expired`,
    /// `.extended`, `.released`, `event.updated` or `event.sold_out`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// When the change was committed (RFC 3339).
    pub timestamp: String,
    /// The reservation it happened to (`reservation.*` messages).
    pub reservation_id: Option<String>,
}

/// A page of an event's messages, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageList {
    /// The event.
    pub event_id: i64,
    /// The number of the event's last message (0 before the first).
    pub last_seq: i64,
    /// Messages numbered above `after`, at most `limit`.
    pub messages: Vec<MessageBody>,
}

impl From<&StoredMessage> for MessageBody {
    fn from(m: &StoredMessage) -> Self {
        Self {
            seq: m.seq,
            kind: m.message.kind.as_str(),
            timestamp: m
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            reservation_id: m.message.reservation.map(|r| r.to_string()),
        }
    }
}

/// `limit` from the query string (1 to 1000, default 100).
pub(crate) fn limit_of(query: &str) -> Result<u32, ApiError> {
    parse_query(query).map(|(_, limit)| limit)
}

/// `after` and `limit` from the query string; unknown parameters are ignored.
fn parse_query(query: &str) -> Result<(i64, u32), ApiError> {
    let pairs = crate::params::QueryPairs::parse(query);
    let first = |name: &str| pairs.first(name);
    let mut errors = FieldErrors::new();
    let after = match first("after").map(str::parse::<i64>) {
        None => 0,
        Some(Ok(n)) if n >= 0 => n,
        Some(_) => {
            errors.insert(
                "after",
                vec!["after must be a message number (an integer, 0 or more).".into()],
            );
            0
        }
    };
    let limit = match first("limit").map(str::parse::<u32>) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) if (1..=MAX_MESSAGES_PER_READ).contains(&n) => n,
        Some(_) => {
            errors.insert(
                "limit",
                vec![format!(
                    "The limit must be an integer between 1 and {MAX_MESSAGES_PER_READ}."
                )],
            );
            DEFAULT_LIMIT
        }
    };
    if errors.is_empty() {
        Ok((after, limit))
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// An event's messages numbered above `after`, oldest first (operators only). Each change is
/// written with its message in one transaction, so the list is complete and gap-free: a reader
/// that remembers the last `seq` it handled misses nothing.
#[utoipa::path(
    get,
    path = "/api/events/{event}/messages",
    operation_id = "listMessages",
    tag = "events",
    params(EventPath,
        ("after" = Option<i64>, Query, description = "Only messages numbered above this (default 0).",
            minimum = 0, format = Int64),
        ("limit" = Option<u32>, Query, description = "Messages per page (default 100).",
            minimum = 1, maximum = 1000)),
    responses((status = 200, description = "A page of messages.", body = MessageList)),
    security(("admin_token" = [])),
)]
pub(crate) async fn list(admin: AdminRequest) -> Result<HttpResponse, ApiError> {
    let event: EventId = admin.id("event")?;
    let (after, limit) = parse_query(admin.query())?;
    let (messages, last_seq) = admin
        .run(Effect::Read, move |t| t.messages(event, after, limit))
        .await?;
    Ok(HttpResponse::Ok().json(MessageList {
        event_id: event.get(),
        last_seq,
        messages: messages.iter().map(MessageBody::from).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_cursors_and_limits_are_refused_by_name() {
        assert_eq!(parse_query("").ok(), Some((0, DEFAULT_LIMIT)));
        assert_eq!(parse_query("after=7&limit=3").ok(), Some((7, 3)));
        for (query, field) in [
            ("after=-1", "after"),
            ("after=x", "after"),
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
        ] {
            match parse_query(query) {
                Err(ApiError::Validation(errors)) => assert!(errors.contains_key(field), "{query}"),
                other => panic!("{query}: {other:?}"),
            }
        }
    }
}

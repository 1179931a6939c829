//! The path and header parameters that several operations share, described once for the
//! OpenAPI document (the handlers read them by hand: see [`crate::body`] and
//! [`crate::idempotency`]).

use utoipa::IntoParams;

/// `{event}` in a path.
#[derive(Debug, IntoParams)]
#[into_params(names("event"), parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct EventPath(
    /// The event's id.
    #[param(minimum = 1, format = Int64)]
    i64,
);

/// `{reservation}` in a path.
#[derive(Debug, IntoParams)]
#[into_params(names("reservation"), parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct ReservationPath(
    /// The reservation id.
    #[param(format = "uuid")]
    String,
);

/// The `Idempotency-Key` header of the operations that change tickets.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub(crate) struct IdempotencyKeyHeader {
    /// A key of the client's choosing (1 to 255 visible ASCII characters) that makes retries
    /// safe: a retry with the same key and request gets the first answer again, with
    /// `Idempotent-Replayed: true`, and has no second effect. Kept 24 hours by default
    /// (`IDEMPOTENCY_TTL_SECONDS`).
    #[param(rename = "Idempotency-Key", value_type = String, required = false,
        min_length = 1, max_length = 255, pattern = "^[!-~]+$")]
    key: Option<String>,
}

/// A query string's `name=value` pairs; unknown names are the caller's to ignore.
pub(crate) struct QueryPairs(Vec<(String, String)>);

impl QueryPairs {
    /// The pairs of `query` (none when it does not parse).
    pub(crate) fn parse(query: &str) -> Self {
        Self(
            actix_web::web::Query::<Vec<(String, String)>>::from_query(query)
                .map(actix_web::web::Query::into_inner)
                .unwrap_or_default(),
        )
    }

    /// The value of the first pair named `name`.
    pub(crate) fn first(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

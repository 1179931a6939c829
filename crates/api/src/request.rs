//! Every request: its id, its span, its metrics and its one access line.
//!
//! The id is the client's `X-Request-Id` when that is sane (1 to 128 characters of
//! `A-Z a-z 0-9 . _ ~ : / + = @ -`), else a new UUID; it is echoed in the answer's
//! `X-Request-Id`. Each request runs in a `request` span that carries the id, so every log line
//! of the request names it; a request served in a batch also gets the batch's number (`batch`),
//! which the batch's own lines carry too.
//!
//! The access line (target `access`) is written at `debug`: a JSON line per request to a file
//! cost 8% of the throughput of reserves and 9–13% of reads (20,000 and 35,000 requests a
//! second on 2 cores, alternating runs), above the 10% this service allows for logs;
//! `RUST_LOG=info,access=debug` turns it on. Failures are logged where they happen, once.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::HttpMessage;
use tracing::field::Empty;
use tracing::Span;
use tracing_actix_web::RootSpanBuilder;

/// The header that carries a request's id, both ways.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-chosen request id kept.
const MAX_ID_LEN: usize = 128;

/// The id of the request being served.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// When the request arrived.
#[derive(Debug, Clone, Copy)]
struct Arrived(Instant);

/// Whether a client's request id may go into logs and answers as it is.
pub fn is_sane_request_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_~:/+=@".contains(&b))
}

fn request_id_of(request: &ServiceRequest) -> String {
    request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| is_sane_request_id(id))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

/// The span of each request, for `tracing-actix-web`.
#[derive(Debug)]
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let id = request_id_of(request);
        let span = tracing::info_span!(
            "request",
            request_id = %id,
            method = %request.method(),
            route = Empty,
            status = Empty,
            batch = Empty,
        );
        let mut extensions = request.extensions_mut();
        extensions.insert(RequestId(id));
        extensions.insert(Arrived(Instant::now()));
        span
    }

    fn on_request_end<B: MessageBody>(
        span: Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        let Ok(response) = outcome else {
            // Errors are turned into answers by the handlers; one that escaped them is a bug.
            span.in_scope(|| tracing::error!("request failed without an answer"));
            return;
        };
        let request = response.request();
        let status = response.status().as_u16();
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        let seconds = request
            .extensions()
            .get::<Arrived>()
            .map_or(0.0, |a| a.0.elapsed().as_secs_f64());
        let method = method_label(request.method());
        metrics::counter!(
            "http_requests_total",
            "method" => method,
            "route" => route.clone(),
            "status" => status.to_string()
        )
        .increment(1);
        metrics::histogram!(
            "http_request_duration_seconds",
            "method" => method,
            "route" => route.clone()
        )
        .record(seconds);
        span.record("route", route.as_str());
        span.record("status", status);
        span.in_scope(|| {
            tracing::debug!(target: "access", seconds, "answered");
        });
    }
}

/// The method as a metrics label: the standard methods by name, any other as `OTHER`. A
/// client may send any token as a method, and every new label value would be a new series
/// kept for the life of the process.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::PATCH, "PATCH"),
        (Method::DELETE, "DELETE"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN
        .iter()
        .find(|(known, _)| known == method)
        .map_or("OTHER", |(_, name)| name)
}

/// Echoes the request's id in the answer.
pub(crate) async fn echo_request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req.extensions().get::<RequestId>().cloned();
    let mut res = next.call(req).await?;
    if let Some(value) = id.and_then(|id| HeaderValue::from_str(&id.0).ok()) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sane_request_id_is_short_visible_and_harmless_in_logs() {
        assert!(is_sane_request_id("9b2f-4c1e.retry_2"));
        assert!(is_sane_request_id("lb:10.0.0.1/abc+def=@x~y"));
        assert!(is_sane_request_id(&"a".repeat(128)));
        for bad in [
            "",
            "with space",
            "quote\"d",
            "new\nline",
            "é",
            "{json}",
            "a;b",
        ] {
            assert!(!is_sane_request_id(bad), "{bad:?}");
        }
        assert!(!is_sane_request_id(&"a".repeat(129)));
    }

    #[test]
    fn a_method_label_is_one_of_the_standard_methods_or_other() {
        use actix_web::http::Method;
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "OTHER");
    }
}

//! How a request that moves tickets is served: its idempotency key held, its command queued
//! for group commit, its answer rendered. The rendering that answers the client is the one
//! stored for replays, so a replay is byte for byte the first answer.

use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use domain::{
    Command, CommandOutcome, DomainError, IdempotencyClaim, Operation, OperationKind, RenderAnswer,
    Reservation, StoredAnswer,
};
use serde_json::{Map, Value};

use crate::batching::Failure;
use crate::dto::{HoldCreated, ReservationBody};
use crate::error::{mime_json, ApiError};
use crate::idempotency::{self, REPLAYED};
use crate::state::AppState;

/// Renders outcomes as this API answers them; handed to the domain so it can store first
/// answers with their effects.
#[derive(Debug, Clone, Copy)]
pub struct HttpAnswers;

impl RenderAnswer for HttpAnswers {
    fn render(
        &self,
        kind: OperationKind,
        outcome: &Result<Reservation, DomainError>,
    ) -> StoredAnswer {
        let (status, body) = render(kind, outcome);
        StoredAnswer {
            status: status.as_u16(),
            body,
        }
    }
}

fn json_text(value: &impl serde::Serialize) -> String {
    // Serializing these plain structs cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

/// The status and body that answer `outcome` of a request of `kind`.
fn render(kind: OperationKind, outcome: &Result<Reservation, DomainError>) -> (StatusCode, String) {
    match outcome {
        Ok(r) if kind == OperationKind::Reserve => (
            StatusCode::CREATED,
            json_text(&HoldCreated::from(r.clone())),
        ),
        Ok(r) => (StatusCode::OK, json_text(&ReservationBody::from(r.clone()))),
        Err(err) => {
            let err = ApiError::for_operation(kind, err.clone());
            (err.status_code(), err.body())
        }
    }
}

fn respond(kind: OperationKind, outcome: &Result<Reservation, DomainError>) -> HttpResponse {
    if let Err(err) = outcome {
        // Errors carry their headers (Retry-After, ...) besides the rendered body.
        return ApiError::for_operation(kind, err.clone()).error_response();
    }
    let (status, body) = render(kind, outcome);
    HttpResponse::build(status)
        .content_type(mime_json())
        .body(body)
}

fn replay(answer: StoredAnswer) -> HttpResponse {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status)
        .content_type(mime_json())
        .insert_header((REPLAYED, "true"))
        .body(answer.body)
}

/// Serves `operation`, sent as `req` with `body`, through group commit.
pub(crate) async fn serve(
    state: &AppState,
    req: &HttpRequest,
    operation: Operation,
    body: Option<&Map<String, Value>>,
) -> Result<HttpResponse, ApiError> {
    let claim = idempotency::key_of(req)?.map(|key| IdempotencyClaim {
        key,
        fingerprint: idempotency::fingerprint(req, body),
    });
    let _held = claim
        .as_ref()
        .map(|c| state.keys_in_use.hold(c))
        .transpose()?;
    let kind = operation.kind();
    let lane = state.writes.lane_of(operation.lane_tag());
    let deadline = Instant::now() + state.deadline;
    let command = Command {
        operation,
        idempotency: claim,
    };
    let outcome = state.writes.submit(lane, command, deadline).await;
    crate::telemetry::count_outcome(kind, &outcome);
    match outcome {
        Ok(CommandOutcome::Decided(outcome)) => Ok(respond(kind, &outcome)),
        Ok(CommandOutcome::Replayed(answer)) => Ok(replay(answer)),
        Err(Failure::Overloaded) => Err(ApiError::Unavailable),
        Err(Failure::OutcomeUnknown) => Err(ApiError::OutcomeUnknown),
        Err(Failure::Batch(err)) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    use domain::{EventId, ReservationId, ReservationStatus};

    use super::*;

    #[test]
    fn a_stored_answer_is_the_live_answer() {
        let now = chrono::Utc::now();
        let hold = Reservation {
            id: ReservationId::generate(now, EventId::new(1)),
            event_id: EventId::new(1),
            status: ReservationStatus::Reserved,
            quantity: 2,
            customer: None,
            purchased_at: None,
            expires_at: Some(now),
            payment_reference: None,
            created_at: now,
            updated_at: now,
            lines: vec![],
            seats: Vec::new(),
        };
        let stored = HttpAnswers.render(OperationKind::Reserve, &Ok(hold.clone()));
        assert_eq!(stored.status, 201);
        let live: Value = serde_json::from_str(&stored.body).unwrap();
        assert_eq!(live["quantity"], 2);
        assert_eq!(live["status"], "reserved");
        let refused = HttpAnswers.render(OperationKind::Reserve, &Err(DomainError::EventNotFound));
        assert_eq!(refused.status, 422);
        assert_eq!(refused.body, ApiError::invalid_event().body());
        let sold_out = HttpAnswers.render(OperationKind::Reserve, &Err(DomainError::SoldOut));
        assert_eq!(
            sold_out.body,
            r#"{"error":"sold_out","message":"Event is sold out."}"#
        );
    }
}

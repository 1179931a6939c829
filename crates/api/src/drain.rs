//! Shutdown, as clients see it. Once it begins (SIGTERM, SIGINT), the server stops accepting
//! connections, `GET /health/ready` answers 503, and each answer carries `Connection: close`:
//! a keep-alive client gets the answer to the request it sent and then reconnects elsewhere,
//! so no request that reached this server is cut off. When no request is in flight any more
//! (or the grace period is over), the server closes the idle connections and stops.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use actix_web::web;

use crate::state::AppState;

/// Counts a request in flight until it is answered or dropped.
struct CountedRequest(Arc<AtomicUsize>);

impl CountedRequest {
    fn enter(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        Self(Arc::clone(counter))
    }
}

impl Drop for CountedRequest {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

pub(crate) async fn close_when_draining(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let _counted = state
        .as_ref()
        .map(|s| CountedRequest::enter(&s.requests_in_flight));
    let mut res = next.call(req).await?;
    if state.is_some_and(|s| s.draining.load(Ordering::Acquire)) {
        res.response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    Ok(res)
}

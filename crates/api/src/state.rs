//! What every handler can reach.

use std::sync::Arc;

use domain::Ticketing;

use crate::group_commit::{PurchaseGroup, ReserveGroup};

/// The shared state of the HTTP handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The use cases.
    pub ticketing: Ticketing,
    /// Reserve requests go through group commit, per event.
    pub reservations: Arc<ReserveGroup>,
    /// Purchase requests go through group commit.
    pub purchases: Arc<PurchaseGroup>,
    /// The bearer token that `POST /api/events` requires; `None` refuses everyone.
    pub admin_token: Option<String>,
}

/// Runs a use case on the blocking thread pool: the stores block on the database and must not
/// stall the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, domain::DomainError> + Send + 'static,
) -> Result<Result<T, domain::DomainError>, crate::error::ApiError> {
    Ok(actix_web::web::block(f).await?)
}

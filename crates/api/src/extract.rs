//! The request shapes most routes share, as extractors: a request about one hold, and an
//! operator's request. Each reads the body once (the app's payload limit and its JSON 413 apply)
//! and checks in the order the API answers: the body's size, then the operator's token, then
//! the path (404), then the body's JSON (parsed when the handler asks for it).

use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use domain::{DomainError, Operation, ReservationId, Ticketing};
use serde_json::{Map, Value};

use crate::auth::require_admin;
use crate::body::optional_object;
use crate::commands;
use crate::error::ApiError;
use crate::state::{AppState, Effect};

type Extracted<T> = Pin<Box<dyn Future<Output = Result<T, actix_web::Error>>>>;

/// Reads the request's body (within the app's payload limit), then builds the extractor from
/// the request, its body and the app's state.
fn extract<T: 'static>(
    req: &HttpRequest,
    payload: &mut Payload,
    build: impl FnOnce(HttpRequest, &web::Bytes, web::Data<AppState>) -> Result<T, ApiError> + 'static,
) -> Extracted<T> {
    let req = req.clone();
    let bytes = web::Bytes::from_request(&req, payload);
    Box::pin(async move {
        let bytes = bytes.await?;
        let state = req
            .app_data::<web::Data<AppState>>()
            .cloned()
            .ok_or(ApiError::Internal)?;
        Ok(build(req, &bytes, state)?)
    })
}

/// `POST /api/reservations/{reservation}/...`: the hold and the request's optional JSON
/// object. An id that is not a reservation id answers 404, before the body is parsed.
pub(crate) struct HoldRequest {
    state: web::Data<AppState>,
    req: HttpRequest,
    /// The hold.
    pub(crate) id: ReservationId,
    /// The body's object, if one was sent.
    pub(crate) body: Option<Map<String, Value>>,
}

impl HoldRequest {
    /// The settings the routes validate against.
    pub(crate) fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves `operation` through group commit (see [`commands::serve`]).
    pub(crate) async fn serve(self, operation: Operation) -> Result<HttpResponse, ApiError> {
        commands::serve(&self.state, &self.req, operation, self.body.as_ref()).await
    }
}

impl HoldRequest {
    fn build(
        req: HttpRequest,
        bytes: &web::Bytes,
        state: web::Data<AppState>,
    ) -> Result<Self, ApiError> {
        let id: ReservationId = req
            .match_info()
            .query("reservation")
            .parse()
            .map_err(|_| ApiError::NotFound)?;
        let body = optional_object(&req, bytes)?;
        Ok(Self {
            state,
            req,
            id,
            body,
        })
    }
}

impl FromRequest for HoldRequest {
    type Error = actix_web::Error;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        extract(req, payload, Self::build)
    }
}

/// An operator's request (`Authorization: Bearer <ADMIN_TOKEN>`, else 401) with its optional
/// JSON object.
pub(crate) struct AdminRequest {
    state: web::Data<AppState>,
    req: HttpRequest,
    bytes: web::Bytes,
}

impl AdminRequest {
    /// The id in the path's `{segment}`; 404 when it is not one.
    pub(crate) fn id<T: FromStr>(&self, segment: &str) -> Result<T, ApiError> {
        self.req
            .match_info()
            .query(segment)
            .parse()
            .map_err(|_| ApiError::NotFound)
    }

    /// The query string.
    pub(crate) fn query(&self) -> &str {
        self.req.query_string()
    }

    /// The body's object, if one was sent.
    pub(crate) fn body(&self) -> Result<Option<Map<String, Value>>, ApiError> {
        optional_object(&self.req, &self.bytes)
    }

    /// The body's object: 422 on `body` when none was sent.
    pub(crate) fn required_body(&self) -> Result<Map<String, Value>, ApiError> {
        self.body()?
            .ok_or_else(|| ApiError::invalid("body", "The request body is required."))
    }

    /// The settings and engines of the app.
    pub(crate) fn state(&self) -> &AppState {
        &self.state
    }

    /// The request.
    pub(crate) fn request(&self) -> &HttpRequest {
        &self.req
    }

    /// Runs `work` on a blocking thread, as a write (`Effect::Write`) or a read.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        effect: Effect,
        work: impl FnOnce(&Ticketing) -> Result<T, DomainError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let ticketing = self.state.ticketing.clone();
        self.state.blocking(effect, move || work(&ticketing)).await
    }
}

impl FromRequest for AdminRequest {
    type Error = actix_web::Error;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        extract(req, payload, |req, bytes, state| {
            require_admin(&req, state.admin_token.as_ref())?;
            Ok(Self {
                state,
                req,
                bytes: bytes.clone(),
            })
        })
    }
}

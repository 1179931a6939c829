//! The OpenAPI 3.1 document, generated from the handlers' annotations and the body types, and
//! the docs page (Swagger UI, its files embedded in the binary: nothing is fetched from the
//! network, at build time or when a browser opens it).
//!
//! The annotations give each operation its parameters, bodies, success answers and links; the
//! error answers are added here from one table, with an example of every `error` code built
//! from [`ApiError`] itself, so the document says what the server sends.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse, ResponseError};
use serde_json::{json, Map, Value};
use utoipa::OpenApi;
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::error::{mime_json, ApiError};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Ticket reservation service",
        description = "Reserve tickets, then purchase them before the hold expires; never more \
                       tickets than an event has. Every answer, errors included, is JSON. Send \
                       an `Idempotency-Key` with reserve, purchase and cancel to retry safely: a \
                       retry with the same key and request gets the first answer again, with \
                       `Idempotent-Replayed: true`, and has no second effect. After a 503 \
                       `outcome_unknown`, retry with the same key to learn what happened.",
        license(name = "MIT OR Apache-2.0"),
    ),
    paths(
        crate::reservations::reserve,
        crate::reservations::purchase,
        crate::reservations::cancel,
        crate::hold_changes::extend,
        crate::hold_changes::release,
        crate::reservations::show,
        crate::events::list,
        crate::events::create,
        crate::events::show,
        crate::events::update,
        crate::inventory::create_quota,
        crate::inventory::update_quota,
        crate::inventory::create_ticket_type,
        crate::seats::show,
        crate::seats::load,
        crate::messages::list,
        crate::stream::stream,
        crate::webhooks::create,
        crate::webhooks::list,
        crate::webhooks::remove,
        crate::webhooks::deliveries,
        crate::webhooks::retry,
        crate::routes::health,
        crate::routes::live,
        crate::routes::ready,
    ),
    components(schemas(crate::dto::ErrorBody, crate::dto::ValidationErrorBody, crate::dto::ErrorCode)),
    tags(
        (name = "reservations", description = "Hold, purchase and cancel tickets."),
        (name = "events", description = "Events and their ticket counts."),
        (name = "inventory", description = "Quotas and ticket types of an event (operators)."),
        (name = "seating", description = "Seating plans and the live seat map."),
        (name = "webhooks", description = "Signed deliveries of the outbox to the shop's endpoints (operators)."),
        (name = "operations", description = "For load balancers and operators."),
    ),
)]
struct ApiDoc;

/// The operations that move tickets: their successes may be replays of a first answer.
const IDEMPOTENT: [&str; 5] = ["reserve", "purchase", "cancel", "extend", "release"];

/// Which error answers each operation gives, with the error codes each can carry.
#[allow(clippy::too_many_lines)] // one table, read top to bottom
fn errors_of(operation: &str) -> Vec<(StatusCode, Vec<ApiError>)> {
    let bad_body = [
        (
            StatusCode::BAD_REQUEST,
            vec![ApiError::MalformedJson(
                "expected value at line 1 column 1".into(),
            )],
        ),
        (StatusCode::PAYLOAD_TOO_LARGE, vec![]),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            vec![ApiError::UnsupportedMediaType],
        ),
    ];
    let unavailable = (
        StatusCode::SERVICE_UNAVAILABLE,
        vec![ApiError::Unavailable, ApiError::OutcomeUnknown],
    );
    let key = |errors: &[ApiError]| {
        let mut all = errors.to_vec();
        all.push(ApiError::IdempotencyKeyInProgress);
        all
    };
    let unprocessable = |field: &'static str, message: &str, reused: bool| {
        let mut errors = vec![ApiError::invalid(field, message)];
        if reused {
            errors.push(ApiError::IdempotencyKeyReused);
        }
        (StatusCode::UNPROCESSABLE_ENTITY, errors)
    };
    let mut table = match operation {
        "reserve" => vec![
            (
                StatusCode::CONFLICT,
                key(&[
                    ApiError::SoldOut,
                    ApiError::TypesSoldOut(vec![domain::Shortfall {
                        ticket_type: domain::TicketTypeId::new(3),
                        available: 1,
                    }]),
                    ApiError::CustomerLimitReached,
                    ApiError::SeatUnavailable(vec!["A-1-7".into()]),
                ]),
            ),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                vec![
                    ApiError::invalid_event(),
                    ApiError::invalid(
                        "quantity",
                        "The quantity field must not be greater than 10.",
                    ),
                    ApiError::invalid("ticket_type", "The ticket type field is required."),
                    ApiError::invalid("seats", "This event has no seat A-9-99."),
                    ApiError::IdempotencyKeyReused,
                ],
            ),
        ],
        "extend" | "release" => vec![
            (StatusCode::NOT_FOUND, vec![ApiError::NotFound]),
            (
                StatusCode::CONFLICT,
                key(&if operation == "extend" {
                    vec![
                        ApiError::HoldLifetimeExceeded,
                        ApiError::AlreadyPurchased,
                        ApiError::InvalidOrExpired,
                    ]
                } else {
                    vec![ApiError::AlreadyPurchased, ApiError::InvalidOrExpired]
                }),
            ),
            if operation == "extend" {
                unprocessable(
                    "seconds",
                    "The seconds field must be an integer from 1 to 600.",
                    true,
                )
            } else {
                unprocessable(
                    "quantity",
                    "The quantity must be fewer than the tickets held; cancel releases them all.",
                    true,
                )
            },
        ],
        "createQuota" | "createTicketType" => vec![
            (StatusCode::UNAUTHORIZED, vec![ApiError::Unauthorized]),
            (StatusCode::NOT_FOUND, vec![ApiError::NotFound]),
            if operation == "createQuota" {
                unprocessable("capacity", "The capacity field must be at least 1.", false)
            } else {
                unprocessable("quotas", "The selected quotas are invalid.", false)
            },
        ],
        "purchase" | "cancel" => vec![
            (StatusCode::NOT_FOUND, vec![ApiError::NotFound]),
            (
                StatusCode::CONFLICT,
                key(&[ApiError::AlreadyPurchased, ApiError::InvalidOrExpired]),
            ),
            unprocessable(
                if operation == "purchase" {
                    "payment_reference"
                } else {
                    "idempotency_key"
                },
                if operation == "purchase" {
                    "The payment reference must not be greater than 64 characters."
                } else {
                    "The Idempotency-Key header must be 1 to 255 visible ASCII characters."
                },
                true,
            ),
        ],
        "getReservation" | "getEvent" | "getSeats" | "streamEvent" => {
            vec![(StatusCode::NOT_FOUND, vec![ApiError::NotFound])]
        }
        "createWebhook" => vec![
            (StatusCode::UNAUTHORIZED, vec![ApiError::Unauthorized]),
            unprocessable("url", "The url must be http:// or https://.", false),
        ],
        "listWebhooks" => vec![(StatusCode::UNAUTHORIZED, vec![ApiError::Unauthorized])],
        "removeWebhook" | "retryDelivery" => vec![
            (StatusCode::UNAUTHORIZED, vec![ApiError::Unauthorized]),
            (StatusCode::NOT_FOUND, vec![ApiError::NotFound]),
        ],
        "listMessages" | "listDeliveries" => vec![
            (StatusCode::UNAUTHORIZED, vec![ApiError::Unauthorized]),
            (StatusCode::NOT_FOUND, vec![ApiError::NotFound]),
            unprocessable(
                "limit",
                "The limit must be an integer between 1 and 1000.",
                false,
            ),
        ],
        "putSeats" => vec![
            (StatusCode::UNAUTHORIZED, vec![ApiError::Unauthorized]),
            (StatusCode::NOT_FOUND, vec![ApiError::NotFound]),
            (StatusCode::CONFLICT, vec![ApiError::SeatingLocked]),
            unprocessable("sections", "Two sections are named \"A\".", false),
        ],
        "ready" => vec![(
            StatusCode::SERVICE_UNAVAILABLE,
            vec![ApiError::NotReady(
                "the database did not answer within a second".into(),
            )],
        )],
        "listEvents" => vec![unprocessable(
            "limit",
            "The limit must be an integer between 1 and 100.",
            false,
        )],
        "createEvent" => vec![
            (StatusCode::UNAUTHORIZED, vec![ApiError::Unauthorized]),
            unprocessable("capacity", "The capacity field must be at least 1.", false),
        ],
        "updateEvent" | "updateQuota" => vec![
            (StatusCode::UNAUTHORIZED, vec![ApiError::Unauthorized]),
            (StatusCode::NOT_FOUND, vec![ApiError::NotFound]),
            (StatusCode::CONFLICT, vec![ApiError::CapacityBelowSold]),
            unprocessable("capacity", "The capacity field must be at least 1.", false),
        ],
        _ => vec![],
    };
    if matches!(
        operation,
        "reserve"
            | "purchase"
            | "cancel"
            | "extend"
            | "release"
            | "createEvent"
            | "updateEvent"
            | "createQuota"
            | "updateQuota"
            | "createTicketType"
            | "putSeats"
            | "createWebhook"
            | "retryDelivery"
    ) {
        table.extend(bad_body);
        // Only when RATE_LIMIT_PER_SECOND is set.
        table.push((
            StatusCode::TOO_MANY_REQUESTS,
            vec![ApiError::RateLimited(1)],
        ));
    }
    if !matches!(operation, "health" | "live" | "ready") {
        table.push(unavailable);
    }
    table
}

fn error_response(status: StatusCode, errors: &[ApiError]) -> Value {
    let examples: Map<String, Value> = errors
        .iter()
        .map(|err| {
            let value: Value = serde_json::from_str(&err.body()).unwrap_or(Value::Null);
            let name = match err {
                ApiError::Validation(fields) => {
                    format!(
                        "validation_{}",
                        fields.keys().next().copied().unwrap_or("body")
                    )
                }
                // Beside the seed's `sold_out` example.
                ApiError::TypesSoldOut(_) => "sold_out_ticket_types".to_owned(),
                other => other.code().to_owned(),
            };
            (name, json!({ "summary": err.message(), "value": value }))
        })
        .collect();
    let schema = if status == StatusCode::UNPROCESSABLE_ENTITY {
        json!({ "anyOf": [
            { "$ref": "#/components/schemas/ValidationErrorBody" },
            { "$ref": "#/components/schemas/ErrorBody" },
        ] })
    } else {
        json!({ "$ref": "#/components/schemas/ErrorBody" })
    };
    let mut content = json!({ "schema": schema });
    if !examples.is_empty() {
        content["examples"] = Value::Object(examples);
    }
    let mut response = json!({
        "description": status.canonical_reason().unwrap_or("Error"),
        "content": { "application/json": content },
    });
    let retry_after = |required: bool| {
        json!({
            "description": "Seconds to wait before retrying.",
            "required": required,
            "schema": { "type": "integer", "minimum": 0 },
        })
    };
    match status {
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => {
            response["headers"] = json!({ "Retry-After": retry_after(true) });
        }
        StatusCode::CONFLICT if errors.contains(&ApiError::IdempotencyKeyInProgress) => {
            response["headers"] = json!({ "Retry-After": retry_after(false) });
        }
        StatusCode::UNAUTHORIZED => {
            response["headers"] = json!({ "WWW-Authenticate": {
                "description": "Always `Bearer`.",
                "required": true,
                "schema": { "type": "string", "enum": ["Bearer"] },
            } });
        }
        _ => {}
    }
    if IDEMPOTENT_ERRORS.contains(&status.as_u16()) {
        let headers = response.as_object_mut().and_then(|r| {
            r.entry("headers")
                .or_insert_with(|| json!({}))
                .as_object_mut()
        });
        if let Some(headers) = headers {
            headers.insert("Idempotent-Replayed".into(), replayed_header());
        }
    }
    response
}

/// Statuses a replayed first answer may have besides success.
const IDEMPOTENT_ERRORS: [u16; 3] = [404, 409, 422];

fn replayed_header() -> Value {
    json!({
        "description": "`true` when this is the first answer to an earlier request with the \
                        same Idempotency-Key, replayed; absent otherwise.",
        "required": false,
        "schema": { "type": "string", "enum": ["true"] },
    })
}

/// The document, for a server whose largest reserve is `max_quantity` tickets and whose holds
/// last `ttl_seconds`.
pub fn document(max_quantity: u32, ttl_seconds: u32) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null);
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            for operation in item.values_mut().filter_map(Value::as_object_mut) {
                finish_operation(operation);
            }
        }
    }
    for (pointer, maximum) in [
        ("ReserveRequest/properties/quantity", max_quantity),
        ("ReleaseRequest/properties/quantity", max_quantity),
        ("LineRequestBody/properties/quantity", max_quantity),
        ("ExtendRequest/properties/seconds", ttl_seconds),
    ] {
        if let Some(field) = doc.pointer_mut(&format!("/components/schemas/{pointer}")) {
            field["maximum"] = json!(maximum);
        }
    }
    doc["components"]["securitySchemes"] = json!({ "admin_token": {
        "type": "http",
        "scheme": "bearer",
        "description": "The operators' token (`ADMIN_TOKEN`).",
    } });
    doc
}

fn finish_operation(operation: &mut Map<String, Value>) {
    let id = operation
        .get("operationId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let idempotent = IDEMPOTENT.contains(&id.as_str());
    // Bodies of reserve, purchase and cancel are optional; the others' are required.
    if let Some(body) = operation.get_mut("requestBody") {
        body["required"] = json!(!idempotent);
    } else if id == "cancel" {
        operation.insert(
            "requestBody".into(),
            json!({
                "description": "Optional; nothing in it is read.",
                "required": false,
                "content": { "application/json": { "schema": { "type": "object" } } },
            }),
        );
    }
    let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    if idempotent {
        for (status, response) in responses.iter_mut() {
            if status.starts_with('2') {
                response["headers"] = json!({ "Idempotent-Replayed": replayed_header() });
            }
        }
    }
    for (status, errors) in errors_of(&id) {
        let mut response = error_response(status, &errors);
        if !idempotent {
            if let Some(headers) = response.get_mut("headers").and_then(Value::as_object_mut) {
                headers.remove("Idempotent-Replayed");
                if headers.is_empty() {
                    response.as_object_mut().map(|r| r.remove("headers"));
                }
            }
        }
        responses.insert(status.as_u16().to_string(), response);
    }
}

/// The document, serialized once, as served.
#[derive(Debug, Clone)]
pub struct ApiDocs {
    json: String,
}

impl ApiDocs {
    /// The document for a server whose largest reserve is `max_quantity` tickets and whose
    /// holds last `ttl_seconds`.
    pub fn new(max_quantity: u32, ttl_seconds: u32) -> Self {
        Self {
            json: document(max_quantity, ttl_seconds).to_string(),
        }
    }
}

/// The OpenAPI 3.1 document of this API.
async fn openapi_json(docs: web::Data<ApiDocs>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(mime_json())
        .body(docs.json.clone())
}

/// Registers `GET /api/openapi.json` and the docs page at `/docs/`.
pub(crate) fn configure(docs: web::Data<ApiDocs>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.service(
            web::resource("/api/openapi.json")
                .app_data(docs)
                .route(web::get().to(openapi_json))
                .default_service(web::to(|| async {
                    ApiError::MethodNotAllowed("GET").error_response()
                })),
        )
        .service(web::redirect("/docs", "/docs/"))
        .service(SwaggerUi::new("/docs/{_:.*}").config(
            // No validator badge: it would fetch an image from validator.swagger.io.
            Config::new(["/api/openapi.json"]).validator_url("none"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_with_every_route_and_camel_case_links() {
        let doc = document(7, 600);
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        for (path, method) in [
            ("/api/events/{event}/reserve", "post"),
            ("/api/reservations/{reservation}/extend", "post"),
            ("/api/reservations/{reservation}/release", "post"),
            ("/api/events/{event}/quotas", "post"),
            ("/api/events/{event}/quotas/{quota}", "patch"),
            ("/api/events/{event}/ticket-types", "post"),
            ("/api/reservations/{reservation}/purchase", "post"),
            ("/api/reservations/{reservation}/cancel", "post"),
            ("/api/reservations/{reservation}", "get"),
            ("/api/events", "get"),
            ("/api/events", "post"),
            ("/api/events/{event}", "get"),
            ("/api/events/{event}", "patch"),
            ("/health", "get"),
            ("/health/live", "get"),
            ("/health/ready", "get"),
        ] {
            assert!(paths[path].get(method).is_some(), "{method} {path}");
        }
        let reserve = &paths["/api/events/{event}/reserve"]["post"];
        let link = &reserve["responses"]["201"]["links"]["purchase"];
        assert_eq!(link["operationId"], "purchase");
        assert_eq!(link["parameters"]["reservation"], "$response.body#/id");
        assert_eq!(reserve["requestBody"]["required"], false);
        assert_eq!(
            doc["components"]["schemas"]["ReserveRequest"]["properties"]["quantity"]["maximum"],
            7
        );
        let sold_out = &reserve["responses"]["409"]["content"]["application/json"]["examples"]
            ["sold_out"]["value"];
        assert_eq!(
            sold_out,
            &json!({"error": "sold_out", "message": "Event is sold out."})
        );
        assert_eq!(
            reserve["responses"]["503"]["headers"]["Retry-After"]["required"],
            true
        );
        let key = reserve["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "Idempotency-Key")
            .unwrap();
        assert_eq!(
            (key["in"].as_str(), key["required"].as_bool()),
            (Some("header"), Some(false))
        );
        assert_eq!(key["schema"]["type"], "string");
        assert_eq!(
            paths["/api/events"]["post"]["security"][0]["admin_token"],
            json!([])
        );
    }

    #[test]
    fn the_documented_limits_are_the_domains() {
        use domain::validation::{
            CUSTOMER_MAX_CHARS, EVENT_NAME_MAX_CHARS, PAYMENT_REFERENCE_MAX_CHARS,
        };
        let doc = document(domain::DEFAULT_MAX_TICKETS_PER_RESERVATION, 600);
        let schemas = &doc["components"]["schemas"];
        let property = |schema: &str, field: &str| schemas[schema]["properties"][field].clone();
        let chars = |n: usize| json!(n);
        assert_eq!(
            property("ReserveRequest", "customer")["maxLength"],
            chars(CUSTOMER_MAX_CHARS)
        );
        assert_eq!(
            property("ReserveRequest", "quantity")["maximum"],
            json!(domain::DEFAULT_MAX_TICKETS_PER_RESERVATION)
        );
        assert_eq!(
            property("PurchaseRequest", "payment_reference")["maxLength"],
            chars(PAYMENT_REFERENCE_MAX_CHARS)
        );
        for schema in ["NewEventRequest", "EventPatchRequest"] {
            assert_eq!(
                property(schema, "name")["maxLength"],
                chars(EVENT_NAME_MAX_CHARS),
                "{schema}"
            );
            assert_eq!(
                property(schema, "capacity")["maximum"],
                json!(i32::MAX),
                "{schema}"
            );
        }
        // The validators take exactly these: one past them is refused.
        assert!(domain::Customer::parse(&"c".repeat(CUSTOMER_MAX_CHARS)).is_ok());
        assert!(domain::Customer::parse(&"c".repeat(CUSTOMER_MAX_CHARS + 1)).is_err());
        assert!(domain::EventName::parse(&"n".repeat(EVENT_NAME_MAX_CHARS + 1)).is_err());
        assert!(
            domain::PaymentReference::parse(&"p".repeat(PAYMENT_REFERENCE_MAX_CHARS + 1)).is_err()
        );
        assert!(domain::Capacity::new(i64::from(i32::MAX) + 1).is_err());
    }
}

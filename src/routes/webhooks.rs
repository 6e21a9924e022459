//! `/v1/admin/webhooks`: endpoints that receive signed entitlement events (admin only).

use crate::error::ErrorCode;
use actix_web::{delete, get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use entities::{webhook_delivery, webhook_endpoint};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::{examples, json::Json};
use crate::{
    auth::Caller,
    domain::role::roles,
    error::{ApiError, ApiResult},
    events::{
        net::{self, UrlError},
        Event,
    },
    services::{
        page::{Page, PageQuery},
        webhooks,
    },
    state::AppState,
};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(post_webhook)
        .service(get_webhooks)
        .service(get_webhook)
        .service(delete_webhook)
        .service(post_webhook_secret)
        .service(get_webhook_deliveries)
        .service(post_webhook_test);
}

const MAX_DESCRIPTION: usize = 200;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// Where events are POSTed: `https://` (unless `webhooks.allow_http`), on a public address
    /// (unless `webhooks.allow_private_networks`).
    #[schema(example = "https://meet.example.org/vouch/events")]
    pub url: String,
    /// The event types to deliver; all of them when left out.
    #[schema(example = json!(["entitlement.revoked", "account.suspended"]))]
    pub events: Option<Vec<String>>,
    /// Up to 200 characters, for people.
    pub description: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookResponse {
    #[schema(example = "whk_0192f5c8a3b47d2e9c1f0a6b5d4e3c2b")]
    pub id: String,
    pub url: String,
    /// The event types delivered here.
    pub events: Vec<String>,
    /// `enabled`, or `disabled` once the receiver answered 410 Gone.
    #[schema(example = "enabled")]
    pub status: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    /// While a rotation overlaps: until when the previous secret still signs.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
}

impl WebhookResponse {
    fn from_model(m: webhook_endpoint::Model, now: DateTime<Utc>) -> Self {
        WebhookResponse {
            events: webhooks::endpoint_events(&m),
            previous_secret_expires_at: m.previous_secret_expires_at.filter(|t| *t > now),
            id: m.id,
            url: m.url,
            status: m.status,
            description: m.description,
            created_at: m.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct WebhookWithSecretResponse {
    #[serde(flatten)]
    pub webhook: WebhookResponse,
    /// `whsec_<base64>`: the signing secret. Shown once; only a sealed copy is stored.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryResponse {
    #[schema(example = "whd_0192f5c8a3b47d2e9c1f0a6b5d4e3c2b")]
    pub id: String,
    /// The `webhook-id` the receiver sees.
    pub event_id: String,
    #[serde(rename = "type")]
    #[schema(example = "entitlement.revoked")]
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    #[schema(example = "delivered")]
    pub status: String,
    pub attempts: i32,
    pub last_status_code: Option<i32>,
    /// A short reason for the last failure (never the receiver's answer).
    pub last_error: Option<String>,
    /// When the next attempt is due (`pending` only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl TryFrom<webhook_delivery::Model> for DeliveryResponse {
    type Error = ApiError;

    fn try_from(d: webhook_delivery::Model) -> Result<Self, ApiError> {
        use webhooks::DeliveryStatus;
        let stored: DeliveryStatus = crate::services::stored("webhook delivery status", &d.status)?;
        // One being sent right now is, to the caller, still pending.
        let pending = matches!(stored, DeliveryStatus::Pending | DeliveryStatus::Sending);
        Ok(DeliveryResponse {
            id: d.id,
            event_id: d.event_id,
            event_type: d.event_type,
            status: if pending {
                DeliveryStatus::Pending.to_string()
            } else {
                d.status
            },
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            next_attempt_at: pending.then_some(d.next_attempt_at),
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        })
    }
}

#[derive(Serialize, ToSchema)]
pub struct TestPingResponse {
    /// The ping's `webhook-id`.
    pub event_id: String,
    pub delivery_id: String,
}

fn url_error(e: UrlError) -> ApiError {
    match e {
        UrlError::Invalid(m) => ApiError::bad_request(ErrorCode::InvalidUrl, m),
        UrlError::NotAllowed(m) => ApiError::bad_request(ErrorCode::UrlNotAllowed, m),
    }
}

/// Register an endpoint. The response holds its signing secret, shown this once.
#[utoipa::path(
    tag = "webhooks",
    extensions(("x-vouch-roles" = json!(roles::ADMIN))),
    request_body(content = CreateWebhookRequest, example = json!(examples::create_webhook())),
    responses(
        (status = 201, description = "The endpoint and its signing secret (shown this once)", body = WebhookWithSecretResponse,
            example = json!(examples::webhook_with_secret())),
        (status = 400, description = "`invalid_url`, `url_not_allowed`, `invalid_event_type`, `invalid_description`, `invalid_body`"),
    ),
    security(("api_key" = []))
)]
#[post("/v1/admin/webhooks")]
pub async fn post_webhook(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<CreateWebhookRequest>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::ADMIN)?;
    let settings = &state.settings.webhooks;
    let url = net::parse_url(body.url.trim(), settings).map_err(url_error)?;
    net::check_host(&url, settings).await.map_err(url_error)?;
    let events = body
        .events
        .as_deref()
        .map(webhooks::validate_events)
        .transpose()?;
    let description = body.description.as_deref().map(str::trim);
    if description
        .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION || d.chars().any(char::is_control))
    {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidDescription,
            "description must be at most 200 characters, without control characters",
        ));
    }
    let now = state.now();
    let txn = state.db.begin_write().await?;
    let (endpoint, secret) = webhooks::create_endpoint(
        &*txn,
        &state.master_key,
        &caller.name,
        url.as_str(),
        description.filter(|d| !d.is_empty()),
        events,
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(WebhookWithSecretResponse {
            webhook: WebhookResponse::from_model(endpoint, now),
            secret,
        }))
}

/// List endpoints (secrets are never shown again).
#[utoipa::path(
    tag = "webhooks",
    extensions(("x-vouch-roles" = json!(roles::ADMIN))),
    params(PageQuery),
    responses((status = 200, description = "A page of endpoints, oldest first", body = Page<WebhookResponse>,
        example = json!(examples::webhooks()))),
    security(("api_key" = [])))]
#[get("/v1/admin/webhooks")]
pub async fn get_webhooks(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::ADMIN)?;
    let limit = query.limit()?;
    let after = query.after()?;
    let now = state.now();
    let rows = webhooks::list_endpoints(state.db.conn(), after.as_deref(), limit + 1).await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(
        rows,
        limit,
        |e| e.id.clone(),
        |e| WebhookResponse::from_model(e, now),
    )))
}

/// One endpoint.
#[utoipa::path(
    tag = "webhooks",
    extensions(("x-vouch-roles" = json!(roles::ADMIN))),
    params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 200, description = "The endpoint", body = WebhookResponse,
            example = json!(examples::webhook())),
        (status = 404, description = "`webhook_not_found`"),
    ),
    security(("api_key" = []))
)]
#[get("/v1/admin/webhooks/{id}")]
pub async fn get_webhook(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::ADMIN)?;
    let endpoint = webhooks::require_endpoint(state.db.conn(), &id).await?;
    Ok(HttpResponse::Ok().json(WebhookResponse::from_model(endpoint, state.now())))
}

/// Delete an endpoint; its undelivered events are dropped.
#[utoipa::path(
    tag = "webhooks",
    extensions(("x-vouch-roles" = json!(roles::ADMIN))),
    params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 204, description = "Deleted (no body), with its deliveries"),
        (status = 404, description = "`webhook_not_found`"),
    ),
    security(("api_key" = []))
)]
#[delete("/v1/admin/webhooks/{id}")]
pub async fn delete_webhook(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::ADMIN)?;
    let txn = state.db.begin_write().await?;
    webhooks::delete_endpoint(&*txn, &caller.name, &id, state.now()).await?;
    txn.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Rotate the signing secret. The new secret is returned once; for 24 h every delivery carries
/// a signature with the old secret and one with the new.
#[utoipa::path(
    tag = "webhooks",
    extensions(("x-vouch-roles" = json!(roles::ADMIN))),
    params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 200, description = "The endpoint and its new secret (shown this once); the old one signs too for 24 h", body = WebhookWithSecretResponse,
            example = json!(examples::webhook_with_secret())),
        (status = 404, description = "`webhook_not_found`"),
    ),
    security(("api_key" = []))
)]
#[post("/v1/admin/webhooks/{id}/secret")]
pub async fn post_webhook_secret(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::ADMIN)?;
    let now = state.now();
    let txn = state.db.begin_write().await?;
    let (endpoint, secret) =
        webhooks::rotate_secret(&*txn, &state.master_key, &caller.name, &id, now).await?;
    txn.commit().await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(WebhookWithSecretResponse {
            webhook: WebhookResponse::from_model(endpoint, now),
            secret,
        }))
}

/// An endpoint's deliveries, newest first, with their attempts and last answer.
#[utoipa::path(
    tag = "webhooks",
    extensions(("x-vouch-roles" = json!(roles::ADMIN))),
    params(("id" = String, Path, description = "Endpoint id"), PageQuery),
    responses(
        (status = 200, description = "A page of the endpoint's deliveries, newest first", body = Page<DeliveryResponse>,
            example = json!(examples::deliveries())),
        (status = 404, description = "`webhook_not_found`"),
    ),
    security(("api_key" = []))
)]
#[get("/v1/admin/webhooks/{id}/deliveries")]
pub async fn get_webhook_deliveries(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    query: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::ADMIN)?;
    let limit = query.limit()?;
    let before = query.after()?;
    let conn = state.db.conn();
    webhooks::require_endpoint(conn, &id).await?;
    let rows = webhooks::list_deliveries(conn, &id, before.as_deref(), limit + 1).await?;
    Ok(HttpResponse::Ok().json(Page::try_from_rows(
        rows,
        limit,
        |d| d.id.clone(),
        DeliveryResponse::try_from,
    )?))
}

/// Send a `ping` event to this endpoint (whatever its filter), signed like every event.
#[utoipa::path(
    tag = "webhooks",
    extensions(("x-vouch-roles" = json!(roles::ADMIN))),
    params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 202, description = "Queued; it leaves within a second", body = TestPingResponse,
            example = json!(examples::test_ping())),
        (status = 404, description = "`webhook_not_found`"),
        (status = 409, description = "`webhook_disabled`"),
    ),
    security(("api_key" = []))
)]
#[post("/v1/admin/webhooks/{id}/test")]
pub async fn post_webhook_test(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::ADMIN)?;
    let now = state.now();
    let txn = state.db.begin_write().await?;
    let endpoint = webhooks::require_endpoint(&*txn, &id).await?;
    if endpoint.status != webhooks::EndpointStatus::Enabled.as_str() {
        return Err(ApiError::conflict(
            ErrorCode::WebhookDisabled,
            "the endpoint is disabled (its receiver answered 410 Gone); create it again",
        ));
    }
    let (event, delivery) = webhooks::emit_to(&*txn, now, &Event::Ping, &endpoint.id).await?;
    txn.commit().await?;
    state.webhooks.wake();
    Ok(HttpResponse::Accepted().json(TestPingResponse {
        event_id: event.id,
        delivery_id: delivery.id,
    }))
}

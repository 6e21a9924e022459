//! Billing: the Stripe webhook (authenticated by its signature alone) and the link between an
//! account and its Stripe customer.

use super::{examples, json::Json};
use crate::error::ErrorCode;
use actix_web::{get, http::StatusCode, post, put, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::db::batch;
use crate::{
    auth::Caller,
    config::StripeSettings,
    domain::{
        account::AccountId,
        billing::{Change, CustomerId, SubscriptionStatus},
        role::roles,
        stripe::{self, Event, SignatureError},
    },
    error::{ApiError, ApiResult},
    services::{
        accounts,
        billing::{self, Outcome},
        decisions::{self, Cause},
    },
    state::AppState,
};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(post_stripe_webhook)
        .service(put_billing)
        .service(get_billing);
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookOutcome {
    /// Applied to the linked account's payment evidence.
    Applied,
    /// Stored; no account is linked yet. Applied when one is (`PUT /v1/accounts/{id}/billing`).
    Pending,
    /// Not an event billing acts on.
    Ignored,
    /// This event id was received before; nothing was done.
    Duplicate,
    /// Stored, but the subscription already reflects a newer event (Stripe delivered it out
    /// of order) and it changed nothing.
    Stale,
}

impl From<Outcome> for WebhookOutcome {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Applied => WebhookOutcome::Applied,
            Outcome::Pending => WebhookOutcome::Pending,
            Outcome::Ignored => WebhookOutcome::Ignored,
            Outcome::Duplicate => WebhookOutcome::Duplicate,
            Outcome::Stale => WebhookOutcome::Stale,
        }
    }
}

/// Named apart from the webhook endpoints' `WebhookResponse`: one schema name, one shape.
#[derive(Serialize, ToSchema)]
#[schema(as = StripeWebhookResponse)]
pub struct WebhookResponse {
    pub received: bool,
    #[schema(example = "evt_1NG8Du2eZvKYlo2CUI79vXWy")]
    pub event_id: String,
    pub outcome: WebhookOutcome,
}

/// The raw body, read before anything parses it (the signature covers these exact bytes).
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> ApiResult<web::BytesMut> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!("the request body is larger than {limit} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            ApiError::bad_request(ErrorCode::BadRequest, "the request body could not be read")
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The event in a webhook delivery: signed by one of `secrets` within the tolerance, readable,
/// and of the mode this endpoint takes.
fn verified_event(
    settings: &StripeSettings,
    secrets: &[&[u8]],
    header: Option<&str>,
    body: &[u8],
    now: i64,
) -> ApiResult<Event> {
    stripe::verify(header, body, secrets, now, settings.tolerance_seconds).map_err(
        |e| match e {
            SignatureError::OutOfTolerance => ApiError::bad_request(
                ErrorCode::TimestampOutOfTolerance,
                format!(
                    "the signature's timestamp is more than {} seconds from now",
                    settings.tolerance_seconds
                ),
            ),
            other => ApiError::bad_request(ErrorCode::InvalidSignature, other.to_string()),
        },
    )?;
    let event = stripe::parse_event(body)
        .map_err(|e| ApiError::bad_request(ErrorCode::MalformedPayload, e.to_string()))?;
    if event.livemode != settings.livemode {
        let mode = |live: bool| if live { "live" } else { "test" };
        return Err(ApiError::bad_request(
            ErrorCode::LivemodeMismatch,
            format!(
                "this endpoint takes {}-mode events (stripe.livemode); this is a {}-mode event",
                mode(settings.livemode),
                mode(event.livemode)
            ),
        ));
    }
    if let Some(subject) = &event.subject {
        if let Change::Snapshot {
            status: SubscriptionStatus::Unknown,
            ..
        } = subject.change
        {
            tracing::warn!(
                event_id = %event.id,
                subscription = %subject.subscription_id,
                "unknown subscription status: treated as not paid"
            );
        }
    }
    Ok(event)
}

fn log_receipt(event: &Event, outcome: Outcome) {
    match outcome {
        Outcome::Ignored => {
            tracing::debug!(event_id = %event.id, event_type = %event.event_type, "stripe event ignored")
        }
        outcome => tracing::info!(
            event_id = %event.id,
            event_type = %event.event_type,
            subscription = event.subject.as_ref().map(|s| s.subscription_id.as_str()),
            outcome = outcome.as_str(),
            "stripe event received"
        ),
    }
}

/// Receive a Stripe event (public: authenticated by its signature alone).
///
/// `Stripe-Signature` must carry a `v1` HMAC-SHA256 of `"{t}.{raw body}"` under a configured
/// endpoint secret, with `t` within `stripe.tolerance_seconds` of now. Each event id is applied
/// once; events may arrive in any order.
#[utoipa::path(
    tag = "billing",
    extensions(("x-vouch-roles" = json!(roles::PUBLIC))),
    params(("Stripe-Signature" = String, Header, description = "`t=<unix time>,v1=<hex HMAC-SHA256>[,v1=...]`")),
    request_body(content = Object, description = "A Stripe event (`\"object\": \"event\"`), exactly as Stripe sent it", content_type = "application/json",
        example = json!(examples::stripe_event())),
    responses(
        (status = 200, description = "Received: applied, pending a customer link, ignored, a duplicate, or stale (older than the state it found, so it changed nothing)", body = WebhookResponse,
            example = json!(examples::stripe_received())),
        (status = 400, description = "`invalid_signature` (missing, malformed or not matching any secret), `timestamp_out_of_tolerance`, `malformed_payload` (signed, but not an event billing can read), `livemode_mismatch` (an event of the mode `stripe.livemode` does not take); nothing is changed"),
        (status = 413, description = "`payload_too_large`: over `stripe.max_body_bytes`"),
        (status = 503, description = "`not_configured`: no endpoint secret is configured; `database_unavailable`: retry later"),
    )
)]
#[post("/v1/webhooks/stripe")]
pub async fn post_stripe_webhook(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let settings = &state.settings.stripe;
    let secrets = settings.secrets();
    if secrets.is_empty() {
        return Err(ApiError::unavailable(
            ErrorCode::NotConfigured,
            "no Stripe webhook secret is configured (stripe.webhook_secrets)",
        ));
    }
    let body = read_body(&req, payload, settings.max_body_bytes).await?;
    let header = req
        .headers()
        .get(stripe::SIGNATURE_HEADER)
        .map(|v| v.to_str().unwrap_or(""));
    let now = state.now();
    let event = verified_event(settings, &secrets, header, &body, now.timestamp())?;
    // One transaction per event, its commit shared with the events received beside it
    // (`db::batch`): a repeat changes nothing and is rolled back.
    let (grace, shared) = (settings.past_due_grace(), state.clone());
    let (event, receipt) = state
        .writes
        .write(move |txn| {
            Box::pin(async move {
                let receipt = billing::receive(txn, &event, grace, now).await?;
                if receipt.outcome == Outcome::Duplicate {
                    return Ok(batch::Outcome {
                        value: (event, receipt),
                        keep: false,
                    });
                }
                decisions::reconcile_all(
                    txn,
                    &shared.policy,
                    &shared.master_key,
                    now,
                    &receipt.changed_accounts,
                    Cause::Evidence,
                )
                .await?;
                Ok(batch::Outcome::keep((event, receipt)))
            })
        })
        .await?;
    for account_id in &receipt.changed_accounts {
        state.account_changed(account_id);
    }
    log_receipt(&event, receipt.outcome);
    Ok(HttpResponse::Ok().json(WebhookResponse {
        received: true,
        event_id: event.id,
        outcome: receipt.outcome.into(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillingLinkRequest {
    /// The account's Stripe customer id.
    #[schema(example = "cus_NffrFeUfNV2Hib", pattern = r"^cus_[A-Za-z0-9_]{1,251}$")]
    pub customer_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct BillingLinkResponse {
    pub account_id: String,
    #[schema(example = "cus_NffrFeUfNV2Hib")]
    pub customer_id: String,
    pub linked_at: DateTime<Utc>,
    /// Subscriptions whose stored events were (re-)applied because of this link.
    pub subscriptions_applied: Vec<String>,
}

/// Link the account to its Stripe customer.
///
/// Replaces an earlier customer (whose subscriptions then no longer count for the account).
/// Events already received for the customer's subscriptions are applied at once.
#[utoipa::path(
    tag = "billing",
    extensions(("x-vouch-roles" = json!(roles::BACKEND))),
    params(("id" = String, Path, description = "Account id")),
    request_body(content = BillingLinkRequest, example = json!(examples::billing_link())),
    responses(
        (status = 200, description = "Already linked to this customer", body = BillingLinkResponse,
            example = json!(examples::billing_linked())),
        (status = 201, description = "Linked; the customer's stored events were applied", body = BillingLinkResponse,
            example = json!(examples::billing_linked())),
        (status = 400, description = "`invalid_customer_id`"),
        (status = 404, description = "`account_not_found`"),
        (status = 409, description = "`customer_linked`: the customer belongs to another account"),
    ),
    security(("api_key" = []))
)]
#[put("/v1/accounts/{id}/billing")]
pub async fn put_billing(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: Json<BillingLinkRequest>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::BACKEND)?;
    let customer_id = CustomerId::parse(body.customer_id.trim())
        .map_err(|m| ApiError::bad_request(ErrorCode::InvalidCustomerId, m))?;
    let account_id = AccountId::parse(&id)?;
    let now = state.now();
    let txn = state.db.begin_write().await?;
    let linked = billing::link_customer(
        &*txn,
        &caller.name,
        &account_id,
        &customer_id,
        state.settings.stripe.past_due_grace(),
        now,
    )
    .await?;
    let changed = &linked.changed_accounts;
    decisions::reconcile_all(
        &*txn,
        &state.policy,
        &state.master_key,
        now,
        changed,
        Cause::Evidence,
    )
    .await?;
    txn.commit().await?;
    for account_id in &linked.changed_accounts {
        state.account_changed(account_id);
    }
    let status = if linked.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(BillingLinkResponse {
        account_id: linked.link.account_id,
        customer_id: linked.link.customer_id,
        linked_at: linked.link.linked_at,
        subscriptions_applied: linked.subscriptions,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct BillingResponse {
    pub account_id: String,
    /// `null` until linked.
    pub customer_id: Option<String>,
    pub linked_at: Option<DateTime<Utc>>,
}

/// The account's billing link.
#[utoipa::path(
    tag = "billing",
    extensions(("x-vouch-roles" = json!(roles::BACKEND_REVIEWER))),
    params(("id" = String, Path, description = "Account id")),
    responses(
        (status = 200, description = "The account's Stripe customer, if linked", body = BillingResponse,
            example = json!(examples::billing())),
        (status = 404, description = "`account_not_found`"),
    ),
    security(("api_key" = []))
)]
#[get("/v1/accounts/{id}/billing")]
pub async fn get_billing(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::BACKEND_REVIEWER)?;
    let account_id = AccountId::parse(&id)?;
    let account = accounts::require(state.db.conn(), account_id.as_str()).await?;
    let link = billing::link_of(state.db.conn(), &account.id).await?;
    Ok(HttpResponse::Ok().json(BillingResponse {
        account_id: account.id,
        customer_id: link.as_ref().map(|l| l.customer_id.clone()),
        linked_at: link.map(|l| l.linked_at),
    }))
}

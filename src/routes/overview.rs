//! `/v1/overview`: what needs attention, for the admin console's first page (admins and
//! reviewers).

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::examples;
use crate::{
    auth::Caller,
    domain::role::roles,
    error::ApiResult,
    services::overview::{self as service, ChannelDay},
    state::AppState,
};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_overview);
}

/// Pending exception requests by how long they have waited for a decision.
#[derive(Serialize, ToSchema)]
pub struct PendingExceptionsResponse {
    #[schema(example = 7)]
    pub total: u64,
    /// Submitted less than a day ago.
    pub under_1_day: u64,
    /// Waiting 1 to 3 days.
    pub from_1_to_3_days: u64,
    /// Waiting 3 to 7 days.
    pub from_3_to_7_days: u64,
    /// Waiting more than 7 days.
    pub over_7_days: u64,
    /// When the request waiting longest was submitted (`null` when none is pending).
    pub oldest_submitted_at: Option<DateTime<Utc>>,
    /// How long, in whole seconds, it has waited.
    pub oldest_age_seconds: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct EndingApprovalResponse {
    /// The exception request (open it with `GET /v1/exceptions/{eid}`).
    #[schema(example = "exc_0192f5d01e7a7c1b8f4e2d3c6b5a4f39")]
    pub id: String,
    pub expires_at: DateTime<Utc>,
}

/// Approved exceptions whose approval ends soon: their evidence lapses then.
#[derive(Serialize, ToSchema)]
pub struct ApprovalsEndingResponse {
    /// The window: approvals ending within this many days from now.
    #[schema(example = 30)]
    pub within_days: i64,
    pub count: u64,
    /// The soonest-ending ones, at most 10: ids and end times only.
    pub soonest: Vec<EndingApprovalResponse>,
}

/// One channel's verification messages queued since the start of the UTC day.
#[derive(Serialize, ToSchema)]
pub struct ChannelDayResponse {
    /// Codes queued for sending today.
    pub sends: u64,
    /// Handed to the provider (or written to the log transport when none is configured).
    pub delivered: u64,
    /// Given up after a permanent error or the last retry, or dropped because the code expired
    /// before it could be sent.
    pub failed: u64,
    /// Waiting for a first attempt or a retry, or being sent now.
    pub waiting: u64,
}

impl From<ChannelDay> for ChannelDayResponse {
    fn from(d: ChannelDay) -> Self {
        ChannelDayResponse {
            sends: d.sends,
            delivered: d.delivered,
            failed: d.failed,
            waiting: d.waiting,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct VerificationsTodayResponse {
    /// The start of the current UTC day.
    pub since: DateTime<Utc>,
    pub email: ChannelDayResponse,
    pub sms: ChannelDayResponse,
}

/// The service-wide SMS budget (`verification.sms_hourly_budget`) over its rolling hour.
#[derive(Serialize, ToSchema)]
pub struct SmsBudgetResponse {
    /// SMS codes sent in the last `window_seconds`.
    pub used: u64,
    /// Sends beyond this are refused with 429 `rate_limited`.
    pub limit: u32,
    #[schema(example = 3600)]
    pub window_seconds: i64,
}

#[derive(Serialize, ToSchema)]
pub struct FailingEndpointResponse {
    #[schema(example = "whk_0192f5b3d4c27f1e9a8b7c6d5e4f3a21")]
    pub id: String,
    /// The endpoint URL's host (and port), never its path or query.
    #[schema(example = "meet.example.org")]
    pub host: String,
    /// `enabled` (retrying), or `disabled` (the receiver answered 410 Gone).
    #[schema(example = "enabled")]
    pub status: String,
    /// Deliveries that failed at least once and are still being retried.
    pub failing_deliveries: u64,
    /// Attempts made so far on the most-retried of them (one may be in flight right now).
    pub attempts: u64,
    /// Failing since: the oldest failing delivery's creation, or when the endpoint was disabled.
    pub since: DateTime<Utc>,
}

/// Webhook endpoints failing: a delivery failed and is being retried, or the endpoint was
/// disabled.
#[derive(Serialize, ToSchema)]
pub struct FailingWebhooksResponse {
    pub count: u64,
    /// The longest-failing first, at most 50.
    pub endpoints: Vec<FailingEndpointResponse>,
}

/// The key signing tokens now and when it is rotated next.
#[derive(Serialize, ToSchema)]
pub struct SigningKeyResponse {
    /// The public key id (an RFC 7638 thumbprint, as in the JWKS).
    pub kid: String,
    #[schema(example = "EdDSA")]
    pub alg: String,
    /// When it started signing.
    pub activated_at: DateTime<Utc>,
    /// When the next rotation is due (`tokens.rotation_period_days` after the newest key
    /// started signing); `null` when automatic rotation is off.
    pub next_rotation_at: Option<DateTime<Utc>>,
    /// The rotation is due and has not happened yet.
    pub rotation_overdue: bool,
}

#[derive(Serialize, ToSchema)]
pub struct OverviewResponse {
    /// The instant the numbers were read.
    pub generated_at: DateTime<Utc>,
    pub pending_exceptions: PendingExceptionsResponse,
    pub approvals_ending: ApprovalsEndingResponse,
    pub verifications_today: VerificationsTodayResponse,
    pub sms_budget: SmsBudgetResponse,
    pub failing_webhooks: FailingWebhooksResponse,
    /// `null` only before the first key exists.
    pub signing_key: Option<SigningKeyResponse>,
}

/// The host (and port, if any) of a stored endpoint URL; never its path or query, which may
/// carry a receiver's token.
fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            let host = u.host_str()?.to_owned();
            Some(match u.port() {
                Some(port) => format!("{host}:{port}"),
                None => host,
            })
        })
        .unwrap_or_default()
}

impl From<service::Overview> for OverviewResponse {
    fn from(o: service::Overview) -> Self {
        let now = o.generated_at;
        let p = o.pending_exceptions;
        OverviewResponse {
            generated_at: now,
            pending_exceptions: PendingExceptionsResponse {
                total: p.total,
                under_1_day: p.under_1_day,
                from_1_to_3_days: p.from_1_to_3_days,
                from_3_to_7_days: p.from_3_to_7_days,
                over_7_days: p.over_7_days,
                oldest_age_seconds: p
                    .oldest_submitted_at
                    .map(|at| (now - at).num_seconds().max(0)),
                oldest_submitted_at: p.oldest_submitted_at,
            },
            approvals_ending: ApprovalsEndingResponse {
                within_days: service::APPROVALS_ENDING_WITHIN_DAYS,
                count: o.approvals_ending.count,
                soonest: o
                    .approvals_ending
                    .soonest
                    .into_iter()
                    .map(|a| EndingApprovalResponse {
                        id: a.id,
                        expires_at: a.expires_at,
                    })
                    .collect(),
            },
            verifications_today: VerificationsTodayResponse {
                since: o.verifications_today.since,
                email: o.verifications_today.email.into(),
                sms: o.verifications_today.sms.into(),
            },
            sms_budget: SmsBudgetResponse {
                used: o.sms_budget.used,
                limit: o.sms_budget.limit,
                window_seconds: service::SMS_BUDGET_WINDOW_SECONDS,
            },
            failing_webhooks: FailingWebhooksResponse {
                count: o.failing_webhooks.count,
                endpoints: o
                    .failing_webhooks
                    .endpoints
                    .into_iter()
                    .map(|e| FailingEndpointResponse {
                        host: host_of(&e.url),
                        id: e.id,
                        status: e.status,
                        failing_deliveries: e.failing_deliveries,
                        attempts: e.attempts,
                        since: e.since,
                    })
                    .collect(),
            },
            signing_key: o.signing_key.map(|k| SigningKeyResponse {
                kid: k.kid,
                alg: k.alg,
                activated_at: k.activated_at,
                next_rotation_at: k.next_rotation_at,
                rotation_overdue: k.rotation_overdue,
            }),
        }
    }
}

/// What needs attention: pending exceptions by age, approvals ending within 30 days, today's
/// verification sends and failures, the SMS budget, failing webhook endpoints and the signing
/// key's next rotation.
///
/// Read from the database with a few aggregate queries, so every instance answers alike.
/// Reviewers get all of it: it holds counts, exception ids with their end times, webhook
/// endpoint ids with their URL's host, and the public key id; never an exception's category,
/// statement or reason, a name, an email address or a phone number.
#[utoipa::path(
    tag = "admin",
    extensions(("x-vouch-roles" = json!(roles::REVIEWER))),
    responses((status = 200, description = "What needs attention now", body = OverviewResponse,
        example = json!(examples::overview()))),
    security(("api_key" = []))
)]
#[get("/v1/overview")]
pub async fn get_overview(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    caller.require(roles::REVIEWER)?;
    let overview = service::overview(
        state.db.conn(),
        &state.settings.tokens,
        &state.settings.verification,
        state.now(),
    )
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(OverviewResponse::from(overview)))
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn only_the_host_of_an_endpoint_is_shown() {
        assert_eq!(
            host_of("https://meet.example.org/hooks/s3cr3t?token=x"),
            "meet.example.org"
        );
        assert_eq!(host_of("http://127.0.0.1:9/hook"), "127.0.0.1:9");
        assert_eq!(host_of("not a url"), "");
    }
}

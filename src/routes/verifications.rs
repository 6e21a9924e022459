//! `/v1/accounts/{id}/verifications` and `/v1/verifications/{vid}`: send a one-time code by
//! email or SMS, check it, read a verification's status.

use super::{examples, json::Json};
use crate::error::ErrorCode;
use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use entities::verification;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::db::batch;
use crate::{
    auth::Caller,
    delivery::locale::Locale,
    domain::{
        account::{AccountId, Email},
        phone::{PhoneError, PhoneNumber},
        role::roles,
        verification::{Channel, Code, VerificationStatus},
    },
    error::{ApiError, ApiResult},
    services::verifications::{self, Addressee, Destination},
    state::AppState,
};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(post_verification)
        .service(post_verification_check)
        .service(get_verification);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateVerificationRequest {
    pub channel: Channel,
    /// An email address, or a phone number in E.164 form (`+14155552671`).
    #[schema(example = "+14155552671")]
    pub to: String,
    /// The language of the message as a BCP 47 tag (`pt-BR`): the best match among `en`, `de`,
    /// `fr`, `es`, `pt-BR`, `ja` and `ar` (`de-AT` gets German, `pt` Brazilian Portuguese), else
    /// English.
    #[schema(
        example = "de",
        max_length = 35,
        pattern = r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$"
    )]
    pub locale: Option<String>,
}

/// A BCP 47 language tag in its common shape (language, then subtags); matching it to the
/// languages messages exist in is the delivery's business.
fn valid_locale(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let language = parts.next().unwrap_or_default();
    tag.len() <= 35
        && (2..=8).contains(&language.len())
        && language.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckVerificationRequest {
    /// The six digits the user received.
    #[schema(example = "123456", pattern = r"^[0-9]{6}$")]
    pub code: String,
}

#[derive(Serialize, ToSchema)]
pub struct VerificationResponse {
    #[schema(example = "ver_0192f5c8a3b47d2e9c1f0a6b5d4e3c2b")]
    pub id: String,
    pub account_id: String,
    pub channel: Channel,
    pub status: VerificationStatus,
    pub expires_at: DateTime<Utc>,
    /// The destination, masked: `a***@example.org`, `+1******4567`.
    #[schema(example = "+1******4567")]
    pub to_masked: String,
    pub attempts_remaining: u32,
    pub created_at: DateTime<Utc>,
    pub approved_at: Option<DateTime<Utc>>,
    /// The message's state: `pending`, `sending`, `delivered` (handed to the SMTP server or
    /// SMS provider), `logged` (no provider is configured: only written to the log, nobody
    /// received it), `failed`, `canceled` or `expired`.
    #[schema(example = "delivered")]
    pub delivery_status: Option<String>,
}

impl VerificationResponse {
    fn new(
        row: verification::Model,
        delivery_status: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Self, ApiError> {
        Ok(VerificationResponse {
            status: verifications::effective_status(&row, now)?,
            attempts_remaining: verifications::attempts_remaining(&row),
            channel: crate::services::stored("verification channel", &row.channel)?,
            id: row.id,
            account_id: row.account_id,
            expires_at: row.expires_at,
            to_masked: row.to_masked,
            created_at: row.created_at,
            approved_at: row.approved_at,
            delivery_status,
        })
    }
}

#[derive(Serialize, ToSchema)]
pub struct CheckVerificationResponse {
    pub id: String,
    /// `approved`; `pending` after a wrong code (try again); or why no more checks are taken.
    pub status: VerificationStatus,
    pub attempts_remaining: u32,
}

fn parse_destination(state: &AppState, body: &CreateVerificationRequest) -> ApiResult<Destination> {
    match body.channel {
        Channel::Email => Email::parse(&body.to)
            .map(Destination::Email)
            .map_err(|detail| ApiError::bad_request(ErrorCode::InvalidEmail, detail)),
        Channel::Sms => {
            let sms = &state.settings.sms;
            PhoneNumber::parse(
                &body.to,
                sms.default_region.as_deref().filter(|r| !r.is_empty()),
                &sms.allowed_countries,
            )
            .map(Destination::Phone)
            .map_err(|e| match e {
                PhoneError::Invalid => {
                    ApiError::bad_request(ErrorCode::InvalidPhone, e.to_string())
                }
                PhoneError::CountryNotAllowed => {
                    ApiError::bad_request(ErrorCode::PhoneCountryNotAllowed, e.to_string())
                }
            })
        }
    }
}

/// Send a one-time code to an email address or phone number.
///
/// The message is queued in the same transaction and delivered by the outbox worker; a
/// provider outage delays it but does not fail this call. A new code for the same destination
/// cancels the account's previous pending one.
#[utoipa::path(
    tag = "verifications",
    extensions(("x-vouch-roles" = json!(roles::BACKEND))),
    params(("id" = String, Path, description = "Account id")),
    request_body(content = CreateVerificationRequest, example = json!(examples::create_verification())),
    responses(
        (status = 201, description = "Created; the code is on its way", body = VerificationResponse,
            example = json!(examples::verification())),
        (status = 400, description = "`invalid_email`, `invalid_phone`, `phone_country_not_allowed`, `invalid_locale`, `malformed_json`, `invalid_body`"),
        (status = 404, description = "`account_not_found`"),
        (status = 409, description = "`phone_in_use`: the number already backs the maximum number of accounts; `account_suspended`"),
        (status = 429, description = "`rate_limited`; `limit` says which: `destination` (this account, this address or number), `account`, and for SMS `young_account`, `sms_prefix`, `sms_country`, `young_accounts_budget`, `sms_budget` (all with `Retry-After`), or `sms_lifetime` (the account's lifetime cap: no `Retry-After`, it does not reset)"),
    ),
    security(("api_key" = []))
)]
#[post("/v1/accounts/{id}/verifications")]
pub async fn post_verification(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: Json<CreateVerificationRequest>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::BACKEND)?;
    let destination = parse_destination(&state, &body)?;
    if body.locale.as_deref().is_some_and(|l| !valid_locale(l)) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidLocale,
            "locale must be a BCP 47 language tag such as `de` or `pt-BR`",
        ));
    }
    let addressee = Addressee {
        destination,
        locale: Locale::negotiate(body.locale.as_deref()),
    };
    let account_id = AccountId::parse(&id)?;
    let now = state.now();
    // Its own transaction, whose commit is shared with the starts beside it (`db::batch`).
    let (actor, shared) = (caller.name.clone(), state.clone());
    let row = state
        .writes
        .write(move |txn| {
            Box::pin(async move {
                verifications::start(
                    txn,
                    &actor,
                    &shared.master_key,
                    &shared.settings.verification,
                    &account_id,
                    &addressee,
                    now,
                )
                .await
                .map(batch::Outcome::keep)
            })
        })
        .await?;
    state.delivery.wake();
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/verifications/{}", row.id)))
        .json(VerificationResponse::new(
            row,
            Some(crate::services::outbox::MessageStatus::Pending.to_string()),
            now,
        )?))
}

/// Check a code. A wrong code answers `pending` with the attempts left; after the last one,
/// `max_attempts_reached`. Approval records `email` or `phone` evidence.
#[utoipa::path(
    tag = "verifications",
    extensions(("x-vouch-roles" = json!(roles::BACKEND))),
    params(("vid" = String, Path, description = "Verification id")),
    request_body(content = CheckVerificationRequest, example = json!(examples::check_verification())),
    responses(
        (status = 200, description = "The outcome of this check: `approved`, `pending` (wrong code) or why no more checks are taken", body = CheckVerificationResponse,
            example = json!(examples::checked_verification())),
        (status = 400, description = "`invalid_code`: not six digits (not counted as an attempt)"),
        (status = 404, description = "`verification_not_found`"),
        (status = 409, description = "`phone_in_use`: the number came to back the maximum number of accounts meanwhile; the verification is canceled"),
    ),
    security(("api_key" = []))
)]
#[post("/v1/verifications/{vid}/check")]
pub async fn post_verification_check(
    state: web::Data<AppState>,
    caller: Caller,
    vid: web::Path<String>,
    body: Json<CheckVerificationRequest>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::BACKEND)?;
    let code = Code::parse(&body.code).ok_or_else(|| {
        ApiError::bad_request(ErrorCode::InvalidCode, "code must be exactly six digits")
    })?;
    let now = state.now();
    let outcome = verifications::check(
        &state.db,
        &caller.name,
        &state.master_key,
        &state.settings.verification,
        &state.policy,
        &vid,
        &code,
        now,
    )
    .await?;
    let row = outcome.verification;
    if outcome.approved_now {
        state.account_changed(&row.account_id);
    }
    Ok(HttpResponse::Ok().json(CheckVerificationResponse {
        status: verifications::effective_status(&row, now)?,
        attempts_remaining: verifications::attempts_remaining(&row),
        id: row.id,
    }))
}

/// A verification's current status.
#[utoipa::path(
    tag = "verifications",
    extensions(("x-vouch-roles" = json!(roles::BACKEND_REVIEWER))),
    params(("vid" = String, Path, description = "Verification id")),
    responses(
        (status = 200, description = "The verification's current state", body = VerificationResponse,
            example = json!(examples::verification())),
        (status = 404, description = "`verification_not_found`"),
    ),
    security(("api_key" = []))
)]
#[get("/v1/verifications/{vid}")]
pub async fn get_verification(
    state: web::Data<AppState>,
    caller: Caller,
    vid: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::BACKEND_REVIEWER)?;
    let row = verifications::require(state.db.conn(), &vid).await?;
    let delivery = verifications::delivery_status(state.db.conn(), &row.id).await?;
    Ok(HttpResponse::Ok().json(VerificationResponse::new(row, delivery, state.now())?))
}

//! Meeting-server token exchanges: a Vouch token becomes the access token a meeting server
//! understands, for entitled participants only.

use super::{examples, json::Json};
use actix_web::{post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::{
    adapters::livekit::{self, Exchange},
    auth::Caller,
    domain::role::roles,
    error::{ApiResult, Problem},
    state::AppState,
};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(post_livekit);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LiveKitExchangeRequest {
    /// The participant's Vouch token (`e2ee-ent+jwt`).
    pub token: String,
    /// The LiveKit room to admit the participant to.
    #[schema(min_length = 1, max_length = 256)]
    pub room: String,
    /// Thumbprint of the key of the device asking; must match the token's `cnf.jkt`.
    #[schema(pattern = r"^[A-Za-z0-9_-]{43}$")]
    pub device_jkt: Option<String>,
    /// A DPoP proof of the device key, as for authorize, with `htu`
    /// `{tokens.issuer}/v1/exchange/livekit`.
    #[schema(max_length = 4096)]
    pub dpop: Option<String>,
    /// Display name for the other participants (`name` claim).
    #[schema(min_length = 1, max_length = 128)]
    pub name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct LiveKitExchangeResponse {
    /// A LiveKit access token (HS256 with the API secret) for this room only.
    pub token: String,
    /// The participant's LiveKit identity: the account id.
    pub identity: String,
    /// The token's `exp`: never later than the Vouch token's.
    pub expires_at: DateTime<Utc>,
}

/// Exchange a Vouch token for a LiveKit access token, when authorize would allow it. The
/// admission is remembered: if the account stops being entitled or the Vouch token is revoked,
/// Vouch removes the participant from the room within seconds.
#[utoipa::path(
    tag = "tokens",
    extensions(("x-vouch-roles" = json!(roles::MEETING))),
    request_body(content = LiveKitExchangeRequest, example = json!(examples::exchange_livekit())),
    responses(
        (status = 200, description = "A LiveKit access token for this room", body = LiveKitExchangeResponse,
            example = json!(examples::livekit_token())),
        (status = 400, description = "`invalid_room`, `invalid_name`, `invalid_device_jkt`, `invalid_dpop_proof`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The authorize reason (`not_entitled`, `revoked`, `expired`, `invalid_token`, `wrong_audience`, `device_mismatch` (with `dpop_error` and a `DPoP-Nonce` header when the proof was refused), `account_suspended`), or `forbidden` for another role", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`not_configured`: no `livekit` settings", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
#[post("/v1/exchange/livekit")]
pub async fn post_livekit(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<LiveKitExchangeRequest>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::MEETING)?;
    let issued = livekit::exchange(
        &state,
        Exchange {
            token: &body.token,
            room: &body.room,
            device_jkt: body.device_jkt.as_deref(),
            dpop: body.dpop.as_deref(),
            name: body.name.as_deref(),
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(LiveKitExchangeResponse {
        token: issued.token,
        identity: issued.identity,
        expires_at: issued.expires_at,
    }))
}

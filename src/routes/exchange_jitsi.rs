//! Jitsi Meet: exchanging a Vouch token for a Jitsi Meet token, and the public keys Prosody's
//! `asap_key_server` fetches to verify them.

use actix_web::{get, http::header, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::{examples, json::Json};
use crate::{
    adapters::{
        check_presented,
        jitsi::{self, exchange, find_by_hash, not_configured, parse_name, parse_room},
    },
    auth::Caller,
    domain::role::roles,
    error::{ApiError, ApiResult, ErrorCode},
    services::jitsi_keys,
    state::AppState,
    tokens::{
        authorize::{parse_device_jkt, parse_dpop, Presented},
        dpop::Endpoint,
    },
};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(post_exchange_jitsi).service(get_asap_key);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JitsiExchangeRequest {
    /// The participant's Vouch token (`e2ee-ent+jwt`).
    pub token: String,
    /// The Jitsi room (the MUC room name); one room, not `*`.
    #[schema(example = "standup")]
    pub room: String,
    /// Thumbprint of the key of the device asking; must match the token's `cnf.jkt`.
    pub device_jkt: Option<String>,
    /// A DPoP proof of the device key, as for authorize, with `htu`
    /// `{tokens.issuer}/v1/exchange/jitsi`.
    #[schema(max_length = 4096)]
    pub dpop: Option<String>,
    /// Display name for `context.user.name`.
    pub name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct JitsiExchangeResponse {
    /// A Jitsi Meet JWT (RS256, header `kid`): `iss` = `jitsi.app_id`, `aud` = `jitsi`,
    /// `sub` = `jitsi.domain`, `room`, `nbf`, `exp`, `context.user` `{id, name?}` and
    /// `context.features.e2ee` = true.
    pub token: String,
    /// The token's `exp`: no later than the Vouch token's, nor `jitsi.token_ttl_seconds` from now.
    pub expires_at: DateTime<Utc>,
}

/// Exchange a Vouch token for a Jitsi Meet token for one room, when authorize would allow it
/// (signature, time, revocation, device binding and the account's current decision).
#[utoipa::path(
    tag = "meeting servers",
    extensions(("x-vouch-roles" = json!(roles::MEETING))),
    request_body(content = JitsiExchangeRequest, example = json!(examples::exchange_jitsi())),
    responses(
        (status = 200, description = "A Jitsi Meet JWT for this room", body = JitsiExchangeResponse,
            example = json!(examples::jitsi_token())),
        (status = 400, description = "`invalid_room`, `invalid_name`, `invalid_device_jkt`, `invalid_dpop_proof`"),
        (status = 403, description = "`code` is the authorize reason (`not_entitled`, `revoked`, `expired`, `invalid_token`, `wrong_audience`, `device_mismatch` (with `dpop_error` and a `DPoP-Nonce` header when the proof was refused), `account_suspended`), with `required_actions` (what the person can do; empty when suspended or when the token itself is refused); or `forbidden` (not a meeting client)"),
        (status = 503, description = "`not_configured`: `jitsi.app_id` and `jitsi.domain` are not both set; `no_signing_key`"),
    ),
    security(("api_key" = []))
)]
#[post("/v1/exchange/jitsi")]
pub async fn post_exchange_jitsi(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<JitsiExchangeRequest>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::MEETING)?;
    let settings = &state.settings.jitsi;
    if settings.configured().is_none() {
        return Err(not_configured());
    }
    let body = body.into_inner();
    let room = parse_room(&body.room)?;
    let name = parse_name(body.name.as_deref())?;
    let device_jkt = parse_device_jkt(body.device_jkt.as_deref())?;
    let proof = parse_dpop(body.dpop.as_deref())?;
    let now = state.now();
    let presented = Presented {
        token: &body.token,
        device_jkt,
        dpop: proof.as_ref(),
        endpoint: Endpoint::Jitsi,
    };
    let verified = check_presented(&state, presented, now).await?;
    let claims = &verified.1;
    let exchanged = exchange(
        settings,
        &state.jitsi.keys.current(),
        &claims.sub,
        claims.exp,
        room,
        name,
        now,
    )?;
    Ok(HttpResponse::Ok().json(JitsiExchangeResponse {
        token: exchanged.token,
        expires_at: exchanged.expires_at,
    }))
}

/// The public key of a Jitsi token's `kid`, for Prosody's `asap_key_server`: the file name is
/// the lowercase hex SHA-256 of the kid. PEM SubjectPublicKeyInfo; public. Keys stay served
/// until every token they signed has expired.
#[utoipa::path(
    tag = "meeting servers",
    extensions(("x-vouch-roles" = json!(roles::PUBLIC))),
    params(("kid_hash" = String, Path, description = "Lowercase hex SHA-256 of the token's `kid`, followed by `.pem`", example = "3f0b…e9.pem")),
    responses(
        (status = 200, description = "The key as PEM (`-----BEGIN PUBLIC KEY-----`)", body = String, content_type = "application/x-pem-file",
            example = json!(examples::pem())),
        (status = 404, description = "`jitsi_key_not_found`"),
    )
)]
#[get("/v1/jitsi/asap/{kid_hash}")]
pub async fn get_asap_key(
    state: web::Data<AppState>,
    kid_hash: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let not_found =
        || ApiError::not_found(ErrorCode::JitsiKeyNotFound, "no Jitsi key with this name");
    let hash = kid_hash
        .strip_suffix(".pem")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(not_found)?;
    let now = state.now();
    let mut key = find_by_hash(&state.jitsi.keys.current(), hash, now);
    // Made by another instance since this one last reloaded: catch up (at most once a second).
    if key.is_none() && state.jitsi.may_reload_on_miss() {
        jitsi_keys::reload(state.db.conn(), &state.jitsi.keys, &state.master_key)
            .await
            .map_err(ApiError::internal)?;
        key = find_by_hash(&state.jitsi.keys.current(), hash, now);
    }
    let key = key.ok_or_else(not_found)?;
    let pem = jitsi::public_pem(&key.jwk).map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/x-pem-file"))
        .insert_header((
            header::CACHE_CONTROL,
            format!(
                "public, max-age={}",
                state.settings.tokens.jwks_max_age_seconds
            ),
        ))
        .body(pem))
}

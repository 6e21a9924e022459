//! Tokens: issuance, the meeting-server authorize check, revocation, the JWKS, key rotation.

use super::json::Json;
use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::{
    auth::Caller,
    domain::{
        account::{AccountId, UnknownAccount},
        role::Role,
    },
    error::{ApiError, ApiResult},
    services::{jitsi_keys, keys, revocations},
    state::AppState,
    tokens::{
        authorize::{check_account, check_token, Authorization, Presented},
        issue::{issue, TokenRequest},
        keyring::KeyState,
        keys::Jwk,
        verify::{verify_for_revocation, Reason},
        TOKEN_TYPE,
    },
};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(post_token)
        .service(post_authorize)
        .service(post_revoke)
        .service(get_jwks)
        .service(get_keys)
        .service(post_rotate_key);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueTokenRequest {
    /// One of the configured audiences (default: the first).
    pub audience: Option<String>,
    /// RFC 7638 thumbprint of the device key; binds the token to it (`cnf.jkt`).
    #[schema(pattern = r"^[A-Za-z0-9_-]{43}$")]
    pub device_jkt: Option<String>,
    /// Lifetime, 1 s to the configured maximum (default 600, max 3600).
    #[serde(default, deserialize_with = "super::whole_number")]
    #[schema(minimum = 1, maximum = 3600)]
    pub ttl_seconds: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct IssueTokenResponse {
    /// A JWS with `typ` `e2ee-ent+jwt`.
    pub token: String,
    #[schema(example = "e2ee-ent+jwt")]
    pub token_type: &'static str,
    pub expires_at: DateTime<Utc>,
    pub kid: String,
}

/// Issue an E2EE entitlement token, if the account is entitled now.
#[utoipa::path(
    tag = "tokens",
    params(("id" = String, Path, description = "Account id")),
    request_body = IssueTokenRequest,
    responses(
        (status = 201, body = IssueTokenResponse),
        (status = 400, description = "`invalid_audience`, `invalid_device_jkt`, `invalid_ttl`"),
        (status = 403, description = "`not_entitled` (with `missing`, the evidence that would entitle it, and `required_actions`, what the person can do: `verify_phone`, `subscribe`, `request_exception`, `verify_email` only within a combination; empty when suspended) or `forbidden`"),
        (status = 404, description = "`account_not_found`"),
    ),
    security(("api_key" = []))
)]
#[post("/v1/accounts/{id}/tokens")]
pub async fn post_token(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: Json<IssueTokenRequest>,
) -> ApiResult<HttpResponse> {
    caller.require(&[Role::Backend])?;
    let settings = &state.settings.tokens;
    let body = body.into_inner();
    let request = TokenRequest::parse(settings, body.audience, body.ttl_seconds, body.device_jkt)?;
    let account_id = AccountId::parse(&id)?;
    let snapshot = state
        .accounts
        .snapshot(state.db.conn(), &state.master_key, account_id.as_str())
        .await?
        .ok_or(UnknownAccount)?;
    let now = state.now();
    let ring = state.keys.current();
    let issued = issue(
        settings,
        &state.policy,
        &ring,
        &account_id,
        &snapshot,
        request,
        now,
    )?;
    state.metrics.token_issued();
    Ok(HttpResponse::Created().json(IssueTokenResponse {
        token: issued.token,
        token_type: TOKEN_TYPE,
        expires_at: issued.expires_at,
        kid: issued.kid,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeRequest {
    pub token: String,
    /// Thumbprint of the key of the device asking; must match the token's `cnf.jkt`.
    pub device_jkt: Option<String>,
    /// For the meeting server's own records; not used in the decision.
    pub meeting_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AuthorizeResponse {
    /// Whether E2EE key distribution may proceed for this participant.
    pub allow: bool,
    pub reason: Reason,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The entitlements the account holds now (when allowed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entitlements: Option<Vec<String>>,
    /// When the token expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// On every refusal (absent when allowed): what the person can do to be entitled, one per
    /// policy alternative the account could still satisfy, cheapest first: `verify_phone`,
    /// `subscribe`, `request_exception`, and `verify_email` only as part of a combination.
    /// Empty when the account is suspended or the token itself is refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>, example = json!(["verify_phone", "subscribe", "request_exception"]))]
    pub required_actions: Option<Vec<&'static str>>,
}

impl From<Authorization> for AuthorizeResponse {
    fn from(a: Authorization) -> Self {
        AuthorizeResponse {
            allow: a.allow,
            reason: a.reason,
            account_id: a.account_id,
            entitlements: a.entitlements,
            expires_at: a.expires_at,
            required_actions: (!a.allow).then_some(a.required_actions),
        }
    }
}

/// Decide whether a participant may receive E2EE keys: the token's signature and claims, its
/// revocation, its device binding, and the account's state and evidence right now.
#[utoipa::path(
    tag = "tokens",
    request_body = AuthorizeRequest,
    responses((status = 200, description = "The decision; `allow: false` carries the reason", body = AuthorizeResponse)),
    security(("api_key" = []))
)]
#[post("/v1/e2ee/authorize")]
pub async fn post_authorize(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<AuthorizeRequest>,
) -> ApiResult<HttpResponse> {
    caller.require(&[Role::Meeting])?;
    let now = state.now();
    let ring = state.keys.current();
    let presented = Presented {
        token: &body.token,
        device_jkt: body.device_jkt.as_deref(),
    };
    let settings = &state.settings.tokens;
    let revocations = &state.revocations;
    let decision = match check_token(
        &state.verified_tokens,
        &ring,
        revocations,
        settings,
        presented,
        now,
    ) {
        Err(denied) => denied,
        Ok(verified) => {
            let claims = &verified.1;
            let snapshot = state
                .accounts
                .snapshot(state.db.conn(), &state.master_key, &claims.sub)
                .await?;
            check_account(&state.policy, claims, snapshot.as_deref(), now)
        }
    };
    state.metrics.authorized(decision.reason);
    Ok(HttpResponse::Ok().json(AuthorizeResponse::from(decision)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    pub token: String,
    /// Accepted for RFC 7009 compatibility; ignored.
    pub token_type_hint: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RevokeResponse {}

/// Revoke a token (RFC 7009): 200 whether or not the token was valid or known.
#[utoipa::path(
    tag = "tokens",
    request_body = RevokeRequest,
    responses((status = 200, body = RevokeResponse)),
    security(("api_key" = []))
)]
#[post("/v1/tokens/revoke")]
pub async fn post_revoke(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<RevokeRequest>,
) -> ApiResult<HttpResponse> {
    caller.require(&[Role::Backend])?;
    let now = state.now();
    let ring = state.keys.current();
    // Only our own tokens are worth remembering; anything else is answered alike. Times are
    // not checked: this instance's clock may disagree with the one that will be asked.
    if let Ok(claims) = verify_for_revocation(&ring, &body.token, &state.settings.tokens, now) {
        let leeway = state.settings.tokens.leeway_seconds as i64;
        let expires_at = DateTime::from_timestamp(claims.exp + leeway, 0).unwrap_or(now);
        let txn = state.db.begin_write().await?;
        revocations::revoke(
            &txn,
            &caller.name,
            &claims.jti,
            &claims.sub,
            expires_at,
            now,
        )
        .await?;
        txn.commit().await?;
        state.revocations.insert(claims.jti, expires_at.timestamp());
    }
    Ok(HttpResponse::Ok().json(RevokeResponse {}))
}

#[derive(Serialize, ToSchema)]
pub struct JwksResponse {
    pub keys: Vec<Jwk>,
}

/// Every key that can verify an unexpired token (RFC 7517).
#[utoipa::path(tag = "tokens", responses((status = 200, body = JwksResponse)))]
#[get("/.well-known/jwks.json")]
pub async fn get_jwks(state: web::Data<AppState>) -> HttpResponse {
    let keys = state.keys.current().jwks(state.now());
    HttpResponse::Ok()
        .insert_header((
            "Cache-Control",
            format!(
                "public, max-age={}",
                state.settings.tokens.jwks_max_age_seconds
            ),
        ))
        .json(JwksResponse { keys })
}

#[derive(Serialize, ToSchema)]
pub struct KeyResponse {
    pub kid: String,
    pub alg: String,
    pub state: KeyState,
    /// Published in the JWKS since.
    pub created_at: DateTime<Utc>,
    /// Signs from.
    pub activates_at: DateTime<Utc>,
    /// Stops signing at.
    pub retires_at: Option<DateTime<Utc>>,
    /// Leaves the JWKS at.
    pub removes_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct KeysResponse {
    /// Every key ever made, oldest first (a handful: one per rotation).
    pub items: Vec<KeyResponse>,
    /// Always null: the whole list fits one page. Kept for the shape every list shares.
    pub next_cursor: Option<String>,
}

fn key_response(m: &entities::signing_key::Model, now: DateTime<Utc>) -> KeyResponse {
    KeyResponse {
        kid: m.kid.clone(),
        alg: m.alg.clone(),
        state: KeyState::of(m, now),
        created_at: m.created_at,
        activates_at: m.activates_at,
        retires_at: m.retires_at,
        removes_at: m.removes_at,
    }
}

/// Signing keys and their states.
#[utoipa::path(tag = "admin", responses((status = 200, body = KeysResponse)), security(("api_key" = [])))]
#[get("/v1/admin/keys")]
pub async fn get_keys(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    caller.require(&[Role::Admin])?;
    let now = state.now();
    let rows = keys::all(state.db.conn()).await?;
    Ok(HttpResponse::Ok().json(KeysResponse {
        items: rows.iter().map(|m| key_response(m, now)).collect(),
        next_cursor: None,
    }))
}

/// Rotate: a new key is published now and signs after one JWKS max-age; the current key
/// retires then and stays published until its last token has expired. The Jitsi key (when
/// Jitsi is in use) rotates with it, on the same schedule.
#[utoipa::path(
    tag = "admin",
    responses(
        (status = 201, body = KeyResponse),
        (status = 409, description = "`rotation_pending`: a published key is still waiting to sign"),
    ),
    security(("api_key" = []))
)]
#[post("/v1/admin/keys/rotate")]
pub async fn post_rotate_key(
    state: web::Data<AppState>,
    caller: Caller,
) -> ApiResult<HttpResponse> {
    caller.require(&[Role::Admin])?;
    let now = state.now();
    let txn = state.db.begin_write().await?;
    let key = keys::rotate(
        &*txn,
        &state.master_key,
        &caller.name,
        &state.settings.tokens,
        now,
    )
    .await?;
    txn.commit().await?;
    keys::reload(state.db.conn(), &state.keys, &state.master_key)
        .await
        .map_err(ApiError::internal)?;
    jitsi_keys::reload(state.db.conn(), &state.jitsi.keys, &state.master_key)
        .await
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Created().json(key_response(&key, now)))
}

//! Tokens: issuance, the meeting-server authorize check, revocation, the JWKS, key rotation.

use super::json::Json;
use actix_web::{get, post, web, HttpResponse};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine as _};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::{
    auth::Caller,
    crypto::{ct_eq, random_bytes},
    domain::{policy::Policy, role::Role},
    error::{ApiError, ApiResult, Problem},
    services::{keys, revocations},
    state::AppState,
    tokens::{
        keyring::KeyState,
        keys::Jwk,
        token_evidence, valid_jkt,
        verify::{verify_for_revocation, Reason},
        Claims, Confirmation, TOKEN_TYPE,
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

const ENTITLEMENT: &str = "e2ee";

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
        (status = 400, description = "`invalid_audience`, `invalid_device_jkt`, `invalid_ttl`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`not_entitled` (with `missing`, the evidence that would entitle it) or `forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`account_not_found`", body = Problem, content_type = "application/problem+json"),
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
    let audience = match &body.audience {
        None => settings.audiences[0].clone(),
        Some(a) if settings.audiences.contains(a) => a.clone(),
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_audience",
                format!("audience must be one of: {}", settings.audiences.join(", ")),
            ))
        }
    };
    let ttl = body.ttl_seconds.unwrap_or(settings.default_ttl_seconds);
    if ttl == 0 || ttl > settings.max_ttl_seconds {
        return Err(ApiError::bad_request(
            "invalid_ttl",
            format!(
                "ttl_seconds must be between 1 and {}",
                settings.max_ttl_seconds
            ),
        ));
    }
    if let Some(jkt) = &body.device_jkt {
        if !valid_jkt(jkt) {
            return Err(ApiError::bad_request(
                "invalid_device_jkt",
                "device_jkt must be an RFC 7638 SHA-256 thumbprint (43 base64url characters)",
            ));
        }
    }
    let snapshot = state
        .accounts
        .snapshot(state.db.conn(), &id)
        .await?
        .ok_or_else(|| ApiError::not_found("account_not_found", "no account with this id"))?;
    let now = state.now();
    let decisions = state.policy.evaluate(snapshot.active, &snapshot.facts, now);
    let decision = decisions
        .get(ENTITLEMENT)
        .ok_or_else(|| ApiError::internal("the policy defines no e2ee entitlement"))?;
    if !decision.granted {
        return Err(ApiError::forbidden("not_entitled", decision.reason.clone())
            .with("entitlement", ENTITLEMENT)
            .with(
                "missing",
                serde_json::to_value(&decision.missing).unwrap_or_default(),
            )
            .with("policy", state.policy.name.clone()));
    }
    let ring = state.keys.current();
    let key = ring.signer(now).ok_or_else(|| {
        ApiError::unavailable("no_signing_key", "no signing key is active; retry shortly")
    })?;
    let iat = now.timestamp();
    let claims = Claims {
        iss: settings.issuer.clone(),
        sub: id.into_inner(),
        aud: audience,
        iat,
        nbf: iat,
        exp: iat + ttl as i64,
        jti: B64.encode(random_bytes::<16>()),
        ent: Policy::granted(&decisions).map(str::to_owned).collect(),
        evidence: if settings.disclose_evidence {
            token_evidence(&decision.satisfied_by)
        } else {
            Vec::new()
        },
        cnf: body.device_jkt.clone().map(|jkt| Confirmation { jkt }),
    };
    let payload = serde_json::to_vec(&claims).map_err(ApiError::internal)?;
    let token = key.sign(&payload).map_err(ApiError::internal)?;
    state.metrics.token_issued();
    tracing::debug!(account_id = %claims.sub, jti = %claims.jti, kid = %key.kid, "token issued");
    Ok(HttpResponse::Created().json(IssueTokenResponse {
        token,
        token_type: TOKEN_TYPE,
        expires_at: DateTime::from_timestamp(claims.exp, 0).unwrap_or(now),
        kid: key.kid.clone(),
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
}

fn deny(reason: Reason, account_id: Option<String>) -> AuthorizeResponse {
    AuthorizeResponse {
        allow: false,
        reason,
        account_id,
        entitlements: None,
        expires_at: None,
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
    let decision = authorize(&state, &body).await?;
    state.metrics.authorized(decision.reason);
    Ok(HttpResponse::Ok().json(decision))
}

async fn authorize(state: &AppState, req: &AuthorizeRequest) -> ApiResult<AuthorizeResponse> {
    let now = state.now();
    let ring = state.keys.current();
    let verified =
        match state
            .verified_tokens
            .verify(&ring, &req.token, &state.settings.tokens, now)
        {
            Ok(verified) => verified,
            Err(reason) => return Ok(deny(reason, None)),
        };
    let claims = &verified.1;
    let account = Some(claims.sub.clone());
    if state.revocations.contains(&claims.jti) {
        return Ok(deny(Reason::Revoked, account));
    }
    if let Some(cnf) = &claims.cnf {
        let presented = req.device_jkt.as_deref().unwrap_or("");
        if !ct_eq(presented.as_bytes(), cnf.jkt.as_bytes()) {
            return Ok(deny(Reason::DeviceMismatch, account));
        }
    }
    let Some(snapshot) = state
        .accounts
        .snapshot(state.db.conn(), &claims.sub)
        .await?
    else {
        return Ok(deny(Reason::NotEntitled, account));
    };
    if !snapshot.active {
        return Ok(deny(Reason::AccountSuspended, account));
    }
    let decisions = state.policy.evaluate(true, &snapshot.facts, now);
    let granted: Vec<String> = Policy::granted(&decisions)
        .filter(|e| claims.ent.iter().any(|c| c == e))
        .map(str::to_owned)
        .collect();
    if !granted.iter().any(|e| e == ENTITLEMENT) {
        return Ok(deny(Reason::NotEntitled, account));
    }
    Ok(AuthorizeResponse {
        allow: true,
        reason: Reason::Ok,
        account_id: account,
        entitlements: Some(granted),
        expires_at: DateTime::from_timestamp(claims.exp, 0),
    })
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
/// retires then and stays published until its last token has expired.
#[utoipa::path(
    tag = "admin",
    responses(
        (status = 201, body = KeyResponse),
        (status = 409, description = "`rotation_pending`: a published key is still waiting to sign", body = Problem, content_type = "application/problem+json"),
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
    Ok(HttpResponse::Created().json(key_response(&key, now)))
}

//! Tokens: issuance, the meeting-server authorize check, revocation (one token, or every token
//! of an account), the JWKS, key rotation.

use super::{examples, json::Json};
use actix_web::mime;
use actix_web::{
    dev::{Payload, UrlEncoded},
    error::UrlencodedError,
    get,
    http::StatusCode,
    post, web, FromRequest, HttpMessage, HttpRequest, HttpResponse,
};
use chrono::{DateTime, Utc};
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::{
    auth::Caller,
    domain::{
        account::{AccountId, UnknownAccount},
        role::roles,
    },
    error::{problem_for_status, ApiError, ApiResult, ErrorCode},
    services::{jitsi_keys, keys, revocations},
    state::AppState,
    tokens::{
        authorize::{
            check_account, check_token, parse_device_jkt, parse_dpop, Authorization, Presented,
        },
        dpop::{DpopError, Endpoint, NONCE_HEADER},
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
        .service(post_nonce)
        .service(post_revoke)
        .service(post_revoke_account_tokens)
        .service(get_jwks)
        .service(get_keys)
        .service(post_rotate_key);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueTokenRequest {
    /// One of the configured audiences (default: the first).
    pub audience: Option<String>,
    /// Binds the token to a device key (`cnf.jkt`): the RFC 7638 JWK thumbprint of the public
    /// key the meeting key will be encrypted to: SHA-256 over the key's required members
    /// (`{"crv","kty","x"}` for OKP, `{"crv","kty","x","y"}` for EC, `{"e","kty","n"}` for RSA)
    /// in that order, without whitespace, base64url without padding (43 characters). E.g.
    /// `{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}` →
    /// `kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k`. Required with
    /// `tokens.require_device_binding` (else 400 `device_binding_required`).
    #[schema(
        pattern = r"^[A-Za-z0-9_-]{43}$",
        example = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    )]
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
    extensions(("x-vouch-roles" = json!(roles::BACKEND))),
    params(("id" = String, Path, description = "Account id")),
    request_body(content = IssueTokenRequest, example = json!(examples::issue_token())),
    responses(
        (status = 201, description = "A signed `e2ee-ent+jwt` token for the account", body = IssueTokenResponse,
            example = json!(examples::issued_token())),
        (status = 400, description = "`invalid_audience`, `invalid_ttl`, `invalid_device_jkt`, `device_binding_required` (no `device_jkt` while `tokens.require_device_binding` is on)"),
        (status = 403, description = "`not_entitled` (with `missing`, the evidence that would entitle it, and `required_actions`, what the person can do: `verify_phone`, `subscribe`, `request_exception`, `verify_email` only within a combination), `account_suspended` (with `required_actions` empty) or `forbidden`"),
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
    caller.require(roles::BACKEND)?;
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
    /// The RFC 7638 JWK thumbprint (SHA-256, base64url without padding) of the public key of
    /// the device asking, the key the meeting key will be encrypted to; must equal the token's
    /// `cnf.jkt`. See `device_jkt` at issuance for how to compute it.
    #[schema(
        pattern = r"^[A-Za-z0-9_-]{43}$",
        example = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    )]
    pub device_jkt: Option<String>,
    /// A DPoP proof (RFC 9449) made by the device with the key the token is bound to: a JWS
    /// with header `typ` `dpop+jwt`, `alg` (ES256, ES384, EdDSA, RS256/384/512, PS256/384/512)
    /// and `jwk` (the public key), and claims `htm` `POST`, `htu` `{tokens.issuer}/v1/e2ee/authorize`,
    /// `iat`, a unique `jti`, `nonce` (from `DPoP-Nonce` or `POST /v1/e2ee/nonce`) and `ath`
    /// (base64url SHA-256 of `token`). A malformed proof is a 400 `invalid_dpop_proof`; one
    /// that proves nothing here is `device_mismatch` with `dpop_error`.
    #[schema(max_length = 4096)]
    pub dpop: Option<String>,
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
    /// Why, for a `device_mismatch`: which device check failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub detail: Option<&'static str>,
    /// For a refusal caused by the DPoP proof (RFC 9449 error codes): `use_dpop_nonce` (make a
    /// new proof with the nonce in the `DPoP-Nonce` header) or `invalid_dpop_proof`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dpop_error: Option<DpopError>,
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
            detail: a.detail,
            dpop_error: a.dpop_error,
        }
    }
}

/// Decide whether a participant may receive E2EE keys: the token's signature and claims, its
/// revocation, its device binding (`device_jkt`, a DPoP proof), and the account's state and
/// evidence right now. Every answer carries a fresh nonce for the next proof in `DPoP-Nonce`.
#[utoipa::path(
    tag = "tokens",
    extensions(("x-vouch-roles" = json!(roles::MEETING))),
    request_body(content = AuthorizeRequest, example = json!(examples::authorize())),
    responses(
        (status = 200, description = "The decision; `allow: false` carries the reason (and, for `device_mismatch`, `detail` and maybe `dpop_error`)", body = AuthorizeResponse,
            headers(("DPoP-Nonce" = String, description = "A fresh nonce for the next DPoP proof")),
            example = json!(examples::authorized())),
        (status = 400, description = "`invalid_device_jkt` (not a SHA-256 thumbprint), `invalid_dpop_proof` (not a well-formed DPoP proof), `malformed_json` or `invalid_body`"),
    ),
    security(("api_key" = []))
)]
#[post("/v1/e2ee/authorize")]
pub async fn post_authorize(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<AuthorizeRequest>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::MEETING)?;
    let device_jkt = parse_device_jkt(body.device_jkt.as_deref())?;
    let proof = parse_dpop(body.dpop.as_deref())?;
    let now = state.now();
    let ring = state.keys.current();
    let presented = Presented {
        token: &body.token,
        device_jkt,
        dpop: proof.as_ref(),
        endpoint: Endpoint::Authorize,
    };
    let settings = &state.settings.tokens;
    let revocations = &state.revocations;
    let decision = match check_token(
        &state.verified_tokens,
        &ring,
        revocations,
        settings,
        &state.dpop,
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
    Ok(HttpResponse::Ok()
        .insert_header((NONCE_HEADER, state.dpop.nonce(now).value))
        .json(AuthorizeResponse::from(decision)))
}

#[derive(Serialize, ToSchema)]
pub struct NonceResponse {
    /// Put it in the `nonce` claim of a DPoP proof.
    pub nonce: String,
    /// Proofs with this nonce are accepted until then (`tokens.dpop_nonce_ttl_seconds`).
    pub expires_at: DateTime<Utc>,
}

/// A nonce for DPoP proofs (RFC 9449 §8), also sent in the `DPoP-Nonce` header of every
/// authorize answer. Stateless: every instance sharing the master key accepts it.
#[utoipa::path(
    tag = "tokens",
    extensions(("x-vouch-roles" = json!(roles::MEETING))),
    responses((status = 200, description = "A fresh nonce for DPoP proofs", body = NonceResponse,
        headers(("DPoP-Nonce" = String, description = "The same nonce")),
        example = json!(examples::dpop_nonce()))),
    security(("api_key" = []))
)]
#[post("/v1/e2ee/nonce")]
pub async fn post_nonce(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    caller.require(roles::MEETING)?;
    let nonce = state.dpop.nonce(state.now());
    Ok(HttpResponse::Ok()
        .insert_header((NONCE_HEADER, nonce.value.clone()))
        .json(NonceResponse {
            nonce: nonce.value,
            expires_at: nonce.expires_at,
        }))
}

/// The RFC 7009 §2.1 form of `POST /v1/tokens/revoke`: parameters other than these (a
/// `client_id`, say) are ignored, as OAuth clients may send them. Only documents the form; the
/// `Revocation` extractor reads it.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RevokeForm {
    /// The token to revoke (required, not empty).
    #[schema(min_length = 1)]
    pub token: String,
    /// Accepted for RFC 7009 compatibility; ignored.
    pub token_type_hint: Option<String>,
}

/// `POST /v1/tokens/revoke` as JSON.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// The token to revoke (required, not empty).
    #[serde(default)]
    #[schema(required = true, min_length = 1)]
    pub token: String,
    /// Accepted for RFC 7009 compatibility; ignored.
    pub token_type_hint: Option<String>,
}

/// The parameters RFC 7009 §2.1 defines; a form's other parameters (say a `client_id` an
/// OAuth library adds) are ignored, as RFC 6749 §3.2 asks.
const REVOKE_PARAMS: [&str; 2] = ["token", "token_type_hint"];

/// A revocation request's token, from a JSON body (`application/json`) or a form body
/// (`application/x-www-form-urlencoded`, as OAuth libraries send it). Any other content type is
/// a 415; a missing or empty `token`, or a parameter sent twice, an `invalid_request`.
pub struct Revocation {
    token: String,
}

fn invalid_request(detail: &str) -> ApiError {
    // `error` as RFC 6749 §5.2 names it, for OAuth clients that read that member.
    ApiError::bad_request(ErrorCode::InvalidRequest, detail).with("error", "invalid_request")
}

fn required_token(token: Option<String>) -> Result<String, ApiError> {
    match token {
        // RFC 6749 §3.1: a parameter sent without a value is treated as omitted.
        Some(token) if !token.is_empty() => Ok(token),
        _ => Err(invalid_request("`token` is required (RFC 7009 §2.1)")),
    }
}

/// The token of a form body; its values are never echoed (they are tokens).
fn form_token(pairs: Vec<(String, String)>) -> Result<String, ApiError> {
    let mut token = None;
    for name in REVOKE_PARAMS {
        let mut values = pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        let first = values.next();
        if values.next().is_some() {
            return Err(invalid_request(&format!(
                "`{name}` is sent more than once (RFC 6749 §3.2)"
            )));
        }
        if name == "token" {
            token = first.cloned();
        }
    }
    required_token(token)
}

fn form_error(err: UrlencodedError) -> ApiError {
    match err {
        UrlencodedError::Overflow { limit, .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!("the request body is larger than {limit} bytes"),
        ),
        UrlencodedError::ContentType => unsupported_media_type(),
        UrlencodedError::Payload(e) => {
            use actix_web::ResponseError as _;
            match e.status_code() {
                status if status.is_client_error() => problem_for_status(status),
                _ => ApiError::bad_request(
                    ErrorCode::BadRequest,
                    "the request body could not be read",
                ),
            }
        }
        UrlencodedError::UnknownLength => problem_for_status(StatusCode::LENGTH_REQUIRED),
        _ => ApiError::bad_request(
            ErrorCode::InvalidBody,
            "the form body could not be read (application/x-www-form-urlencoded, UTF-8)",
        ),
    }
}

fn unsupported_media_type() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::UnsupportedMediaType,
        "the request body must be sent as Content-Type: application/json or \
         application/x-www-form-urlencoded",
    )
}

impl FromRequest for Revocation {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let mime = req.mime_type().ok().flatten();
        let is = |sub: mime::Name| {
            mime.as_ref()
                .is_some_and(|m| m.type_() == mime::APPLICATION && m.subtype() == sub)
        };
        let json = is(mime::JSON)
            || mime
                .as_ref()
                .is_some_and(|m| m.suffix() == Some(mime::JSON));
        if json {
            let body = Json::<RevokeRequest>::from_request(req, payload);
            return Box::pin(async move {
                let body = body.await?.into_inner();
                Ok(Revocation {
                    token: required_token(Some(body.token))?,
                })
            });
        }
        if is(mime::WWW_FORM_URLENCODED) {
            let limit = req
                .app_data::<web::Data<AppState>>()
                .map_or(16_384, |state| state.settings.http.max_body_bytes);
            let form = UrlEncoded::<Vec<(String, String)>>::new(req, payload).limit(limit);
            return Box::pin(async move {
                let pairs = form.await.map_err(form_error)?;
                Ok(Revocation {
                    token: form_token(pairs)?,
                })
            });
        }
        Box::pin(async { Err(unsupported_media_type().into()) })
    }
}

#[derive(Serialize, ToSchema)]
pub struct RevokeResponse {}

/// Revoke a token (RFC 7009): 200 whether or not the token was valid or known. The body is
/// JSON or, as RFC 7009 §2.1 has OAuth clients send it, a form
/// (`application/x-www-form-urlencoded`; parameters other than `token` and `token_type_hint`
/// are ignored).
#[utoipa::path(
    tag = "tokens",
    extensions(("x-vouch-roles" = json!(roles::TOKEN_REVOKERS))),
    request_body(content(
        (RevokeRequest = "application/json", example = json!(examples::revoke_token())),
        (RevokeForm = "application/x-www-form-urlencoded", example = json!(examples::revoke_token())),
    )),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke (RFC 7009: also for unknown or expired tokens)", body = RevokeResponse,
            example = json!(examples::revoked_token())),
        (status = 400, description = "`invalid_request` (with `\"error\": \"invalid_request\"` as RFC 6749 §5.2 has it): `token` missing or empty, or a parameter sent twice; `invalid_body`, `malformed_json`: a body that cannot be read"),
        (status = 415, description = "`unsupported_media_type`: neither JSON nor a form"),
    ),
    security(("api_key" = []))
)]
#[post("/v1/tokens/revoke")]
pub async fn post_revoke(
    state: web::Data<AppState>,
    caller: Caller,
    body: Revocation,
) -> ApiResult<HttpResponse> {
    caller.require(roles::TOKEN_REVOKERS)?;
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
pub struct AccountTokensRevokedResponse {
    pub account_id: String,
    /// Every token of the account issued (`iat`) before this time is revoked: the next whole
    /// second after the call, since `iat` counts whole seconds. Tokens issued from then on work.
    pub revoked_before: DateTime<Utc>,
}

/// Revoke every token of an account issued up to now (for an abuse pipeline, which rarely holds
/// the raw tokens). `iat` counts whole seconds, so tokens issued in the rest of the current
/// second are revoked too: new tokens work from `revoked_before`. Authorize and the exchanges
/// refuse the revoked tokens (`revoked`) on every instance within 1 s, the account's LiveKit
/// participants are removed, and a `tokens.revoked` event is sent.
#[utoipa::path(
    tag = "tokens",
    extensions(("x-vouch-roles" = json!(roles::TOKEN_REVOKERS))),
    params(("id" = String, Path, description = "Account id")),
    responses(
        (status = 200, description = "Every token of the account issued before `revoked_before` is revoked", body = AccountTokensRevokedResponse,
            example = json!(examples::account_tokens_revoked())),
        (status = 404, description = "`account_not_found`"),
    ),
    security(("api_key" = []))
)]
#[post("/v1/accounts/{id}/tokens/revoke")]
pub async fn post_revoke_account_tokens(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::TOKEN_REVOKERS)?;
    let account_id = AccountId::parse(&id)?;
    let now = state.now();
    let txn = state.db.begin_write().await?;
    let row = revocations::revoke_account(&txn, &caller.name, account_id.as_str(), now).await?;
    txn.commit().await?;
    crate::events::wake();
    state.revocations.insert_account(
        row.account_id.clone(),
        row.revoked_before.timestamp(),
        row.expires_at.timestamp(),
    );
    Ok(HttpResponse::Ok().json(AccountTokensRevokedResponse {
        account_id: row.account_id,
        revoked_before: row.revoked_before,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct JwksResponse {
    pub keys: Vec<Jwk>,
}

/// Every key that can verify an unexpired token (RFC 7517).
#[utoipa::path(
    tag = "tokens",
    extensions(("x-vouch-roles" = json!(roles::PUBLIC))),
    responses((status = 200, description = "Every public key that can verify an unexpired token (`Cache-Control: public, max-age`)",
        body = JwksResponse, example = json!(examples::jwks()))))]
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
#[utoipa::path(
    tag = "admin",
    extensions(("x-vouch-roles" = json!(roles::ADMIN))),
    responses((status = 200, description = "Every signing key, oldest first", body = KeysResponse,
        example = json!(examples::keys()))),
    security(("api_key" = [])))]
#[get("/v1/admin/keys")]
pub async fn get_keys(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    caller.require(roles::ADMIN)?;
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
    extensions(("x-vouch-roles" = json!(roles::ADMIN))),
    responses(
        (status = 201, description = "The new key: published now (`next`), signing after one JWKS max-age", body = KeyResponse,
            example = json!(examples::rotated_key())),
        (status = 409, description = "`rotation_pending`: a published key is still waiting to sign"),
    ),
    security(("api_key" = []))
)]
#[post("/v1/admin/keys/rotate")]
pub async fn post_rotate_key(
    state: web::Data<AppState>,
    caller: Caller,
) -> ApiResult<HttpResponse> {
    caller.require(roles::ADMIN)?;
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

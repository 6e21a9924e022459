//! `/v1/accounts/{id}/evidence` and `/v1/accounts/{id}/entitlements`.

use super::examples;
use crate::error::ErrorCode;
use std::collections::BTreeMap;

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};
use entities::evidence as evidence_row;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::{
    auth::Caller,
    crypto::MasterKey,
    domain::{
        evidence::{EvidenceKind, EvidenceStatus},
        policy::Decision,
        role::roles,
    },
    error::ApiResult,
    services::{
        accounts, evidence, exceptions,
        page::{Page, PageQuery},
    },
    state::AppState,
};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_evidence).service(get_entitlements);
}

#[derive(Serialize, ToSchema)]
pub struct EvidenceResponse {
    pub id: String,
    pub kind: EvidenceKind,
    /// `lapsed` once past `expires_at`, whatever was stored.
    pub status: EvidenceStatus,
    /// Where it came from (`sms`, `stripe:sub_123`, `exception:<id>`).
    pub source: String,
    pub verified_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl EvidenceResponse {
    /// `key` (the exceptions' sealing key) opens an exception's category: the backend that
    /// submitted the request gets `nonprofit` or `dissident`, as before.
    fn from_row(
        row: evidence_row::Model,
        now: DateTime<Utc>,
        key: &MasterKey,
    ) -> Result<Self, crate::error::ApiError> {
        let fact = evidence::fact(&row, Some(key))?;
        let status = match fact.status {
            EvidenceStatus::Active if !fact.is_active(now) => EvidenceStatus::Lapsed,
            s => s,
        };
        Ok(EvidenceResponse {
            id: row.id,
            kind: fact.kind,
            status,
            source: row.source,
            verified_at: row.verified_at,
            expires_at: row.expires_at,
        })
    }
}

#[derive(Serialize, ToSchema)]
pub struct EntitlementsResponse {
    pub account_id: String,
    /// Entitlement name → decision, e.g. `e2ee`.
    pub entitlements: BTreeMap<String, Decision>,
    /// The policy's name and version, e.g. `verified/v1`.
    #[schema(example = "verified/v1")]
    pub policy: String,
}

/// The account's verification evidence.
#[utoipa::path(
    tag = "evidence",
    extensions(("x-vouch-roles" = json!(roles::BACKEND_REVIEWER))),
    params(("id" = String, Path, description = "Account id"), PageQuery),
    responses(
        (status = 200, description = "A page of the account's evidence, oldest first", body = Page<EvidenceResponse>,
            example = json!(examples::evidence())),
        (status = 404, description = "`account_not_found`"),
    ),
    security(("api_key" = []))
)]
#[get("/v1/accounts/{id}/evidence")]
pub async fn get_evidence(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    query: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::BACKEND_REVIEWER)?;
    let limit = query.limit()?;
    let after = query.after()?;
    let account = accounts::require(state.db.conn(), &id).await?;
    let rows = evidence::list(state.db.conn(), &account.id, after.as_deref(), limit + 1).await?;
    let now = state.now();
    let key = exceptions::sealing_key(&state.master_key);
    let page = Page::try_from_rows(
        rows,
        limit,
        |r| r.id.clone(),
        |r| EvidenceResponse::from_row(r, now, &key),
    )?;
    Ok(HttpResponse::Ok().json(page))
}

/// What the account is entitled to now, and why.
#[utoipa::path(
    tag = "evidence",
    extensions(("x-vouch-roles" = json!(roles::BACKEND_REVIEWER))),
    params(("id" = String, Path, description = "Account id")),
    responses(
        (status = 200, description = "Each entitlement's decision, with why", body = EntitlementsResponse,
            example = json!(examples::entitlements())),
        (status = 404, description = "`account_not_found`"),
    ),
    security(("api_key" = []))
)]
#[get("/v1/accounts/{id}/entitlements")]
pub async fn get_entitlements(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::BACKEND_REVIEWER)?;
    let snapshot = evidence::snapshot(state.db.conn(), &state.master_key, &id)
        .await?
        .ok_or_else(|| {
            crate::error::ApiError::not_found(ErrorCode::AccountNotFound, "no account with this id")
        })?;
    let decisions = state
        .policy
        .evaluate(snapshot.active, &snapshot.facts, state.now());
    Ok(HttpResponse::Ok().json(EntitlementsResponse {
        account_id: id.into_inner(),
        entitlements: decisions,
        policy: state.policy.name.clone(),
    }))
}

//! `/v1/admin`: API clients and the audit log (admin only).

use super::{examples, json::Json};
use crate::error::ErrorCode;
use actix_web::{delete, get, post, web, HttpResponse};

use chrono::{DateTime, Utc};
use entities::{api_client, audit_log};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::{
    auth::{Authenticator, Caller},
    domain::role::{roles, Role},
    error::{ApiError, ApiResult},
    services::{
        audit::{self, ChainReport},
        clients,
        page::{Page, PageQuery},
    },
    state::AppState,
};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(post_client)
        .service(get_clients)
        .service(delete_client)
        .service(get_audit)
        .service(get_audit_verify);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClientRequest {
    /// Unique; recorded as the actor in the audit log. 1–64 letters, digits, `-`, `_`, `.`, `@`.
    #[schema(example = "meet-backend-eu", pattern = r"^[A-Za-z0-9._@-]{1,64}$")]
    pub name: String,
    /// The person (or system) the key belongs to; defaults to `name`. Four-eyes review counts
    /// principals: two keys of one principal are one reviewer.
    #[schema(example = "alice@example.org")]
    pub principal: Option<String>,
    pub role: Role,
}

#[derive(Serialize, ToSchema)]
pub struct ClientResponse {
    #[schema(example = "cli_0192f5c8a3b47d2e9c1f0a6b5d4e3c2b")]
    pub id: String,
    pub name: String,
    pub role: Role,
    /// The person (or system) the key belongs to.
    pub principal: String,
    /// The key's first characters, to recognise it.
    #[schema(example = "vk_Zx81aQ")]
    pub key_prefix: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedClientResponse {
    #[serde(flatten)]
    pub client: ClientResponse,
    /// The API key. Shown once: only its hash is stored.
    pub key: String,
}

impl TryFrom<api_client::Model> for ClientResponse {
    type Error = ApiError;

    fn try_from(c: api_client::Model) -> Result<Self, ApiError> {
        Ok(ClientResponse {
            role: crate::services::stored("client role", &c.role)?,
            id: c.id,
            name: c.name,
            principal: c.principal,
            key_prefix: c.key_prefix,
            created_at: c.created_at,
            created_by: c.created_by,
            revoked_at: c.revoked_at,
        })
    }
}

/// Create an API client. The response holds its key, shown this once.
#[utoipa::path(
    tag = "admin",
    extensions(("x-vouch-roles" = json!(roles::ADMIN))),
    request_body(content = CreateClientRequest, example = json!(examples::create_client())),
    responses(
        (status = 201, description = "The new client and its key (shown this once)", body = CreatedClientResponse,
            example = json!(examples::created_client())),
        (status = 400, description = "`invalid_name`, `invalid_principal`, `invalid_body`"),
        (status = 409, description = "`client_exists`"),
    ),
    security(("api_key" = []))
)]
#[post("/v1/admin/clients")]
pub async fn post_client(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<CreateClientRequest>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::ADMIN)?;
    let txn = state.db.begin_write().await?;
    let (client, key) = clients::create(
        &*txn,
        &caller.name,
        &body.name,
        body.principal.as_deref(),
        body.role,
        state.now(),
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(CreatedClientResponse {
            client: client.try_into()?,
            key,
        }))
}

/// List API clients (keys are never shown again).
#[utoipa::path(
    tag = "admin",
    extensions(("x-vouch-roles" = json!(roles::ADMIN))),
    params(PageQuery),
    responses((status = 200, description = "A page of API clients, oldest first, revoked ones included", body = Page<ClientResponse>,
        example = json!(examples::clients()))),
    security(("api_key" = [])))]
#[get("/v1/admin/clients")]
pub async fn get_clients(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::ADMIN)?;
    let limit = query.limit()?;
    let after = query.after()?;
    let rows = clients::list(state.db.conn(), after.as_deref(), limit + 1).await?;
    Ok(HttpResponse::Ok().json(Page::try_from_rows(
        rows,
        limit,
        |c| c.id.clone(),
        ClientResponse::try_from,
    )?))
}

/// Revoke an API client's key.
#[utoipa::path(
    tag = "admin",
    extensions(("x-vouch-roles" = json!(roles::ADMIN))),
    params(("id" = String, Path, description = "Client id")),
    responses(
        (status = 204, description = "Revoked (also when it already was)"),
        (status = 404, description = "`client_not_found`"),
    ),
    security(("api_key" = []))
)]
#[delete("/v1/admin/clients/{id}")]
pub async fn delete_client(
    state: web::Data<AppState>,
    auth: web::Data<Authenticator>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::ADMIN)?;
    let txn = state.db.begin_write().await?;
    clients::revoke(&*txn, &caller.name, &id, state.now()).await?;
    txn.commit().await?;
    auth.forget_all();
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// e.g. `account.suspended`
    pub action: Option<String>,
    /// The client name that acted.
    pub actor: Option<String>,
    /// e.g. `account`, `exception`, `client`, `signing_key`
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    /// Entries at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Entries before this time (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u64>,
    /// `next_cursor` from the previous page.
    #[param(pattern = r"^([A-Za-z0-9_-]{4}){0,42}([A-Za-z0-9_-]{2,3})?$")]
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

impl From<audit_log::Model> for AuditEntry {
    fn from(m: audit_log::Model) -> Self {
        AuditEntry {
            details: serde_json::from_str(&m.details).unwrap_or(serde_json::Value::Null),
            seq: m.seq,
            at: m.at,
            actor: m.actor,
            action: m.action,
            target_type: m.target_type,
            target_id: m.target_id,
            prev_hash: m.prev_hash,
            hash: m.hash,
        }
    }
}

/// The audit log, newest first.
#[utoipa::path(
    tag = "admin",
    extensions(("x-vouch-roles" = json!(roles::ADMIN))),
    params(AuditQuery),
    responses((status = 200, description = "A page of audit entries, newest first", body = Page<AuditEntry>,
        example = json!(examples::audit()))),
    security(("api_key" = [])))]
#[get("/v1/admin/audit")]
pub async fn get_audit(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<AuditQuery>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::ADMIN)?;
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor.clone(),
    };
    let limit = page.limit()?;
    let before = page
        .after()?
        .map(|s| s.parse::<i64>())
        .transpose()
        .map_err(|_| {
            ApiError::bad_request(ErrorCode::InvalidCursor, "cursor is not one we issued")
        })?;
    let filter = audit::Filter {
        action: query.action.clone(),
        actor: query.actor.clone(),
        target_type: query.target_type.clone(),
        target_id: query.target_id.clone(),
        since: query.since,
        until: query.until,
    };
    let rows = audit::list(state.db.conn(), &filter, before, limit + 1).await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(
        rows,
        limit,
        |e| e.seq.to_string(),
        AuditEntry::from,
    )))
}

/// Walk the audit hash chain and report the first broken link, if any.
#[utoipa::path(
    tag = "admin",
    extensions(("x-vouch-roles" = json!(roles::ADMIN))),
    responses((status = 200, description = "The result of walking the chain", body = ChainReport,
        example = json!(examples::chain_report()))),
    security(("api_key" = [])))]
#[get("/v1/admin/audit/verify")]
pub async fn get_audit_verify(
    state: web::Data<AppState>,
    caller: Caller,
) -> ApiResult<HttpResponse> {
    caller.require(roles::ADMIN)?;
    let key = audit::chain_key(&state.master_key);
    let report = audit::verify(state.db.conn(), &key, None).await?;
    Ok(HttpResponse::Ok().json(report))
}

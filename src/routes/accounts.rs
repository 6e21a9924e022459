//! `/v1/accounts`: create, read, look up, update, erase.

use super::{examples, json::Json};
use crate::error::ErrorCode;
use actix_web::{delete, get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use entities::account;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::{
    auth::Caller,
    domain::{
        account::{AccountId, AccountStatus, DisplayName, Email, ExternalId, UnknownAccount},
        role::{roles, Role},
    },
    error::{ApiError, ApiResult},
    services::{
        accounts::{self, AccountPatch, NewAccount},
        decisions::{self, Cause},
        erasure,
        page::{Page, PageQuery},
    },
    state::AppState,
};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(post_account)
        .service(get_accounts)
        .service(get_account)
        .service(patch_account)
        .service(delete_account);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccountRequest {
    /// The platform's own user id (1–255 characters, not blank, no control characters), unique.
    #[schema(
        example = "user-8812",
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub external_id: String,
    /// Stored sealed (encrypted under a key derived from the master key); never returned, never
    /// put in tokens or logs; erased with the account.
    #[schema(example = "ann@example.org", format = Email, max_length = 254)]
    pub email: Option<String>,
    /// At most 200 characters, no control characters; blank means none.
    #[schema(
        example = "Ann",
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub display_name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchAccountRequest {
    /// Moderators and admins only. Suspension withdraws every entitlement at once.
    pub status: Option<AccountStatus>,
    /// Backends and admins only. `null` or an empty string clears it. At most 200 characters,
    /// no control characters.
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<String>, max_length = 200, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub display_name: Option<Option<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct AccountResponse {
    #[schema(example = "acc_0192f5c8a3b47d2e9c1f0a6b5d4e3c2b")]
    pub id: String,
    pub external_id: String,
    pub display_name: Option<String>,
    pub status: AccountStatus,
    pub created_at: DateTime<Utc>,
    pub email_verified: bool,
    pub phone_verified: bool,
}

impl TryFrom<account::Model> for AccountResponse {
    type Error = ApiError;

    fn try_from(a: account::Model) -> Result<Self, ApiError> {
        Ok(AccountResponse {
            status: crate::services::stored("account status", &a.status)?,
            id: a.id,
            external_id: a.external_id,
            display_name: a.display_name,
            created_at: a.created_at,
            email_verified: a.email_verified,
            phone_verified: a.phone_verified,
        })
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccountListQuery {
    /// Only the account with this platform user id.
    pub external_id: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u64>,
    /// `next_cursor` from the previous page.
    #[param(pattern = r"^([A-Za-z0-9_-]{4}){0,42}([A-Za-z0-9_-]{2,3})?$")]
    pub cursor: Option<String>,
}

fn invalid(code: ErrorCode) -> impl Fn(&'static str) -> ApiError {
    move |detail| ApiError::bad_request(code, detail)
}

/// A malformed account id names no account: the same 404 as an unknown one.
impl From<UnknownAccount> for ApiError {
    fn from(e: UnknownAccount) -> Self {
        ApiError::not_found(ErrorCode::AccountNotFound, e.to_string())
    }
}

impl TryFrom<CreateAccountRequest> for NewAccount {
    type Error = ApiError;

    fn try_from(body: CreateAccountRequest) -> Result<Self, Self::Error> {
        Ok(NewAccount {
            external_id: ExternalId::parse(&body.external_id)
                .map_err(invalid(ErrorCode::InvalidExternalId))?,
            email: body
                .email
                .as_deref()
                .map(Email::parse)
                .transpose()
                .map_err(invalid(ErrorCode::InvalidEmail))?,
            display_name: body
                .display_name
                .as_deref()
                .map(display_name)
                .transpose()?
                .flatten(),
        })
    }
}

impl TryFrom<PatchAccountRequest> for AccountPatch {
    type Error = ApiError;

    fn try_from(body: PatchAccountRequest) -> Result<Self, Self::Error> {
        Ok(AccountPatch {
            status: body.status,
            // `null` and "" both clear it.
            display_name: body
                .display_name
                .map(|name| name.as_deref().map(display_name).transpose())
                .transpose()?
                .map(Option::flatten),
        })
    }
}

/// A display name as the account stores it (`None`: blank, so none).
fn display_name(s: &str) -> Result<Option<String>, ApiError> {
    DisplayName::parse(s)
        .map(|name| name.map(DisplayName::into_inner))
        .map_err(invalid(ErrorCode::InvalidDisplayName))
}

/// Create an account.
#[utoipa::path(
    tag = "accounts",
    extensions(("x-vouch-roles" = json!(roles::BACKEND))),
    request_body(content = CreateAccountRequest, example = json!(examples::create_account())),
    responses(
        (status = 201, description = "The new account (its URL in `Location`)", body = AccountResponse,
            example = json!(examples::account())),
        (status = 400, description = "`invalid_external_id`, `invalid_email`, `invalid_display_name`, `malformed_json`, `invalid_body`"),
        (status = 409, description = "`account_exists`: the external_id is taken; the problem's `id` names the existing account"),
    ),
    security(("api_key" = []))
)]
#[post("/v1/accounts")]
pub async fn post_account(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<CreateAccountRequest>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::BACKEND)?;
    let new = NewAccount::try_from(body.into_inner())?;
    let txn = state.db.begin_write().await?;
    let account =
        accounts::create(&*txn, &state.master_key, &caller.name, new, state.now()).await?;
    txn.commit().await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/accounts/{}", account.id)))
        .json(AccountResponse::try_from(account)?))
}

/// List accounts, or look one up by `external_id`.
#[utoipa::path(
    tag = "accounts",
    extensions(("x-vouch-roles" = json!(roles::ACCOUNT_READERS))),
    params(AccountListQuery),
    responses((status = 200, description = "A page of accounts, oldest first", body = Page<AccountResponse>,
        example = json!(examples::accounts()))),
    security(("api_key" = []))
)]
#[get("/v1/accounts")]
pub async fn get_accounts(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<AccountListQuery>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::ACCOUNT_READERS)?;
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor.clone(),
    };
    let limit = page.limit()?;
    let after = page.after()?;
    let rows = accounts::list(
        state.db.conn(),
        query.external_id.as_deref(),
        after.as_deref(),
        limit + 1,
    )
    .await?;
    let page = Page::try_from_rows(rows, limit, |a| a.id.clone(), AccountResponse::try_from)?;
    Ok(HttpResponse::Ok().json(page))
}

/// Get an account.
#[utoipa::path(
    tag = "accounts",
    extensions(("x-vouch-roles" = json!(roles::ACCOUNT_READERS))),
    params(("id" = String, Path, description = "Account id")),
    responses(
        (status = 200, description = "The account", body = AccountResponse, example = json!(examples::account())),
        (status = 404, description = "`account_not_found`"),
    ),
    security(("api_key" = []))
)]
#[get("/v1/accounts/{id}")]
pub async fn get_account(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::ACCOUNT_READERS)?;
    let id = AccountId::parse(&id)?;
    let account = accounts::require(state.db.conn(), id.as_str()).await?;
    Ok(HttpResponse::Ok().json(AccountResponse::try_from(account)?))
}

/// Change an account's display name (backends), or suspend or reactivate it (moderators).
///
/// Admins may do both. A backend that sends `status`, or a moderator that sends
/// `display_name`, is refused with 403 `forbidden` and nothing changes.
#[utoipa::path(
    tag = "accounts",
    extensions(("x-vouch-roles" = json!(roles::ACCOUNT_EDITORS))),
    params(("id" = String, Path, description = "Account id")),
    request_body(content = PatchAccountRequest, example = json!(examples::patch_account())),
    responses(
        (status = 200, description = "The account as changed", body = AccountResponse,
            example = json!(examples::suspended_account())),
        (status = 403, description = "`forbidden`: the role may not change this field (`status`: moderators and admins; `display_name`: backends and admins), or may not change accounts at all"),
        (status = 404, description = "`account_not_found`"),
    ),
    security(("api_key" = []))
)]
#[patch("/v1/accounts/{id}")]
pub async fn patch_account(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: Json<PatchAccountRequest>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::ACCOUNT_EDITORS)?;
    let body = body.into_inner();
    // Trust and safety suspend and reactivate; the platform's backend owns the profile.
    if body.status.is_some() && !(caller.is(Role::Admin) || caller.is(Role::Moderator)) {
        return Err(ApiError::forbidden(
            ErrorCode::Forbidden,
            "only moderators and admins may change an account's status",
        ));
    }
    if body.display_name.is_some() && caller.is(Role::Moderator) {
        return Err(ApiError::forbidden(
            ErrorCode::Forbidden,
            "moderators may change an account's status only, not its display name",
        ));
    }
    let patch = AccountPatch::try_from(body)?;
    let id = AccountId::parse(&id)?;
    let now = state.now();
    let txn = state.db.begin_write().await?;
    let account = accounts::update(&*txn, &caller.name, id.as_str(), patch, now).await?;
    decisions::reconcile(
        &*txn,
        &state.policy,
        &state.master_key,
        now,
        &account.id,
        Cause::Status,
    )
    .await?;
    txn.commit().await?;
    state.account_changed(&account.id);
    Ok(HttpResponse::Ok().json(AccountResponse::try_from(account)?))
}

/// Erase an account: personal data and evidence are deleted, entitlements withdrawn; the
/// audit trail keeps the account id only.
#[utoipa::path(
    tag = "accounts",
    extensions(("x-vouch-roles" = json!(roles::BACKEND))),
    params(("id" = String, Path, description = "Account id")),
    responses(
        (status = 204, description = "Erased (no body)"),
        (status = 404, description = "`account_not_found`"),
    ),
    security(("api_key" = []))
)]
#[delete("/v1/accounts/{id}")]
pub async fn delete_account(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::BACKEND)?;
    let id = AccountId::parse(&id)?;
    let txn = state.db.begin_write().await?;
    erasure::erase_account(&*txn, &caller.name, id.as_str(), state.now()).await?;
    txn.commit().await?;
    state.account_changed(id.as_str());
    Ok(HttpResponse::NoContent().finish())
}

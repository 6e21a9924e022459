//! Token Status Lists: the signed list a meeting server checks tokens against offline.

use super::examples;
use crate::error::ErrorCode;
use actix_web::{get, http::header, web, FromRequest, HttpRequest, HttpResponse};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::{
    auth::Caller,
    domain::role::roles,
    error::{ApiError, ApiResult},
    state::AppState,
};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_status_list);
}

pub const CONTENT_TYPE: &str = "application/statuslist+jwt";

/// A signed Token Status List (draft-ietf-oauth-status-list).
///
/// A JWS (`typ` `statuslist+jwt`) signed by the active token key, whose `status_list` holds 2 bits per index (0 entitled, 1 not entitled, 2 suspended), index 0 in
/// the least significant bits of the first byte, zlib-compressed and base64url-encoded in
/// `lst`. It shows every change made more than 1 s before; verifiers may cache it for `ttl`
/// seconds. Role `meeting` (or admin), or anyone when `status_lists.public` is set.
#[utoipa::path(
    tag = "tokens",
    extensions(("x-vouch-roles" = json!(roles::MEETING))),
    params(("id" = String, Path, description = "List id, from a token's `status.status_list.uri`")),
    responses(
        (status = 200, description = "The signed status list", body = String, content_type = "application/statuslist+jwt",
            example = json!(examples::status_list())),
        (status = 404, description = "`status_list_not_found`"),
    ),
    security(("api_key" = []))
)]
#[get("/v1/status-lists/{id}")]
pub async fn get_status_list(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let public = state.settings.status_lists.public;
    if !public {
        let caller = Caller::extract(&req).await?;
        caller.require(roles::MEETING)?;
    }
    let not_found =
        || ApiError::not_found(ErrorCode::StatusListNotFound, "no status list with this id");
    // Ids are 1, 2, ...; anything else names no list.
    let list_id = id
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0 && id.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(not_found)?;
    let serve = || {
        state.status_lists.serve(
            list_id,
            &state.settings.tokens.issuer,
            &state.keys.current(),
            state.now(),
        )
    };
    let jwt = match serve()? {
        Some(jwt) => jwt,
        // A list created in the last poll interval is not mirrored yet: catch up once.
        None if state.status_lists.may_be_new(list_id) => {
            crate::status_list::cache::refresh(&state).await?;
            serve()?.ok_or_else(not_found)?
        }
        None => return Err(not_found()),
    };
    let ttl = state.settings.status_lists.ttl_seconds;
    let cache = if public { "public" } else { "private" };
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, CONTENT_TYPE))
        .insert_header((header::CACHE_CONTROL, format!("{cache}, max-age={ttl}")))
        .body(jwt))
}

//! `/v1/me`: which API client the key belongs to, for any role (the admin console's sign-in).

use actix_web::{get, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::examples;
use crate::{
    auth::Caller,
    domain::role::{roles, Role},
};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_me);
}

#[derive(Serialize, ToSchema)]
pub struct MeResponse {
    #[schema(example = "cli_0192f5c8a3b47d2e9c1f0a6b5d4e3c2b")]
    pub client_id: String,
    /// The name recorded as the actor in the audit log (and as `submitted_by` / `reviewer` on
    /// exceptions).
    #[schema(example = "reviewer-ann")]
    pub name: String,
    pub role: Role,
    /// The person the key belongs to; four-eyes review counts principals, not keys.
    #[schema(example = "ann@example.org")]
    pub principal: String,
}

/// The API client behind the key: its id, name, role and principal. Any valid key may ask.
#[utoipa::path(
    tag = "admin",
    extensions(("x-vouch-roles" = json!(roles::ANY))),
    responses((status = 200, description = "The client behind the key", body = MeResponse,
        example = json!(examples::me()))),
    security(("api_key" = []))
)]
#[get("/v1/me")]
pub async fn get_me(caller: Caller) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(MeResponse {
            client_id: caller.client_id,
            name: caller.name,
            role: caller.role,
            principal: caller.principal,
        })
}

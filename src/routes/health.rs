//! Liveness, readiness and metrics.

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa_actix_web::service_config::ServiceConfig;

use super::examples;
use crate::{
    domain::role::roles,
    error::ApiResult,
    state::AppState,
    telemetry::{Metrics, PoolUse, METRICS_CONTENT_TYPE},
};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_healthz)
        .service(get_readyz)
        .service(get_metrics);
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct HealthResponse {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// The process is up.
#[utoipa::path(
    tag = "operations",
    extensions(("x-vouch-roles" = json!(roles::PUBLIC))),
    responses((status = 200, description = "The process is up", body = HealthResponse,
        example = json!(examples::health()))))]
#[get("/healthz")]
pub async fn get_healthz() -> HttpResponse {
    HttpResponse::Ok().json(HealthResponse { status: "ok" })
}

/// The database is reachable.
#[utoipa::path(
    tag = "operations",
    extensions(("x-vouch-roles" = json!(roles::PUBLIC))),
    responses((status = 200, description = "Ready: the database answered", body = HealthResponse,
        example = json!(examples::ready()))))]
#[get("/readyz")]
pub async fn get_readyz(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let pinged = state.db.ping().await;
    state.metrics.set_ready(pinged.is_ok());
    pinged?;
    Ok(HttpResponse::Ok().json(HealthResponse { status: "ready" }))
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(
    tag = "operations",
    extensions(("x-vouch-roles" = json!(roles::PUBLIC))),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String,
        example = json!(examples::metrics()))))]
#[get("/metrics")]
pub async fn get_metrics(metrics: web::Data<Metrics>, state: web::Data<AppState>) -> HttpResponse {
    let (open, idle) = state.db.pool_size();
    metrics.set_pool(PoolUse {
        in_use: open.saturating_sub(idle),
        idle,
        max: u64::from(state.settings.database.max_connections),
    });
    HttpResponse::Ok()
        .content_type(METRICS_CONTENT_TYPE)
        .body(metrics.render())
}

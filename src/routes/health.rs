//! Liveness, readiness and metrics.

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::{
    error::ApiResult,
    state::AppState,
    telemetry::{Metrics, METRICS_CONTENT_TYPE},
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
#[utoipa::path(tag = "operations", responses((status = 200, body = HealthResponse)))]
#[get("/healthz")]
pub async fn get_healthz() -> HttpResponse {
    HttpResponse::Ok().json(HealthResponse { status: "ok" })
}

/// The database is reachable.
#[utoipa::path(tag = "operations", responses((status = 200, body = HealthResponse)))]
#[get("/readyz")]
pub async fn get_readyz(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    state.db.ping().await?;
    Ok(HttpResponse::Ok().json(HealthResponse { status: "ready" }))
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(tag = "operations", responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
#[get("/metrics")]
pub async fn get_metrics(metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(METRICS_CONTENT_TYPE)
        .body(metrics.render())
}

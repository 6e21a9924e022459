//! Logs, request ids and Prometheus metrics.
//!
//! Every response carries `X-Request-Id` (the caller's, when it sent a sane one), every error
//! response is problem+json, and every request is counted and timed by route pattern (never by
//! raw path, which would put ids into metric labels). Every label comes from a closed set, so
//! no request, however made up, can add a series of its own.

use std::{
    collections::HashMap,
    fmt::Write as _,
    sync::{
        atomic::{AtomicU64, Ordering},
        RwLock,
    },
    time::Instant,
};

use actix_web::{
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::header::{self, HeaderName, HeaderValue},
    middleware::Next,
    web, HttpMessage, HttpResponse, ResponseError,
};
use tracing::Instrument;
use tracing_subscriber::{fmt, prelude::*, EnvFilter};

use crate::{
    config::{LogFormat, LogSettings},
    error::{problem_for_status, PROBLEM_JSON},
};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Install the global tracing subscriber. Lines are written by a background thread, so
/// request handling never waits on stderr; when that thread falls behind, writers wait rather
/// than drop lines. Keep the returned guard alive until exit: dropping it flushes the logs.
/// `None` if a subscriber was already installed.
#[must_use]
pub fn init(log: &LogSettings) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        // The worker flushes after draining what is queued: one write for many lines under load.
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stderr(),
        ));
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{},sqlx=warn,sea_orm=warn", log.level)));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match log.format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(writer),
            )
            .try_init(),
        LogFormat::Pretty => registry.with(fmt::layer().with_writer(writer)).try_init(),
    };
    result.is_ok().then_some(guard)
}

/// The request id of the current request, from the request extensions.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

fn accept_request_id(value: &HeaderValue) -> Option<String> {
    let s = value.to_str().ok()?;
    (!s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| s.to_owned())
}

#[derive(Default)]
struct Series {
    count: AtomicU64,
    /// Sum of latencies in microseconds.
    sum_micros: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
}

/// Histogram bucket upper bounds, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// One route's series: (method, status, counters).
type MethodStatus = (&'static str, u16, Series);

/// The method label: the standard methods by name, anything else (a client may send any token
/// as a method) as `OTHER`, so made-up methods cannot create series.
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "OTHER",
    }
}

/// The route label for requests that matched no registered route (any path, any method).
pub const UNMATCHED: &str = "unmatched";

/// Request counts and latency histograms by method, route and status. Keyed by route first,
/// so the hot path looks a series up without allocating.
#[derive(Default)]
pub struct Metrics {
    series: RwLock<HashMap<String, Vec<MethodStatus>>>,
    /// Authorize decisions by reason (index: `Reason as usize`).
    authorize: [AtomicU64; 8],
    tokens_issued: AtomicU64,
}

impl Metrics {
    /// Count one request. `method` comes from [`method_label`] and `route` is a registered
    /// pattern or [`UNMATCHED`], so the number of series is bounded by the routes, the ten
    /// method labels and the status codes the service answers with.
    pub fn observe(&self, method: &'static str, route: &str, status: u16, seconds: f64) {
        let record = |s: &Series| {
            s.count.fetch_add(1, Ordering::Relaxed);
            s.sum_micros
                .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
            for (i, bound) in BUCKETS.iter().enumerate() {
                if seconds <= *bound {
                    s.buckets[i].fetch_add(1, Ordering::Relaxed);
                }
            }
        };
        let find = |list: &[MethodStatus]| {
            list.iter()
                .position(|(m, st, _)| *st == status && *m == method)
        };
        if let Ok(map) = self.series.read() {
            if let Some(list) = map.get(route) {
                if let Some(i) = find(list) {
                    record(&list[i].2);
                    return;
                }
            }
        }
        if let Ok(mut map) = self.series.write() {
            let list = map.entry(route.to_owned()).or_default();
            let i = match find(list) {
                Some(i) => i,
                None => {
                    list.push((method, status, Series::default()));
                    list.len() - 1
                }
            };
            record(&list[i].2);
        }
    }

    pub fn authorized(&self, reason: crate::tokens::verify::Reason) {
        self.authorize[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn token_issued(&self) {
        self.tokens_issued.fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let map = match self.series.read() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut keys: Vec<(&str, &str, u16, &Series)> = map
            .iter()
            .flat_map(|(route, list)| {
                list.iter()
                    .map(move |(method, status, series)| (*method, route.as_str(), *status, series))
            })
            .collect();
        keys.sort_by_key(|(m, r, st, _)| (*m, *r, *st));
        out.push_str(
            "# HELP vouch_http_requests_total HTTP requests by method, route and status.\n",
        );
        out.push_str("# TYPE vouch_http_requests_total counter\n");
        for (method, route, status, s) in &keys {
            let _ = writeln!(
                out,
                "vouch_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{}\"}} {}",
                method,
                escape(route),
                status,
                s.count.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP vouch_http_request_duration_seconds HTTP request latency.\n");
        out.push_str("# TYPE vouch_http_request_duration_seconds histogram\n");
        for (method, route, status, s) in &keys {
            let labels = format!(
                "method=\"{}\",route=\"{}\",status=\"{}\"",
                method,
                escape(route),
                status
            );
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "vouch_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    s.buckets[i].load(Ordering::Relaxed)
                );
            }
            let count = s.count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "vouch_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "vouch_http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "vouch_http_request_duration_seconds_count{{{labels}}} {count}"
            );
        }
        out.push_str("# HELP vouch_authorize_decisions_total E2EE authorize answers by reason.\n");
        out.push_str("# TYPE vouch_authorize_decisions_total counter\n");
        for reason in crate::tokens::verify::Reason::ALL {
            let _ = writeln!(
                out,
                "vouch_authorize_decisions_total{{reason=\"{}\"}} {}",
                reason.as_str(),
                self.authorize[reason as usize].load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP vouch_tokens_issued_total E2EE entitlement tokens issued.\n");
        out.push_str("# TYPE vouch_tokens_issued_total counter\n");
        let _ = writeln!(
            out,
            "vouch_tokens_issued_total {}",
            self.tokens_issued.load(Ordering::Relaxed)
        );
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Outermost middleware: request id, access log, metrics, and problem+json for every error.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(accept_request_id)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let method = method_label(req.method());
    let span = tracing::info_span!("request", request_id = %request_id);

    // Handlers and extractors turn their errors into responses; an `Err` here would come from
    // actix itself and is left to it. (The request must not be cloned before routing.)
    let res = next.call(req).instrument(span.clone()).await?;
    let mut res = problemize(res.map_into_boxed_body());
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    let status = res.status().as_u16();
    // A pattern is one the application registered; an unmatched path is never a label.
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| UNMATCHED.to_owned());
    let elapsed = started.elapsed();
    if let Some(state) = res
        .request()
        .app_data::<web::Data<crate::state::AppState>>()
    {
        state
            .metrics
            .observe(method, &route, status, elapsed.as_secs_f64());
        if state.settings.log.access {
            let _enter = span.enter();
            tracing::info!(
                target: "vouch::access",
                method,
                route = %route,
                status,
                latency_ms = elapsed.as_secs_f64() * 1e3,
                "request"
            );
        }
    }
    Ok(res)
}

/// Any error response not already problem+json (actix's own 404/405/413, ...) becomes one.
fn problemize(res: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with(PROBLEM_JSON));
    if is_problem {
        return res;
    }
    let keep: Vec<(HeaderName, HeaderValue)> =
        [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE]
            .into_iter()
            .filter_map(|name| res.headers().get(&name).map(|v| (name, v.clone())))
            .collect();
    let (req, _old) = res.into_parts();
    let mut new: HttpResponse = problem_for_status(status).error_response();
    for (name, value) in keep {
        new.headers_mut().insert(name, value);
    }
    ServiceResponse::new(req, new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_from_callers_are_bounded() {
        assert_eq!(
            accept_request_id(&HeaderValue::from_static("abc-123")),
            Some("abc-123".into())
        );
        assert_eq!(accept_request_id(&HeaderValue::from_static("")), None);
        assert_eq!(accept_request_id(&HeaderValue::from_static("a b")), None);
        let long = "x".repeat(129);
        assert_eq!(
            accept_request_id(&HeaderValue::from_str(&long).unwrap()),
            None
        );
    }

    #[test]
    fn metrics_render_in_prometheus_text_format() {
        let m = Metrics::default();
        m.observe("GET", "/v1/accounts/{id}", 200, 0.002);
        m.observe("GET", "/v1/accounts/{id}", 200, 0.2);
        let text = m.render();
        assert!(text.contains(r#"vouch_http_requests_total{method="GET",route="/v1/accounts/{id}",status="200"} 2"#), "{text}");
        assert!(text.contains(r#"le="0.0025"} 1"#), "{text}");
        assert!(text.contains(r#"le="+Inf"} 2"#), "{text}");
    }

    #[test]
    fn method_labels_are_a_closed_set() {
        use actix_web::http::Method;
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let junk = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&junk), "OTHER");
    }
}

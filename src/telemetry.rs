//! Logs, request ids and Prometheus metrics.
//!
//! Every response carries `X-Request-Id` (the caller's, when it sent a sane one), every error
//! response is problem+json (`error::problemize`), and every request is counted and timed by
//! route pattern (never by raw path, which would put ids into metric labels). Every label comes
//! from a closed set, so no request, however made up, can add a series of its own. The
//! middleware reads its own app data, [`Metrics`] and [`AccessLog`], nothing else.
//!
//! One label names a person-side actor: `vouch_exception_reveals_total{reviewer}`, the API
//! client that opened a request's sealed text, so an alert can see one reviewer key reading
//! many statements (a stolen reviewer key is the likeliest way in). Clients are few and made
//! by admins; past [`MAX_REVIEWER_SERIES`] names the rest count as `other`. Never a label of
//! the people the statements are about.

use std::{fmt, time::Instant};

use actix_web::{
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::header::{HeaderName, HeaderValue},
    middleware::Next,
    web, HttpMessage,
};
use prometheus_client::{
    encoding::{prometheus_text, EncodeLabelSet, EncodeLabelValue, LabelValueEncoder},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use tracing::Instrument;
use tracing_subscriber::{filter::filter_fn, fmt as log_fmt, prelude::*, EnvFilter, Layer};

use crate::{
    config::{LogFormat, LogSettings, TelemetrySettings},
    domain::verification::Channel,
    error::problemize,
    tokens::verify::Reason,
};

pub mod traces;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What [`init`] set up; keep it alive until exit. Dropping it exports the spans still queued
/// (briefly, see [`traces::Pipeline`]), then flushes the logs.
pub struct Guard {
    _traces: Option<traces::Pipeline>,
    _log: tracing_appender::non_blocking::WorkerGuard,
}

/// Install the global tracing subscriber. Lines are written by a background thread, so
/// request handling never waits on stderr; when that thread falls behind, writers wait rather
/// than drop lines. With `telemetry` naming a collector, Vouch's spans are exported to it too
/// (the logs keep their own level filter; traces take Vouch's spans, never log events).
/// Keep the returned guard alive until exit. `None` if a subscriber was already installed.
#[must_use]
pub fn init(log: &LogSettings, telemetry: &TelemetrySettings) -> Option<Guard> {
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        // The worker flushes after draining what is queued: one write for many lines under load.
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stderr(),
        ));
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{},sqlx=warn,sea_orm=warn", log.level)));
    let pipeline = match telemetry.traces_url().map(|url| traces::pipeline(&url)) {
        Some(Ok(pipeline)) => Some(pipeline),
        Some(Err(e)) => {
            // Logging is not up yet; the service runs on without traces.
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "vouch: traces are off: {e}");
            None
        }
        None => None,
    };
    let Some((pipeline, tracer)) = pipeline else {
        // No traces: the subscriber as it always was, one global filter and no extra layer.
        let registry = tracing_subscriber::registry().with(filter);
        let result = match log.format {
            LogFormat::Json => registry
                .with(
                    log_fmt::layer()
                        .json()
                        .with_current_span(true)
                        .with_span_list(false)
                        .with_writer(writer),
                )
                .try_init(),
            LogFormat::Pretty => registry
                .with(log_fmt::layer().with_writer(writer))
                .try_init(),
        };
        return result.is_ok().then_some(Guard {
            _traces: None,
            _log: guard,
        });
    };
    let logs: Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync> = match log.format {
        LogFormat::Json => log_fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(writer)
            .with_filter(filter)
            .boxed(),
        LogFormat::Pretty => log_fmt::layer()
            .with_writer(writer)
            .with_filter(filter)
            .boxed(),
    };
    let spans = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_threads(false)
        .with_tracked_inactivity(false)
        // Vouch's own spans only (not the database driver's or the HTTP client's), and no
        // log events: their text is for operators, not for a collector.
        .with_filter(filter_fn(|meta| {
            meta.is_span() && meta.target().starts_with("vouch")
        }));
    let installed = tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .try_init()
        .is_ok();
    if !installed {
        return None;
    }
    traces::set_enabled();
    Some(Guard {
        _traces: Some(pipeline),
        _log: guard,
    })
}

/// The request id of the current request, from the request extensions.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

fn accept_request_id(value: &HeaderValue) -> Option<String> {
    let s = value.to_str().ok()?;
    (!s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| s.to_owned())
}

/// Histogram bucket upper bounds, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The method label: the standard methods by name, anything else (a client may send any token
/// as a method) as `OTHER`, so made-up methods cannot create series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MethodLabel {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Patch,
    Options,
    Connect,
    Trace,
    Other,
}

impl MethodLabel {
    pub fn as_str(self) -> &'static str {
        match self {
            MethodLabel::Get => "GET",
            MethodLabel::Head => "HEAD",
            MethodLabel::Post => "POST",
            MethodLabel::Put => "PUT",
            MethodLabel::Delete => "DELETE",
            MethodLabel::Patch => "PATCH",
            MethodLabel::Options => "OPTIONS",
            MethodLabel::Connect => "CONNECT",
            MethodLabel::Trace => "TRACE",
            MethodLabel::Other => "OTHER",
        }
    }
}

impl fmt::Display for MethodLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl EncodeLabelValue for MethodLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        fmt::Write::write_str(encoder, self.as_str())
    }
}

pub fn method_label(method: &actix_web::http::Method) -> MethodLabel {
    match method.as_str() {
        "GET" => MethodLabel::Get,
        "HEAD" => MethodLabel::Head,
        "POST" => MethodLabel::Post,
        "PUT" => MethodLabel::Put,
        "DELETE" => MethodLabel::Delete,
        "PATCH" => MethodLabel::Patch,
        "OPTIONS" => MethodLabel::Options,
        "CONNECT" => MethodLabel::Connect,
        "TRACE" => MethodLabel::Trace,
        _ => MethodLabel::Other,
    }
}

/// The route label for requests that matched no registered route (any path, any method).
pub const UNMATCHED: &str = "unmatched";

/// One HTTP series. `route` is a registered pattern or [`UNMATCHED`], never a raw path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct HttpLabels {
    method: MethodLabel,
    route: String,
    status: u16,
}

/// An authorize answer's reason, as a label value (the contract's `reason` strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ReasonLabel(Reason);

impl std::hash::Hash for ReasonLabel {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.0 as usize).hash(state);
    }
}

impl EncodeLabelValue for ReasonLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        fmt::Write::write_str(encoder, self.0.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DecisionLabels {
    reason: ReasonLabel,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RevealLabels {
    reviewer: String,
}

/// At most this many reviewer names get a series of their own.
pub const MAX_REVIEWER_SERIES: usize = 100;

type HistogramFamily = Family<HttpLabels, Histogram, fn() -> Histogram>;

/// What became of one delivery attempt of a verification message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum MessageOutcome {
    /// The provider accepted it.
    delivered,
    /// No provider is configured: a log line was written instead.
    logged,
    /// A failure that will be retried.
    retry,
    /// Given up: a permanent failure, or the last attempt failed.
    failed,
    /// Not sent: the code expired or the verification closed first.
    dropped,
}

impl MessageOutcome {
    const ALL: [MessageOutcome; 5] = [
        MessageOutcome::delivered,
        MessageOutcome::logged,
        MessageOutcome::retry,
        MessageOutcome::failed,
        MessageOutcome::dropped,
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum ChannelLabel {
    email,
    sms,
}

impl From<Channel> for ChannelLabel {
    fn from(channel: Channel) -> Self {
        match channel {
            Channel::Email => ChannelLabel::email,
            Channel::Sms => ChannelLabel::sms,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct MessageLabels {
    channel: ChannelLabel,
    outcome: MessageOutcome,
}

/// What became of one webhook delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum WebhookOutcome {
    delivered,
    retry,
    failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct WebhookLabels {
    outcome: WebhookOutcome,
}

/// A queue the workers drain, as a label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Queue {
    /// Verification messages (email, SMS).
    verification,
    /// Webhook deliveries.
    webhook,
    /// LiveKit participant removals.
    livekit,
}

impl Queue {
    pub const ALL: [Queue; 3] = [Queue::verification, Queue::webhook, Queue::livekit];
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct QueueLabels {
    queue: Queue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum PoolState {
    in_use,
    idle,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PoolLabels {
    state: PoolState,
}

type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// One queue's backlog: messages waiting (pending or being sent) and the age of the oldest.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Backlog {
    pub waiting: u64,
    /// Seconds since the oldest waiting message was queued; 0 when none waits.
    pub oldest_age_seconds: f64,
}

/// What the maintenance loop samples from the database for the gauges.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// In [`Queue::ALL`] order.
    pub backlogs: [Backlog; 3],
    /// Webhook endpoints with a delivery waiting for a retry after a failed attempt.
    pub failing_endpoints: u64,
    /// SMS codes sent in the last hour (what `verification.sms_hourly_budget` counts).
    pub sms_sent_last_hour: u64,
    /// Seconds until the signing key is due for rotation (negative: overdue); `None` when
    /// rotation is off (`tokens.rotation_period_days = 0`), exported as +Inf.
    pub key_rotation_due_seconds: Option<f64>,
}

/// Database pool use, read at scrape time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolUse {
    pub in_use: u64,
    pub idle: u64,
    pub max: u64,
}

/// Request counts and latency histograms by method, route and status; authorize decisions by
/// reason; tokens issued; verification messages by channel and outcome; webhook deliveries by
/// outcome; gauges sampled by the maintenance loop (queue backlogs, failing webhook endpoints,
/// SMS budget use, key rotation, readiness) or at scrape time (database pool). Every series of
/// a closed label set is created up front, so it is exported (as 0) from the start. Its own
/// app data (`web::Data<Metrics>`), shared with `AppState`.
pub struct Metrics {
    registry: Registry,
    requests: Family<HttpLabels, Counter>,
    durations: HistogramFamily,
    /// One counter per reason, created up front (index: `Reason as usize`), so every reason is
    /// exported from the start and the authorize path touches no lock.
    authorize: [Counter; Reason::ALL.len()],
    tokens_issued: Counter,
    reveals: Family<RevealLabels, Counter>,
    /// The reviewer names that have a series (bounded by [`MAX_REVIEWER_SERIES`]).
    reviewers: std::sync::Mutex<std::collections::HashSet<String>>,
    messages: Family<MessageLabels, Counter>,
    webhooks: Family<WebhookLabels, Counter>,
    queue_waiting: Family<QueueLabels, Gauge>,
    queue_oldest: Family<QueueLabels, FloatGauge>,
    failing_endpoints: Gauge,
    sms_sent: Gauge,
    key_rotation: FloatGauge,
    ready: Gauge,
    pool: Family<PoolLabels, Gauge>,
    pool_max: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(0)
    }
}

impl Metrics {
    /// `sms_hourly_budget` is exported as `vouch_sms_budget_per_hour`.
    pub fn new(sms_hourly_budget: u32) -> Self {
        let requests = Family::<HttpLabels, Counter>::default();
        let durations: HistogramFamily = Family::new_with_constructor(|| Histogram::new(BUCKETS));
        let decisions = Family::<DecisionLabels, Counter>::default();
        let authorize = Reason::ALL.map(|reason| {
            decisions
                .get_or_create(&DecisionLabels {
                    reason: ReasonLabel(reason),
                })
                .clone()
        });
        let tokens_issued = Counter::default();
        let mut registry = Registry::default();
        registry.register(
            "vouch_http_requests",
            "HTTP requests by method, route and status",
            requests.clone(),
        );
        registry.register(
            "vouch_http_request_duration_seconds",
            "HTTP request latency",
            durations.clone(),
        );
        registry.register(
            "vouch_authorize_decisions",
            "E2EE authorize answers by reason",
            decisions,
        );
        registry.register(
            "vouch_tokens_issued",
            "E2EE entitlement tokens issued",
            tokens_issued.clone(),
        );
        let reveals = Family::<RevealLabels, Counter>::default();
        registry.register(
            "vouch_exception_reveals",
            "Reads of exception requests' sealed text (statement, reasons) by reviewing API client",
            reveals.clone(),
        );
        let messages = Family::<MessageLabels, Counter>::default();
        for channel in [ChannelLabel::email, ChannelLabel::sms] {
            for outcome in MessageOutcome::ALL {
                let _ = messages.get_or_create(&MessageLabels { channel, outcome });
            }
        }
        registry.register(
            "vouch_verification_messages",
            "Verification message delivery attempts by channel and outcome",
            messages.clone(),
        );
        let webhooks = Family::<WebhookLabels, Counter>::default();
        for outcome in [
            WebhookOutcome::delivered,
            WebhookOutcome::retry,
            WebhookOutcome::failed,
        ] {
            let _ = webhooks.get_or_create(&WebhookLabels { outcome });
        }
        registry.register(
            "vouch_webhook_deliveries",
            "Webhook delivery attempts by outcome",
            webhooks.clone(),
        );
        let queue_waiting = Family::<QueueLabels, Gauge>::default();
        let queue_oldest = Family::<QueueLabels, FloatGauge>::default();
        for queue in Queue::ALL {
            let _ = queue_waiting.get_or_create(&QueueLabels { queue });
            let _ = queue_oldest.get_or_create(&QueueLabels { queue });
        }
        registry.register(
            "vouch_queue_waiting",
            "Messages waiting to be sent (pending or being sent), by queue",
            queue_waiting.clone(),
        );
        registry.register(
            "vouch_queue_oldest_waiting_age_seconds",
            "Age of the oldest waiting message, by queue (0: none waits)",
            queue_oldest.clone(),
        );
        let failing_endpoints = Gauge::default();
        registry.register(
            "vouch_webhook_endpoints_failing",
            "Webhook endpoints with a delivery waiting for a retry after a failed attempt",
            failing_endpoints.clone(),
        );
        let sms_sent = Gauge::default();
        registry.register(
            "vouch_sms_sent_last_hour",
            "SMS codes sent in the last hour (counted against the hourly budget)",
            sms_sent.clone(),
        );
        let sms_budget = Gauge::<i64>::default();
        sms_budget.set(i64::from(sms_hourly_budget));
        registry.register(
            "vouch_sms_budget_per_hour",
            "The service's hourly SMS budget (verification.sms_hourly_budget)",
            sms_budget,
        );
        let key_rotation = FloatGauge::default();
        registry.register(
            "vouch_signing_key_rotation_due_seconds",
            "Seconds until the signing key is due for rotation; negative: overdue; +Inf: rotation off",
            key_rotation.clone(),
        );
        let ready = Gauge::default();
        registry.register(
            "vouch_ready",
            "1 when the database answered the last readiness check, else 0",
            ready.clone(),
        );
        let pool = Family::<PoolLabels, Gauge>::default();
        for state in [PoolState::in_use, PoolState::idle] {
            let _ = pool.get_or_create(&PoolLabels { state });
        }
        registry.register(
            "vouch_db_pool_connections",
            "Database pool connections by state",
            pool.clone(),
        );
        let pool_max = Gauge::default();
        registry.register(
            "vouch_db_pool_max_connections",
            "The database pool's size limit (database.max_connections)",
            pool_max.clone(),
        );
        Metrics {
            registry,
            requests,
            durations,
            authorize,
            tokens_issued,
            reveals,
            reviewers: Default::default(),
            messages,
            webhooks,
            queue_waiting,
            queue_oldest,
            failing_endpoints,
            sms_sent,
            key_rotation,
            ready,
            pool,
            pool_max,
        }
    }
}

impl Metrics {
    /// Count one request. `method` comes from [`method_label`] and `route` is a registered
    /// pattern or [`UNMATCHED`], so the number of series is bounded by the routes, the ten
    /// method labels and the status codes the service answers with.
    pub fn observe(&self, method: MethodLabel, route: String, status: u16, seconds: f64) {
        let labels = HttpLabels {
            method,
            route,
            status,
        };
        self.requests.get_or_create(&labels).inc();
        self.durations.get_or_create(&labels).observe(seconds);
    }

    pub fn authorized(&self, reason: Reason) {
        self.authorize[reason as usize].inc();
    }

    pub fn token_issued(&self) {
        self.tokens_issued.inc();
    }

    /// Count one reveal of sealed exception text by the client `reviewer`.
    pub fn exception_revealed(&self, reviewer: &str) {
        let label = match self.reviewers.lock() {
            Ok(mut seen) if seen.contains(reviewer) || seen.len() < MAX_REVIEWER_SERIES => {
                seen.insert(reviewer.to_owned());
                reviewer.to_owned()
            }
            _ => "other".to_owned(),
        };
        self.reveals
            .get_or_create(&RevealLabels { reviewer: label })
            .inc();
    }

    pub fn message(&self, channel: Channel, outcome: MessageOutcome) {
        self.messages
            .get_or_create(&MessageLabels {
                channel: channel.into(),
                outcome,
            })
            .inc();
    }

    pub fn webhook(&self, outcome: WebhookOutcome) {
        self.webhooks
            .get_or_create(&WebhookLabels { outcome })
            .inc();
    }

    /// Record what the maintenance loop sampled.
    pub fn sampled(&self, sample: &Sample) {
        for (queue, backlog) in Queue::ALL.into_iter().zip(sample.backlogs) {
            let labels = QueueLabels { queue };
            self.queue_waiting
                .get_or_create(&labels)
                .set(i64::try_from(backlog.waiting).unwrap_or(i64::MAX));
            self.queue_oldest
                .get_or_create(&labels)
                .set(backlog.oldest_age_seconds.max(0.0));
        }
        self.failing_endpoints
            .set(i64::try_from(sample.failing_endpoints).unwrap_or(i64::MAX));
        self.sms_sent
            .set(i64::try_from(sample.sms_sent_last_hour).unwrap_or(i64::MAX));
        self.key_rotation
            .set(sample.key_rotation_due_seconds.unwrap_or(f64::INFINITY));
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }

    /// Record the database pool's use (read when `/metrics` is scraped).
    pub fn set_pool(&self, pool: PoolUse) {
        let set = |state, n: u64| {
            self.pool
                .get_or_create(&PoolLabels { state })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        };
        set(PoolState::in_use, pool.in_use);
        set(PoolState::idle, pool.idle);
        self.pool_max
            .set(i64::try_from(pool.max).unwrap_or(i64::MAX));
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

/// The `Content-Type` of [`Metrics::render`].
pub const METRICS_CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Whether to write an access log line per request (`log.access`); app data of its own.
#[derive(Debug, Clone, Copy)]
pub struct AccessLog(pub bool);

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
    let traced = traces::enabled();
    let span = if traced {
        // Named and completed once the route is known (below); no path, query or header but
        // the `traceparent` is read.
        let span = tracing::info_span!(
            "request",
            request_id = %request_id,
            otel.name = method.as_str(),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            http.request.method = method.as_str(),
            http.route = tracing::field::Empty,
            http.response.status_code = tracing::field::Empty,
        );
        traces::continue_trace(&span, req.headers());
        span
    } else {
        tracing::info_span!("request", request_id = %request_id)
    };

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
    if traced {
        if route != UNMATCHED {
            // The OpenTelemetry span has started (its context was in use): rename it directly.
            traces::rename(&span, format!("{method} {route}"));
            span.record("http.route", route.as_str());
        }
        span.record("http.response.status_code", i64::from(status));
        if status >= 500 {
            span.record("otel.status_code", "error");
        }
    }
    let access_log = res
        .request()
        .app_data::<web::Data<AccessLog>>()
        .is_some_and(|log| log.0);
    if access_log {
        let _enter = span.enter();
        tracing::info!(
            target: "vouch::access",
            method = method.as_str(),
            route = %route,
            status,
            latency_ms = elapsed.as_secs_f64() * 1e3,
            "request"
        );
    }
    if let Some(metrics) = res.request().app_data::<web::Data<Metrics>>() {
        metrics.observe(method, route, status, elapsed.as_secs_f64());
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reveals_get_a_series_per_reviewer_up_to_a_bound() {
        let metrics = Metrics::default();
        for i in 0..MAX_REVIEWER_SERIES + 5 {
            metrics.exception_revealed(&format!("reviewer-{i}"));
        }
        metrics.exception_revealed("reviewer-0");
        let text = metrics.render();
        let series = text
            .lines()
            .filter(|l| l.starts_with("vouch_exception_reveals_total{"))
            .count();
        assert_eq!(series, MAX_REVIEWER_SERIES + 1, "{text}");
        assert!(text.contains("vouch_exception_reveals_total{reviewer=\"reviewer-0\"} 2"));
        assert!(text.contains("vouch_exception_reveals_total{reviewer=\"other\"} 5"));
    }

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
        m.observe(MethodLabel::Get, "/v1/accounts/{id}".into(), 200, 0.002);
        m.observe(MethodLabel::Get, "/v1/accounts/{id}".into(), 200, 0.2);
        let text = m.render();
        assert!(text.contains(r#"vouch_http_requests_total{method="GET",route="/v1/accounts/{id}",status="200"} 2"#), "{text}");
        assert!(text.contains(r#"le="0.0025"} 1"#), "{text}");
        assert!(text.contains(r#"le="+Inf"} 2"#), "{text}");
        assert!(
            text.contains(r#"vouch_authorize_decisions_total{reason="account_suspended"} 0"#),
            "{text}"
        );
        assert!(text.contains("vouch_tokens_issued_total 0"), "{text}");
        assert!(
            text.contains("# TYPE vouch_http_request_duration_seconds histogram"),
            "{text}"
        );
    }

    #[test]
    fn method_labels_are_a_closed_set() {
        use actix_web::http::Method;
        assert_eq!(method_label(&Method::GET).as_str(), "GET");
        assert_eq!(method_label(&Method::PATCH).as_str(), "PATCH");
        let junk = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&junk).as_str(), "OTHER");
    }
}

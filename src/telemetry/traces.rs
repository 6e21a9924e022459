//! OpenTelemetry traces over OTLP/HTTP (protobuf), on when `telemetry.otlp_endpoint` (or
//! `OTEL_EXPORTER_OTLP_ENDPOINT`) is set: the exporter pipeline, W3C `traceparent` in and out,
//! and the one switch the request path looks at ([`enabled`]).
//!
//! Spans are `tracing` spans of Vouch's own modules, turned into OpenTelemetry spans by
//! `tracing-opentelemetry`; log events never become span events. They carry ids only (request,
//! account, verification, message, delivery ids), never personal data or secrets.
//!
//! The exporter never holds up a request: finished spans go into a bounded queue (dropped when
//! it is full), a batch processor thread of the SDK exports them, and the HTTP requests run on
//! a runtime of their own with short timeouts, so a collector that is down or hangs costs the
//! service at most that thread's time.

use std::{
    collections::HashMap,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use bytes::Bytes;
use opentelemetry::{
    propagation::{Extractor, TextMapPropagator},
    trace::TraceContextExt,
};
use opentelemetry_http::{HttpClient, HttpError};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::{
    propagation::TraceContextPropagator,
    trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, Tracer},
    Resource,
};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Spans waiting for export; past this, new spans are dropped.
const MAX_QUEUE: usize = 2048;
const MAX_BATCH: usize = 512;
/// How often the batch processor exports what is queued.
const EXPORT_INTERVAL: Duration = Duration::from_secs(2);
/// One export request, connection included; the SDK's batch thread waits at most this long.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);
/// The most a shutdown waits for the last spans to leave.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// A collector's answer is a small protobuf message; more is not read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether traces are exported (the OpenTelemetry layer is installed). Off, the request path
/// creates no extra span fields and nothing is propagated.
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

pub(super) fn set_enabled() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// The exporter pipeline: keep it alive while the service runs; dropping it exports what is
/// queued (waiting at most [`SHUTDOWN_TIMEOUT`]) and stops the exporter.
pub struct Pipeline {
    provider: SdkTracerProvider,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
            tracing::warn!(error = %e, "exporting the last spans failed");
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Build the pipeline exporting to `url` (`…/v1/traces`) and the tracer for the layer.
pub(super) fn pipeline(url: &str) -> Result<(Pipeline, Tracer), String> {
    // The exporter's HTTP requests run here, never on the service's runtimes.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("vouch-otlp")
        .enable_all()
        .build()
        .map_err(|e| format!("exporter runtime: {e}"))?;
    let client = reqwest::Client::builder()
        .timeout(EXPORT_TIMEOUT)
        .connect_timeout(EXPORT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("exporter HTTP client: {e}"))?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(ExportClient {
            client,
            runtime: runtime.handle().clone(),
        })
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(url)
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| format!("OTLP exporter: {e}"))?;
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(MAX_QUEUE)
                .with_max_export_batch_size(MAX_BATCH)
                .with_scheduled_delay(EXPORT_INTERVAL)
                .build(),
        )
        .build();
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("vouch");
    }
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource.build())
        .build();
    let tracer = opentelemetry::trace::TracerProvider::tracer(&provider, "vouch");
    Ok((
        Pipeline {
            provider,
            runtime: Some(runtime),
        },
        tracer,
    ))
}

/// The exporter's HTTP client: the service's reqwest, on the exporter's own runtime.
#[derive(Debug)]
struct ExportClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for ExportClient {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request.map(reqwest::Body::from))?;
        let client = self.client.clone();
        // The batch thread polls this without a Tokio runtime; the request runs on ours.
        self.runtime
            .spawn(async move {
                let mut response = client.execute(request).await?;
                let mut answer = http::Response::builder().status(response.status());
                if let Some(headers) = answer.headers_mut() {
                    *headers = std::mem::take(response.headers_mut());
                }
                let mut body = Vec::new();
                while let Some(chunk) = response.chunk().await? {
                    body.extend_from_slice(&chunk);
                    if body.len() >= MAX_ANSWER_BYTES {
                        break;
                    }
                }
                Ok::<_, HttpError>(answer.body(Bytes::from(body))?)
            })
            .await?
    }
}

struct ActixHeaders<'a>(&'a actix_web::http::header::HeaderMap);

impl Extractor for ActixHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Make `span` continue the caller's trace when the request carries a valid W3C
/// `traceparent`; otherwise it starts a trace of its own.
pub fn continue_trace(span: &tracing::Span, headers: &actix_web::http::header::HeaderMap) {
    let parent = TraceContextPropagator::new().extract(&ActixHeaders(headers));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// Rename `span`'s OpenTelemetry span, even once it has started (recording `otel.name` then
/// has no effect).
pub fn rename(span: &tracing::Span, name: String) {
    span.context().span().update_name(name);
}

/// The current span's W3C `traceparent`, to store with work done later (a queued message, an
/// event) so that its delivery continues this trace; `None` when traces are off.
pub fn traceparent() -> Option<String> {
    if !enabled() {
        return None;
    }
    let mut fields = HashMap::new();
    TraceContextPropagator::new().inject_context(&tracing::Span::current().context(), &mut fields);
    fields.remove("traceparent")
}

/// Make `span` a child of the stored `traceparent` (see [`traceparent`]), when there is one.
pub fn follow(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(traceparent) = traceparent.filter(|_| enabled()) else {
        return;
    };
    let fields = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let parent = TraceContextPropagator::new().extract(&fields);
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// Add the current span's `traceparent` to an outbound request (nothing when traces are off).
pub fn inject(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    match traceparent() {
        Some(value) => request.header("traceparent", value),
        None => request,
    }
}

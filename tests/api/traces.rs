//! OpenTelemetry traces (`telemetry.otlp_endpoint`): spans reach an OTLP/HTTP collector as
//! protobuf, continue the caller's `traceparent`, follow queued work to its outbound call, carry
//! no personal data, and a collector that is down or hangs costs requests nothing.
//!
//! The tracing subscriber is process-wide: each test here installs it, pointed at a collector of
//! its own, before it starts the instance (nextest runs every test in a process of its own).

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use actix_web::{web, App, HttpResponse, HttpServer};
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{any_value, AnyValue},
    trace::v1::{span::SpanKind, Span},
};
use prost::Message;
use reqwest::StatusCode;
use serde_json::{json, Value};
use vouch::config::{Settings, TelemetrySettings};

use crate::{
    fakes::{eventually, FakeTwilio, TWILIO_FROM, TWILIO_SID, TWILIO_TOKEN},
    helpers::{spawn_app, spawn_app_with, TestApp},
};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

fn traceparent() -> String {
    format!("00-{TRACE_ID}-{PARENT_ID}-01")
}

/// An OTLP/HTTP receiver: `POST /v1/traces` with an `ExportTraceServiceRequest` in protobuf.
#[derive(Default)]
struct Received {
    spans: Mutex<Vec<Span>>,
    /// Every export body as it arrived, to search for what must never be in it.
    bytes: Mutex<Vec<u8>>,
}

struct Collector {
    url: String,
    received: web::Data<Received>,
}

async fn export(body: web::Bytes, received: web::Data<Received>) -> HttpResponse {
    let Ok(request) = ExportTraceServiceRequest::decode(body.as_ref()) else {
        return HttpResponse::BadRequest().finish();
    };
    received.bytes.lock().unwrap().extend_from_slice(&body);
    let mut spans = received.spans.lock().unwrap();
    for resource in request.resource_spans {
        for scope in resource.scope_spans {
            spans.extend(scope.spans);
        }
    }
    // An empty ExportTraceServiceResponse.
    HttpResponse::Ok()
        .content_type("application/x-protobuf")
        .finish()
}

impl Collector {
    async fn start() -> Collector {
        let received = web::Data::new(Received::default());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let data = received.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
                .route("/v1/traces", web::post().to(export))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Collector {
            url: format!("http://127.0.0.1:{port}"),
            received,
        }
    }

    fn spans(&self) -> Vec<Span> {
        self.received.spans.lock().unwrap().clone()
    }

    fn bytes(&self) -> Vec<u8> {
        self.received.bytes.lock().unwrap().clone()
    }

    /// Wait until a span named `name` of trace `trace_id` arrived; all spans so far with it.
    async fn wait_for(&self, trace_id: &str, name: &str) -> (Span, Vec<Span>) {
        eventually(
            &format!("span {name:?} of trace {trace_id}"),
            Duration::from_secs(20),
            || async {
                let spans = self.spans();
                let span = spans
                    .iter()
                    .find(|s| hex(&s.trace_id) == trace_id && s.name == name)?
                    .clone();
                Some((span, spans))
            },
        )
        .await
    }
}

/// Install the process's subscriber exporting to `endpoint` (log lines: warnings only).
fn export_to(endpoint: &str) {
    let mut log = Settings::defaults().log;
    log.level = "warn".into();
    let telemetry = TelemetrySettings {
        otlp_endpoint: Some(endpoint.to_owned()),
    };
    // The guard's drop would wait for the exporter at exit; the test process just ends.
    std::mem::forget(
        vouch::telemetry::init(&log, &telemetry).expect("the first subscriber of this process"),
    );
    assert!(vouch::telemetry::traces::enabled());
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(span: &Span, key: &str) -> Option<any_value::Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.clone())
        .and_then(|AnyValue { value }| value)
}

fn string(value: &str) -> Option<any_value::Value> {
    Some(any_value::Value::StringValue(value.to_owned()))
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Whether `span` descends from `ancestor` through the spans received.
fn descends_from(span: &Span, ancestor: &Span, spans: &[Span]) -> bool {
    let mut parent = span.parent_span_id.clone();
    while !parent.is_empty() {
        if parent == ancestor.span_id {
            return true;
        }
        match spans.iter().find(|s| s.span_id == parent) {
            Some(next) => parent = next.parent_span_id.clone(),
            None => return false,
        }
    }
    false
}

#[tokio::test]
async fn a_request_continues_the_callers_trace_with_a_span_named_by_its_route() {
    let collector = Collector::start().await;
    export_to(&collector.url);
    let app = spawn_app().await;
    let email = "traced.person@example.org";
    let external_id = "traced-external-7731";
    let res = app
        .client
        .post(app.url("/v1/accounts"))
        .bearer_auth(&app.backend_key)
        .header("traceparent", traceparent())
        .json(&json!({"external_id": external_id, "email": email}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let account: Value = res.json().await.unwrap();
    let account_id = account["id"].as_str().unwrap().to_owned();

    let (server, _) = collector.wait_for(TRACE_ID, "POST /v1/accounts").await;
    assert_eq!(hex(&server.parent_span_id), PARENT_ID, "{server:?}");
    assert_eq!(server.kind, SpanKind::Server as i32);
    assert_eq!(attribute(&server, "http.route"), string("/v1/accounts"));
    assert_eq!(attribute(&server, "http.request.method"), string("POST"));
    assert_eq!(
        attribute(&server, "http.response.status_code"),
        Some(any_value::Value::IntValue(201))
    );
    assert!(attribute(&server, "request_id").is_some(), "{server:?}");

    // The write transaction is a child span in the same trace, within the request's span.
    let (txn, spans) = collector.wait_for(TRACE_ID, "db.write_transaction").await;
    assert!(descends_from(&txn, &server, &spans), "{txn:?}\n{spans:#?}");
    let backend = if app.is_postgres() {
        "postgresql"
    } else {
        "sqlite"
    };
    assert_eq!(attribute(&txn, "db.system.name"), string(backend));
    assert!(txn.start_time_unix_nano >= server.start_time_unix_nano);
    assert!(txn.end_time_unix_nano <= server.end_time_unix_nano);

    // A request without a traceparent starts a trace of its own, named by the route pattern
    // (never the raw path, which carries the id).
    let res = app
        .get(&format!("/v1/accounts/{account_id}"), &app.backend_key)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let spans = eventually("the GET's span", Duration::from_secs(20), || async {
        let spans = collector.spans();
        spans
            .iter()
            .any(|s| s.name == "GET /v1/accounts/{id}")
            .then_some(spans)
    })
    .await;
    let get = spans
        .iter()
        .find(|s| s.name == "GET /v1/accounts/{id}")
        .unwrap();
    assert_ne!(hex(&get.trace_id), TRACE_ID);
    assert!(get.parent_span_id.is_empty(), "a root span: {get:?}");

    // Ids only: neither the email nor the external id is anywhere in what was exported.
    let bytes = collector.bytes();
    assert!(!bytes.is_empty());
    assert!(!contains(&bytes, email), "the email was exported");
    assert!(!contains(&bytes, "traced.person"), "the email was exported");
    assert!(
        !contains(&bytes, external_id),
        "the external id was exported"
    );
    assert!(
        !contains(&bytes, &app.backend_key),
        "the API key was exported"
    );
}

#[tokio::test]
async fn a_queued_sms_carries_the_requests_trace_to_the_provider() {
    let collector = Collector::start().await;
    export_to(&collector.url);
    let twilio = FakeTwilio::start().await;
    let app = spawn_app_with(|s| {
        s.sms.twilio_base_url = Some(twilio.base_url.clone());
        s.sms.twilio_account_sid = Some(TWILIO_SID.into());
        s.sms.twilio_auth_token = Some(secrecy::SecretString::from(TWILIO_TOKEN));
        s.sms.from = Some(TWILIO_FROM.into());
    })
    .await;
    let account = app.account("traced-sms").await;
    let phone = "+14155552671";
    let res = app
        .client
        .post(app.url(&format!("/v1/accounts/{account}/verifications")))
        .bearer_auth(&app.backend_key)
        .header("traceparent", traceparent())
        .json(&json!({"channel": "sms", "to": phone}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);

    // The outbox worker sends it later, in the request's trace, and tells the provider.
    let sms = twilio.nth(1).await;
    let header = sms
        .traceparent
        .clone()
        .expect("a traceparent on the SMS request");
    let parts: Vec<&str> = header.split('-').collect();
    assert_eq!(parts.len(), 4, "{header}");
    assert_eq!(parts[1], TRACE_ID, "{header}");
    assert_ne!(parts[2], PARENT_ID, "the send's own span id: {header}");

    let (server, _) = collector
        .wait_for(TRACE_ID, "POST /v1/accounts/{id}/verifications")
        .await;
    let (send, spans) = collector.wait_for(TRACE_ID, "SMS send").await;
    assert_eq!(send.kind, SpanKind::Client as i32);
    assert_eq!(
        hex(&send.span_id),
        parts[2],
        "the header names the send span"
    );
    assert!(descends_from(&send, &server, &spans), "{send:?}");
    assert!(attribute(&send, "message_id").is_some(), "{send:?}");

    // Neither the number (in any form), nor the code, nor the provider's credentials.
    let code = sms.code();
    let bytes = collector.bytes();
    for secret in [phone, "4155552671", &code, TWILIO_TOKEN] {
        assert!(!contains(&bytes, secret), "{secret:?} was exported");
    }
}

/// Many requests against an instance whose collector is unusable: each is answered as fast as
/// without one (far below the exporter's 5 s timeout), and the instance still works after.
async fn requests_cost_nothing(app: &TestApp) {
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for _ in 0..40 {
        let t = Instant::now();
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let res = app
            .post(
                "/v1/accounts",
                &app.backend_key,
                &json!({"external_id": unique, "email": format!("{unique}@example.org")}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let account: Value = res.json().await.unwrap();
        let id = account["id"].as_str().unwrap();
        for _ in 0..5 {
            let res = app
                .get(&format!("/v1/accounts/{id}"), &app.backend_key)
                .await;
            assert_eq!(res.status(), StatusCode::OK);
        }
        slowest = slowest.max(t.elapsed());
    }
    // 240 requests (writes among them); with the exporter in the way, each batch would cost
    // its 5 s timeout.
    assert!(
        slowest < Duration::from_secs(2),
        "slowest round {slowest:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    let res = app.get("/healthz", &app.backend_key).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_collector_that_never_answers_costs_requests_nothing() {
    // Accepts connections and never reads or answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    export_to(&format!("http://127.0.0.1:{port}"));
    let app = spawn_app().await;
    requests_cost_nothing(&app).await;
    // The exporter did try (and is stuck there, not in the requests).
    eventually("an export attempt", Duration::from_secs(20), || async {
        (accepted.load(Ordering::SeqCst) > 0).then_some(())
    })
    .await;
    requests_cost_nothing(&app).await;
}

#[tokio::test]
async fn a_collector_that_is_down_costs_requests_nothing() {
    // A port nobody listens on: connections are refused.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    export_to(&format!("http://127.0.0.1:{port}"));
    let app = spawn_app().await;
    requests_cost_nothing(&app).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    requests_cost_nothing(&app).await;
}

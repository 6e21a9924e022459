//! Signed entitlement events (Standard Webhooks): endpoint management, signatures checked with
//! the independent `standardwebhooks` crate, retries with a stable `webhook-id`, 410 Gone,
//! SSRF refusals, several instances and a slow receiver.

use std::{
    sync::{
        atomic::{AtomicU16, AtomicU64, Ordering},
        Mutex,
    },
    time::{Duration, Instant},
};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};
use standardwebhooks::Webhook;
use vouch::events::{self, Event, RevokedReason};

use crate::{
    fakes::eventually,
    helpers::{assert_problem, spawn_app_with, TestApp},
};

#[derive(Debug, Clone)]
pub(crate) struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub(crate) fn verifies_with(&self, secret: &str) -> bool {
        Webhook::new(secret)
            .unwrap()
            .verify(&self.body, &self.headers)
            .is_ok()
    }
}

struct ReceiverState {
    received: Mutex<Vec<Received>>,
    status: AtomicU16,
    delay_millis: AtomicU64,
}

/// A local webhook receiver that records every request and answers with `status`.
pub(crate) struct Receiver {
    pub(crate) url: String,
    state: web::Data<ReceiverState>,
}

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<ReceiverState>,
) -> HttpResponse {
    let mut headers = HeaderMap::new();
    for (name, value) in req.headers() {
        headers.append(
            HeaderName::from_bytes(name.as_str().as_bytes()).unwrap(),
            HeaderValue::from_bytes(value.as_bytes()).unwrap(),
        );
    }
    let delay = state.delay_millis.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    state.received.lock().unwrap().push(Received {
        headers,
        body: body.to_vec(),
    });
    HttpResponse::build(
        actix_web::http::StatusCode::from_u16(state.status.load(Ordering::SeqCst)).unwrap(),
    )
    .body("ok")
}

impl Receiver {
    pub(crate) async fn start() -> Receiver {
        let state = web::Data::new(ReceiverState {
            received: Mutex::new(Vec::new()),
            status: AtomicU16::new(200),
            delay_millis: AtomicU64::new(0),
        });
        let data = state.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(receive))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            state,
        }
    }

    pub(crate) fn answer(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize) -> Vec<Received> {
        eventually(
            &format!("{n} webhook requests"),
            Duration::from_secs(15),
            || async {
                let got = self.received();
                (got.len() >= n).then_some(got)
            },
        )
        .await
    }
}

/// An instance that may deliver to the local receiver.
async fn open_app() -> TestApp {
    spawn_app_with(|s| {
        s.webhooks.allow_http = true;
        s.webhooks.allow_private_networks = true;
        s.webhooks.poll_interval_millis = 100;
    })
    .await
}

async fn create(app: &TestApp, body: Value) -> Value {
    let res = app.post("/v1/admin/webhooks", &app.admin_key, &body).await;
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

async fn deliveries(app: &TestApp, id: &str) -> Vec<Value> {
    let page: Value = app
        .get(
            &format!("/v1/admin/webhooks/{id}/deliveries"),
            &app.admin_key,
        )
        .await
        .json()
        .await
        .unwrap();
    page["items"].as_array().unwrap().clone()
}

async fn wait_delivery(app: &TestApp, id: &str, status: &str) -> Value {
    eventually(
        &format!("a {status} delivery"),
        Duration::from_secs(15),
        || async {
            deliveries(app, id)
                .await
                .into_iter()
                .find(|d| d["status"] == status)
        },
    )
    .await
}

async fn ping(app: &TestApp, id: &str) -> Value {
    let res = app
        .post(
            &format!("/v1/admin/webhooks/{id}/test"),
            &app.admin_key,
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), 202);
    res.json().await.unwrap()
}

async fn emit(app: &TestApp, event: &Event) {
    let txn = app.hold_write_lock().await;
    events::emit(&*txn, app.now(), event).await.unwrap();
    txn.commit().await.unwrap();
    events::wake();
}

#[tokio::test]
async fn admins_manage_endpoints_and_see_the_secret_once() {
    let app = open_app().await;
    let res = app
        .post(
            "/v1/admin/webhooks",
            &app.admin_key,
            &json!({"url": "https://meet.example.org/hook", "events": ["entitlement.revoked"],
                    "description": "eu meeting servers"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let created: Value = res.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(
        vouch::events::signature::secret_key(secret).unwrap().len(),
        32
    );
    assert_eq!(created["status"], "enabled");
    assert_eq!(created["url"], "https://meet.example.org/hook");
    assert_eq!(created["events"], json!(["entitlement.revoked"]));
    assert!(created["created_at"].is_string());

    let got: Value = app
        .get(&format!("/v1/admin/webhooks/{id}"), &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["id"], id);
    assert!(got.get("secret").is_none());
    let list: Value = app
        .get("/v1/admin/webhooks", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains(secret));

    // Stored sealed, never in the clear.
    use sea_orm::EntityTrait;
    let rows = entities::webhook_endpoint::Entity::find()
        .all(&app.db().await)
        .await
        .unwrap();
    assert!(!format!("{rows:?}").contains(&secret["whsec_".len()..]));

    // Without a filter an endpoint gets every type.
    let all = create(&app, json!({"url": "https://meet.example.org/all"})).await;
    assert!(all["events"].as_array().unwrap().len() >= 7);

    let rotated: Value = app
        .post(
            &format!("/v1/admin/webhooks/{id}/secret"),
            &app.admin_key,
            &json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(rotated["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_ne!(rotated["secret"], created["secret"]);

    for role_key in [&app.backend_key, &app.reviewer_key, &app.meeting_key] {
        assert_eq!(app.get("/v1/admin/webhooks", role_key).await.status(), 403);
    }
    assert_eq!(
        app.delete(&format!("/v1/admin/webhooks/{id}"), &app.admin_key)
            .await
            .status(),
        204
    );
    for res in [
        app.get(&format!("/v1/admin/webhooks/{id}"), &app.admin_key)
            .await,
        app.delete(&format!("/v1/admin/webhooks/{id}"), &app.admin_key)
            .await,
        app.post(
            &format!("/v1/admin/webhooks/{id}/test"),
            &app.admin_key,
            &json!({}),
        )
        .await,
        app.post(
            &format!("/v1/admin/webhooks/{id}/secret"),
            &app.admin_key,
            &json!({}),
        )
        .await,
        app.get(
            &format!("/v1/admin/webhooks/{id}/deliveries"),
            &app.admin_key,
        )
        .await,
    ] {
        assert_problem(res, 404, "webhook_not_found").await;
    }

    let audit: Value = app
        .get(&format!("/v1/admin/audit?target_id={id}"), &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "webhook.deleted",
            "webhook.secret_rotated",
            "webhook.created"
        ]
    );
    assert!(!audit.to_string().contains("whsec_"));
    // The audit log keeps the receiver's origin, not its path or query (which may hold a token).
    assert!(!audit.to_string().contains("/hook"), "{audit}");
}

#[tokio::test]
async fn bad_requests_are_refused_with_clear_codes() {
    let app = open_app().await;
    for (body, code) in [
        (json!({"url": "not a url"}), "invalid_url"),
        (json!({"url": "ftp://example.org/x"}), "invalid_url"),
        (
            json!({"url": "https://user:pw@example.org/x"}),
            "invalid_url",
        ),
        (
            json!({"url": "https://example.org/x", "events": ["entitlement.maybe"]}),
            "invalid_event_type",
        ),
        (
            json!({"url": "https://example.org/x", "events": []}),
            "invalid_event_type",
        ),
        (json!({"events": ["ping"]}), "invalid_body"),
        (
            json!({"url": "https://example.org/x", "description": "x".repeat(201)}),
            "invalid_description",
        ),
    ] {
        let res = app.post("/v1/admin/webhooks", &app.admin_key, &body).await;
        assert_problem(res, 400, code).await;
    }
}

#[tokio::test]
async fn ssrf_targets_are_refused_by_default() {
    let app = spawn_app_with(|_| {}).await;
    for url in [
        "http://example.org/hook",
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "https://[fd00:ec2::254]/hook",
        "https://localhost:8443/hook",
    ] {
        let res = app
            .post("/v1/admin/webhooks", &app.admin_key, &json!({"url": url}))
            .await;
        let problem = assert_problem(res, 400, "url_not_allowed").await;
        assert!(!problem["detail"].as_str().unwrap().is_empty(), "{url}");
    }
}

#[tokio::test]
async fn the_connection_is_checked_too_so_rebinding_gets_nowhere() {
    // http allowed, private networks not: an endpoint stored with a loopback host (as a name
    // that later resolves to loopback would be) is never connected to.
    let app = spawn_app_with(|s| {
        s.webhooks.allow_http = true;
        s.webhooks.poll_interval_millis = 100;
    })
    .await;
    let receiver = Receiver::start().await;
    let port = receiver.url.rsplit(':').next().unwrap().to_owned();
    for url in [receiver.url.clone(), format!("http://localhost:{port}")] {
        let txn = app.hold_write_lock().await;
        let (endpoint, _) = vouch::services::webhooks::create_endpoint(
            &*txn,
            &app.master_key(),
            "test",
            &url,
            None,
            None,
            app.now(),
        )
        .await
        .unwrap();
        txn.commit().await.unwrap();
        ping(&app, &endpoint.id).await;
        let d = eventually("a failed attempt", Duration::from_secs(15), || async {
            deliveries(&app, &endpoint.id)
                .await
                .into_iter()
                .find(|d| d["attempts"] == 1 && d["status"] == "pending")
        })
        .await;
        assert!(d["last_status_code"].is_null(), "{d}");
    }
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn a_ping_arrives_signed_as_standard_webhooks_says() {
    let app = open_app().await;
    let receiver = Receiver::start().await;
    let created = create(
        &app,
        json!({"url": receiver.url, "events": ["entitlement.revoked"]}),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let secret = created["secret"].as_str().unwrap();
    let queued = ping(&app, id).await;

    let got = receiver.wait_for(1).await;
    let r = &got[0];
    assert!(
        r.verifies_with(secret),
        "standardwebhooks verifies the signature"
    );
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.header("webhook-id"), queued["event_id"].as_str().unwrap());
    let ts: i64 = r.header("webhook-timestamp").parse().unwrap();
    assert!((ts - chrono::Utc::now().timestamp()).abs() < 60);
    assert!(r.header("webhook-signature").starts_with("v1,"));
    let body = r.json();
    assert_eq!(body["type"], "ping");
    assert_eq!(body["data"], json!({}));
    assert!(body["timestamp"].is_string());
    // Another secret does not verify it.
    let other = create(&app, json!({"url": receiver.url})).await;
    assert!(!r.verifies_with(other["secret"].as_str().unwrap()));

    let d = wait_delivery(&app, id, "delivered").await;
    assert_eq!(d["event_id"], queued["event_id"]);
    assert_eq!(d["id"], queued["delivery_id"]);
    assert_eq!(d["type"], "ping");
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["last_status_code"], 200);
}

#[tokio::test]
async fn during_a_rotation_both_secrets_sign() {
    let app = open_app().await;
    let receiver = Receiver::start().await;
    let created = create(&app, json!({"url": receiver.url})).await;
    let id = created["id"].as_str().unwrap();
    let old = created["secret"].as_str().unwrap().to_owned();
    let rotated: Value = app
        .post(
            &format!("/v1/admin/webhooks/{id}/secret"),
            &app.admin_key,
            &json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert!(rotated["previous_secret_expires_at"].is_string());
    ping(&app, id).await;
    let got = receiver.wait_for(1).await;
    let r = &got[0];
    assert_eq!(r.header("webhook-signature").split(' ').count(), 2);
    assert!(r.verifies_with(&old), "the old secret still verifies");
    assert!(r.verifies_with(&new), "the new secret verifies");

    // After 24 h only the new secret signs. (The receiver's tolerance is 5 minutes of the wall
    // clock, so check the signature by hand here.)
    app.clock.advance(chrono::Duration::hours(25));
    ping(&app, id).await;
    let got = receiver.wait_for(2).await;
    let r = &got[1];
    let sig = r.header("webhook-signature");
    assert_eq!(sig.split(' ').count(), 1, "{sig}");
    let key = vouch::events::signature::secret_key(&new).unwrap();
    let expected = vouch::events::signature::sign(
        &key,
        r.header("webhook-id"),
        r.header("webhook-timestamp").parse().unwrap(),
        std::str::from_utf8(&r.body).unwrap(),
    );
    assert_eq!(sig, expected);
}

#[tokio::test]
async fn a_receiver_that_fails_then_recovers_gets_the_same_webhook_id() {
    let app = open_app().await;
    let receiver = Receiver::start().await;
    receiver.answer(503);
    let created = create(&app, json!({"url": receiver.url})).await;
    let id = created["id"].as_str().unwrap();
    let secret = created["secret"].as_str().unwrap();
    ping(&app, id).await;
    let first = receiver.wait_for(1).await[0].clone();
    let d = eventually("the failure recorded", Duration::from_secs(15), || async {
        deliveries(&app, id)
            .await
            .into_iter()
            .find(|d| d["last_status_code"] == 503)
    })
    .await;
    assert_eq!(d["status"], "pending");
    assert_eq!(d["attempts"], 1);
    let next: chrono::DateTime<chrono::Utc> =
        d["next_attempt_at"].as_str().unwrap().parse().unwrap();
    let wait = next - app.now();
    assert!(wait <= chrono::Duration::milliseconds(5500), "{wait}");

    receiver.answer(200);
    app.clock.advance(chrono::Duration::seconds(6));
    let got = receiver.wait_for(2).await;
    assert_eq!(got[1].header("webhook-id"), first.header("webhook-id"));
    assert_eq!(got[1].body, first.body);
    assert!(got[1].verifies_with(secret));
    let d = wait_delivery(&app, id, "delivered").await;
    assert_eq!(d["attempts"], 2);
    assert_eq!(d["last_status_code"], 200);
}

#[tokio::test]
async fn gone_disables_the_endpoint() {
    let app = open_app().await;
    let receiver = Receiver::start().await;
    receiver.answer(410);
    let created = create(&app, json!({"url": receiver.url})).await;
    let id = created["id"].as_str().unwrap();
    ping(&app, id).await;
    eventually("the endpoint disabled", Duration::from_secs(15), || async {
        let got: Value = app
            .get(&format!("/v1/admin/webhooks/{id}"), &app.admin_key)
            .await
            .json()
            .await
            .unwrap();
        (got["status"] == "disabled").then_some(())
    })
    .await;
    let d = wait_delivery(&app, id, "failed").await;
    assert_eq!(d["last_status_code"], 410);
    let res = app
        .post(
            &format!("/v1/admin/webhooks/{id}/test"),
            &app.admin_key,
            &json!({}),
        )
        .await;
    assert_problem(res, 409, "webhook_disabled").await;
    // A disabled endpoint is left out of new events.
    emit(
        &app,
        &Event::AccountSuspended {
            account_id: "acc_x".into(),
        },
    )
    .await;
    assert_eq!(deliveries(&app, id).await.len(), 1);
}

#[tokio::test]
async fn emitted_events_reach_the_endpoints_that_subscribe() {
    let app = open_app().await;
    let all = Receiver::start().await;
    let filtered = Receiver::start().await;
    let all_ep = create(&app, json!({"url": all.url})).await;
    create(
        &app,
        json!({"url": filtered.url, "events": ["account.suspended"]}),
    )
    .await;

    let started = Instant::now();
    emit(
        &app,
        &Event::EntitlementRevoked {
            account_id: "acc_1".into(),
            external_id: "user-1".into(),
            reason: RevokedReason::Suspended,
        },
    )
    .await;
    let got = all.wait_for(1).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(got[0].verifies_with(all_ep["secret"].as_str().unwrap()));
    let body = got[0].json();
    assert_eq!(body["type"], "entitlement.revoked");
    assert_eq!(
        body["data"],
        json!({"account_id": "acc_1", "external_id": "user-1", "entitlement": "e2ee",
               "reason": "suspended"})
    );

    emit(
        &app,
        &Event::AccountSuspended {
            account_id: "acc_1".into(),
        },
    )
    .await;
    let got = filtered.wait_for(1).await;
    assert_eq!(got.len(), 1, "the filtered endpoint got only its type");
    assert_eq!(got[0].json()["type"], "account.suspended");
    assert_eq!(got[0].json()["data"], json!({"account_id": "acc_1"}));
    all.wait_for(2).await;
}

#[tokio::test]
async fn two_instances_deliver_each_event_once() {
    let app = open_app().await;
    let sibling = app.spawn_sibling().await;
    let receiver = Receiver::start().await;
    let created = create(&app, json!({"url": receiver.url})).await;
    let id = created["id"].as_str().unwrap();
    const N: usize = 20;
    for i in 0..N {
        let on = if i % 2 == 0 { &app } else { &sibling };
        emit(
            on,
            &Event::AccountReactivated {
                account_id: format!("acc_{i}"),
            },
        )
        .await;
    }
    receiver.wait_for(N).await;
    eventually("all delivered", Duration::from_secs(15), || async {
        let d = deliveries(&app, id).await;
        (d.len() == N && d.iter().all(|d| d["status"] == "delivered")).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = receiver.received();
    let mut ids: Vec<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(got.len(), N, "no event delivered twice");
    assert_eq!(ids.len(), N);
}

#[tokio::test]
async fn a_slow_receiver_does_not_delay_a_live_one() {
    let app = spawn_app_with(|s| {
        s.webhooks.allow_http = true;
        s.webhooks.allow_private_networks = true;
        s.webhooks.poll_interval_millis = 100;
        s.webhooks.timeout_seconds = 10;
        s.webhooks.max_concurrency = 4;
        s.webhooks.max_concurrency_per_endpoint = 2;
    })
    .await;
    let slow = Receiver::start().await;
    slow.state.delay_millis.store(20_000, Ordering::SeqCst);
    let live = Receiver::start().await;
    create(&app, json!({"url": slow.url})).await;
    create(&app, json!({"url": live.url})).await;
    let started = Instant::now();
    for i in 0..10 {
        emit(
            &app,
            &Event::AccountErased {
                account_id: format!("acc_{i}"),
            },
        )
        .await;
    }
    live.wait_for(10).await;
    assert!(
        // Had the slow receiver's ten deliveries taken every slot, the live one would have
        // waited for their 10 s timeouts.
        started.elapsed() < Duration::from_secs(8),
        "the live receiver waited {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_receiver_down_for_a_while_loses_nothing() {
    let app = open_app().await;
    let receiver = Receiver::start().await;
    receiver.answer(503);
    let created = create(&app, json!({"url": receiver.url})).await;
    let id = created["id"].as_str().unwrap();
    for i in 0..5 {
        emit(
            &app,
            &Event::AccountSuspended {
                account_id: format!("acc_{i}"),
            },
        )
        .await;
    }
    receiver.wait_for(5).await;
    // The second attempts (after 5 s) fail too.
    app.clock.advance(chrono::Duration::seconds(6));
    receiver.wait_for(10).await;
    eventually(
        "second failures recorded",
        Duration::from_secs(15),
        || async {
            let d = deliveries(&app, id).await;
            d.iter()
                .all(|d| d["attempts"] == 2 && d["status"] == "pending")
                .then_some(())
        },
    )
    .await;
    // Back after 5 minutes: the third attempts go through.
    receiver.answer(200);
    app.clock.advance(chrono::Duration::seconds(340));
    receiver.wait_for(15).await;
    eventually("all delivered", Duration::from_secs(15), || async {
        let d = deliveries(&app, id).await;
        d.iter()
            .all(|d| d["status"] == "delivered" && d["attempts"] == 3)
            .then_some(())
    })
    .await;
    let got = receiver.received();
    let mut ids: Vec<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 5, "each event kept its id across retries");
}

#[tokio::test]
async fn settled_deliveries_and_their_events_are_pruned() {
    use sea_orm::{EntityTrait, PaginatorTrait};
    use vouch::services::webhooks as svc;
    let app = open_app().await;
    let receiver = Receiver::start().await;
    let created = create(&app, json!({"url": receiver.url})).await;
    let id = created["id"].as_str().unwrap();
    ping(&app, id).await;
    wait_delivery(&app, id, "delivered").await;
    let conn = &app.db().await;
    let now = app.now();
    assert!(!svc::has_prunable(conn, now - chrono::Duration::days(7))
        .await
        .unwrap());
    let later = now + chrono::Duration::seconds(1);
    assert!(svc::has_prunable(conn, later).await.unwrap());
    let txn = app.hold_write_lock().await;
    assert_eq!(svc::prune(&*txn, later).await.unwrap(), 2);
    txn.commit().await.unwrap();
    assert!(deliveries(&app, id).await.is_empty());
    assert_eq!(
        entities::webhook_event::Entity::find()
            .count(conn)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn a_failing_endpoint_shows_in_the_operations_metrics_until_it_recovers() {
    let app = open_app().await;
    let receiver = Receiver::start().await;
    receiver.answer(503);
    let created = create(&app, json!({"url": receiver.url})).await;
    let id = created["id"].as_str().unwrap();
    app.sample_gauges().await;
    assert_eq!(app.metric("vouch_webhook_endpoints_failing").await, 0.0);
    ping(&app, id).await;
    eventually("the failure recorded", Duration::from_secs(15), || async {
        deliveries(&app, id)
            .await
            .into_iter()
            .find(|d| d["last_status_code"] == 503)
    })
    .await;
    app.clock.advance(chrono::Duration::seconds(2));
    app.sample_gauges().await;
    let scrape = app.scrape().await;
    assert_eq!(scrape.value("vouch_webhook_endpoints_failing"), 1.0);
    assert_eq!(scrape.value(r#"vouch_queue_waiting{queue="webhook"}"#), 1.0);
    assert!(scrape.value(r#"vouch_queue_oldest_waiting_age_seconds{queue="webhook"}"#) >= 2.0);
    assert_eq!(
        scrape.value(r#"vouch_webhook_deliveries_total{outcome="retry"}"#),
        1.0
    );

    receiver.answer(200);
    app.clock.advance(chrono::Duration::seconds(6));
    wait_delivery(&app, id, "delivered").await;
    app.sample_gauges().await;
    let scrape = app.scrape().await;
    assert_eq!(scrape.value("vouch_webhook_endpoints_failing"), 0.0);
    assert_eq!(scrape.value(r#"vouch_queue_waiting{queue="webhook"}"#), 0.0);
    assert_eq!(
        scrape.value(r#"vouch_webhook_deliveries_total{outcome="delivered"}"#),
        1.0
    );
    assert_eq!(
        scrape.value(r#"vouch_webhook_deliveries_total{outcome="failed"}"#),
        0.0
    );
}

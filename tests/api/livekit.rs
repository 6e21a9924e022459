//! LiveKit: the exchange issues access tokens that LiveKit's own SDK accepts, refuses whatever
//! authorize would refuse, and removes participants through a fake Twirp RoomService (which
//! checks the path, the JSON body and the admin token) within 5 s of their right ending.

use std::{
    collections::VecDeque,
    sync::Mutex,
    time::{Duration, Instant},
};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use livekit_api::access_token::TokenVerifier;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};
use vouch::domain::evidence::{EvidenceKind, EvidenceStatus};

use crate::{
    fakes::eventually,
    helpers::{assert_problem, spawn_app, spawn_app_with, token_part, TestApp},
};

const KEY: &str = "APIvouchTest";
const SECRET: &str = "livekit-test-secret-0123456789abcdef";
const PATH: &str = "/twirp/livekit.RoomService/RemoveParticipant";
const JKT: &str = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
const OTHER_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
const WITHIN: Duration = Duration::from_secs(5);

/// A LiveKit RoomService stand-in: answers `RemoveParticipant` as scripted (then 200) and
/// records every call; anything malformed is recorded as an error and answered 400.
#[derive(Default)]
struct RoomService {
    script: Mutex<VecDeque<u16>>,
    /// (room, identity, status answered).
    calls: Mutex<Vec<(String, String, u16)>>,
    errors: Mutex<Vec<String>>,
}

struct FakeLiveKit {
    url: String,
    state: web::Data<RoomService>,
}

fn check(req: &HttpRequest, body: &[u8]) -> Result<(String, String), String> {
    if req.path() != PATH {
        return Err(format!("wrong path {}", req.path()));
    }
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/json") {
        return Err(format!("content type {content_type:?}"));
    }
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or("no bearer token")?;
    let claims = TokenVerifier::with_api_key(KEY, SECRET)
        .verify(token)
        .map_err(|e| format!("admin token: {e}"))?;
    let body: Value = serde_json::from_slice(body).map_err(|e| format!("body: {e}"))?;
    let fields = body.as_object().ok_or("body is not an object")?;
    if fields.len() != 2 {
        return Err(format!("body has other fields: {body}"));
    }
    let room = body["room"].as_str().ok_or("no room")?.to_owned();
    let identity = body["identity"].as_str().ok_or("no identity")?.to_owned();
    if !claims.video.room_admin || claims.video.room != room {
        return Err(format!("admin token grants {:?}", claims.video));
    }
    if claims.video.room_join || (!claims.sub.is_empty() && claims.sub == identity) {
        return Err("the admin token is a participant's".into());
    }
    if claims.exp > claims.nbf + 300 {
        return Err("the admin token lives too long".into());
    }
    Ok((room, identity))
}

async fn room_service(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<RoomService>,
) -> HttpResponse {
    match check(&req, &body) {
        Err(e) => {
            state.errors.lock().unwrap().push(e.clone());
            HttpResponse::BadRequest().json(json!({"code": "invalid_argument", "msg": e}))
        }
        Ok((room, identity)) => {
            let status = state.script.lock().unwrap().pop_front().unwrap_or(200);
            state.calls.lock().unwrap().push((room, identity, status));
            match status {
                200 => HttpResponse::Ok().json(json!({})),
                404 => HttpResponse::NotFound()
                    .json(json!({"code": "not_found", "msg": "participant not found"})),
                s => HttpResponse::build(actix_web::http::StatusCode::from_u16(s).unwrap())
                    .json(json!({"code": "internal", "msg": "try again"})),
            }
        }
    }
}

impl FakeLiveKit {
    async fn start() -> FakeLiveKit {
        let state = web::Data::new(RoomService::default());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let data = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(room_service))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        FakeLiveKit {
            url: format!("http://127.0.0.1:{port}"),
            state,
        }
    }

    fn script(&self, statuses: &[u16]) {
        self.state.script.lock().unwrap().extend(statuses);
    }

    fn calls(&self) -> Vec<(String, String, u16)> {
        self.state.calls.lock().unwrap().clone()
    }

    fn assert_no_errors(&self) {
        let errors = self.state.errors.lock().unwrap().clone();
        assert!(
            errors.is_empty(),
            "malformed RemoveParticipant calls: {errors:?}"
        );
    }

    /// Wait (at most 5 s from now) until `identity` was removed from `room` with a final answer
    /// (200 or 404), and return how long it took.
    async fn removed(&self, room: &str, identity: &str) -> Duration {
        let start = Instant::now();
        eventually(
            &format!("{identity} to be removed from {room}"),
            WITHIN,
            || async {
                self.calls()
                    .iter()
                    .any(|(r, i, s)| r == room && i == identity && (*s == 200 || *s == 404))
                    .then_some(())
            },
        )
        .await;
        self.assert_no_errors();
        start.elapsed()
    }
}

async fn with_livekit(fake: &FakeLiveKit, ttl_seconds: u64) -> TestApp {
    let url = fake.url.clone();
    spawn_app_with(move |s| {
        s.livekit.api_key = Some(KEY.into());
        s.livekit.api_secret = Some(SecretString::from(SECRET));
        s.livekit.url = Some(url);
        s.livekit.token_ttl_seconds = ttl_seconds;
    })
    .await
}

async fn exchange(app: &TestApp, body: Value) -> reqwest::Response {
    app.post("/v1/exchange/livekit", &app.meeting_key, &body)
        .await
}

/// Exchange `token` for `room`; the LiveKit token (asserts 200).
async fn admit(app: &TestApp, token: &str, room: &str) -> String {
    let res = exchange(app, json!({"token": token, "room": room})).await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

async fn set_status(app: &TestApp, account: &str, status: &str) {
    let res = app
        .patch(
            &format!("/v1/accounts/{account}"),
            &app.admin_key,
            &json!({"status": status}),
        )
        .await;
    assert_eq!(res.status(), 200);
}

async fn revoke(app: &TestApp, token: &str) {
    let res = app
        .post(
            "/v1/tokens/revoke",
            &app.backend_key,
            &json!({"token": token}),
        )
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn the_exchange_issues_a_token_livekit_accepts_with_the_minimal_grants() {
    let fake = FakeLiveKit::start().await;
    let app = with_livekit(&fake, 600).await;
    let acc = app.entitled_account("lk-ada").await;
    let vouch = app.issue(&acc, json!({"ttl_seconds": 300})).await;
    let vouch_token = vouch["token"].as_str().unwrap();
    let vouch_exp = token_part(vouch_token, 1)["exp"].as_i64().unwrap();

    let res = exchange(
        &app,
        json!({"token": vouch_token, "room": "standup", "name": "Ada"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["identity"], acc.as_str());
    let token = body["token"].as_str().unwrap();

    let claims = TokenVerifier::with_api_key(KEY, SECRET)
        .verify(token)
        .expect("LiveKit's SDK accepts the token");
    assert_eq!(claims.iss, KEY);
    assert_eq!(claims.sub, acc);
    assert_eq!(claims.name, "Ada");
    let video = &claims.video;
    assert_eq!(video.room, "standup");
    assert!(video.room_join);
    assert_eq!(video.can_publish, Some(true));
    assert_eq!(video.can_subscribe, Some(true));
    assert_eq!(video.can_publish_data, Some(true));
    assert_eq!(video.can_update_own_metadata, Some(false));
    assert!(!video.room_create && !video.room_admin && !video.hidden);
    assert!(!video.room_list && !video.room_record && !video.ingress_admin);
    assert_eq!(claims.attributes["vouch.e2ee"], "true");
    assert!(
        claims.exp as i64 <= vouch_exp,
        "never outlives the Vouch token"
    );
    assert_eq!(
        claims.exp as i64, vouch_exp,
        "the Vouch token ends first here"
    );
    let now = app.now().timestamp();
    assert!((claims.nbf as i64 - now).abs() <= 2, "nbf is now");

    // The wire format, exactly as the contract lists it.
    let raw = token_part(token, 1);
    assert_eq!(
        raw["video"],
        json!({
            "room": "standup", "roomJoin": true, "canPublish": true, "canSubscribe": true,
            "canPublishData": true, "roomCreate": false, "roomAdmin": false, "hidden": false,
            "canUpdateOwnMetadata": false
        })
    );
    assert_eq!(raw["attributes"], json!({"vouch.e2ee": "true"}));
    assert!(raw["jti"].is_string());
    assert_eq!(token_part(token, 0)["alg"], "HS256");
    let expires_at = chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().unwrap())
        .unwrap()
        .timestamp();
    assert_eq!(expires_at, claims.exp as i64);

    // Without a name, no `name` claim; a wrong secret does not verify.
    let plain = admit(&app, vouch_token, "retro").await;
    assert!(token_part(&plain, 1).get("name").is_none());
    assert!(
        TokenVerifier::with_api_key(KEY, "another-secret-0123456789abcdefgh")
            .verify(&plain)
            .is_err()
    );
}

#[tokio::test]
async fn the_token_ttl_caps_the_access_token() {
    let fake = FakeLiveKit::start().await;
    let app = with_livekit(&fake, 60).await;
    let acc = app.entitled_account("lk-short").await;
    let vouch = app.issue_token(&acc).await;
    let token = admit(&app, &vouch, "standup").await;
    let claims = TokenVerifier::with_api_key(KEY, SECRET)
        .verify(&token)
        .unwrap();
    let now = app.now().timestamp();
    assert!(claims.exp as i64 <= now + 60);
    assert!(claims.exp as i64 >= now + 58);
}

#[tokio::test]
async fn the_exchange_refuses_what_authorize_would_refuse() {
    let fake = FakeLiveKit::start().await;
    let app = with_livekit(&fake, 600).await;

    // Role: meeting servers only.
    let acc = app.entitled_account("lk-refused").await;
    let token = app.issue_token(&acc).await;
    let res = app
        .post(
            "/v1/exchange/livekit",
            &app.backend_key,
            &json!({"token": token, "room": "standup"}),
        )
        .await;
    assert_problem(res, 403, "forbidden").await;

    // Bad input is a 400, before the token is looked at.
    for (body, code) in [
        (json!({"token": token, "room": ""}), "invalid_room"),
        (json!({"token": token, "room": "a\nb"}), "invalid_room"),
        (
            json!({"token": token, "room": "r".repeat(300)}),
            "invalid_room",
        ),
        (
            json!({"token": token, "room": "standup", "name": "x\u{0}"}),
            "invalid_name",
        ),
        (
            json!({"token": token, "room": "standup", "device_jkt": "short"}),
            "invalid_device_jkt",
        ),
    ] {
        assert_problem(exchange(&app, body).await, 400, code).await;
    }

    // Not a token of ours.
    let res = exchange(&app, json!({"token": "not.a.token", "room": "standup"})).await;
    assert_problem(res, 403, "invalid_token").await;

    // Device binding.
    let bound = app.issue(&acc, json!({"device_jkt": JKT})).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = exchange(
        &app,
        json!({"token": bound, "room": "standup", "device_jkt": OTHER_JKT}),
    )
    .await;
    assert_problem(res, 403, "device_mismatch").await;
    let res = exchange(
        &app,
        json!({"token": bound, "room": "standup", "device_jkt": JKT}),
    )
    .await;
    assert_eq!(res.status(), 200);

    // Revoked.
    revoke(&app, &token).await;
    let res = exchange(&app, json!({"token": token, "room": "standup"})).await;
    assert_problem(res, 403, "revoked").await;

    // Suspended.
    let suspended = app.entitled_account("lk-suspended").await;
    let token = app.issue_token(&suspended).await;
    set_status(&app, &suspended, "suspended").await;
    let res = exchange(&app, json!({"token": token, "room": "standup"})).await;
    assert_problem(res, 403, "account_suspended").await;

    // No longer entitled: the evidence lapsed after the token was issued.
    let lapsing = app.account("lk-lapsing").await;
    let expires = app.now() + chrono::Duration::seconds(20);
    app.add_evidence(
        &lapsing,
        EvidenceKind::Phone,
        EvidenceStatus::Active,
        Some(expires),
    )
    .await;
    let token = app.issue_token(&lapsing).await;
    app.clock.advance(chrono::Duration::seconds(21));
    let res = exchange(&app, json!({"token": token, "room": "standup"})).await;
    let body = assert_problem(res, 403, "not_entitled").await;
    // The refusal says what the person can do, as issuance and authorize do.
    assert_eq!(
        body["required_actions"],
        json!(["verify_phone", "subscribe", "request_exception"]),
        "{body}"
    );
    fake.assert_no_errors();
}

#[tokio::test]
async fn without_livekit_settings_the_exchange_is_not_configured() {
    let app = spawn_app().await;
    let acc = app.entitled_account("lk-none").await;
    let token = app.issue_token(&acc).await;
    let res = exchange(&app, json!({"token": token, "room": "standup"})).await;
    assert_problem(res, 503, "not_configured").await;
}

#[tokio::test]
async fn a_suspension_removes_the_participant_from_every_room_once() {
    let fake = FakeLiveKit::start().await;
    let app = with_livekit(&fake, 600).await;
    let acc = app.entitled_account("lk-suspend").await;
    let other = app.entitled_account("lk-bystander").await;
    let first = app.issue_token(&acc).await;
    let second = app.issue_token(&acc).await;
    admit(&app, &first, "standup").await;
    admit(&app, &second, "standup").await;
    admit(&app, &first, "retro").await;
    let bystander = app.issue_token(&other).await;
    admit(&app, &bystander, "standup").await;

    set_status(&app, &acc, "suspended").await;
    fake.removed("standup", &acc).await;
    fake.removed("retro", &acc).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let calls = fake.calls();
    assert_eq!(
        calls.len(),
        2,
        "one removal per room and identity: {calls:?}"
    );
    assert!(calls.iter().all(|(_, identity, _)| identity == &acc));
    fake.assert_no_errors();
}

#[tokio::test]
async fn a_lapse_by_time_removes_the_participant() {
    let fake = FakeLiveKit::start().await;
    let app = with_livekit(&fake, 600).await;
    let acc = app.account("lk-lapse").await;
    let expires = app.now() + chrono::Duration::seconds(30);
    app.add_evidence(
        &acc,
        EvidenceKind::Phone,
        EvidenceStatus::Active,
        Some(expires),
    )
    .await;
    let token = app.issue_token(&acc).await;
    admit(&app, &token, "standup").await;
    app.maintain().await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(fake.calls().is_empty(), "still entitled");

    app.clock.advance(chrono::Duration::seconds(31));
    app.maintain().await;
    fake.removed("standup", &acc).await;
}

#[tokio::test]
async fn a_revoked_token_removes_what_it_admitted() {
    let fake = FakeLiveKit::start().await;
    let app = with_livekit(&fake, 600).await;
    let acc = app.entitled_account("lk-revoke").await;
    let revoked = app.issue_token(&acc).await;
    admit(&app, &revoked, "standup").await;

    revoke(&app, &revoked).await;
    fake.removed("standup", &acc).await;
    // The account itself is still entitled: a fresh token is admitted again.
    let fresh = app.issue_token(&acc).await;
    admit(&app, &fresh, "standup").await;
}

#[tokio::test]
async fn an_account_wide_revocation_refuses_earlier_tokens_and_removes_the_participant() {
    let fake = FakeLiveKit::start().await;
    let app = with_livekit(&fake, 600).await;
    let acc = app.entitled_account("lk-revoke-all").await;
    let admitted = app.issue_token(&acc).await;
    let unused = app.issue_token(&acc).await;
    admit(&app, &admitted, "standup").await;

    let res = app
        .post(
            &format!("/v1/accounts/{acc}/tokens/revoke"),
            &app.backend_key,
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    fake.removed("standup", &acc).await;
    for token in [&admitted, &unused] {
        let res = exchange(&app, json!({"token": token, "room": "standup"})).await;
        assert_problem(res, 403, "revoked").await;
    }
    // The account is still entitled: a token issued from `revoked_before` on is admitted.
    app.clock.advance(chrono::Duration::seconds(1));
    let fresh = app.issue_token(&acc).await;
    admit(&app, &fresh, "standup").await;
}

#[tokio::test]
async fn an_erasure_removes_the_participant() {
    let fake = FakeLiveKit::start().await;
    let app = with_livekit(&fake, 600).await;
    let acc = app.entitled_account("lk-erase").await;
    let token = app.issue_token(&acc).await;
    admit(&app, &token, "standup").await;

    let res = app
        .delete(&format!("/v1/accounts/{acc}"), &app.backend_key)
        .await;
    assert_eq!(res.status(), 204);
    fake.removed("standup", &acc).await;
}

#[tokio::test]
async fn a_failed_removal_is_retried_and_not_found_counts_as_done() {
    let fake = FakeLiveKit::start().await;
    fake.script(&[500]);
    let app = with_livekit(&fake, 600).await;
    let acc = app.entitled_account("lk-retry").await;
    let token = app.issue_token(&acc).await;
    admit(&app, &token, "standup").await;
    set_status(&app, &acc, "suspended").await;
    fake.removed("standup", &acc).await;
    let statuses: Vec<u16> = fake.calls().iter().map(|c| c.2).collect();
    assert_eq!(statuses, [500, 200]);

    // LiveKit answers not_found (the participant already left): done, never retried.
    let gone = app.entitled_account("lk-gone").await;
    let token = app.issue_token(&gone).await;
    admit(&app, &token, "retro").await;
    fake.script(&[404]);
    set_status(&app, &gone, "suspended").await;
    fake.removed("retro", &gone).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let retro: Vec<u16> = fake
        .calls()
        .iter()
        .filter(|c| c.0 == "retro")
        .map(|c| c.2)
        .collect();
    assert_eq!(retro, [404]);
    fake.assert_no_errors();
}

#[tokio::test]
async fn two_instances_remove_a_participant_once() {
    let fake = FakeLiveKit::start().await;
    let app = with_livekit(&fake, 600).await;
    let sibling = app.spawn_sibling().await;
    let acc = app.entitled_account("lk-two").await;
    let token = app.issue_token(&acc).await;
    admit(&app, &token, "standup").await;

    // The change happens on the other instance; either one's worker sends the removal.
    set_status(&sibling, &acc, "suspended").await;
    fake.removed("standup", &acc).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(fake.calls().len(), 1, "{:?}", fake.calls());
}

#[tokio::test]
async fn expired_admissions_and_settled_removals_are_pruned() {
    use entities::{livekit_admission, livekit_removal};
    use sea_orm::{EntityTrait, PaginatorTrait};

    let fake = FakeLiveKit::start().await;
    let app = with_livekit(&fake, 30).await;
    let db = app.db().await;
    let staying = app.entitled_account("lk-staying").await;
    let leaving = app.entitled_account("lk-leaving").await;
    let token = app.issue_token(&staying).await;
    admit(&app, &token, "standup").await;
    let token = app.issue_token(&leaving).await;
    admit(&app, &token, "standup").await;
    set_status(&app, &leaving, "suspended").await;
    fake.removed("standup", &leaving).await;
    let admissions = || livekit_admission::Entity::find().count(&db);
    let removals = || livekit_removal::Entity::find().count(&db);
    eventually("the removal to settle", WITHIN, || async {
        let done = livekit_removal::Entity::find()
            .all(&db)
            .await
            .unwrap()
            .iter()
            .all(|r| r.status == "done" && r.pending_key.is_none());
        done.then_some(())
    })
    .await;
    assert_eq!(
        admissions().await.unwrap(),
        1,
        "the removed admission is gone"
    );
    assert_eq!(removals().await.unwrap(), 1);

    app.clock.advance(chrono::Duration::seconds(31));
    app.maintain().await;
    assert_eq!(admissions().await.unwrap(), 0, "expired");
    assert_eq!(removals().await.unwrap(), 1, "settled only just now");

    app.clock.advance(chrono::Duration::hours(25));
    app.maintain().await;
    assert_eq!(removals().await.unwrap(), 0);
}

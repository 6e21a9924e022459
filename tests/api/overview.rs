//! `GET /v1/overview`, the console's first page: seeded exceptions, sends, webhook endpoints
//! and the signing key give exact numbers; reviewers and admins may read it, nobody else.

use std::time::Duration;

use chrono::{DateTime, Duration as Days, Utc};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};

use crate::{
    fakes::{eventually, FakeTwilio, TWILIO_FROM, TWILIO_SID, TWILIO_TOKEN},
    helpers::{assert_problem, spawn_app, spawn_app_with, TestApp},
    webhooks::Receiver,
};

async fn overview(app: &TestApp, key: &str) -> Value {
    let res = app.get("/v1/overview", key).await;
    let status = res.status();
    let cache = res
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(cache, "no-store");
    body
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().expect("a time").parse().expect("RFC 3339")
}

async fn submit(app: &TestApp, external_id: &str) -> (String, DateTime<Utc>) {
    let account = app.account(external_id).await;
    let res = app
        .post(
            &format!("/v1/accounts/{account}/exceptions"),
            &app.backend_key,
            &json!({"category": "nonprofit", "statement": "We run a shelter for journalists"}),
        )
        .await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (
        body["id"].as_str().unwrap().to_owned(),
        time(&body["submitted_at"]),
    )
}

async fn approve_until(app: &TestApp, external_id: &str, end: DateTime<Utc>) -> String {
    let (eid, _) = submit(app, external_id).await;
    let res = app
        .post(
            &format!("/v1/exceptions/{eid}/decision"),
            &app.reviewer_key,
            &json!({"decision": "approve", "reason": "known shelter", "expires_at": end}),
        )
        .await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "approved", "{body}");
    eid
}

async fn send(app: &TestApp, account: &str, channel: &str, to: &str) {
    let res = app
        .post(
            &format!("/v1/accounts/{account}/verifications"),
            &app.backend_key,
            &json!({"channel": channel, "to": to}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn the_overview_counts_what_needs_attention() {
    // SMS go to a provider that refuses them (a permanent 4xx); email to the log transport.
    let twilio = FakeTwilio::start().await;
    twilio.respond_with(400);
    let app = spawn_app_with(|s| {
        s.sms.twilio_base_url = Some(twilio.base_url.clone());
        s.sms.twilio_account_sid = Some(TWILIO_SID.into());
        s.sms.twilio_auth_token = Some(SecretString::from(TWILIO_TOKEN));
        s.sms.from = Some(TWILIO_FROM.into());
        s.verification.sms_hourly_budget = 40;
        s.verification.sms_country_hourly_budget = 40;
        s.verification.young_accounts_sms_hourly_budget = 40;
        s.webhooks.allow_http = true;
        s.webhooks.allow_private_networks = true;
        s.webhooks.poll_interval_millis = 100;
        s.delivery.poll_interval_millis = 100;
    })
    .await;

    // Nothing yet: zeros, and the first key with its rotation a period away.
    let empty = overview(&app, &app.admin_key).await;
    assert_eq!(empty["pending_exceptions"]["total"], 0);
    assert!(empty["pending_exceptions"]["oldest_submitted_at"].is_null());
    assert_eq!(empty["approvals_ending"]["count"], 0);
    assert_eq!(
        empty["failing_webhooks"],
        json!({"count": 0, "endpoints": []})
    );
    assert_eq!(
        empty["verifications_today"]["email"],
        json!({"sends": 0, "delivered": 0, "failed": 0, "waiting": 0})
    );
    let key = app.signing_key().await;
    assert_eq!(empty["signing_key"]["kid"], key.kid.as_str());
    assert_eq!(
        time(&empty["signing_key"]["activated_at"]),
        key.activates_at
    );
    assert_eq!(
        time(&empty["signing_key"]["next_rotation_at"]),
        key.activates_at + Days::days(30)
    );
    assert_eq!(empty["signing_key"]["rotation_overdue"], false);

    // Pending requests that have waited 14 days, 6 days, 2 days and an hour.
    let (_, oldest_at) = submit(&app, "waits-14d").await;
    app.clock.advance(Days::days(8));
    submit(&app, "waits-6d").await;
    app.clock.advance(Days::days(4));
    submit(&app, "waits-2d").await;
    app.clock.advance(Days::days(2) - Days::hours(1));
    submit(&app, "waits-1h").await;
    app.clock.advance(Days::hours(1));

    // Approvals ending in 20 and 10 days are listed (soonest first); one in 40 days is not.
    let now = app.now();
    let in_20 = approve_until(&app, "ends-20d", now + Days::days(20)).await;
    let in_10 = approve_until(&app, "ends-10d", now + Days::days(10)).await;
    let in_40 = approve_until(&app, "ends-40d", now + Days::days(40)).await;

    // Two emails (logged) and two SMS (refused by the provider) today.
    let a = app.account("sender-a").await;
    let b = app.account("sender-b").await;
    send(&app, &a, "email", "a@example.org").await;
    send(&app, &b, "email", "b@example.org").await;
    send(&app, &a, "sms", "+14155552671").await;
    send(&app, &b, "sms", "+14155552672").await;

    // One endpoint nobody answers (its ping waits for a retry), one that answers 410 Gone
    // (disabled), one that has had nothing to deliver.
    let create = |url: String| {
        let app = &app;
        async move {
            let res = app
                .post("/v1/admin/webhooks", &app.admin_key, &json!({"url": url}))
                .await;
            assert_eq!(res.status(), StatusCode::CREATED);
            let body: Value = res.json().await.unwrap();
            body["id"].as_str().unwrap().to_owned()
        }
    };
    let dead = create("http://127.0.0.1:9/hooks/s3cr3t-path?token=x".into()).await;
    let gone = Receiver::start().await;
    gone.answer(410);
    let gone_id = create(gone.url.clone()).await;
    create("http://127.0.0.1:9/never-used".into()).await;
    for id in [&dead, &gone_id] {
        let res = app
            .post(
                &format!("/v1/admin/webhooks/{id}/test"),
                &app.admin_key,
                &json!({}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
    }

    let got = eventually(
        "sends settled and endpoints failing",
        Duration::from_secs(20),
        || async {
            let o = overview(&app, &app.reviewer_key).await;
            let settled = o["verifications_today"]["sms"]["failed"] == 2
                && o["verifications_today"]["email"]["delivered"] == 2
                && o["failing_webhooks"]["count"] == 2;
            settled.then_some(o)
        },
    )
    .await;

    assert_eq!(
        got["pending_exceptions"],
        json!({
            "total": 4,
            "under_1_day": 1,
            "from_1_to_3_days": 1,
            "from_3_to_7_days": 1,
            "over_7_days": 1,
            "oldest_submitted_at": got["pending_exceptions"]["oldest_submitted_at"],
            "oldest_age_seconds": got["pending_exceptions"]["oldest_age_seconds"],
        })
    );
    assert_eq!(
        time(&got["pending_exceptions"]["oldest_submitted_at"]),
        oldest_at
    );
    let age = got["pending_exceptions"]["oldest_age_seconds"]
        .as_i64()
        .unwrap();
    assert!((14 * 86_400..14 * 86_400 + 120).contains(&age), "{age}");

    let ending = &got["approvals_ending"];
    assert_eq!(ending["within_days"], 30);
    assert_eq!(ending["count"], 2);
    let soonest = ending["soonest"].as_array().unwrap();
    assert_eq!(soonest.len(), 2);
    assert_eq!(soonest[0]["id"], in_10.as_str());
    assert_eq!(time(&soonest[0]["expires_at"]), now + Days::days(10));
    assert_eq!(soonest[1]["id"], in_20.as_str());
    // Ids and end times only: no category, reason or account.
    assert_eq!(
        soonest[0].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["expires_at", "id"]
    );

    let today = &got["verifications_today"];
    assert_eq!(
        today["email"],
        json!({"sends": 2, "delivered": 2, "failed": 0, "waiting": 0})
    );
    assert_eq!(
        today["sms"],
        json!({"sends": 2, "delivered": 0, "failed": 2, "waiting": 0})
    );
    let since = time(&today["since"]);
    assert_eq!(
        since,
        app.now()
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
    );

    assert_eq!(
        got["sms_budget"],
        json!({"used": 2, "limit": 40, "window_seconds": 3600})
    );

    let failing = got["failing_webhooks"]["endpoints"].as_array().unwrap();
    assert_eq!(failing.len(), 2);
    let dead_row = failing.iter().find(|e| e["id"] == dead.as_str()).unwrap();
    // The host only: the path and query may carry the receiver's token.
    assert_eq!(dead_row["host"], "127.0.0.1:9");
    assert_eq!(dead_row["status"], "enabled");
    assert_eq!(dead_row["failing_deliveries"], 1);
    assert!(dead_row["attempts"].as_u64().unwrap() >= 1);
    assert!(!got.to_string().contains("s3cr3t"));
    let gone_row = failing
        .iter()
        .find(|e| e["id"] == gone_id.as_str())
        .unwrap();
    assert_eq!(gone_row["status"], "disabled");
    assert_eq!(gone_row["failing_deliveries"], 0);

    // Admins see the same numbers.
    let admin = overview(&app, &app.admin_key).await;
    assert_eq!(admin["pending_exceptions"], got["pending_exceptions"]);
    assert_eq!(admin["approvals_ending"], got["approvals_ending"]);

    // Past the rotation period the rotation is overdue, until maintenance rotates (which it
    // may do on its own timer at any moment: then the next rotation has moved on).
    app.clock.advance(Days::days(17));
    let late = overview(&app, &app.admin_key).await;
    let due = key.activates_at + Days::days(30);
    if time(&late["signing_key"]["next_rotation_at"]) == due {
        assert_eq!(late["signing_key"]["rotation_overdue"], true, "{late}");
    } else {
        assert!(
            time(&late["signing_key"]["next_rotation_at"]) > app.now(),
            "{late}"
        );
    }
    // The approvals have moved on too: the one ending in 10 days has ended, the one ending in
    // 40 days now ends within 30.
    assert_eq!(late["approvals_ending"]["count"], 2);
    assert_eq!(late["approvals_ending"]["soonest"][0]["id"], in_20.as_str());
    assert_eq!(late["approvals_ending"]["soonest"][1]["id"], in_40.as_str());
}

#[tokio::test]
async fn only_reviewers_and_admins_read_the_overview() {
    let app = spawn_app().await;
    for key in [&app.reviewer_key, &app.admin_key] {
        overview(&app, key).await;
    }
    for key in [&app.backend_key, &app.meeting_key, &app.moderator_key] {
        assert_problem(app.get("/v1/overview", key).await, 403, "forbidden").await;
    }
    let res = app
        .client
        .get(app.url("/v1/overview"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

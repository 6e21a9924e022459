//! Many writes at once must not starve reads: authorize keeps answering while a burst of code
//! checks, Stripe webhooks and account creations queues for the database.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use aws_lc_rs::hmac;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, TestApp};

const SECRET: &str = "whsec_9kQm2VxL7pT4rYs8NcE1bHfJ6uWzA3Dg";

/// A Stripe event for a customer Vouch does not track: signed, stored, ignored.
async fn webhook(app: &TestApp, i: usize) -> StatusCode {
    let t = app.now().timestamp();
    let body = json!({
        "id": format!("evt_contention_{i}"),
        "object": "event",
        "api_version": "2024-09-30.acacia",
        "created": t,
        "data": {"object": {"id": format!("cus_contention_{i}"), "object": "customer"}},
        "livemode": false,
        "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "type": "customer.created"
    })
    .to_string();
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET.as_bytes());
    let mac = hmac::sign(&key, format!("{t}.{body}").as_bytes());
    let hex: String = mac.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    app.client
        .post(app.url("/v1/webhooks/stripe"))
        .header("content-type", "application/json")
        .header("Stripe-Signature", format!("t={t},v1={hex}"))
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
}

async fn check(app: &TestApp, vid: &str) -> StatusCode {
    app.post(
        &format!("/v1/verifications/{vid}/check"),
        &app.backend_key,
        &json!({"code": "000000"}),
    )
    .await
    .status()
}

async fn create(app: &TestApp, i: usize) -> StatusCode {
    app.post(
        "/v1/accounts",
        &app.backend_key,
        &json!({"external_id": format!("burst-{i}")}),
    )
    .await
    .status()
}

#[tokio::test]
async fn a_burst_of_writes_does_not_starve_authorize() {
    let app = spawn_app_with(|s| {
        s.stripe.webhook_secrets = vec![SecretString::from(SECRET)];
        // Every authorize reads the database (no cached account or API key).
        s.tokens.account_cache_millis = 0;
        s.auth.cache_seconds = 0;
        // A reader gives up after 1 s without a connection.
        s.database.acquire_timeout_seconds = 1;
        // Writers may queue long on a busy CI machine; that they wait is not the point here.
        s.database.lock_timeout_seconds = 30;
    })
    .await;
    let app = Arc::new(app);
    let id = app.entitled_account("reader").await;
    let token = app.issue_token(&id).await;
    let mut vids = Vec::new();
    for i in 0..10 {
        let account = app.account(&format!("checker-{i}")).await;
        let res = app
            .post(
                &format!("/v1/accounts/{account}/verifications"),
                &app.backend_key,
                &json!({"channel": "email", "to": format!("checker-{i}@example.org")}),
            )
            .await;
        let body: Value = res.json().await.unwrap();
        vids.push(body["id"].as_str().unwrap().to_owned());
    }

    // Meeting servers keep asking while the burst runs.
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (app, token, done) = (app.clone(), token.clone(), done.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                while !done.load(Ordering::Relaxed) {
                    let res = app
                        .post(
                            "/v1/e2ee/authorize",
                            &app.meeting_key,
                            &json!({"token": token}),
                        )
                        .await;
                    let status = res.status();
                    let body: Value = res.json().await.unwrap_or(Value::Null);
                    answers.push((status, body));
                }
                answers
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;

    // One slow write (it holds the chain lock for 2 s) makes the burst queue behind it, as
    // any slow transaction does in production.
    let slow = app.hold_write_lock().await;
    let slow = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        slow.commit().await.unwrap();
    });
    let started = std::time::Instant::now();
    let writes = (0..100).map(|i| {
        let app = app.clone();
        let vid = vids[i % vids.len()].clone();
        async move {
            match i % 3 {
                0 => check(&app, &vid).await,
                1 => webhook(&app, i).await,
                _ => create(&app, i).await,
            }
        }
    });
    let written = futures_util::future::join_all(writes).await;
    let took = started.elapsed();
    done.store(true, Ordering::Relaxed);
    slow.await.unwrap();

    let mut answers = Vec::new();
    for reader in readers {
        answers.extend(reader.await.unwrap());
    }
    assert!(!answers.is_empty());
    for (status, body) in &answers {
        assert_eq!(
            *status,
            StatusCode::OK,
            "authorize during the burst: {body}"
        );
        assert_eq!(body["allow"], true, "{body}");
    }
    for status in &written {
        assert!(
            !status.is_server_error(),
            "a write failed with {status} (burst took {took:?})"
        );
    }
    eprintln!(
        "100 writes in {took:?}; {} authorize answers meanwhile",
        answers.len()
    );
}

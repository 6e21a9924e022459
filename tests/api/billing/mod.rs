//! Stripe webhooks: signatures computed exactly as Stripe's libraries compute them, over
//! realistic event bodies (full Stripe JSON shapes, pretty-printed as Stripe sends them), and
//! their consequences for payment evidence, the e2ee entitlement and the authorize check.
//! This module holds the signing and the readers of consequences; the scenarios are in
//! `signature` (what is accepted), `subscriptions` (what a subscription's life grants),
//! `customers` (linking Stripe customers to accounts) and `idempotency` (repeats, races,
//! order and failures); `stripe` builds the objects.

use aws_lc_rs::hmac;
use reqwest::{Response, StatusCode};
use sea_orm::ConnectionTrait;
use secrecy::SecretString;
use serde_json::{json, Value};
use vouch::clock::Clock;

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, spawn_with_settings, TestApp};

mod customers;
mod events;
mod idempotency;
mod signature;
mod stripe;
mod subscriptions;

use stripe::*;

const SECRET: &str = "whsec_9kQm2VxL7pT4rYs8NcE1bHfJ6uWzA3Dg";

// ---------------------------------------------------------------------------------------------
// Signing, exactly as Stripe does it (and as `stripe.webhooks.generateTestHeaderString` does):
// hex(HMAC-SHA256(secret, "{t}.{payload}")), header `t=<t>,v1=<hex>`.

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn v1(secret: &str, t: i64, payload: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hex(hmac::sign(&key, format!("{t}.{payload}").as_bytes()).as_ref())
}

fn stripe_signature(secret: &str, t: i64, payload: &str) -> String {
    format!("t={t},v1={}", v1(secret, t, payload))
}

fn now(app: &TestApp) -> i64 {
    app.clock.now().timestamp()
}

async fn send(app: &TestApp, signature: Option<&str>, payload: &str) -> Response {
    let mut req = app
        .client
        .post(app.url("/v1/webhooks/stripe"))
        .header("content-type", "application/json; charset=utf-8")
        .header(
            "user-agent",
            "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        )
        .body(payload.to_owned());
    if let Some(sig) = signature {
        req = req.header("Stripe-Signature", sig);
    }
    req.send().await.expect("request sent")
}

/// Deliver as Stripe would, signed now with `SECRET`; expect 200 and return the outcome.
async fn deliver(app: &TestApp, payload: &str) -> String {
    let res = send(
        app,
        Some(&stripe_signature(SECRET, now(app), payload)),
        payload,
    )
    .await;
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["received"], true, "{body}");
    body["outcome"].as_str().unwrap_or_default().to_owned()
}

async fn billing_app() -> TestApp {
    spawn_app_with(|s| s.stripe.webhook_secrets = vec![SecretString::from(SECRET)]).await
}

// ---------------------------------------------------------------------------------------------
// Reading the consequences.

async fn payment_evidence(app: &TestApp, account: &str) -> Vec<Value> {
    let res = app
        .get(
            &format!("/v1/accounts/{account}/evidence"),
            &app.reviewer_key,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "payment")
        .cloned()
        .collect()
}

async fn e2ee(app: &TestApp, account: &str) -> Value {
    let res = app
        .get(
            &format!("/v1/accounts/{account}/entitlements"),
            &app.backend_key,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    body["entitlements"]["e2ee"].clone()
}

async fn granted(app: &TestApp, account: &str) -> bool {
    e2ee(app, account).await["granted"].as_bool().unwrap()
}

async fn issue_token(app: &TestApp, account: &str, ttl: u64) -> String {
    let res = app
        .post(
            &format!("/v1/accounts/{account}/tokens"),
            &app.backend_key,
            &json!({"ttl_seconds": ttl}),
        )
        .await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

async fn authorize(app: &TestApp, token: &str) -> Value {
    let res = app
        .post(
            "/v1/e2ee/authorize",
            &app.meeting_key,
            &json!({"token": token, "meeting_id": "standup"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

async fn audit(app: &TestApp, query: &str) -> Vec<Value> {
    let res = app
        .get(
            &format!("/v1/admin/audit?limit=200&{query}"),
            &app.admin_key,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    body["items"].as_array().unwrap().clone()
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

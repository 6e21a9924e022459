//! Nonprofit and dissident exceptions: submission, four-eyes review, revocation, expiry, sealed
//! statements, erasure and the audit trail. This module holds the shared builders; the
//! scenarios are in `submission`, `review` (decisions, four eyes, the queue), `lifecycle`
//! (revocation and expiry), `sealing` (sealed text at rest, purge, erasure) and `audit`.

use chrono::{DateTime, Duration, Utc};
use reqwest::{Response, StatusCode};
use sea_orm::{ConnectionTrait, EntityTrait, Statement};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, TestApp};

mod at_rest;
mod audit;
mod events;
mod legacy;
mod lifecycle;
mod reveals;
mod review;
mod sealing;
mod submission;

const STATEMENT: &str = "I report on the Ministry of Interior; my sources are at risk (Zqx-7731)";
const ORGANIZATION: &str = "Free Press Collective Wqv-0042";
const REFERENCE: &str = "registry no. KJX-99812";

async fn submit_as(app: &TestApp, key: &str, account_id: &str, body: Value) -> Response {
    app.post(&format!("/v1/accounts/{account_id}/exceptions"), key, &body)
        .await
}

/// Submit as the backend; returns the new request's JSON (asserts 201).
async fn submit(app: &TestApp, account_id: &str, category: &str) -> Value {
    let res = submit_as(
        app,
        &app.backend_key,
        account_id,
        json!({
            "category": category,
            "statement": STATEMENT,
            "organization": ORGANIZATION,
            "reference": REFERENCE,
        }),
    )
    .await;
    let status = res.status();
    let location = res
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        location.as_deref(),
        Some(format!("/v1/exceptions/{}", body["id"].as_str().unwrap()).as_str())
    );
    body
}

async fn decide(app: &TestApp, key: &str, eid: &str, body: Value) -> Response {
    app.post(&format!("/v1/exceptions/{eid}/decision"), key, &body)
        .await
}

/// Decide and return the new state (asserts 200).
async fn decided(app: &TestApp, key: &str, eid: &str, body: Value) -> Value {
    let res = decide(app, key, eid, body).await;
    let status = res.status();
    let json: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{json}");
    json
}

fn approve(reason: &str) -> Value {
    json!({"decision": "approve", "reason": reason})
}

/// A further API client; returns its key.
async fn client(app: &TestApp, name: &str, role: &str) -> String {
    let res = app
        .post(
            "/v1/admin/clients",
            &app.admin_key,
            &json!({"name": name, "role": role}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    body["key"].as_str().unwrap().to_owned()
}

async fn json_of(res: Response) -> Value {
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn entitlement(app: &TestApp, account_id: &str) -> Value {
    json_of(
        app.get(
            &format!("/v1/accounts/{account_id}/entitlements"),
            &app.backend_key,
        )
        .await,
    )
    .await["entitlements"]["e2ee"]
        .clone()
}

async fn evidence_from(app: &TestApp, account_id: &str, eid: &str) -> Value {
    let page = json_of(
        app.get(
            &format!("/v1/accounts/{account_id}/evidence"),
            &app.reviewer_key,
        )
        .await,
    )
    .await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["source"] == format!("exception:{eid}"))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Audit actions recorded for one target, oldest first.
async fn audit_actions(app: &TestApp, target_id: &str) -> Vec<(String, String)> {
    let page = json_of(
        app.get(
            &format!("/v1/admin/audit?target_id={target_id}&limit=200"),
            &app.admin_key,
        )
        .await,
    )
    .await;
    let mut items: Vec<(String, String)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    items.reverse();
    items
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

//! `required_actions` on every refusal: token issuance 403, authorize `allow: false` (the
//! exchanges' 403 are in their own files). One action per policy alternative the account could
//! still satisfy; none when suspended.

use serde_json::{json, Value};
use vouch::domain::evidence::{EvidenceKind::*, EvidenceStatus::*};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, TestApp};

async fn refused_issuance(app: &TestApp, id: &str) -> Value {
    refused_issuance_as(app, id, "not_entitled").await
}

async fn refused_issuance_as(app: &TestApp, id: &str, code: &str) -> Value {
    assert_problem(
        app.post(
            &format!("/v1/accounts/{id}/tokens"),
            &app.backend_key,
            &json!({}),
        )
        .await,
        403,
        code,
    )
    .await
}

#[tokio::test]
async fn an_email_only_account_is_told_every_way_to_e2ee() {
    let app = spawn_app().await;
    let id = app.account("email-only").await;
    app.add_evidence(&id, Email, Active, None).await;
    let body = refused_issuance(&app, &id).await;
    assert_eq!(
        body["required_actions"],
        json!(["verify_phone", "subscribe", "request_exception"])
    );
    // The `missing` detail stays as it was.
    assert!(body["missing"].is_array());
}

#[tokio::test]
async fn paid_only_never_asks_for_a_phone() {
    let app = spawn_app_with(|s| s.policy.preset = "paid-only".into()).await;
    let id = app.account("paid-only").await;
    app.add_evidence(&id, Phone, Active, None).await;
    let body = refused_issuance(&app, &id).await;
    assert_eq!(
        body["required_actions"],
        json!(["subscribe", "request_exception"])
    );
}

#[tokio::test]
async fn a_suspended_account_has_nothing_to_do() {
    let app = spawn_app().await;
    let id = app.entitled_account("suspended").await;
    let token = app.issue_token(&id).await;
    app.patch(
        &format!("/v1/accounts/{id}"),
        &app.admin_key,
        &json!({"status": "suspended"}),
    )
    .await;
    let body = refused_issuance_as(&app, &id, "account_suspended").await;
    assert_eq!(body["required_actions"], json!([]));
    let decision = app.authorize(&token, None).await;
    assert_eq!(decision["reason"], "account_suspended");
    assert_eq!(decision["required_actions"], json!([]));
}

#[tokio::test]
async fn authorize_says_what_to_do_on_every_refusal_and_nothing_when_allowed() {
    let app = spawn_app().await;
    let id = app.entitled_account("authorize-actions").await;
    let token = app.issue_token(&id).await;
    let allowed = app.authorize(&token, None).await;
    assert_eq!(allowed["allow"], true);
    assert!(allowed.get("required_actions").is_none(), "{allowed}");

    // The phone lapses; a payment that lapsed earlier is supplied again the same way.
    app.add_evidence(&id, Payment, Lapsed, None).await;
    app.add_evidence(&id, Phone, Lapsed, None).await;
    let refused = app.authorize(&token, None).await;
    assert_eq!(refused["allow"], false);
    assert_eq!(refused["reason"], "not_entitled");
    assert_eq!(
        refused["required_actions"],
        json!(["verify_phone", "subscribe", "request_exception"])
    );

    // A token we cannot read: there is no account to advise.
    let refused = app.authorize("not.a.token", None).await;
    assert_eq!(refused["reason"], "invalid_token");
    assert_eq!(refused["required_actions"], json!([]));
}

//! Nonprofit and dissident exceptions: submission, four-eyes review, revocation, expiry, sealed
//! statements, erasure and the audit trail.

use chrono::{DateTime, Duration, Utc};
use reqwest::{Response, StatusCode};
use sea_orm::{ConnectionTrait, EntityTrait, Statement};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, TestApp};

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

#[tokio::test]
async fn a_submission_is_pending_and_a_second_open_request_conflicts() {
    let app = spawn_app().await;
    let acc = app.account("np").await;
    let created = submit(&app, &acc, "nonprofit").await;
    let eid = created["id"].as_str().unwrap();
    assert!(eid.starts_with("exc_"), "{eid}");
    assert_eq!(created["status"], "pending");
    assert_eq!(created["category"], "nonprofit");
    assert_eq!(created["account_id"], acc.as_str());
    assert_eq!(created["approvals_required"], 1);
    assert_eq!(created["approvals_received"], 0);
    assert!(created["expires_at"].is_null());
    // The backend's view never carries the sealed text, nor who reviews.
    let text = created.to_string();
    assert!(
        !text.contains("Zqx-7731") && !text.contains("Wqv-0042"),
        "{text}"
    );
    assert!(created.get("statement").is_none() && created.get("approvals").is_none());

    let body = assert_problem(
        submit_as(
            &app,
            &app.backend_key,
            &acc,
            json!({"category": "nonprofit", "statement": "again"}),
        )
        .await,
        409,
        "exception_pending",
    )
    .await;
    assert_eq!(body["exception_id"], eid);
    // Another category is another request.
    let dissident = submit(&app, &acc, "dissident").await;
    assert_eq!(dissident["approvals_required"], 2);

    // The backend may follow its request's state.
    let seen = json_of(
        app.get(&format!("/v1/exceptions/{eid}"), &app.backend_key)
            .await,
    )
    .await;
    assert_eq!(seen["status"], "pending");
    assert!(seen.get("statement").is_none() && seen.get("submitted_by").is_none());
}

#[tokio::test]
async fn submissions_are_validated_and_nothing_is_stored_when_invalid() {
    let app = spawn_app().await;
    let acc = app.account("v").await;
    let cases = [
        (
            json!({"category": "nonprofit", "statement": ""}),
            "invalid_statement",
        ),
        (
            json!({"category": "nonprofit", "statement": " \n "}),
            "invalid_statement",
        ),
        (
            json!({"category": "nonprofit", "statement": "x".repeat(10_001)}),
            "invalid_statement",
        ),
        (
            json!({"category": "nonprofit", "statement": "a\u{0007}b"}),
            "invalid_statement",
        ),
        (
            json!({"category": "nonprofit", "statement": "ok", "organization": "o".repeat(201)}),
            "invalid_organization",
        ),
        (
            json!({"category": "nonprofit", "statement": "ok", "reference": "a\nb"}),
            "invalid_reference",
        ),
        (
            json!({"category": "charity", "statement": "ok"}),
            "invalid_body",
        ),
        (json!({"statement": "ok"}), "invalid_body"),
        (json!({"category": "nonprofit"}), "invalid_body"),
        (
            json!({"category": "nonprofit", "statement": "ok", "status": "approved"}),
            "invalid_body",
        ),
    ];
    for (body, code) in cases {
        assert_problem(
            submit_as(&app, &app.backend_key, &acc, body).await,
            400,
            code,
        )
        .await;
    }
    assert_problem(
        submit_as(
            &app,
            &app.backend_key,
            "acc_0000000000000000000000000000dead",
            json!({"category": "nonprofit", "statement": "ok"}),
        )
        .await,
        404,
        "account_not_found",
    )
    .await;
    let queue = json_of(app.get("/v1/exceptions", &app.reviewer_key).await).await;
    assert_eq!(queue["items"], json!([]));

    // The longest statement is accepted; blank optional fields count as absent.
    let res = submit_as(
        &app,
        &app.backend_key,
        &acc,
        json!({"category": "nonprofit", "statement": "é".repeat(10_000), "organization": "  "}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let eid = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let full = json_of(
        app.get(&format!("/v1/exceptions/{eid}"), &app.reviewer_key)
            .await,
    )
    .await;
    assert_eq!(full["statement"].as_str().unwrap().chars().count(), 10_000);
    assert!(full.get("organization").is_none());
}

#[tokio::test]
async fn one_reviewer_approves_a_nonprofit_and_the_entitlement_explains_it() {
    let app = spawn_app().await;
    let acc = app.account("np").await;
    let before = entitlement(&app, &acc).await;
    assert_eq!(before["granted"], false);
    let eid = submit(&app, &acc, "nonprofit").await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let now = app.now();
    let approved = decided(
        &app,
        &app.reviewer_key,
        &eid,
        approve("registered charity, checked the registry"),
    )
    .await;
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["approvals_received"], 1);
    assert_eq!(approved["decided_by"], "test-reviewer");
    assert_eq!(approved["submitted_by"], "test-backend");
    assert_eq!(approved["approvals"][0]["reviewer"], "test-reviewer");
    // The decision answer carries the new state, not the sealed text.
    assert!(approved.get("statement").is_none());
    assert!(approved["approvals"][0].get("reason").is_none());
    let expires = time(&approved["expires_at"]);
    let year = now + Duration::days(365);
    assert!(
        (expires - year).num_seconds().abs() < 60,
        "{expires} vs {year}"
    );

    let e2ee = entitlement(&app, &acc).await;
    assert_eq!(e2ee["granted"], true, "{e2ee}");
    assert_eq!(e2ee["satisfied_by"], json!(["nonprofit"]));
    assert!(
        e2ee["reason"].as_str().unwrap().contains("nonprofit"),
        "{e2ee}"
    );
    let evidence = evidence_from(&app, &acc, &eid).await;
    assert_eq!(evidence["kind"], "nonprofit");
    assert_eq!(evidence["status"], "active");
    assert_eq!(evidence["id"], approved["evidence_id"]);
    assert_eq!(time(&evidence["expires_at"]), expires);

    // A token says an exception satisfied the policy, never which category.
    let token = app.issue_token(&acc).await;
    assert_eq!(
        crate::helpers::token_part(&token, 1)["evidence"],
        json!(["exception"])
    );
    assert_eq!(app.authorize(&token, None).await["allow"], true);

    // Decided once.
    let body = assert_problem(
        decide(&app, &app.admin_key, &eid, approve("again")).await,
        409,
        "exception_decided",
    )
    .await;
    assert_eq!(body["exception_status"], "approved");
}

#[tokio::test]
async fn a_dissident_needs_two_distinct_reviewers() {
    let app = spawn_app().await;
    let acc = app.account("d").await;
    let eid = submit(&app, &acc, "dissident").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = client(&app, "second-reviewer", "reviewer").await;

    let soon = app.now() + Duration::days(30);
    let first = decided(
        &app,
        &app.reviewer_key,
        &eid,
        json!({"decision": "approve", "reason": "known journalist", "expires_at": soon}),
    )
    .await;
    assert_eq!(first["status"], "pending");
    assert_eq!(first["approvals_received"], 1);
    assert_eq!(first["approvals_required"], 2);
    assert_eq!(time(&first["approvals"][0]["expires_at"]), soon);
    assert!(first["evidence_id"].is_null());
    assert_eq!(entitlement(&app, &acc).await["granted"], false);
    assert!(evidence_from(&app, &acc, &eid).await.is_null());

    // The same reviewer cannot count twice.
    assert_problem(
        decide(&app, &app.reviewer_key, &eid, approve("really")).await,
        409,
        "already_approved",
    )
    .await;

    let done = decided(&app, &second, &eid, approve("confirmed by a referee")).await;
    assert_eq!(done["status"], "approved");
    assert_eq!(done["approvals_received"], 2);
    assert_eq!(done["decided_by"], "second-reviewer");
    let reviewers: Vec<&str> = done["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["reviewer"].as_str().unwrap())
        .collect();
    assert_eq!(reviewers, ["test-reviewer", "second-reviewer"]);
    // The first approver agreed to 30 days only: that is how long it lasts.
    assert_eq!(time(&done["expires_at"]), soon);
    let e2ee = entitlement(&app, &acc).await;
    assert_eq!(e2ee["granted"], true);
    assert_eq!(e2ee["satisfied_by"], json!(["dissident"]));

    // Tokens say `exception`, never the category: every meeting server sees them.
    let token = app.issue_token(&acc).await;
    let claims = crate::helpers::token_part(&token, 1);
    assert_eq!(claims["evidence"], json!(["exception"]));
    assert!(!claims.to_string().contains("dissident"), "{claims}");
    let decision = app.authorize(&token, None).await;
    assert_eq!(decision["allow"], true);
    assert!(!decision.to_string().contains("dissident"), "{decision}");
}

#[tokio::test]
async fn tokens_may_leave_the_evidence_out() {
    let app = spawn_app_with(|s| s.tokens.disclose_evidence = false).await;
    let acc = app.account("quiet").await;
    let eid = submit(&app, &acc, "nonprofit").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    decided(&app, &app.reviewer_key, &eid, approve("registry checked")).await;
    let token = app.issue_token(&acc).await;
    let claims = crate::helpers::token_part(&token, 1);
    assert!(claims.get("evidence").is_none(), "{claims}");
    assert_eq!(claims["ent"], json!(["e2ee"]));
    assert_eq!(app.authorize(&token, None).await["allow"], true);
}

#[tokio::test]
async fn the_number_of_reviewers_is_configurable_and_concurrent_approvals_both_count() {
    let app = spawn_app_with(|s| s.exceptions.approvals.nonprofit = 2).await;
    let acc = app.account("c").await;
    let eid = submit(&app, &acc, "nonprofit").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        json_of(
            app.get(&format!("/v1/exceptions/{eid}"), &app.backend_key)
                .await
        )
        .await["approvals_required"],
        2
    );
    let (a, b) = tokio::join!(
        decide(&app, &app.reviewer_key, &eid, approve("a")),
        decide(&app, &app.admin_key, &eid, approve("b")),
    );
    assert_eq!((a.status(), b.status()), (StatusCode::OK, StatusCode::OK));
    let state = json_of(
        app.get(&format!("/v1/exceptions/{eid}"), &app.reviewer_key)
            .await,
    )
    .await;
    assert_eq!(state["status"], "approved", "{state}");
    assert_eq!(state["approvals_received"], 2);
    assert_eq!(entitlement(&app, &acc).await["granted"], true);

    // Concurrent submissions: one opens, the others find it open.
    let other = app.account("c2").await;
    let body = json!({"category": "dissident", "statement": "s"});
    let results = futures_util::future::join_all(
        (0..6).map(|_| submit_as(&app, &app.backend_key, &other, body.clone())),
    )
    .await;
    let codes: Vec<u16> = results.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(codes.iter().filter(|c| **c == 201).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 409).count(), 5, "{codes:?}");
}

#[tokio::test]
async fn the_submitter_can_never_decide_its_own_request() {
    let app = spawn_app().await;
    let acc = app.account("self").await;
    // An admin may submit (admins pass every role check) ...
    let res = submit_as(
        &app,
        &app.admin_key,
        &acc,
        json!({"category": "nonprofit", "statement": STATEMENT}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let eid = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // ... but never decide what it submitted, either way.
    for body in [
        approve("mine"),
        json!({"decision": "deny", "reason": "mine"}),
    ] {
        assert_problem(
            decide(&app, &app.admin_key, &eid, body).await,
            403,
            "four_eyes",
        )
        .await;
    }
    // A backend may not decide at all.
    assert_problem(
        decide(&app, &app.backend_key, &eid, approve("x")).await,
        403,
        "forbidden",
    )
    .await;
    let state = json_of(
        app.get(&format!("/v1/exceptions/{eid}"), &app.reviewer_key)
            .await,
    )
    .await;
    assert_eq!(state["status"], "pending");
    assert_eq!(state["approvals_received"], 0);
    assert_eq!(state["submitted_by"], "test-admin");

    // Another admin may.
    let other_admin = client(&app, "other-admin", "admin").await;
    let done = decided(&app, &other_admin, &eid, approve("checked")).await;
    assert_eq!(done["status"], "approved");
}

#[tokio::test]
async fn a_denial_is_final() {
    let app = spawn_app().await;
    let acc = app.account("deny").await;
    let eid = submit(&app, &acc, "dissident").await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    for (body, code) in [
        (
            json!({"decision": "deny", "reason": "  "}),
            "invalid_reason",
        ),
        (json!({"decision": "deny"}), "invalid_body"),
        (json!({"decision": "maybe", "reason": "x"}), "invalid_body"),
        (
            json!({"decision": "deny", "reason": "x", "expires_at": "2099-01-01T00:00:00Z"}),
            "invalid_expires_at",
        ),
        (
            json!({"decision": "approve", "reason": "x", "expires_at": "2001-01-01T00:00:00Z"}),
            "invalid_expires_at",
        ),
        (
            json!({"decision": "approve", "reason": "x", "expires_at": app.now() + Duration::days(1096)}),
            "invalid_expires_at",
        ),
        (
            json!({"decision": "approve", "reason": "x", "expires_at": "tomorrow"}),
            "invalid_body",
        ),
    ] {
        assert_problem(decide(&app, &app.reviewer_key, &eid, body).await, 400, code).await;
    }
    assert_problem(
        decide(
            &app,
            &app.reviewer_key,
            "exc_0000000000000000000000000000dead",
            approve("x"),
        )
        .await,
        404,
        "exception_not_found",
    )
    .await;

    // One approval, then another reviewer says no: that is the end of it.
    decided(&app, &app.reviewer_key, &eid, approve("looks fine")).await;
    let denied = decided(
        &app,
        &app.admin_key,
        &eid,
        json!({"decision": "deny", "reason": "could not be verified"}),
    )
    .await;
    assert_eq!(denied["status"], "denied");
    assert_eq!(denied["decided_by"], "test-admin");
    assert!(denied["expires_at"].is_null() && denied["evidence_id"].is_null());
    let body = assert_problem(
        decide(&app, &app.admin_key, &eid, approve("changed my mind")).await,
        409,
        "exception_decided",
    )
    .await;
    assert_eq!(body["exception_status"], "denied");
    assert_eq!(entitlement(&app, &acc).await["granted"], false);
    assert!(evidence_from(&app, &acc, &eid).await.is_null());
    let full = json_of(
        app.get(&format!("/v1/exceptions/{eid}"), &app.reviewer_key)
            .await,
    )
    .await;
    assert_eq!(full["decision_reason"], "could not be verified");
    assert_eq!(full["approvals"][0]["reason"], "looks fine");

    // Denial closes the request: a new one may be submitted.
    submit(&app, &acc, "dissident").await;
}

#[tokio::test]
async fn revocation_withdraws_the_entitlement_at_once() {
    let app = spawn_app().await;
    let acc = app.account("rev").await;
    let eid = submit(&app, &acc, "nonprofit").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoke = |key: String, reason: &'static str| {
        let app = &app;
        let eid = eid.clone();
        async move {
            app.post(
                &format!("/v1/exceptions/{eid}/revoke"),
                &key,
                &json!({"reason": reason}),
            )
            .await
        }
    };
    // Nothing to revoke while pending (a pending request is denied instead).
    let body = assert_problem(
        revoke(app.reviewer_key.clone(), "no").await,
        409,
        "exception_not_approved",
    )
    .await;
    assert_eq!(body["exception_status"], "pending");

    decided(&app, &app.reviewer_key, &eid, approve("ok")).await;
    let token = app.issue_token(&acc).await;
    assert_eq!(app.authorize(&token, None).await["allow"], true);

    assert_problem(
        revoke(app.reviewer_key.clone(), " ").await,
        400,
        "invalid_reason",
    )
    .await;
    assert_problem(revoke(app.backend_key.clone(), "x").await, 403, "forbidden").await;
    let res = revoke(app.admin_key.clone(), "the organisation was dissolved").await;
    let revoked = json_of(res).await;
    assert_eq!(revoked["status"], "revoked");
    assert_eq!(revoked["revoked_by"], "test-admin");
    assert!(revoked["revoked_at"].is_string());

    // The token issued before is refused now, on this instance, at once.
    let verdict = app.authorize(&token, None).await;
    assert_eq!(verdict["allow"], false, "{verdict}");
    assert_eq!(verdict["reason"], "not_entitled");
    assert_eq!(evidence_from(&app, &acc, &eid).await["status"], "revoked");
    assert_eq!(entitlement(&app, &acc).await["granted"], false);
    assert_problem(
        app.post(
            &format!("/v1/accounts/{acc}/tokens"),
            &app.backend_key,
            &json!({}),
        )
        .await,
        403,
        "not_entitled",
    )
    .await;

    let body = assert_problem(
        revoke(app.reviewer_key.clone(), "again").await,
        409,
        "exception_not_approved",
    )
    .await;
    assert_eq!(body["exception_status"], "revoked");
    let full = json_of(
        app.get(&format!("/v1/exceptions/{eid}"), &app.reviewer_key)
            .await,
    )
    .await;
    assert_eq!(full["revoke_reason"], "the organisation was dissolved");
}

#[tokio::test]
async fn exceptions_lapse_on_their_own_and_reviewers_see_them_coming() {
    let app = spawn_app().await;
    let acc = app.account("exp").await;
    let eid = submit(&app, &acc, "nonprofit").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let end = app.now() + Duration::days(10);
    decided(
        &app,
        &app.reviewer_key,
        &eid,
        json!({"decision": "approve", "reason": "for the conference", "expires_at": end}),
    )
    .await;
    let listed = |query: &'static str| {
        let app = &app;
        async move {
            let page = json_of(
                app.get(&format!("/v1/exceptions?{query}"), &app.reviewer_key)
                    .await,
            )
            .await;
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(listed("expiring_within_days=11").await, [eid.as_str()]);
    assert!(listed("expiring_within_days=9").await.is_empty());
    assert_eq!(listed("status=approved").await, [eid.as_str()]);
    assert!(listed("status=expired").await.is_empty());
    assert_problem(
        app.get("/v1/exceptions?expiring_within_days=0", &app.reviewer_key)
            .await,
        400,
        "invalid_expiring_within_days",
    )
    .await;

    // A token issued minutes before the end stops passing at the end, with no job running.
    app.clock.advance(Duration::days(10) - Duration::minutes(5));
    let token = app.issue_token(&acc).await;
    assert_eq!(app.authorize(&token, None).await["allow"], true);
    app.clock.advance(Duration::minutes(6));
    let verdict = app.authorize(&token, None).await;
    assert_eq!(verdict["allow"], false, "{verdict}");
    assert_eq!(verdict["reason"], "not_entitled");
    let e2ee = entitlement(&app, &acc).await;
    assert_eq!(e2ee["granted"], false);
    assert!(
        e2ee["reason"]
            .as_str()
            .unwrap()
            .contains("nonprofit evidence is no longer active"),
        "{e2ee}"
    );
    let state = json_of(
        app.get(&format!("/v1/exceptions/{eid}"), &app.backend_key)
            .await,
    )
    .await;
    assert_eq!(state["status"], "expired");
    assert_eq!(listed("status=expired").await, [eid.as_str()]);
    assert!(listed("status=approved").await.is_empty());
    assert!(listed("expiring_within_days=30").await.is_empty());

    // Maintenance records it once (and the evidence as lapsed).
    app.maintain().await;
    app.maintain().await;
    let expired: Vec<_> = audit_actions(&app, &eid)
        .await
        .into_iter()
        .filter(|(action, _)| action == "exception.expired")
        .collect();
    assert_eq!(
        expired,
        [("exception.expired".to_owned(), "system".to_owned())]
    );
    assert_eq!(evidence_from(&app, &acc, &eid).await["status"], "lapsed");
    assert_eq!(listed("status=expired").await, [eid.as_str()]);

    // An expired exception may still be revoked (for the record); a new request may follow.
    let res = app
        .post(
            &format!("/v1/exceptions/{eid}/revoke"),
            &app.reviewer_key,
            &json!({"reason": "misused"}),
        )
        .await;
    assert_eq!(json_of(res).await["status"], "revoked");
    submit(&app, &acc, "nonprofit").await;
}

#[tokio::test]
async fn the_queue_lists_oldest_first_with_filters_and_pages() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for (i, category) in ["nonprofit", "dissident", "nonprofit"].iter().enumerate() {
        let acc = app.account(&format!("q{i}")).await;
        ids.push(
            submit(&app, &acc, category).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let page = json_of(
        app.get("/v1/exceptions?status=pending&limit=2", &app.reviewer_key)
            .await,
    )
    .await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], ids[0].as_str());
    assert_eq!(items[1]["id"], ids[1].as_str());
    // The queue shows no sealed text (reading it is a separate, audited request).
    assert!(items[0].get("statement").is_none());
    assert_eq!(items[0]["submitted_by"], "test-backend");
    assert_eq!(items[0]["approvals"], json!([]));
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = json_of(
        app.get(
            &format!("/v1/exceptions?status=pending&limit=2&cursor={cursor}"),
            &app.admin_key,
        )
        .await,
    )
    .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["items"][0]["id"], ids[2].as_str());
    assert!(rest["next_cursor"].is_null());

    let dissidents = json_of(
        app.get("/v1/exceptions?category=dissident", &app.reviewer_key)
            .await,
    )
    .await;
    assert_eq!(dissidents["items"].as_array().unwrap().len(), 1);
    assert_eq!(dissidents["items"][0]["id"], ids[1].as_str());

    decided(&app, &app.reviewer_key, &ids[0], approve("ok")).await;
    let pending = json_of(
        app.get("/v1/exceptions?status=pending", &app.reviewer_key)
            .await,
    )
    .await;
    assert_eq!(pending["items"].as_array().unwrap().len(), 2);
    let acc0 = json_of(
        app.get(&format!("/v1/exceptions/{}", ids[0]), &app.backend_key)
            .await,
    )
    .await["account_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_account = json_of(
        app.get(
            &format!("/v1/exceptions?account_id={acc0}"),
            &app.reviewer_key,
        )
        .await,
    )
    .await;
    assert_eq!(by_account["items"][0]["status"], "approved");
    assert_eq!(by_account["items"].as_array().unwrap().len(), 1);

    for query in ["status=open", "category=charity", "limit=0", "cursor=%%%"] {
        let res = app
            .get(&format!("/v1/exceptions?{query}"), &app.reviewer_key)
            .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{query}");
    }
    // Only reviewers and admins see the queue or the text.
    assert_problem(
        app.get("/v1/exceptions", &app.backend_key).await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        app.get(&format!("/v1/exceptions/{}", ids[0]), &app.meeting_key)
            .await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        app.get("/v1/exceptions/nope", &app.reviewer_key).await,
        404,
        "exception_not_found",
    )
    .await;
}

#[tokio::test]
async fn sealed_text_is_only_ciphertext_at_rest_and_every_read_is_audited() {
    let app = spawn_app().await;
    let acc = app.account("sealed").await;
    let eid = submit(&app, &acc, "dissident").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    decided(
        &app,
        &app.reviewer_key,
        &eid,
        approve("Referee Hvb-5518 vouched"),
    )
    .await;

    // A copy of the database reveals none of it: not the request, not the approval's reason,
    // not the audit trail.
    let db = &app.db().await;
    let secrets = ["Zqx-7731", "Wqv-0042", "KJX-99812", "Hvb-5518", "Ministry"];
    let mut dump = String::new();
    for row in entities::exception_request::Entity::find()
        .all(db)
        .await
        .unwrap()
    {
        assert!(row.statement_sealed.is_some());
        dump.push_str(&format!("{row:?}"));
    }
    for row in entities::exception_approval::Entity::find()
        .all(db)
        .await
        .unwrap()
    {
        assert!(row.reason_sealed.is_some());
        dump.push_str(&format!("{row:?}"));
    }
    for row in entities::audit_log::Entity::find().all(db).await.unwrap() {
        dump.push_str(&format!("{row:?}"));
    }
    // Raw, too: every column of both tables as the database holds it.
    for table in ["exception_request", "exception_approval"] {
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                format!("SELECT * FROM {table}"),
            ))
            .await
            .unwrap();
        assert!(!rows.is_empty());
        for row in rows {
            for i in 0..row.column_names().len() {
                // Text columns; times and numbers cannot hold the text.
                if let Ok(Some(value)) = row.try_get_by_index::<Option<String>>(i) {
                    dump.push_str(&value);
                }
            }
        }
    }
    for secret in secrets {
        assert!(!dump.contains(secret), "{secret} found at rest");
    }

    // Reviewers and admins read it; each read is audited, naming fields, never their content.
    let audit_before = audit_actions(&app, &eid).await.len();
    let full = json_of(
        app.get(&format!("/v1/exceptions/{eid}"), &app.reviewer_key)
            .await,
    )
    .await;
    assert_eq!(full["statement"], STATEMENT);
    assert_eq!(full["organization"], ORGANIZATION);
    assert_eq!(full["reference"], REFERENCE);
    assert_eq!(full["approvals"][0]["reason"], "Referee Hvb-5518 vouched");
    json_of(
        app.get(&format!("/v1/exceptions/{eid}"), &app.admin_key)
            .await,
    )
    .await;
    // The backend's reads see no text and leave no trace.
    let backend_view = json_of(
        app.get(&format!("/v1/exceptions/{eid}"), &app.backend_key)
            .await,
    )
    .await;
    assert!(!backend_view.to_string().contains("Zqx-7731"));
    let actions = audit_actions(&app, &eid).await;
    assert_eq!(
        actions[audit_before..],
        [
            (
                "exception.statement_read".to_owned(),
                "test-reviewer".to_owned()
            ),
            (
                "exception.statement_read".to_owned(),
                "test-admin".to_owned()
            ),
        ]
    );
    let reads = json_of(
        app.get(
            &format!("/v1/admin/audit?target_id={eid}&action=exception.statement_read"),
            &app.admin_key,
        )
        .await,
    )
    .await;
    assert_eq!(
        reads["items"][0]["details"],
        json!({
            "account_id": acc,
            "fields": ["statement", "organization", "reference", "approval_reasons"]
        })
    );

    // Under another master key the text does not open.
    let other = vouch::crypto::MasterKey::new([9u8; 32]);
    let row = entities::exception_request::Entity::find_by_id(eid.clone())
        .one(db)
        .await
        .unwrap()
        .unwrap();
    let sealed = row.statement_sealed.unwrap();
    assert!(vouch::services::exceptions::sealing_key(&other)
        .open(&format!("{eid}/statement"), &sealed)
        .is_err());
    assert_eq!(
        vouch::services::exceptions::sealing_key(&app.master_key())
            .open(&format!("{eid}/statement"), &sealed)
            .unwrap(),
        STATEMENT.as_bytes()
    );
}

#[tokio::test]
async fn sealed_text_is_purged_the_configured_days_after_the_decision() {
    let app = spawn_app_with(|s| s.exceptions.purge_statements_after_days = 30).await;
    let acc = app.account("purge").await;
    let approved = submit(&app, &acc, "nonprofit").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    decided(&app, &app.reviewer_key, &approved, approve("fine")).await;
    let pending = submit(&app, &acc, "dissident").await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    app.clock.advance(Duration::days(29));
    app.maintain().await;
    let full = json_of(
        app.get(&format!("/v1/exceptions/{approved}"), &app.reviewer_key)
            .await,
    )
    .await;
    assert_eq!(full["statement"], STATEMENT);

    app.clock.advance(Duration::days(2));
    app.maintain().await;
    let full = json_of(
        app.get(&format!("/v1/exceptions/{approved}"), &app.reviewer_key)
            .await,
    )
    .await;
    assert!(full.get("statement").is_none(), "{full}");
    assert!(full["approvals"][0].get("reason").is_none());
    assert!(full["statements_purged_at"].is_string());
    // The decision stands: purging text withdraws nothing.
    assert_eq!(full["status"], "approved");
    assert_eq!(entitlement(&app, &acc).await["granted"], true);
    // An undecided request keeps its statement.
    let open = json_of(
        app.get(&format!("/v1/exceptions/{pending}"), &app.reviewer_key)
            .await,
    )
    .await;
    assert_eq!(open["statement"], STATEMENT);

    let db = &app.db().await;
    let row = entities::exception_request::Entity::find_by_id(approved.clone())
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert!(row.statement_sealed.is_none() && row.organization_sealed.is_none());
    assert!(row.reference_sealed.is_none() && row.purged_at.is_some());
    let actions: Vec<String> = audit_actions(&app, &approved)
        .await
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "exception.statements_purged")
            .count(),
        1,
        "{actions:?}"
    );
    // Reading a purged request reads nothing sealed, so it is not recorded as a read.
    assert_eq!(actions.last().unwrap(), "exception.statements_purged");
}

#[tokio::test]
async fn deleting_the_account_erases_its_exceptions() {
    let app = spawn_app().await;
    let acc = app.account("gone").await;
    let approved = submit(&app, &acc, "nonprofit").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    decided(&app, &app.reviewer_key, &approved, approve("ok")).await;
    submit(&app, &acc, "dissident").await;
    let keep = app.account("stays").await;
    let kept = submit(&app, &keep, "dissident").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    decided(&app, &app.reviewer_key, &kept, approve("one of two")).await;

    let res = app
        .delete(&format!("/v1/accounts/{acc}"), &app.backend_key)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.get(&format!("/v1/exceptions/{approved}"), &app.reviewer_key)
            .await,
        404,
        "exception_not_found",
    )
    .await;
    let db = &app.db().await;
    let requests = entities::exception_request::Entity::find()
        .all(db)
        .await
        .unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].id, kept);
    let approvals = entities::exception_approval::Entity::find()
        .all(db)
        .await
        .unwrap();
    assert_eq!(approvals.len(), 1);
    assert_eq!(approvals[0].exception_id, kept);

    let deleted = json_of(
        app.get(
            &format!("/v1/admin/audit?target_id={acc}&action=account.deleted"),
            &app.admin_key,
        )
        .await,
    )
    .await;
    assert_eq!(deleted["items"][0]["details"]["exceptions_erased"], 2);
    let queue = json_of(app.get("/v1/exceptions", &app.reviewer_key).await).await;
    assert_eq!(queue["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn every_action_is_audited_and_tampering_with_one_is_found() {
    let app = spawn_app().await;
    let second = client(&app, "second-reviewer", "reviewer").await;
    let acc = app.account("audited").await;
    let eid = submit(&app, &acc, "dissident").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    decided(&app, &app.reviewer_key, &eid, approve("one")).await;
    decided(&app, &second, &eid, approve("two")).await;
    json_of(
        app.get(&format!("/v1/exceptions/{eid}"), &app.reviewer_key)
            .await,
    )
    .await;
    app.post(
        &format!("/v1/exceptions/{eid}/revoke"),
        &app.admin_key,
        &json!({"reason": "abuse"}),
    )
    .await;
    let denied = submit(&app, &acc, "nonprofit").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    decided(
        &app,
        &app.reviewer_key,
        &denied,
        json!({"decision": "deny", "reason": "no"}),
    )
    .await;

    let pairs = |v: &[(&str, &str)]| {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        audit_actions(&app, &eid).await,
        pairs(&[
            ("exception.submitted", "test-backend"),
            ("exception.approval_recorded", "test-reviewer"),
            ("exception.approval_recorded", "second-reviewer"),
            ("exception.approved", "second-reviewer"),
            ("exception.statement_read", "test-reviewer"),
            ("exception.revoked", "test-admin"),
        ])
    );
    assert_eq!(
        audit_actions(&app, &denied).await,
        pairs(&[
            ("exception.submitted", "test-backend"),
            ("exception.denied", "test-reviewer"),
        ])
    );
    // The evidence changes are audited on the account.
    let on_account = json_of(
        app.get(
            &format!("/v1/admin/audit?target_id={acc}&target_type=account"),
            &app.admin_key,
        )
        .await,
    )
    .await;
    let evidence: Vec<(Value, Value)> = on_account["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("evidence."))
        .map(|e| {
            (
                e["details"]["source"].clone(),
                e["details"]["status"].clone(),
            )
        })
        .collect();
    let source = json!(format!("exception:{eid}"));
    assert_eq!(
        evidence,
        [
            (source.clone(), json!("revoked")),
            (source, json!("active"))
        ]
    );
    // Details never carry the text.
    let all = json_of(
        app.get(
            "/v1/admin/audit?target_type=exception&limit=200",
            &app.admin_key,
        )
        .await,
    )
    .await;
    assert_eq!(all["items"].as_array().unwrap().len(), 8);
    let text = all.to_string();
    for secret in [
        "Zqx-7731",
        "Wqv-0042",
        "KJX-99812",
        "abuse",
        "\"one\"",
        "\"two\"",
    ] {
        assert!(!text.contains(secret), "{secret} in the audit log");
    }
    // Time filters.
    let future =
        (app.now() + Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let none = json_of(
        app.get(
            &format!("/v1/admin/audit?target_type=exception&since={future}"),
            &app.admin_key,
        )
        .await,
    )
    .await;
    assert_eq!(none["items"], json!([]));
    let before = json_of(
        app.get(
            &format!("/v1/admin/audit?target_type=exception&until={future}&limit=200"),
            &app.admin_key,
        )
        .await,
    )
    .await;
    assert_eq!(before["items"].as_array().unwrap().len(), 8);
    assert_problem(
        app.get("/v1/admin/audit?since=yesterday", &app.admin_key)
            .await,
        400,
        "invalid_query",
    )
    .await;

    // Someone with database access makes the approval look like another reviewer's.
    let approved = json_of(
        app.get(
            &format!("/v1/admin/audit?target_id={eid}&action=exception.approved"),
            &app.admin_key,
        )
        .await,
    )
    .await;
    let seq = approved["items"][0]["seq"].as_i64().unwrap();
    let db = &app.db().await;
    db.execute_raw(Statement::from_string(
        db.get_database_backend(),
        format!("UPDATE audit_log SET actor = 'test-reviewer' WHERE seq = {seq}"),
    ))
    .await
    .unwrap();
    let report = json_of(app.get("/v1/admin/audit/verify", &app.admin_key).await).await;
    assert_eq!(report["intact"], false);
    assert_eq!(report["first_broken_seq"], seq);
}

#[tokio::test]
async fn reviewers_can_read_a_request_without_opening_its_sealed_text() {
    let app = spawn_app().await;
    let acc = app.account("closed-read").await;
    let eid = submit(&app, &acc, "dissident").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    decided(&app, &app.reviewer_key, &eid, approve("Referee Hvb-5518")).await;
    let before = audit_actions(&app, &eid).await;

    for key in [&app.reviewer_key, &app.admin_key] {
        let res = app
            .get(&format!("/v1/exceptions/{eid}?sealed=false"), key)
            .await;
        assert_eq!(res.headers()["cache-control"], "no-store");
        let closed = json_of(res).await;
        // Who acted and the approvals, as in the queue; none of the sealed text.
        assert_eq!(closed["submitted_by"], "test-backend");
        assert_eq!(closed["approvals"][0]["reviewer"], "test-reviewer");
        assert_eq!(closed["approvals_received"], 1);
        assert_eq!(closed["approvals_required"], 2);
        for field in ["statement", "organization", "reference"] {
            assert!(closed.get(field).is_none(), "{field}: {closed}");
        }
        assert!(closed["approvals"][0].get("reason").is_none(), "{closed}");
        assert!(!closed.to_string().contains("Zqx-7731"));
    }
    // Nothing was opened, so nothing was audited.
    assert_eq!(audit_actions(&app, &eid).await, before);

    // `sealed=true` is the default: opened and audited.
    let opened = json_of(
        app.get(
            &format!("/v1/exceptions/{eid}?sealed=true"),
            &app.reviewer_key,
        )
        .await,
    )
    .await;
    assert_eq!(opened["statement"], STATEMENT);
    let after = audit_actions(&app, &eid).await;
    assert_eq!(
        after.last(),
        Some(&(
            "exception.statement_read".to_owned(),
            "test-reviewer".to_owned()
        ))
    );
    assert_eq!(after.len(), before.len() + 1);

    // Backends see the state either way.
    let backend = json_of(
        app.get(
            &format!("/v1/exceptions/{eid}?sealed=true"),
            &app.backend_key,
        )
        .await,
    )
    .await;
    assert!(backend.get("statement").is_none() && backend.get("approvals").is_none());

    assert_problem(
        app.get(
            &format!("/v1/exceptions/{eid}?sealed=maybe"),
            &app.reviewer_key,
        )
        .await,
        400,
        "invalid_query",
    )
    .await;
}

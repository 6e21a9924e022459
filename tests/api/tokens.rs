//! Evidence, the entitlement decision, and token issuance.

use chrono::Duration;
use serde_json::{json, Value};
use vouch::domain::evidence::{EvidenceKind::*, EvidenceStatus::*};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, token_part};

const JKT: &str = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

#[tokio::test]
async fn evidence_is_listed_with_its_effective_status() {
    let app = spawn_app().await;
    let id = app.account("ev").await;
    let soon = app.now() + Duration::seconds(60);
    app.add_evidence(&id, Email, Active, None).await;
    app.add_evidence(&id, Nonprofit, Active, Some(soon)).await;
    app.add_evidence(&id, Payment, Revoked, None).await;

    let page: Value = app
        .get(&format!("/v1/accounts/{id}/evidence"), &app.reviewer_key)
        .await
        .json()
        .await
        .unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    let by_kind = |k: &str| items.iter().find(|e| e["kind"] == k).unwrap().clone();
    assert_eq!(by_kind("email")["status"], "active");
    assert_eq!(by_kind("email")["source"], "test:email");
    assert_eq!(by_kind("payment")["status"], "revoked");
    assert_eq!(by_kind("nonprofit")["status"], "active");
    for field in [
        "id",
        "kind",
        "status",
        "source",
        "verified_at",
        "expires_at",
    ] {
        assert!(items[0].get(field).is_some(), "{field}");
    }
    let account: Value = app
        .get(&format!("/v1/accounts/{id}"), &app.backend_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(account["email_verified"], true);
    assert_eq!(account["phone_verified"], false);

    // Past its expiry, evidence reads as lapsed without anyone touching it.
    app.clock.advance(Duration::seconds(61));
    let page: Value = app
        .get(&format!("/v1/accounts/{id}/evidence"), &app.backend_key)
        .await
        .json()
        .await
        .unwrap();
    let nonprofit = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "nonprofit")
        .unwrap()
        .clone();
    assert_eq!(nonprofit["status"], "lapsed");

    let page: Value = app
        .get(
            &format!("/v1/accounts/{id}/evidence?limit=2"),
            &app.backend_key,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert!(page["next_cursor"].is_string());
    assert_problem(
        app.get(
            "/v1/accounts/acc_0000000000000000000000000000dead/evidence",
            &app.backend_key,
        )
        .await,
        404,
        "account_not_found",
    )
    .await;

    // Evidence changes are audited.
    let audit: Value = app
        .get(
            &format!("/v1/admin/audit?target_id={id}&action=evidence.added"),
            &app.admin_key,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["items"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn entitlements_explain_the_decision() {
    let app = spawn_app().await;
    let id = app.account("ent").await;
    let path = format!("/v1/accounts/{id}/entitlements");

    app.add_evidence(&id, Email, Active, None).await;
    let body: Value = app
        .get(&path, &app.reviewer_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["account_id"], id.as_str());
    assert_eq!(body["policy"], "verified/v1");
    let e2ee = &body["entitlements"]["e2ee"];
    assert_eq!(e2ee["granted"], false);
    assert_eq!(e2ee["satisfied_by"], json!([]));
    assert_eq!(
        e2ee["missing"],
        json!([["payment"], ["phone"], ["nonprofit"], ["dissident"]])
    );
    assert!(
        e2ee["reason"]
            .as_str()
            .unwrap()
            .contains("email alone is not enough"),
        "{e2ee}"
    );

    app.add_evidence(&id, Phone, Active, None).await;
    let body: Value = app.get(&path, &app.backend_key).await.json().await.unwrap();
    let e2ee = &body["entitlements"]["e2ee"];
    assert_eq!(e2ee["granted"], true);
    assert_eq!(e2ee["satisfied_by"], json!(["phone"]));
    assert_eq!(e2ee["missing"], json!([]));

    app.patch(
        &format!("/v1/accounts/{id}"),
        &app.admin_key,
        &json!({"status": "suspended"}),
    )
    .await;
    let body: Value = app.get(&path, &app.backend_key).await.json().await.unwrap();
    assert_eq!(body["entitlements"]["e2ee"]["granted"], false);
    assert!(body["entitlements"]["e2ee"]["reason"]
        .as_str()
        .unwrap()
        .contains("suspended"));
}

#[tokio::test]
async fn paid_only_preset_ignores_phones() {
    let app = spawn_app_with(|s| s.policy.preset = "paid-only".into()).await;
    let id = app.entitled_account("phone-only").await;
    let res = app
        .post(
            &format!("/v1/accounts/{id}/tokens"),
            &app.backend_key,
            &json!({}),
        )
        .await;
    let problem = assert_problem(res, 403, "not_entitled").await;
    assert_eq!(
        problem["missing"],
        json!([["payment"], ["nonprofit"], ["dissident"]])
    );
    assert_eq!(problem["policy"], "paid-only/v1");
    app.add_evidence(&id, Payment, Active, None).await;
    let token = app.issue_token(&id).await;
    assert_eq!(token_part(&token, 1)["evidence"], json!(["payment"]));
}

#[tokio::test]
async fn a_custom_policy_from_configuration_is_applied() {
    let app = spawn_app_with(|s| {
        s.policy.preset = "strict".into();
        s.policy.entitlements = Some(
            [(
                "e2ee".to_owned(),
                vec![
                    vec!["payment".to_owned()],
                    vec!["phone".to_owned(), "email".to_owned()],
                ],
            )]
            .into_iter()
            .collect(),
        );
    })
    .await;
    let id = app.entitled_account("custom").await;
    let body: Value = app
        .get(&format!("/v1/accounts/{id}/entitlements"), &app.backend_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["policy"], "strict/custom");
    assert_eq!(
        body["entitlements"]["e2ee"]["missing"],
        json!([["payment"], ["email"]])
    );
    app.add_evidence(&id, Email, Active, None).await;
    let token = app.issue_token(&id).await;
    assert_eq!(token_part(&token, 1)["evidence"], json!(["email", "phone"]));
}

#[tokio::test]
async fn issued_tokens_carry_exactly_the_contract_claims() {
    let app = spawn_app().await;
    let id = app.entitled_account("claims").await;
    let before = app.now().timestamp();
    let issued = app.issue(&id, json!({})).await;
    assert_eq!(issued["token_type"], "e2ee-ent+jwt");
    let token = issued["token"].as_str().unwrap();

    let header = token_part(token, 0);
    assert_eq!(
        header,
        json!({"alg": "EdDSA", "typ": "e2ee-ent+jwt", "kid": issued["kid"]})
    );
    let claims = token_part(token, 1);
    let keys: Vec<&str> = claims
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["aud", "ent", "evidence", "exp", "iat", "iss", "jti", "nbf", "status", "sub"],
        "{claims}"
    );
    let reference = &claims["status"]["status_list"];
    assert!(reference["idx"].is_u64(), "{claims}");
    assert!(reference["uri"]
        .as_str()
        .unwrap()
        .starts_with("http://localhost:8080/v1/status-lists/"));
    assert_eq!(claims["iss"], "http://localhost:8080");
    assert_eq!(claims["sub"], id.as_str());
    assert_eq!(claims["aud"], "meeting");
    assert_eq!(claims["ent"], json!(["e2ee"]));
    assert_eq!(claims["evidence"], json!(["phone"]));
    let iat = claims["iat"].as_i64().unwrap();
    assert!(iat >= before && iat <= before + 5);
    assert_eq!(claims["nbf"], iat);
    assert_eq!(claims["exp"].as_i64().unwrap() - iat, 600);
    assert!(claims["jti"].as_str().unwrap().len() >= 22);
    assert!(claims.get("cnf").is_none());
    let expires_at =
        chrono::DateTime::parse_from_rfc3339(issued["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(expires_at.timestamp(), claims["exp"].as_i64().unwrap());
    // No personal data.
    assert!(!token_part(token, 1).to_string().contains("example.org"));

    let other = app.issue_token(&id).await;
    assert_ne!(
        token_part(&other, 1)["jti"],
        claims["jti"],
        "every token has its own jti"
    );
}

#[tokio::test]
async fn issuance_options_are_validated() {
    let app =
        spawn_app_with(|s| s.tokens.audiences = vec!["meeting".into(), "meeting-eu".into()]).await;
    let id = app.entitled_account("opts").await;
    let path = format!("/v1/accounts/{id}/tokens");

    let issued = app
        .issue(
            &id,
            json!({"audience": "meeting-eu", "ttl_seconds": 3600, "device_jkt": JKT}),
        )
        .await;
    let claims = token_part(issued["token"].as_str().unwrap(), 1);
    assert_eq!(claims["aud"], "meeting-eu");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert_eq!(claims["cnf"], json!({"jkt": JKT}));

    for (body, code) in [
        (json!({"audience": "elsewhere"}), "invalid_audience"),
        (json!({"ttl_seconds": 3601}), "invalid_ttl"),
        (json!({"ttl_seconds": 0}), "invalid_ttl"),
        (json!({"ttl_seconds": -5}), "invalid_body"),
        (json!({"device_jkt": "short"}), "invalid_device_jkt"),
        (
            json!({"device_jkt": "a".repeat(42) + "!"}),
            "invalid_device_jkt",
        ),
        (json!({"scope": "all"}), "invalid_body"),
    ] {
        assert_problem(app.post(&path, &app.backend_key, &body).await, 400, code).await;
    }
}

#[tokio::test]
async fn accounts_without_a_basis_get_no_token() {
    let app = spawn_app().await;
    let id = app.account("nobody").await;
    let path = format!("/v1/accounts/{id}/tokens");
    let problem = assert_problem(
        app.post(&path, &app.backend_key, &json!({})).await,
        403,
        "not_entitled",
    )
    .await;
    assert_eq!(
        problem["missing"],
        json!([["payment"], ["phone"], ["nonprofit"], ["dissident"]])
    );
    assert_eq!(problem["entitlement"], "e2ee");

    app.add_evidence(&id, Email, Active, None).await;
    assert_problem(
        app.post(&path, &app.backend_key, &json!({})).await,
        403,
        "not_entitled",
    )
    .await;

    app.add_evidence(&id, Phone, Active, None).await;
    app.issue_token(&id).await;

    app.patch(
        &format!("/v1/accounts/{id}"),
        &app.admin_key,
        &json!({"status": "suspended"}),
    )
    .await;
    // Suspended: no evidence would help, so not `not_entitled` with a `missing` list.
    let problem = assert_problem(
        app.post(&path, &app.backend_key, &json!({})).await,
        403,
        "account_suspended",
    )
    .await;
    assert!(problem["detail"].as_str().unwrap().contains("suspended"));
    assert_eq!(problem["required_actions"], json!([]));
    assert!(problem.get("missing").is_none(), "{problem}");

    assert_problem(
        app.post(
            "/v1/accounts/acc_0000000000000000000000000000dead/tokens",
            &app.backend_key,
            &json!({}),
        )
        .await,
        404,
        "account_not_found",
    )
    .await;
}

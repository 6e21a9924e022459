//! Four eyes by distinct people: keys are bound to principals, and approvals count principals.

use migration::MigratorTrait;
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Database};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, spawn_with_settings, test_settings, TestApp};

/// Create a client bound to `principal`; returns its key.
async fn client(app: &TestApp, name: &str, principal: &str, role: &str) -> String {
    let res = app
        .post(
            "/v1/admin/clients",
            &app.admin_key,
            &json!({"name": name, "principal": principal, "role": role}),
        )
        .await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["principal"], principal);
    body["key"].as_str().unwrap().to_owned()
}

async fn submit(app: &TestApp, key: &str, account_id: &str) -> String {
    let res = app
        .post(
            &format!("/v1/accounts/{account_id}/exceptions"),
            key,
            &json!({"category": "dissident", "statement": "I report on corruption"}),
        )
        .await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn approve(app: &TestApp, key: &str, eid: &str) -> reqwest::Response {
    app.post(
        &format!("/v1/exceptions/{eid}/decision"),
        key,
        &json!({"decision": "approve", "reason": "checked"}),
    )
    .await
}

#[tokio::test]
async fn two_keys_of_one_principal_are_one_reviewer() {
    let app = spawn_app().await;
    let account = app.account("dissident").await;
    let eid = submit(&app, &app.backend_key, &account).await;

    // Alice holds two reviewer keys and an admin key (admins pass every role check).
    let alice_1 = client(&app, "alice-review-1", "alice", "reviewer").await;
    let alice_2 = client(&app, "alice-review-2", "alice", "reviewer").await;
    let alice_admin = client(&app, "alice-admin", "alice", "admin").await;

    let first = approve(&app, &alice_1, &eid).await;
    assert_eq!(first.status(), StatusCode::OK);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["status"], "pending");
    assert_eq!(first["approvals"][0]["principal"], "alice");
    for key in [&alice_2, &alice_admin] {
        assert_problem(approve(&app, key, &eid).await, 409, "already_approved").await;
    }
    let state: Value = app
        .get(&format!("/v1/exceptions/{eid}"), &app.reviewer_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(state["status"], "pending", "{state}");
    assert_eq!(state["approvals_received"], 1);
    assert_eq!(state["submitted_by_principal"], "test-backend");

    // A second person completes it.
    let done = approve(&app, &app.reviewer_key, &eid).await;
    assert_eq!(done.status(), StatusCode::OK);
    let done: Value = done.json().await.unwrap();
    assert_eq!(done["status"], "approved", "{done}");
    let principals: Vec<&str> = done["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["principal"].as_str().unwrap())
        .collect();
    assert_eq!(principals, ["alice", "test-reviewer"]);

    // Each approval's audit entry names the principal and who created its key.
    let audit: Value = app
        .get(
            &format!("/v1/admin/audit?target_id={eid}&action=exception.approval_recorded"),
            &app.admin_key,
        )
        .await
        .json()
        .await
        .unwrap();
    let mut entries: Vec<(String, String, String)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["details"]["principal"].as_str().unwrap().to_owned(),
                e["details"]["key_created_by"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    entries.sort();
    assert_eq!(
        entries,
        [
            ("alice-review-1".into(), "alice".into(), "test-admin".into()),
            (
                "test-reviewer".into(),
                "test-reviewer".into(),
                "test".into()
            ),
        ]
    );
}

#[tokio::test]
async fn the_submitters_principal_cannot_decide_with_another_key() {
    let app = spawn_app().await;
    let account = app.account("self").await;
    let bob_backend = client(&app, "bob-backend", "bob", "backend").await;
    let bob_reviewer = client(&app, "bob-reviewer", "bob", "reviewer").await;
    let eid = submit(&app, &bob_backend, &account).await;
    for body in [
        json!({"decision": "approve", "reason": "mine"}),
        json!({"decision": "deny", "reason": "mine"}),
    ] {
        assert_problem(
            app.post(
                &format!("/v1/exceptions/{eid}/decision"),
                &bob_reviewer,
                &body,
            )
            .await,
            403,
            "four_eyes",
        )
        .await;
    }
    let state: Value = app
        .get(&format!("/v1/exceptions/{eid}"), &app.reviewer_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(state["approvals_received"], 0, "{state}");
}

#[tokio::test]
async fn principals_default_to_the_name_are_listed_and_validated() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/v1/admin/clients",
            &app.admin_key,
            &json!({"name": "meet-eu", "role": "meeting"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.json::<Value>().await.unwrap()["principal"], "meet-eu");
    let list: Value = app
        .get("/v1/admin/clients", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    for item in list["items"].as_array().unwrap() {
        assert_eq!(item["principal"], item["name"], "{item}");
    }
    assert_problem(
        app.post(
            "/v1/admin/clients",
            &app.admin_key,
            &json!({"name": "x", "principal": "no spaces please", "role": "reviewer"}),
        )
        .await,
        400,
        "invalid_principal",
    )
    .await;
}

#[tokio::test]
async fn existing_clients_migrate_to_their_own_principal() {
    let settings = test_settings().await;
    let db = Database::connect(settings.database_url.expose_secret())
        .await
        .unwrap();
    // The schema as it was before principals existed, with a client in it.
    let before = migration::Migrator::migrations()
        .iter()
        .position(|m| m.name() == "m20261201_110000_principals")
        .unwrap() as u32;
    migration::Migrator::up(&db, Some(before)).await.unwrap();
    db.execute_unprepared(
        "INSERT INTO api_client (id, name, role, key_hash, key_prefix, created_at, created_by) \
         VALUES ('cli_old', 'old-reviewer', 'reviewer', 'h', 'vk_old', '2026-11-01 00:00:00+00:00', 'cli')",
    )
    .await
    .unwrap();
    db.close().await.unwrap();

    let app = spawn_with_settings(settings, false).await;
    use sea_orm::EntityTrait;
    let old = entities::api_client::Entity::find_by_id("cli_old")
        .one(&app.db().await)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.principal, "old-reviewer");
}

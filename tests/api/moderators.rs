//! The `moderator` role (trust and safety): find accounts, suspend and reactivate them, revoke
//! tokens; nothing else (the role matrix in roles.rs covers every route).

use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, output, spawn_app, spawn_with_settings, test_settings};

#[tokio::test]
async fn a_moderator_finds_suspends_and_reactivates_an_account_and_is_the_audited_actor() {
    let app = spawn_app().await;
    let id = app.entitled_account("reported-user").await;
    let token = app.issue_token(&id).await;
    let key = &app.moderator_key;

    // Found by the platform's user id, the way a report names someone.
    let found: Value = app
        .get("/v1/accounts?external_id=reported-user", key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["items"][0]["id"], id.as_str());
    let path = format!("/v1/accounts/{id}");
    assert_eq!(app.get(&path, key).await.status(), 200);

    let res = app.patch(&path, key, &json!({"status": "suspended"})).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "suspended");
    let decision = app.authorize(&token, None).await;
    assert_eq!(decision["allow"], false, "{decision}");
    assert_eq!(decision["reason"], "account_suspended");

    let res = app.patch(&path, key, &json!({"status": "active"})).await;
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "active");
    assert_eq!(app.authorize(&token, None).await["allow"], true);

    let audit: Value = app
        .get(
            &format!("/v1/admin/audit?target_id={id}&actor=test-moderator"),
            &app.admin_key,
        )
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
    assert_eq!(actions, ["account.reactivated", "account.suspended"]);
}

#[tokio::test]
async fn a_moderator_may_not_change_a_display_name_and_a_backend_may_not_change_a_status() {
    let app = spawn_app().await;
    let id = app.account("named").await;
    let path = format!("/v1/accounts/{id}");
    for body in [
        json!({"display_name": "Someone else"}),
        json!({"display_name": null}),
        json!({"status": "suspended", "display_name": "Someone else"}),
    ] {
        let res = app.patch(&path, &app.moderator_key, &body).await;
        assert_problem(res, 403, "forbidden").await;
    }
    let res = app
        .patch(&path, &app.backend_key, &json!({"status": "suspended"}))
        .await;
    assert_problem(res, 403, "forbidden").await;
    // Refusals change nothing: not the status sent alongside, not the name.
    let account: Value = app.get(&path, &app.admin_key).await.json().await.unwrap();
    assert_eq!(account["status"], "active");
    assert_eq!(account["display_name"], Value::Null);
    // An empty patch is no change, so it is allowed.
    let res = app.patch(&path, &app.moderator_key, &json!({})).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_moderator_revokes_a_token() {
    let app = spawn_app().await;
    let id = app.entitled_account("abuser").await;
    let token = app.issue_token(&id).await;
    let res = app
        .post(
            "/v1/tokens/revoke",
            &app.moderator_key,
            &json!({"token": token}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let decision = app.authorize(&token, None).await;
    assert_eq!(decision["reason"], "revoked", "{decision}");
}

#[tokio::test]
async fn moderator_keys_come_from_the_admin_api_and_the_cli() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/v1/admin/clients",
            &app.admin_key,
            &json!({"name": "moderator-kim", "role": "moderator", "principal": "kim@example.org"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["role"], "moderator");
    let me: Value = app
        .get("/v1/me", created["key"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "moderator");

    let settings = test_settings().await;
    // Only `serve` and `migrate` create a database.
    let mut migrate = crate::helpers::vouch_command();
    migrate
        .env("VOUCH_DATABASE_URL", settings.database_url.expose_secret())
        .env(
            "VOUCH_MASTER_KEY",
            settings.master_key.as_ref().unwrap().expose_secret(),
        )
        .arg("migrate");
    assert!(output(&mut migrate).await.status.success());
    let mut cmd = crate::helpers::vouch_command();
    cmd.env("VOUCH_DATABASE_URL", settings.database_url.expose_secret())
        .env(
            "VOUCH_MASTER_KEY",
            settings.master_key.as_ref().unwrap().expose_secret(),
        )
        .args([
            "clients",
            "create",
            "--name",
            "mod-cli",
            "--role",
            "moderator",
        ]);
    let out = output(&mut cmd).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let cli_app = spawn_with_settings(settings, false).await;
    let me: Value = cli_app.get("/v1/me", &key).await.json().await.unwrap();
    assert_eq!(me["role"], "moderator", "{me}");
}

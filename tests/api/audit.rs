use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};

use crate::helpers::spawn_app;

#[tokio::test]
async fn changes_are_audited_in_a_verifiable_chain_and_tampering_is_found() {
    let app = spawn_app().await;
    let id = app.create_account("audited").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.patch(
        &format!("/v1/accounts/{id}"),
        &app.admin_key,
        &json!({"status": "suspended"}),
    )
    .await;

    let page: Value = app
        .get("/v1/admin/audit?limit=2", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["action"], "account.suspended");
    assert_eq!(items[0]["actor"], "test-admin");
    assert_eq!(
        items[0]["details"],
        json!({"from": "active", "to": "suspended"})
    );
    assert_eq!(items[1]["action"], "account.created");
    assert_eq!(items[1]["actor"], "test-backend");
    assert_eq!(items[0]["prev_hash"], items[1]["hash"]);
    let next = page["next_cursor"].as_str().unwrap();
    let rest: Value = app
        .get(
            &format!("/v1/admin/audit?limit=200&cursor={next}"),
            &app.admin_key,
        )
        .await
        .json()
        .await
        .unwrap();
    // the first signing key and four seeded clients, then the account
    assert_eq!(rest["items"].as_array().unwrap().len(), 5);
    let by_actor: Value = app
        .get("/v1/admin/audit?actor=test-backend", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_actor["items"].as_array().unwrap().len(), 1);

    let report: Value = app
        .get("/v1/admin/audit/verify", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        report,
        json!({"entries": 7, "intact": true, "first_broken_seq": null, "problem": null})
    );

    // Someone with database access rewrites history.
    let db = app.state.db.conn();
    db.execute_raw(Statement::from_string(
        db.get_database_backend(),
        "UPDATE audit_log SET actor = 'someone-else' WHERE seq = 6".to_owned(),
    ))
    .await
    .unwrap();
    let report: Value = app
        .get("/v1/admin/audit/verify", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["intact"], false);
    assert_eq!(report["first_broken_seq"], 6);
    assert_eq!(report["entries"], 5);

    // The CLI finds it too, and fails.
    let out = crate::helpers::output(
        crate::helpers::vouch_command()
            .args(["audit", "verify"])
            .env("VOUCH_DATABASE_URL", &app.database_url)
            .env("VOUCH_MASTER_KEY", base64_key()),
    )
    .await;
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("BROKEN at entry 6"), "{stdout}");

    // Deleting a row is found as well.
    db.execute_raw(Statement::from_string(
        db.get_database_backend(),
        "DELETE FROM audit_log WHERE seq = 3".to_owned(),
    ))
    .await
    .unwrap();
    let report: Value = app
        .get("/v1/admin/audit/verify", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["first_broken_seq"], 4);
}

#[tokio::test]
async fn concurrent_changes_keep_one_unbroken_chain() {
    let app = spawn_app().await;
    let bodies: Vec<Value> = (0..20)
        .map(|i| json!({"external_id": format!("c{i}")}))
        .collect();
    futures_util::future::join_all(
        bodies
            .iter()
            .map(|b| app.post("/v1/accounts", &app.backend_key, b)),
    )
    .await;
    let report: Value = app
        .get("/v1/admin/audit/verify", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["intact"], true, "{report}");
    assert_eq!(report["entries"], 25);
}

pub fn base64_key() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode([1u8; 32])
}

use entities::audit_log;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ConnectionTrait, EntityTrait, IntoActiveModel, QueryOrder,
    Statement,
};
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use vouch::{db::Db, services::audit};

use crate::helpers::{spawn_app, spawn_with_settings, test_settings, TestApp};

/// The `vouch` CLI on the app's database, with its master key.
async fn vouch(app: &TestApp, args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(args)
        .env("VOUCH_DATABASE_URL", &app.database_url)
        .env(
            "VOUCH_MASTER_KEY",
            app.settings.master_key.as_ref().unwrap().expose_secret(),
        )
        .env("VOUCH_LOG__FORMAT", "pretty")
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// What someone with write access to the database but not the master key can do: change an
/// entry, then recompute every later link with plain SHA-256 as the chain did before keying.
async fn rewrite_from(app: &TestApp, seq: i64, actor: &str) {
    let db = &app.db().await;
    let rows = audit_log::Entity::find()
        .order_by_asc(audit_log::Column::Seq)
        .all(db)
        .await
        .unwrap();
    let mut prev = audit::GENESIS.to_owned();
    for mut row in rows {
        if row.seq >= seq {
            if row.seq == seq {
                row.actor = actor.to_owned();
            }
            row.prev_hash = prev.clone();
            row.hash = audit::entry_hash(&row);
            let mut active = row.clone().into_active_model();
            active.actor = Set(row.actor.clone());
            active.prev_hash = Set(row.prev_hash.clone());
            active.hash = Set(row.hash.clone());
            active.update(db).await.unwrap();
        }
        prev = row.hash;
    }
}

async fn verify_report(app: &TestApp) -> Value {
    app.get("/v1/admin/audit/verify", &app.admin_key)
        .await
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn changes_are_audited_in_a_verifiable_chain_and_tampering_is_found() {
    let app = spawn_app().await;
    let id = app.account("audited").await;
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
    // the first signing key and five seeded clients (one per role), then the account
    assert_eq!(rest["items"].as_array().unwrap().len(), 6);
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
        json!({"entries": 8, "intact": true, "first_broken_seq": null, "problem": null})
    );

    // Someone with database access rewrites history.
    let db = &app.db().await;
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
    let (ok, out) = vouch(&app, &["audit", "verify"]).await;
    assert!(!ok);
    assert!(out.contains("BROKEN at entry 6"), "{out}");

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
    // the first signing key, five seeded clients, twenty accounts
    assert_eq!(report["entries"], 26);
}

#[tokio::test]
async fn an_edit_with_the_tail_recomputed_by_sha256_is_found() {
    let app = spawn_app().await;
    app.create_account("a").await;
    app.create_account("b").await;
    let intact = verify_report(&app).await;
    assert_eq!(intact["intact"], true, "{intact}");
    let entries = intact["entries"].as_i64().unwrap();

    rewrite_from(&app, 3, "someone-else").await;
    let report = verify_report(&app).await;
    assert_eq!(report["intact"], false, "{report}");
    assert_eq!(report["first_broken_seq"], 3);
    assert!(
        report["problem"].as_str().unwrap().contains("MAC"),
        "{report}"
    );
    let (ok, out) = vouch(&app, &["audit", "verify"]).await;
    assert!(!ok, "{out}");
    assert!(out.contains("BROKEN at entry 3"), "{out}");

    // Dropping the MACs as well does not help: a keyed chain never turns unkeyed again.
    let db = &app.db().await;
    db.execute_unprepared("UPDATE audit_log SET mac = NULL WHERE seq >= 3")
        .await
        .unwrap();
    let report = verify_report(&app).await;
    assert_eq!(report["first_broken_seq"], 3, "{report}");
    assert!(entries > 3);
}

#[tokio::test]
async fn cutting_the_newest_entries_is_found_against_a_recorded_head() {
    let app = spawn_app().await;
    app.create_account("a").await;
    let (ok, head) = vouch(&app, &["audit", "head"]).await;
    assert!(ok, "{head}");
    // stdout (the head) comes first; stderr names the database after it.
    let head = head.lines().next().unwrap_or_default().to_owned();
    let last = verify_report(&app).await["entries"].as_i64().unwrap();
    assert_eq!(head, format!("{last}:{}", last_hash(&app).await));
    let (ok, out) = vouch(&app, &["audit", "verify", "--head", &head]).await;
    assert!(ok, "{out}");

    // Later entries may follow the recorded head.
    app.create_account("b").await;
    let (ok, out) = vouch(&app, &["audit", "verify", "--head", &head]).await;
    assert!(ok, "{out}");

    // Cut the newest entries: the shorter chain is valid on its own ...
    let db = &app.db().await;
    db.execute_unprepared(&format!("DELETE FROM audit_log WHERE seq >= {}", last - 1))
        .await
        .unwrap();
    let (ok, out) = vouch(&app, &["audit", "verify"]).await;
    assert!(ok, "{out}");
    // ... but not against the head recorded before.
    let (ok, out) = vouch(&app, &["audit", "verify", "--head", &head]).await;
    assert!(!ok, "{out}");
    assert!(out.contains("entries were cut"), "{out}");

    let (ok, out) = vouch(&app, &["audit", "verify", "--head", "not-a-head"]).await;
    assert!(!ok && out.contains("--head"), "{out}");
}

async fn last_hash(app: &TestApp) -> String {
    audit_log::Entity::find()
        .order_by_desc(audit_log::Column::Seq)
        .one(&app.db().await)
        .await
        .unwrap()
        .unwrap()
        .hash
}

#[tokio::test]
async fn a_chain_from_before_keying_is_keyed_once_at_start_up() {
    let settings = test_settings().await;
    // Entries written as before the chain had a key: no MAC.
    let db = Db::connect(&settings).await.unwrap();
    db.migrate().await.unwrap();
    let txn = db.begin_write().await.unwrap();
    for i in 0..3 {
        audit::append(
            &*txn,
            chrono::Utc::now(),
            audit::Entry {
                actor: "cli",
                action: audit::AuditAction::ClientCreated,
                target_type: audit::AuditTarget::Client,
                target_id: &format!("cli_{i}"),
                details: json!({}),
            },
        )
        .await
        .unwrap();
    }
    txn.commit().await.unwrap();
    db.conn().clone().close().await.unwrap();

    let app = spawn_with_settings(settings, true).await;
    let report = verify_report(&app).await;
    assert_eq!(report["intact"], true, "{report}");
    let keyed: Value = app
        .get("/v1/admin/audit?action=audit.chain_keyed", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    let items = keyed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{keyed}");
    assert_eq!(items[0]["seq"], 4);
    assert_eq!(items[0]["details"]["legacy_entries"], 3);

    // Starting again keys nothing more.
    let again = app.spawn_sibling().await;
    let keyed: Value = again
        .get("/v1/admin/audit?action=audit.chain_keyed", &again.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(keyed["items"].as_array().unwrap().len(), 1);

    // The unkeyed entries are covered by the keyed one after them.
    rewrite_from(&app, 2, "someone-else").await;
    let report = verify_report(&app).await;
    assert_eq!(report["intact"], false, "{report}");
    assert_eq!(report["first_broken_seq"], 4, "{report}");
}

pub fn base64_key() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode([1u8; 32])
}

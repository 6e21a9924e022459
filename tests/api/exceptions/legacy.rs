//! Rows older versions wrote with the category in plaintext: sealed when the service starts,
//! still read as before through the API, the audit chain re-chained so `vouch audit verify`
//! holds (also against a head anchored before), and the raw database no longer names them.

use secrecy::ExposeSecret;
use vouch::{
    db::Db,
    services::{audit, exceptions::sealing_key},
};

use super::at_rest::{database_copy, occurrences};
use super::*;
use crate::helpers::{output, vouch_command};

/// `vouch audit verify [--head ...]` on the instance's database: (passed, output).
async fn audit_verify(app: &TestApp, head: Option<&str>) -> (bool, String) {
    let mut cmd = vouch_command();
    cmd.args(["audit", "verify"]);
    if let Some(head) = head {
        cmd.args(["--head", head]);
    }
    let out = output(
        cmd.env("VOUCH_DATABASE_URL", &app.database_url)
            .env(
                "VOUCH_MASTER_KEY",
                app.settings.master_key.as_ref().unwrap().expose_secret(),
            )
            .env("VOUCH_LOG__FORMAT", "pretty"),
    )
    .await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Write an approved dissident exception the way versions before sealing did: the category in
/// the request row, as the evidence kind, and in the audit details. Returns (request, evidence).
async fn write_the_old_way(app: &TestApp, account_id: &str) -> (String, String) {
    let now = app.now();
    let eid = "exc_0192f5c8a3b47d2e9c1f0a6b5d4e3c2b".to_owned();
    let evd = "evd_0192f5c8a3b47d2e9c1f0a6b5d4e3c2c".to_owned();
    let key = sealing_key(&app.master_key());
    let db = Db::connect(&app.settings)
        .await
        .unwrap()
        .with_audit_key(audit::chain_key(&app.master_key()));
    let txn = db.begin_write().await.unwrap();
    let backend = txn.get_database_backend();
    let expires = now + Duration::days(100);
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        "INSERT INTO exception_request (id, account_id, category, status, statement_sealed, \
         submitted_by, submitted_by_client, submitted_by_principal, submitted_at, decided_by, \
         decided_at, expires_at, evidence_id, updated_at) \
         VALUES ($1, $2, 'dissident', 'approved', $3, 'test-backend', 'cli_1', 'prn_1', $4, \
         'test-reviewer', $4, $5, $6, $4)",
        [
            eid.clone().into(),
            account_id.into(),
            key.seal(&format!("{eid}/statement"), STATEMENT.as_bytes())
                .into(),
            now.into(),
            expires.into(),
            evd.clone().into(),
        ],
    ))
    .await
    .unwrap();
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        "INSERT INTO evidence (id, account_id, kind, status, source, verified_at, expires_at, \
         created_at, updated_at) VALUES ($1, $2, 'dissident', 'active', $3, $4, $5, $4, $4)",
        [
            evd.clone().into(),
            account_id.into(),
            format!("exception:{eid}").into(),
            now.into(),
            expires.into(),
        ],
    ))
    .await
    .unwrap();
    for (action, target, id, details) in [
        (
            audit::AuditAction::ExceptionSubmitted,
            audit::AuditTarget::Exception,
            eid.as_str(),
            json!({"account_id": account_id, "category": "dissident"}),
        ),
        (
            audit::AuditAction::EvidenceAdded,
            audit::AuditTarget::Account,
            account_id,
            json!({"evidence_id": evd, "kind": "dissident", "status": "active"}),
        ),
        (
            audit::AuditAction::ExceptionApproved,
            audit::AuditTarget::Exception,
            eid.as_str(),
            json!({"account_id": account_id, "category": "dissident", "approvals": 2}),
        ),
    ] {
        audit::append(
            &*txn,
            now,
            audit::Entry {
                actor: "test-reviewer",
                action,
                target_type: target,
                target_id: id,
                details,
            },
        )
        .await
        .unwrap();
    }
    txn.commit().await.unwrap();
    db.conn().clone().close().await.unwrap();
    (eid, evd)
}

#[tokio::test]
async fn categories_stored_in_plaintext_are_sealed_at_start_up_and_read_as_before() {
    let old = spawn_app().await;
    let empty = occurrences(&database_copy(&old).await, "dissident");
    let acc = old.account("legacy-user").await;
    // Something after the old entries, so re-chaining has entries to carry along.
    let (eid, evd) = write_the_old_way(&old, &acc).await;
    old.account("after-the-old-entries").await;
    let (ok, out) = audit_verify(&old, None).await;
    assert!(ok, "{out}");
    let head_before = audit::head(&old.db().await).await.unwrap().unwrap();
    assert!(occurrences(&database_copy(&old).await, "dissident") > empty);

    // The new version starts on that database, the old one stopped.
    old.lose_database().await;
    let app = old.spawn_sibling().await;

    let db = &app.db().await;
    let row = entities::exception_request::Entity::find_by_id(eid.clone())
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.category, "sealed");
    assert!(row.category_sealed.is_some());
    let evidence_row = entities::evidence::Entity::find_by_id(evd.clone())
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(evidence_row.kind, "exception");
    let copy = database_copy(&app).await;
    assert!(
        occurrences(&copy, "dissident") <= empty,
        "{} occurrences of the category after sealing, {empty} in an empty database",
        occurrences(&copy, "dissident")
    );

    // Reviewers and backends get the category as before.
    let read = json_of(
        app.get(&format!("/v1/exceptions/{eid}"), &app.reviewer_key)
            .await,
    )
    .await;
    assert_eq!(read["category"], "dissident");
    assert_eq!(read["statement"], STATEMENT);
    let queue = json_of(
        app.get("/v1/exceptions?category=dissident", &app.reviewer_key)
            .await,
    )
    .await;
    assert_eq!(queue["items"][0]["id"], eid.as_str());
    assert_eq!(evidence_from(&app, &acc, &eid).await["kind"], "dissident");
    let e2ee = entitlement(&app, &acc).await;
    assert_eq!(e2ee["granted"], true, "{e2ee}");
    assert_eq!(e2ee["satisfied_by"], json!(["dissident"]));

    // The audit log: rewritten, re-chained, verifiable, and the old anchor still accepted.
    let (ok, out) = audit_verify(&app, None).await;
    assert!(ok, "{out}");
    let (ok, out) = audit_verify(&app, Some(&head_before)).await;
    assert!(ok, "an anchor from before the re-chaining: {out}");
    let resealed = json_of(
        app.get("/v1/admin/audit?action=audit.resealed", &app.admin_key)
            .await,
    )
    .await;
    let entry = &resealed["items"][0]["details"];
    assert_eq!(entry["rewritten"], 3, "{entry}");
    let (seq, hash) = head_before.split_once(':').unwrap();
    assert_eq!(entry["previous_head"]["seq"], seq.parse::<i64>().unwrap());
    assert!(
        !resealed.to_string().contains(hash),
        "the old head's hash is not kept"
    );
    // A head nobody recorded is still refused.
    let forged = format!("{seq}:{}", "ab".repeat(32));
    let (ok, _) = audit_verify(&app, Some(&forged)).await;
    assert!(!ok);

    // Idempotent: a further start seals nothing and re-chains nothing.
    let again = app.spawn_sibling().await;
    let resealed = json_of(
        again
            .get("/v1/admin/audit?action=audit.resealed", &again.admin_key)
            .await,
    )
    .await;
    assert_eq!(resealed["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_broken_audit_chain_is_not_re_chained() {
    let old = spawn_app().await;
    let acc = old.account("legacy-broken").await;
    write_the_old_way(&old, &acc).await;
    // Someone edited an entry without the master key.
    let db = &old.db().await;
    db.execute_unprepared("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2")
        .await
        .unwrap();

    old.lose_database().await;
    let app = old.spawn_sibling().await;
    // The rows are sealed all the same; the audit log is left as it was, still broken.
    let row = entities::exception_request::Entity::find()
        .one(&app.db().await)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.category, "sealed");
    let (ok, out) = audit_verify(&app, None).await;
    assert!(!ok, "{out}");
    assert!(out.contains("BROKEN at entry 2"), "{out}");
    let resealed = json_of(
        app.get("/v1/admin/audit?action=audit.resealed", &app.admin_key)
            .await,
    )
    .await;
    assert!(resealed["items"].as_array().unwrap().is_empty());
}

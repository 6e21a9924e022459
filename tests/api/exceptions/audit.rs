//! The audit trail of exceptions: every action with its actor, never the sealed text, time
//! filters, and tampering with an entry found.

use super::*;

/// One instance where a dissident request was approved by two reviewers, read, and revoked,
/// and a second (nonprofit) request of the same account denied.
struct History {
    app: TestApp,
    acc: String,
    /// The approved, read and revoked request.
    eid: String,
    /// The denied request.
    denied: String,
}

async fn history() -> History {
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

    History {
        app,
        acc,
        eid,
        denied,
    }
}

#[tokio::test]
async fn every_action_is_audited_with_its_actor() {
    let History {
        app,
        acc,
        eid,
        denied,
    } = history().await;
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
}

#[tokio::test]
async fn audit_details_never_carry_the_sealed_text() {
    let History { app, .. } = history().await;
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
}

#[tokio::test]
async fn the_audit_log_filters_by_time() {
    let History { app, .. } = history().await;
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
}

#[tokio::test]
async fn tampering_with_an_approval_entry_is_found() {
    let History { app, eid, .. } = history().await;
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

//! Sealed text: only ciphertext at rest, every read audited, purged on schedule, erased with
//! the account, and reviewable without opening it.

use super::*;

/// An instance with a dissident request approved with a reason that names a referee; returns
/// (instance, account, request id).
async fn approved_dissident() -> (TestApp, String, String) {
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

    (app, acc, eid)
}

#[tokio::test]
async fn sealed_text_is_only_ciphertext_at_rest() {
    let (app, _, eid) = approved_dissident().await;
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
async fn every_read_of_sealed_text_is_audited_without_its_content() {
    let (app, acc, eid) = approved_dissident().await;
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
            "fields": ["statement", "organization", "reference", "approval_reasons"],
            "principal": reads["items"][0]["details"]["principal"],
        })
    );
    assert!(reads["items"][0]["details"]["principal"].is_string());
}

/// Whether the request's statement is still there for a reviewer.
async fn statement_kept(app: &TestApp, eid: &str) -> bool {
    let full = json_of(
        app.get(&format!("/v1/exceptions/{eid}"), &app.reviewer_key)
            .await,
    )
    .await;
    full.get("statement").is_some()
}

async fn retention(app: &TestApp, eid: &str, body: Value) -> Response {
    app.post(
        &format!("/v1/exceptions/{eid}/retention"),
        &app.reviewer_key,
        &body,
    )
    .await
}

#[tokio::test]
async fn sealed_text_is_purged_after_its_retention_and_denials_keep_the_least() {
    // The defaults: 180 days after an approval ended, 30 after a denial.
    let app = spawn_app().await;
    let acc = app.account("purge").await;
    let approved = submit(&app, &acc, "nonprofit").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let end = app.now() + Duration::days(10);
    decided(
        &app,
        &app.reviewer_key,
        &approved,
        json!({"decision": "approve", "reason": "fine", "expires_at": end}),
    )
    .await;
    let denied = submit(&app, &acc, "dissident").await["id"]
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
    let revoked_acc = app.account("purge-revoked").await;
    let revoked = submit(&app, &revoked_acc, "nonprofit").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    decided(&app, &app.reviewer_key, &revoked, approve("fine")).await;
    let pending_acc = app.account("purge-pending").await;
    let pending = submit(&app, &pending_acc, "nonprofit").await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    app.clock.advance(Duration::days(20));
    let res = app
        .post(
            &format!("/v1/exceptions/{revoked}/revoke"),
            &app.reviewer_key,
            &json!({"reason": "closed"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    // Day 29: the denial is kept one more day.
    app.clock.advance(Duration::days(9));
    app.maintain().await;
    assert!(statement_kept(&app, &denied).await);
    // Day 31: denial gone; the approval (ended on day 10) and the revocation (day 20) stay.
    app.clock.advance(Duration::days(2));
    app.maintain().await;
    assert!(!statement_kept(&app, &denied).await);
    assert!(statement_kept(&app, &approved).await);
    assert!(statement_kept(&app, &revoked).await);
    // Day 189 and 191: the approval 180 days after its end.
    app.clock.advance(Duration::days(158));
    app.maintain().await;
    assert!(statement_kept(&app, &approved).await);
    app.clock.advance(Duration::days(2));
    app.maintain().await;
    assert!(!statement_kept(&app, &approved).await);
    assert!(statement_kept(&app, &revoked).await);
    // Day 201: the revoked one, 180 days after its revocation.
    app.clock.advance(Duration::days(10));
    app.maintain().await;
    assert!(!statement_kept(&app, &revoked).await);
    // An undecided request keeps its statement.
    assert!(statement_kept(&app, &pending).await);

    let full = json_of(
        app.get(&format!("/v1/exceptions/{approved}"), &app.reviewer_key)
            .await,
    )
    .await;
    assert!(full["approvals"][0].get("reason").is_none());
    assert!(full["statements_purged_at"].is_string());
    // The decision stands, category and all: purging text withdraws nothing.
    assert_eq!(full["status"], "expired");
    assert_eq!(full["category"], "nonprofit");
    let db = &app.db().await;
    let row = entities::exception_request::Entity::find_by_id(approved.clone())
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert!(row.statement_sealed.is_none() && row.organization_sealed.is_none());
    assert!(row.reference_sealed.is_none() && row.purged_at.is_some());
    assert!(row.category_sealed.is_some());
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
    // Nothing is left to hold.
    assert_problem(
        retention(&app, &approved, json!({"keep": true, "reason": "dispute"})).await,
        409,
        "exception_purged",
    )
    .await;
}

#[tokio::test]
async fn a_reviewer_holds_sealed_text_past_its_retention_until_released() {
    let app = spawn_app_with(|s| {
        s.exceptions.retention_approved_days = 30;
        s.exceptions.retention_denied_days = 7;
    })
    .await;
    let acc = app.account("held").await;
    let eid = submit(&app, &acc, "dissident").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    decided(
        &app,
        &app.reviewer_key,
        &eid,
        json!({"decision": "deny", "reason": "no"}),
    )
    .await;

    // A hold needs a reason; a release takes none; backends may not.
    assert_problem(
        retention(&app, &eid, json!({"keep": true})).await,
        400,
        "invalid_reason",
    )
    .await;
    assert_problem(
        retention(&app, &eid, json!({"keep": true, "reason": " "})).await,
        400,
        "invalid_reason",
    )
    .await;
    assert_problem(
        retention(&app, &eid, json!({"keep": false, "reason": "x"})).await,
        400,
        "invalid_reason",
    )
    .await;
    assert_problem(
        app.post(
            &format!("/v1/exceptions/{eid}/retention"),
            &app.backend_key,
            &json!({"keep": true, "reason": "x"}),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        retention(&app, "exc_missing", json!({"keep": false})).await,
        404,
        "exception_not_found",
    )
    .await;

    let held = json_of(
        retention(
            &app,
            &eid,
            json!({"keep": true, "reason": "Appeal Vrk-2291 pending"}),
        )
        .await,
    )
    .await;
    assert_eq!(held["retention_held_by"], "test-reviewer");
    assert!(held["retention_held_at"].is_string());
    assert!(held.get("retention_reason").is_none(), "{held}");
    let full = json_of(
        app.get(&format!("/v1/exceptions/{eid}"), &app.reviewer_key)
            .await,
    )
    .await;
    assert_eq!(full["retention_reason"], "Appeal Vrk-2291 pending");

    app.clock.advance(Duration::days(60));
    app.maintain().await;
    assert!(statement_kept(&app, &eid).await, "held past its retention");

    let released = json_of(retention(&app, &eid, json!({"keep": false})).await).await;
    assert!(released.get("retention_held_by").is_none(), "{released}");
    app.maintain().await;
    assert!(!statement_kept(&app, &eid).await, "purged once released");

    let actions: Vec<String> = audit_actions(&app, &eid)
        .await
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    let held_at = actions.iter().position(|a| a == "exception.retention_held");
    let released_at = actions
        .iter()
        .position(|a| a == "exception.retention_released");
    let purged_at = actions
        .iter()
        .position(|a| a == "exception.statements_purged");
    assert!(
        held_at < released_at && released_at < purged_at && held_at.is_some(),
        "{actions:?}"
    );
    // The reason is sealed at rest and never in the audit log.
    let log = json_of(
        app.get(
            &format!("/v1/admin/audit?target_id={eid}&limit=200"),
            &app.admin_key,
        )
        .await,
    )
    .await;
    assert!(!log.to_string().contains("Vrk-2291"));
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

//! After approval: revocation withdraws the entitlement at once; exceptions lapse on their own.

use super::*;

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

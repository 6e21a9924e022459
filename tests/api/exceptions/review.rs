//! Review: approvals by distinct reviewers (never the submitter), denials, the configurable
//! number of reviewers, tokens naming the exception, and the queue.

use super::*;

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

/// The category is sealed, so the queue filters after opening it, reading on in batches: pages
/// stay complete and in order however far apart the matching requests are.
#[tokio::test]
async fn the_queue_filters_by_sealed_category_across_pages() {
    let app = spawn_app().await;
    let acc = app.account("many-requests").await;
    let key = vouch::services::exceptions::sealing_key(&app.master_key());
    let now = app.now();
    let db = &app.db().await;
    // 450 requests; dissident ones at the start, past the first scan batch and at the end.
    let dissident = [3usize, 250, 251, 449];
    let mut expected = Vec::new();
    for i in 0..450usize {
        let id = format!("exc_{i:032x}");
        let category = if dissident.contains(&i) {
            expected.push(id.clone());
            "dissident"
        } else {
            "nonprofit"
        };
        db.execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "INSERT INTO exception_request (id, account_id, category, category_sealed, status, \
             submitted_by, submitted_by_client, submitted_by_principal, submitted_at, \
             updated_at) VALUES ($1, $2, 'sealed', $3, 'pending', 'b', 'c', 'p', $4, $4)",
            [
                id.clone().into(),
                acc.clone().into(),
                key.seal(&format!("{id}/category"), category.as_bytes())
                    .into(),
                now.into(),
            ],
        ))
        .await
        .unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/exceptions?category=dissident&limit=3&cursor={c}"),
            None => "/v1/exceptions?category=dissident&limit=3".to_owned(),
        };
        let page = json_of(app.get(&path, &app.reviewer_key).await).await;
        for item in page["items"].as_array().unwrap() {
            assert_eq!(item["category"], "dissident");
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, expected);
    let nonprofit = json_of(
        app.get(
            "/v1/exceptions?category=nonprofit&status=pending&limit=200",
            &app.reviewer_key,
        )
        .await,
    )
    .await;
    assert_eq!(nonprofit["items"].as_array().unwrap().len(), 200);
    assert!(nonprofit["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["category"] == "nonprofit"));
}

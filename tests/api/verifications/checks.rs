//! Checking codes: wrong codes count, codes expire, concurrent checks approve once, a new
//! code replaces the previous one.

use super::*;

#[tokio::test]
async fn wrong_codes_count_and_the_fifth_closes_the_verification() {
    let rig = rig().await;
    let account = rig.app.account("user-wrong").await;
    let (vid, code) = rig.email_code(&account, "bob@example.org").await;
    let bad = wrong(&code);
    for remaining in [4, 3, 2, 1] {
        let body = rig.check_ok(&vid, &bad).await;
        assert_eq!(
            body,
            json!({"id": vid, "status": "pending", "attempts_remaining": remaining})
        );
    }
    let body = rig.check_ok(&vid, &bad).await;
    assert_eq!(body["status"], "max_attempts_reached");
    assert_eq!(body["attempts_remaining"], 0);
    // The right code no longer helps, and is not compared.
    assert_eq!(
        rig.check_ok(&vid, &code).await["status"],
        "max_attempts_reached"
    );
    assert_eq!(
        rig.verification(&vid).await["status"],
        "max_attempts_reached"
    );
    assert_eq!(
        rig.audit_count("verification.check_failed", &account).await,
        5
    );
    assert_eq!(rig.audit_count("verification.approved", &account).await, 0);

    // Malformed codes are refused before counting.
    let (vid, _) = rig.email_code(&account, "bob2@example.org").await;
    for bad in ["12345", "1234567", "abcdef", "", " 12345"] {
        assert_problem(rig.check(&vid, bad).await, 400, "invalid_code").await;
    }
    assert_eq!(rig.verification(&vid).await["attempts_remaining"], 5);
}

#[tokio::test]
async fn codes_expire_on_time() {
    let rig = rig().await;
    let account = rig.app.account("user-expiry").await;

    let (sms_vid, sms_code) = rig.sms_code(&account, PHONE).await;
    let (email_vid, email_code) = rig.email_code(&account, "carol@example.org").await;
    rig.app.clock.advance(chrono::Duration::seconds(601));
    // SMS codes live 10 minutes.
    let body = rig.check_ok(&sms_vid, &sms_code).await;
    assert_eq!(body["status"], "expired", "{body}");
    assert_eq!(
        body["attempts_remaining"], 5,
        "an expired check is not counted"
    );
    assert_eq!(rig.verification(&sms_vid).await["status"], "expired");
    // Email codes live 30 minutes by default.
    rig.app.clock.advance(chrono::Duration::minutes(19));
    assert_eq!(
        rig.check_ok(&email_vid, &email_code).await["status"],
        "approved"
    );

    let (email_vid, email_code) = rig.email_code(&account, "carol2@example.org").await;
    rig.app.clock.advance(chrono::Duration::minutes(30));
    assert_eq!(rig.verification(&email_vid).await["status"], "expired");
    assert_eq!(
        rig.check_ok(&email_vid, &email_code).await["status"],
        "expired"
    );
    assert_eq!(rig.audit_count("verification.expired", &account).await, 2);

    // The email lifetime is configurable.
    let rig = rig_with(|s| s.verification.email_code_ttl_seconds = 120).await;
    let account = rig.app.account("user-expiry-2").await;
    let (vid, code) = rig.email_code(&account, "dan@example.org").await;
    assert!(rig.smtp.nth(1).await.data.contains("2 minutes"));
    rig.app.clock.advance(chrono::Duration::seconds(121));
    assert_eq!(rig.check_ok(&vid, &code).await["status"], "expired");
}

#[tokio::test]
async fn concurrent_correct_checks_approve_once() {
    let rig = rig().await;
    let account = rig.app.account("user-race").await;
    let (vid, code) = rig.sms_code(&account, PHONE).await;
    let results = join_all((0..10).map(|_| rig.check(&vid, &code))).await;
    let mut approved = 0;
    for res in results {
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        // More checks than attempts: those that found every attempt taken by checks still
        // comparing are told so.
        match body["status"].as_str().unwrap() {
            "approved" => approved += 1,
            "max_attempts_reached" => {}
            other => panic!("unexpected status {other}: {body}"),
        }
    }
    assert!(approved >= 1);
    assert_eq!(rig.verification(&vid).await["status"], "approved");
    assert_eq!(rig.audit_count("verification.approved", &account).await, 1);
    assert_eq!(rig.audit_count("evidence.added", &account).await, 1);
    assert_eq!(rig.audit_count("evidence.updated", &account).await, 0);
    let row = verification::Entity::find_by_id(vid.clone())
        .one(&rig.app.db().await)
        .await
        .unwrap()
        .unwrap();
    assert!(row.attempts >= 1 && row.attempts <= 5, "{}", row.attempts);

    // As many concurrent checks as there are attempts: every one of them is told `approved`.
    let other = rig.app.account("user-race-2").await;
    let (vid, code) = rig.sms_code(&other, "+14155550142").await;
    let results = join_all((0..5).map(|_| rig.check(&vid, &code))).await;
    for res in results {
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["status"], "approved", "{body}");
    }
    assert_eq!(rig.audit_count("verification.approved", &other).await, 1);
    assert_eq!(rig.audit_count("evidence.added", &other).await, 1);
}

#[tokio::test]
async fn concurrent_wrong_checks_never_exceed_the_attempt_limit() {
    let rig = rig().await;
    let account = rig.app.account("user-brute").await;
    let (vid, code) = rig.email_code(&account, "eve@example.org").await;
    let bad = wrong(&code);
    let results = join_all((0..20).map(|_| rig.check(&vid, &bad))).await;
    let mut statuses = Vec::new();
    for res in results {
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        statuses.push(body["status"].as_str().unwrap().to_owned());
    }
    assert!(
        statuses
            .iter()
            .all(|s| s == "pending" || s == "max_attempts_reached"),
        "{statuses:?}"
    );
    assert!(statuses.iter().filter(|s| *s == "pending").count() <= 4);
    let row = verification::Entity::find_by_id(vid.clone())
        .one(&rig.app.db().await)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.attempts, 5, "exactly five comparisons were made");
    assert_eq!(row.status, "max_attempts_reached");
    assert_eq!(
        rig.check_ok(&vid, &code).await["status"],
        "max_attempts_reached"
    );
    assert_eq!(
        rig.audit_count("verification.check_failed", &account).await,
        5
    );
}

#[tokio::test]
async fn a_new_code_cancels_the_previous_one_for_the_same_destination() {
    let rig = rig().await;
    let account = rig.app.account("user-resend").await;
    let (first, first_code) = rig.email_code(&account, "fay@example.org").await;
    let (other, _) = rig.email_code(&account, "fay.other@example.org").await;
    let (second, second_code) = rig.email_code(&account, "FAY@example.org").await;
    assert_eq!(rig.verification(&first).await["status"], "canceled");
    assert_eq!(
        rig.check_ok(&first, &first_code).await["status"],
        "canceled"
    );
    assert_eq!(
        rig.verification(&other).await["status"],
        "pending",
        "another destination is not affected"
    );
    assert_eq!(
        rig.check_ok(&second, &second_code).await["status"],
        "approved"
    );
}

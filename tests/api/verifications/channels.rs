//! Email over SMTP and SMS in Twilio's wire format end to end, and the input they take.

use super::*;

#[tokio::test]
async fn an_email_code_arrives_over_smtp_and_approves_email_evidence() {
    let rig = rig().await;
    let account = rig.app.account("user-email").await;

    let res = rig.send(&account, "email", "Ann.Smith@Example.ORG").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = res.json().await.unwrap();
    let vid = created["id"].as_str().unwrap().to_owned();
    assert!(vid.starts_with("ver_"), "{created}");
    assert_eq!(location, format!("/v1/verifications/{vid}"));
    assert_eq!(created["channel"], "email");
    assert_eq!(created["status"], "pending");
    assert_eq!(created["to_masked"], "A***@example.org");
    assert_eq!(created["attempts_remaining"], 5);
    let created_at: chrono::DateTime<chrono::Utc> =
        created["created_at"].as_str().unwrap().parse().unwrap();
    let expires_at: chrono::DateTime<chrono::Utc> =
        created["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires_at - created_at, chrono::Duration::minutes(30));
    assert!(!created.to_string().contains("Smith"), "{created}");

    let mail = rig.smtp.nth(1).await;
    assert_eq!(mail.from, "<no-reply@vouch.test>");
    assert_eq!(mail.to, vec!["<Ann.Smith@example.org>".to_owned()]);
    assert_eq!(mail.subject(), "Your Vouch verification code");
    assert_eq!(mail.header("Content-Language").as_deref(), Some("en"));
    assert!(mail.data.contains("multipart/alternative"), "{}", mail.data);
    assert!(mail.data.contains("text/plain") && mail.data.contains("text/html"));
    let code = mail.code();
    assert!(
        !mail
            .data
            .lines()
            .any(|l| l.starts_with("Subject:") && l.contains(&code)),
        "the code stays out of the subject"
    );

    let delivered = rig.wait_delivery(&vid, "delivered").await;
    assert_eq!(delivered.payload_sealed, None, "the payload is erased");
    assert_eq!(delivered.attempts, 1);
    assert_eq!(rig.verification(&vid).await["delivery_status"], "delivered");

    let checked = rig.check_ok(&vid, &code).await;
    assert_eq!(
        checked,
        json!({"id": vid, "status": "approved", "attempts_remaining": 4})
    );
    let got = rig.verification(&vid).await;
    assert_eq!(got["status"], "approved");
    assert!(got["approved_at"].is_string());

    let account_body: Value = rig
        .app
        .get(&format!("/v1/accounts/{account}"), &rig.app.backend_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(account_body["email_verified"], true);
    assert_eq!(account_body["phone_verified"], false);
    let evidence: Value = rig
        .app
        .get(
            &format!("/v1/accounts/{account}/evidence"),
            &rig.app.backend_key,
        )
        .await
        .json()
        .await
        .unwrap();
    let items = evidence["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{evidence}");
    assert_eq!(items[0]["kind"], "email");
    assert_eq!(items[0]["source"], "email");
    assert_eq!(items[0]["status"], "active");
    // Email alone never grants E2EE.
    assert_eq!(rig.entitlement(&account).await["granted"], false);

    // Checking an approved verification again changes nothing and counts nothing.
    let again = rig.check_ok(&vid, &code).await;
    assert_eq!(again["status"], "approved");
    assert_eq!(again["attempts_remaining"], 4);
    assert_eq!(
        rig.check_ok(&vid, &wrong(&code)).await["status"],
        "approved"
    );
    assert_eq!(rig.audit_count("verification.approved", &account).await, 1);
    assert_eq!(rig.audit_count("evidence.added", &account).await, 1);
}

#[tokio::test]
async fn a_verified_phone_arrives_in_twilio_wire_format_and_grants_e2ee() {
    let rig = rig().await;
    let account = rig.app.account("user-phone").await;
    let before = rig.entitlement(&account).await;
    assert_eq!(before["granted"], false, "{before}");
    assert!(
        before["missing"]
            .as_array()
            .unwrap()
            .contains(&json!(["phone"])),
        "{before}"
    );
    assert_problem(
        rig.app
            .post(
                &format!("/v1/accounts/{account}/tokens"),
                &rig.app.backend_key,
                &json!({}),
            )
            .await,
        403,
        "not_entitled",
    )
    .await;

    let created = rig.send_ok(&account, "sms", "+1 (415) 555-2671").await;
    assert_eq!(created["channel"], "sms");
    assert_eq!(created["to_masked"], "+1******2671");
    let vid = created["id"].as_str().unwrap().to_owned();
    let created_at: chrono::DateTime<chrono::Utc> =
        created["created_at"].as_str().unwrap().parse().unwrap();
    let expires_at: chrono::DateTime<chrono::Utc> =
        created["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires_at - created_at, chrono::Duration::minutes(10));

    let sms = rig.twilio.nth(1).await;
    assert_eq!(sms.method, "POST");
    assert_eq!(
        sms.path,
        format!("/2010-04-01/Accounts/{TWILIO_SID}/Messages.json")
    );
    assert_eq!(
        sms.basic_auth.as_deref(),
        Some(format!("{TWILIO_SID}:{TWILIO_TOKEN}").as_str())
    );
    assert!(
        sms.content_type
            .starts_with("application/x-www-form-urlencoded"),
        "{}",
        sms.content_type
    );
    assert_eq!(sms.field("To"), Some(PHONE));
    assert_eq!(sms.field("From"), Some(TWILIO_FROM));
    let code = sms.code();
    assert!(sms.field("Body").unwrap().contains("10 minutes"), "{sms:?}");

    let delivered = rig.wait_delivery(&vid, "delivered").await;
    assert_eq!(delivered.payload_sealed, None, "the raw number is erased");
    assert_eq!(
        delivered.provider_ref.as_deref(),
        Some("SM0123456789abcdef0123456789abcdef")
    );

    assert_eq!(rig.check_ok(&vid, &code).await["status"], "approved");
    let after = rig.entitlement(&account).await;
    assert_eq!(after["granted"], true, "{after}");
    assert_eq!(after["satisfied_by"], json!(["phone"]));
    let account_body: Value = rig
        .app
        .get(&format!("/v1/accounts/{account}"), &rig.app.backend_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(account_body["phone_verified"], true);
    let res = rig
        .app
        .post(
            &format!("/v1/accounts/{account}/tokens"),
            &rig.app.backend_key,
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let evidence: Value = rig
        .app
        .get(
            &format!("/v1/accounts/{account}/evidence"),
            &rig.app.backend_key,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(evidence["items"][0]["kind"], "phone");
    assert_eq!(evidence["items"][0]["source"], "sms");

    // The raw number is stored nowhere: not in any table, not in the audit trail.
    let conn = &rig.app.db().await;
    let dump = format!(
        "{:?}{:?}{:?}{:?}{:?}{:?}",
        verification::Entity::find().all(conn).await.unwrap(),
        outbox_message::Entity::find().all(conn).await.unwrap(),
        verified_phone::Entity::find().all(conn).await.unwrap(),
        verification_send::Entity::find().all(conn).await.unwrap(),
        evidence::Entity::find().all(conn).await.unwrap(),
        audit_log::Entity::find().all(conn).await.unwrap(),
    );
    assert!(dump.contains("+1******2671"), "the masked form is kept");
    for raw in ["4155552671", "415 555", "(415)"] {
        assert!(!dump.contains(raw), "{raw} stored somewhere: {dump}");
    }
    assert!(!dump.contains(&code), "the code is stored only as an HMAC");
}

#[tokio::test]
async fn invalid_inputs_are_rejected_with_their_codes() {
    let rig = rig_with(|s| s.sms.allowed_countries = vec!["US".into(), "DE".into()]).await;
    let account = rig.app.account("user-invalid").await;
    for bad in [
        "4155552671",
        "+1 415 555",
        "not a number",
        "+999 123456789",
        "1-800-FLOWERS",
        "+1 415 555 2671 ext 5",
        "",
    ] {
        let body = assert_problem(rig.send(&account, "sms", bad).await, 400, "invalid_phone").await;
        if bad.len() > 3 {
            assert!(!body.to_string().contains(bad), "input echoed: {body}");
        }
    }
    assert_problem(
        rig.send(&account, "sms", "+44 20 7946 0958").await,
        400,
        "phone_country_not_allowed",
    )
    .await;
    for bad in ["plain", "a@", "Ann <ann@example.org>", ""] {
        assert_problem(rig.send(&account, "email", bad).await, 400, "invalid_email").await;
    }
    let path = format!("/v1/accounts/{account}/verifications");
    for body in [
        json!({"channel": "fax", "to": "x"}),
        json!({"channel": "sms"}),
        json!({"channel": "email", "to": "a@example.org", "extra": 1}),
        json!({"channel": "email", "to": 5}),
    ] {
        assert_problem(
            rig.app.post(&path, &rig.app.backend_key, &body).await,
            400,
            "invalid_body",
        )
        .await;
    }
    assert_problem(
        rig.send(
            "acc_0000000000000000000000000000dead",
            "email",
            "a@example.org",
        )
        .await,
        404,
        "account_not_found",
    )
    .await;
    for vid in ["ver_0000000000000000000000000000dead", "ver_nothex", "x"] {
        assert_problem(
            rig.check(vid, "123456").await,
            404,
            "verification_not_found",
        )
        .await;
        assert_problem(
            rig.app
                .get(&format!("/v1/verifications/{vid}"), &rig.app.backend_key)
                .await,
            404,
            "verification_not_found",
        )
        .await;
    }
    // Nothing was queued or sent by any of that.
    let count = outbox_message::Entity::find()
        .all(&rig.app.db().await)
        .await
        .unwrap()
        .len();
    assert_eq!(count, 0);

    // A suspended account gets no codes.
    let res = rig
        .app
        .patch(
            &format!("/v1/accounts/{account}"),
            &rig.app.admin_key,
            &json!({"status": "suspended"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_problem(
        rig.send(&account, "email", "a@example.org").await,
        409,
        "account_suspended",
    )
    .await;
}

#[tokio::test]
async fn national_numbers_are_normalised_with_a_default_region() {
    let rig = rig_with(|s| s.sms.default_region = Some("US".into())).await;
    let account = rig.app.account("user-national").await;
    let created = rig.send_ok(&account, "sms", "(415) 555-2671").await;
    assert_eq!(created["to_masked"], "+1******2671");
    assert_eq!(rig.twilio.nth(1).await.field("To"), Some(PHONE));
}

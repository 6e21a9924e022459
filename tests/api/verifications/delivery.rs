//! The outbox under provider outages, permanent failures, stale codes, log transports and
//! several instances.

use super::*;

#[tokio::test]
async fn an_sms_provider_outage_delays_delivery_and_loses_nothing() {
    let rig = rig_with(slow_retries).await;
    rig.twilio.respond_with(503);
    let mut pending = Vec::new();
    for i in 0..3 {
        let account = rig.app.account(&format!("user-outage-{i}")).await;
        let to = format!("+1415555020{i}");
        let vid = rig.send_ok(&account, "sms", &to).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        pending.push((account, vid, to));
    }
    for (_, vid, _) in &pending {
        let row = eventually(
            "a failed first attempt",
            Duration::from_secs(15),
            || async {
                outbox(&rig.app, vid)
                    .await
                    .filter(|m| m.status == "pending" && m.attempts == 1)
            },
        )
        .await;
        let error = row.last_error.unwrap();
        assert_eq!(error, "sms http 503 (provider code 21211)");
        assert!(row.payload_sealed.is_some(), "kept for the retry");
        assert!(row.next_attempt_at > rig.app.now());
        let got = rig.verification(vid).await;
        assert_eq!(got["status"], "pending");
        assert_eq!(got["delivery_status"], "pending");
    }
    let failed_requests = rig.twilio.requests().len();
    assert_eq!(failed_requests, 3);
    // Still down at the first retry: attempts keep counting.
    rig.app.clock.advance(chrono::Duration::seconds(73));
    for (_, vid, _) in &pending {
        eventually(
            "a failed second attempt",
            Duration::from_secs(15),
            || async {
                outbox(&rig.app, vid)
                    .await
                    .filter(|m| m.status == "pending" && m.attempts == 2)
            },
        )
        .await;
    }

    // The provider recovers: every message goes out, once.
    rig.twilio.respond_with(201);
    rig.app.clock.advance(chrono::Duration::seconds(145));
    for (account, vid, to) in &pending {
        let row = rig.wait_delivery(vid, "delivered").await;
        assert_eq!(row.attempts, 3);
        assert_eq!(row.payload_sealed, None);
        let delivered: Vec<_> = rig
            .twilio
            .requests()
            .into_iter()
            .skip(6)
            .filter(|r| r.field("To") == Some(to.as_str()))
            .collect();
        assert_eq!(delivered.len(), 1, "delivered once to {to}");
        let code = delivered[0].code();
        assert_eq!(rig.check_ok(vid, &code).await["status"], "approved");
        assert_eq!(rig.entitlement(account).await["granted"], true);
    }
    assert_eq!(rig.twilio.requests().len(), 9);
}

#[tokio::test]
async fn an_smtp_outage_delays_delivery_and_loses_nothing() {
    let rig = rig_with(slow_retries).await;
    rig.smtp.set_down(true);
    let account = rig.app.account("user-smtp-down").await;
    let vid = rig.send_ok(&account, "email", "jo@example.org").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let row = eventually("a failed attempt", Duration::from_secs(15), || async {
        outbox(&rig.app, &vid)
            .await
            .filter(|m| m.status == "pending" && m.attempts == 1)
    })
    .await;
    assert_eq!(row.last_error.as_deref(), Some("smtp transient 421"));
    assert!(rig.smtp.mails().is_empty());
    rig.smtp.set_down(false);
    rig.app.clock.advance(chrono::Duration::seconds(73));
    let mail = rig.smtp.nth(1).await;
    assert_eq!(rig.smtp.mails().len(), 1);
    let row = rig.wait_delivery(&vid, "delivered").await;
    assert_eq!(row.attempts, 2);
    assert_eq!(rig.check_ok(&vid, &mail.code()).await["status"], "approved");
}

#[tokio::test]
async fn permanent_failures_and_exhausted_retries_give_up_and_erase_the_payload() {
    let rig = rig_with(|s| {
        slow_retries(s);
        s.delivery.max_attempts = 2;
    })
    .await;
    // A 4xx from the SMS provider is permanent: one attempt.
    rig.twilio.respond_with(400);
    let account = rig.app.account("user-giveup").await;
    let vid = rig.send_ok(&account, "sms", PHONE).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let row = rig.wait_delivery(&vid, "failed").await;
    assert_eq!(row.attempts, 1);
    assert_eq!(row.payload_sealed, None);
    assert_eq!(
        row.last_error.as_deref(),
        Some("sms http 400 (provider code 21211)")
    );
    assert_eq!(rig.verification(&vid).await["delivery_status"], "failed");

    // A rejected recipient over SMTP is permanent too.
    rig.smtp.reject_recipients();
    let vid = rig.send_ok(&account, "email", "nobody@example.org").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let row = rig.wait_delivery(&vid, "failed").await;
    assert_eq!(row.last_error.as_deref(), Some("smtp permanent 550"));
    assert_eq!(row.payload_sealed, None);

    // Retryable failures stop after `delivery.max_attempts`.
    rig.twilio.respond_with(500);
    let other = rig.app.account("user-giveup-2").await;
    let vid = rig.send_ok(&other, "sms", "+14155550123").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually(
        "a failed first attempt",
        Duration::from_secs(15),
        || async {
            outbox(&rig.app, &vid)
                .await
                .filter(|m| m.attempts == 1 && m.status == "pending")
        },
    )
    .await;
    rig.app.clock.advance(chrono::Duration::seconds(73));
    let row = rig.wait_delivery(&vid, "failed").await;
    assert_eq!(row.attempts, 2);
    assert_eq!(row.payload_sealed, None);
}

#[tokio::test]
async fn messages_for_expired_or_replaced_codes_are_dropped_unsent() {
    let rig = rig_with(slow_retries).await;
    rig.twilio.respond_with(503);
    let account = rig.app.account("user-stale").await;
    let first = rig.send_ok(&account, "sms", PHONE).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually("a failed attempt", Duration::from_secs(15), || async {
        outbox(&rig.app, &first)
            .await
            .filter(|m| m.attempts == 1 && m.status == "pending")
    })
    .await;
    // A new code for the same number replaces the old one; its message is canceled.
    let second = rig.send_ok(&account, "sms", PHONE).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let row = outbox(&rig.app, &first).await.unwrap();
    assert_eq!(row.status, "canceled");
    assert_eq!(row.payload_sealed, None);
    eventually("a failed attempt", Duration::from_secs(15), || async {
        outbox(&rig.app, &second)
            .await
            .filter(|m| m.attempts == 1 && m.status == "pending")
    })
    .await;
    // The provider stays down past the code's lifetime: the message expires unsent.
    rig.app.clock.advance(chrono::Duration::seconds(601));
    rig.twilio.respond_with(201);
    let row = rig.wait_delivery(&second, "expired").await;
    assert_eq!(row.payload_sealed, None);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        rig.twilio
            .requests()
            .iter()
            .all(|r| r.field("To") == Some(PHONE)),
        "only failed attempts were made"
    );
    assert_eq!(rig.twilio.requests().len(), 2);
}

#[tokio::test]
async fn without_providers_the_log_transports_deliver_nothing_and_say_so() {
    let app = spawn_app_with(|_| {}).await;
    let account = app.account("user-log").await;
    let res = app
        .post(
            &format!("/v1/accounts/{account}/verifications"),
            &app.backend_key,
            &json!({"channel": "sms", "to": PHONE}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let vid = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Logged, not `delivered`: nobody received a code.
    let row = eventually("the log transport", Duration::from_secs(15), || async {
        outbox(&app, &vid)
            .await
            .filter(|m| m.status != "pending" && m.status != "sending")
    })
    .await;
    assert_eq!(row.status, "logged");
    assert_eq!(row.payload_sealed, None);
    let body: Value = app
        .get(&format!("/v1/verifications/{vid}"), &app.backend_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["delivery_status"], "logged", "{body}");
}

/// Two instances share a PostgreSQL database (SQLite serves one instance): their workers
/// compete for the same outbox, and every message still goes out exactly once.
#[tokio::test]
async fn two_instances_deliver_each_message_once() {
    let mut settings = test_settings().await;
    if settings.is_sqlite() {
        eprintln!("skipped: several instances need PostgreSQL (set VOUCH_TEST_DATABASE_URL)");
        return;
    }
    let smtp = SmtpSink::start().await;
    let twilio = FakeTwilio::start().await;
    use_providers(&mut settings, &smtp, &twilio);
    settings.delivery.batch_size = 2;
    settings.delivery.poll_interval_millis = 10;
    // 24 messages from three fresh accounts to one prefix: delivery is under test, not limits.
    settings.verification.young_account_sms_hourly_limit = 10;
    settings.verification.sms_prefix_hourly_limit = 100;
    let first = spawn_with_settings(settings.clone(), true).await;
    let mut second = spawn_with_settings(settings, false).await;
    second.backend_key = first.backend_key.clone();

    let mut numbers = Vec::new();
    for a in 0..3 {
        let account = first.account(&format!("user-multi-{a}")).await;
        let sends = (0..8).map(|i| {
            let to = format!("+141555503{a}{i}");
            numbers.push(to.clone());
            let app = if i % 2 == 0 { &first } else { &second };
            let path = format!("/v1/accounts/{account}/verifications");
            async move {
                app.post(
                    &path,
                    &app.backend_key,
                    &json!({"channel": "sms", "to": to}),
                )
                .await
            }
        });
        for res in join_all(sends.collect::<Vec<_>>()).await {
            assert_eq!(res.status(), StatusCode::CREATED);
        }
    }
    let requests = eventually("24 deliveries", Duration::from_secs(20), || async {
        let r = twilio.requests();
        (r.len() >= numbers.len()).then_some(r)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let requests_after = twilio.requests();
    assert_eq!(requests_after.len(), requests.len(), "no late duplicates");
    let mut sent: Vec<String> = requests_after
        .iter()
        .map(|r| r.field("To").unwrap().to_owned())
        .collect();
    sent.sort();
    numbers.sort();
    assert_eq!(sent, numbers, "each message delivered exactly once");
}

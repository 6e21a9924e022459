//! Which webhook deliveries are accepted: the configured secrets, Stripe's signature scheme,
//! the timestamp tolerance, the body limit, the event shape and the mode.

use super::*;

const OLD_SECRET: &str = "whsec_Old5Pq8Lz2Xv7Tn4Rm1Kc6Hb9Gf3Jd0Sa";

#[tokio::test]
async fn without_a_secret_the_webhook_is_not_configured() {
    let app = spawn_app().await;
    let payload = event(
        "customer.subscription.created",
        now(&app),
        Sub::new(None, now(&app)).object("active", now(&app) + 86_400),
    );
    let res = send(
        &app,
        Some(&stripe_signature(SECRET, now(&app), &payload)),
        &payload,
    )
    .await;
    assert_problem(res, 503, "not_configured").await;
}

/// An instance taking two secrets, the new one and the one being rotated out.
async fn rotating_app() -> TestApp {
    spawn_app_with(|s| {
        s.stripe.webhook_secrets = vec![SecretString::from(SECRET), SecretString::from(OLD_SECRET)]
    })
    .await
}

/// An account, its subscription, and that subscription's creation event as Stripe sends it.
struct Signed {
    acc: String,
    sub: Sub,
    payload: String,
    t: i64,
}

async fn signed_subscription(app: &TestApp) -> Signed {
    let acc = app.account("signed").await;
    let t = now(app);
    let sub = Sub::new(Some(&acc), t - 100);
    let payload = event(
        "customer.subscription.created",
        t - 50,
        sub.object("active", t + 86_400 * 30),
    );
    Signed {
        acc,
        sub,
        payload,
        t,
    }
}

#[tokio::test]
async fn forged_stale_and_malformed_signatures_are_refused_and_change_nothing() {
    let app = rotating_app().await;
    let Signed {
        acc, payload, t, ..
    } = signed_subscription(&app).await;

    let refused: Vec<(Option<String>, String, &str)> = vec![
        (None, payload.clone(), "invalid_signature"),
        (Some("".into()), payload.clone(), "invalid_signature"),
        (
            Some("nonsense".into()),
            payload.clone(),
            "invalid_signature",
        ),
        (Some(format!("t={t}")), payload.clone(), "invalid_signature"),
        (
            Some(format!("v1={}", v1(SECRET, t, &payload))),
            payload.clone(),
            "invalid_signature",
        ),
        // wrong secret
        (
            Some(stripe_signature("whsec_not_the_right_one", t, &payload)),
            payload.clone(),
            "invalid_signature",
        ),
        // only a v0 (test-mode legacy) signature
        (
            Some(format!("t={t},v0={}", v1(SECRET, t, &payload))),
            payload.clone(),
            "invalid_signature",
        ),
        // signed for another timestamp than the one claimed
        (
            Some(format!("t={},v1={}", t + 1, v1(SECRET, t, &payload))),
            payload.clone(),
            "invalid_signature",
        ),
        // the body changed after signing (active -> trialing)
        (
            Some(stripe_signature(SECRET, t, &payload)),
            payload.replace("\"active\"", "\"trialing\""),
            "invalid_signature",
        ),
        // one byte of whitespace added
        (
            Some(stripe_signature(SECRET, t, &payload)),
            format!("{payload}\n"),
            "invalid_signature",
        ),
        // stale and future timestamps, correctly signed
        (
            Some(stripe_signature(SECRET, t - 301, &payload)),
            payload.clone(),
            "timestamp_out_of_tolerance",
        ),
        // Further than 301 s ahead: the instance's clock runs on while the earlier cases are
        // sent, and a loaded machine can take over a second to get here.
        (
            Some(stripe_signature(SECRET, t + 360, &payload)),
            payload.clone(),
            "timestamp_out_of_tolerance",
        ),
        (
            Some(stripe_signature(SECRET, t - 86_400, &payload)),
            payload.clone(),
            "timestamp_out_of_tolerance",
        ),
    ];
    for (header, body, code) in refused {
        let res = send(&app, header.as_deref(), &body).await;
        assert_problem(res, 400, code).await;
    }
    assert!(payment_evidence(&app, &acc).await.is_empty());
    assert!(audit(&app, "actor=stripe").await.is_empty());

    // After all of them, the genuine delivery is the first to be applied.
    let res = send(&app, Some(&stripe_signature(SECRET, t, &payload)), &payload).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["outcome"], "applied",
        "the refused deliveries stored nothing"
    );
    assert_eq!(payment_evidence(&app, &acc).await.len(), 1);
}

#[tokio::test]
async fn while_rotating_any_v1_entry_and_either_secret_may_match() {
    let app = rotating_app().await;
    let Signed {
        acc,
        sub,
        payload,
        t,
    } = signed_subscription(&app).await;

    // Several v1 entries (Stripe sends one per active secret while rotating): any may match.
    let header = format!(
        "t={t},v1={},v1={}",
        v1("whsec_expired_and_removed", t, &payload),
        v1(SECRET, t, &payload)
    );
    let res = send(&app, Some(&header), &payload).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["outcome"], "applied");
    assert_eq!(payment_evidence(&app, &acc).await.len(), 1);

    // The old secret still verifies during rotation; timestamps just inside the tolerance pass.
    for (secret, t) in [(OLD_SECRET, t - 299), (SECRET, t + 299)] {
        let payload = event(
            "customer.subscription.updated",
            t - 40,
            sub.object("active", t + 86_400 * 30),
        );
        let res = send(&app, Some(&stripe_signature(secret, t, &payload)), &payload).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn once_rotated_out_the_old_secret_is_refused() {
    let rotated = billing_app().await;
    let Signed { payload, t, .. } = signed_subscription(&rotated).await;
    let res = send(
        &rotated,
        Some(&stripe_signature(OLD_SECRET, t, &payload)),
        &payload,
    )
    .await;
    assert_problem(res, 400, "invalid_signature").await;
}

#[tokio::test]
async fn signed_payloads_that_are_not_events_are_malformed() {
    let app = billing_app().await;
    let t = now(&app);
    for payload in [
        "not json at all".to_owned(),
        "[]".to_owned(),
        json!({"object": "event", "type": "customer.subscription.updated"}).to_string(),
        json!({"id": "evt_1", "object": "event", "type": "customer.subscription.updated",
               "created": t, "data": {"object": {"id": "sub_1", "object": "subscription"}}})
        .to_string(),
    ] {
        let res = send(&app, Some(&stripe_signature(SECRET, t, &payload)), &payload).await;
        let body = assert_problem(res, 400, "malformed_payload").await;
        assert!(!body["detail"].as_str().unwrap().contains("not json at all"));
    }
    // The signature is checked first: an unsigned malformed body is an invalid signature.
    let res = send(&app, Some("t=1,v1=00"), "not json").await;
    assert_problem(res, 400, "invalid_signature").await;
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let app = spawn_app_with(|s| {
        s.stripe.webhook_secrets = vec![SecretString::from(SECRET)];
        s.stripe.max_body_bytes = 4096;
    })
    .await;
    let t = now(&app);
    let sub = Sub::new(None, t);
    let payload = event(
        "customer.subscription.created",
        t,
        sub.object("active", t + 86_400),
    );
    assert!(payload.len() > 4096);
    let res = send(&app, Some(&stripe_signature(SECRET, t, &payload)), &payload).await;
    assert_problem(res, 413, "payload_too_large").await;

    // The default limit takes full-size events, larger than the API's own body limit.
    let app = billing_app().await;
    let sub = Sub::new(None, t);
    let mut object = sub.object("active", t + 86_400);
    // Stripe allows 20 items per subscription, each with metadata of its own.
    let item = object["items"]["data"][0].clone();
    let items: Vec<Value> = (0..20)
        .map(|i| {
            let mut item = item.clone();
            item["id"] = json!(stripe_id("si"));
            item["metadata"] = Value::Object(
                (0..10)
                    .map(|k| (format!("seat_{i}_{k}"), json!("x".repeat(400))))
                    .collect(),
            );
            item
        })
        .collect();
    object["items"]["data"] = json!(items);
    object["items"]["total_count"] = json!(20);
    let payload = event("customer.subscription.created", t, object);
    assert!(payload.len() > app.settings.http.max_body_bytes);
    assert_eq!(deliver(&app, &payload).await, "pending");
}

#[test]
fn bad_stripe_settings_fail_at_start_naming_the_key() {
    for (var, value, key) in [
        (
            "VOUCH_STRIPE__TOLERANCE_SECONDS",
            "0",
            "stripe.tolerance_seconds",
        ),
        (
            "VOUCH_STRIPE__TOLERANCE_SECONDS",
            "soon",
            "stripe.tolerance_seconds",
        ),
        (
            "VOUCH_STRIPE__PAST_DUE_GRACE_DAYS",
            "365",
            "stripe.past_due_grace_days",
        ),
        (
            "VOUCH_STRIPE__MAX_BODY_BYTES",
            "12",
            "stripe.max_body_bytes",
        ),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_vouch"))
            .arg("migrate")
            .env(var, value)
            .env("VOUCH_STRIPE__WEBHOOK_SECRETS", "whsec_one,whsec_two")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(key), "{var}: {stderr}");
        assert!(
            !stderr.contains("whsec_"),
            "secrets are not echoed: {stderr}"
        );
    }
}

/// The same event as Stripe sends it from live mode.
fn in_live_mode(payload: &str) -> String {
    let mut event: Value = serde_json::from_str(payload).unwrap();
    event["livemode"] = json!(true);
    serde_json::to_string_pretty(&event).unwrap()
}

#[tokio::test]
async fn events_of_the_other_mode_are_refused_and_change_nothing() {
    // Default: test mode. A live-mode event is refused.
    let app = billing_app().await;
    let acc = app.account("mode").await;
    let t = now(&app);
    let sub = Sub::new(Some(&acc), t - 10);
    let test_mode = event(
        "customer.subscription.created",
        t - 5,
        sub.object("active", t + 30 * 86_400),
    );
    let live_mode = in_live_mode(&test_mode);
    let res = send(
        &app,
        Some(&stripe_signature(SECRET, t, &live_mode)),
        &live_mode,
    )
    .await;
    let problem = assert_problem(res, 400, "livemode_mismatch").await;
    assert!(problem["detail"].as_str().unwrap().contains("test-mode"));
    assert!(payment_evidence(&app, &acc).await.is_empty());
    assert!(!granted(&app, &acc).await);
    assert!(audit(&app, "actor=stripe").await.is_empty());
    // Not even remembered as seen: the same event id in the right mode still applies.
    assert_eq!(deliver(&app, &test_mode).await, "applied");
    assert!(granted(&app, &acc).await);

    // stripe.livemode = true: the other way round.
    let live_app = spawn_app_with(|s| {
        s.stripe.webhook_secrets = vec![SecretString::from(SECRET)];
        s.stripe.livemode = true;
    })
    .await;
    let acc = live_app.account("live").await;
    let t = now(&live_app);
    let sub = Sub::new(Some(&acc), t - 10);
    let test_mode = event(
        "customer.subscription.created",
        t - 5,
        sub.object("active", t + 30 * 86_400),
    );
    let res = send(
        &live_app,
        Some(&stripe_signature(SECRET, t, &test_mode)),
        &test_mode,
    )
    .await;
    assert_problem(res, 400, "livemode_mismatch").await;
    assert!(!granted(&live_app, &acc).await);
    let live_mode = in_live_mode(&test_mode);
    assert_eq!(deliver(&live_app, &live_mode).await, "applied");
    assert!(granted(&live_app, &acc).await);
}

//! What a subscription's life grants: payment evidence, the e2ee entitlement and authorize,
//! through creation, past due, cancellation and unrelated events.

use super::*;

#[tokio::test]
async fn a_signed_subscription_event_becomes_payment_evidence() {
    let app = billing_app().await;
    let acc = app.account("payer").await;
    assert!(!granted(&app, &acc).await);
    let t = now(&app);
    let sub = Sub::new(Some(&acc), t - 10);
    let payload = event(
        "customer.subscription.created",
        t - 5,
        sub.object("active", t + 30 * 86_400),
    );

    let res = send(&app, Some(&stripe_signature(SECRET, t, &payload)), &payload).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["received"], true);
    assert_eq!(body["outcome"], "applied");
    assert!(body["event_id"].as_str().unwrap().starts_with("evt_"));

    let evidence = payment_evidence(&app, &acc).await;
    assert_eq!(evidence.len(), 1, "{evidence:?}");
    assert_eq!(evidence[0]["status"], "active");
    assert_eq!(evidence[0]["source"], format!("stripe:{}", sub.id));
    assert_eq!(evidence[0]["expires_at"], Value::Null);
    assert_eq!(evidence[0]["verified_at"], rfc3339(t - 5));

    let e2ee = e2ee(&app, &acc).await;
    assert_eq!(e2ee["granted"], true, "{e2ee}");
    assert_eq!(e2ee["satisfied_by"], json!(["payment"]));

    let entries = audit(&app, "actor=stripe").await;
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"evidence.added"), "{actions:?}");
    assert!(
        actions.contains(&"billing.subscription_applied"),
        "{actions:?}"
    );
    assert!(entries.iter().all(|e| e["target_id"] == acc.as_str()));
    // Nothing personal from the payload is kept in the audit log.
    assert!(!serde_json::to_string(&entries)
        .unwrap()
        .contains("example.org"));
}

#[tokio::test]
async fn past_due_keeps_payment_for_the_grace_period_then_lapses() {
    let app = billing_app().await;
    let acc = app.account("late-payer").await;
    let t0 = now(&app);
    let sub = Sub::new(Some(&acc), t0 - 86_400 * 30);
    let period_end = t0 + 60;
    // API version 2025-03-31.basil shapes: period on the items, invoice parent.
    let created = event_with(
        &stripe_id("evt"),
        "customer.subscription.created",
        t0 - 86_400 * 30,
        BASIL,
        sub.object_basil("active", period_end),
        None,
    );
    assert_eq!(deliver(&app, &created).await, "applied");

    // The renewal charge fails: Stripe sends invoice.payment_failed and the update to past_due.
    app.clock.advance(chrono::Duration::seconds(120));
    let t1 = now(&app);
    let failed = event_with(
        &stripe_id("evt"),
        "invoice.payment_failed",
        t1,
        BASIL,
        sub.invoice(false, "subscription_cycle", period_end + 30 * 86_400, true),
        None,
    );
    let past_due = event_with(
        &stripe_id("evt"),
        "customer.subscription.updated",
        t1,
        BASIL,
        sub.object_basil("past_due", period_end + 30 * 86_400),
        Some(json!({"status": "active", "latest_invoice": stripe_id("in")})),
    );
    assert_eq!(deliver(&app, &failed).await, "applied");
    assert_eq!(deliver(&app, &past_due).await, "applied");
    let evidence = payment_evidence(&app, &acc).await;
    assert_eq!(evidence[0]["status"], "active");
    assert_eq!(evidence[0]["expires_at"], rfc3339(t1 + 7 * 86_400));
    assert!(granted(&app, &acc).await);

    // Still inside the grace period a day before its end; a token is issued then.
    app.clock
        .advance(chrono::Duration::days(7) - chrono::Duration::minutes(10));
    assert!(granted(&app, &acc).await);
    let token = issue_token(&app, &acc, 3600).await;
    assert_eq!(authorize(&app, &token).await["allow"], true);
    // A further failed retry does not extend the grace period.
    let retry = event_with(
        &stripe_id("evt"),
        "invoice.payment_failed",
        now(&app),
        BASIL,
        sub.invoice(false, "subscription_cycle", period_end + 30 * 86_400, true),
        None,
    );
    assert_eq!(deliver(&app, &retry).await, "applied");

    // The grace period ends: no job runs, time alone lapses it, everywhere at once.
    app.clock.advance(chrono::Duration::minutes(11));
    let decision = e2ee(&app, &acc).await;
    assert_eq!(decision["granted"], false, "{decision}");
    assert!(decision["missing"]
        .as_array()
        .unwrap()
        .contains(&json!(["payment"])));
    assert_eq!(payment_evidence(&app, &acc).await[0]["status"], "lapsed");
    let answer = authorize(&app, &token).await;
    assert_eq!(answer["allow"], false, "{answer}");
    assert_eq!(answer["reason"], "not_entitled");

    // The customer pays after all: active again, without a deadline.
    let paid = event_with(
        &stripe_id("evt"),
        "invoice.paid",
        now(&app),
        BASIL,
        sub.invoice(true, "subscription_cycle", period_end + 30 * 86_400, true),
        None,
    );
    assert_eq!(deliver(&app, &paid).await, "applied");
    let evidence = payment_evidence(&app, &acc).await;
    assert_eq!(evidence[0]["status"], "active");
    assert_eq!(evidence[0]["expires_at"], Value::Null);
    assert_eq!(authorize(&app, &token).await["allow"], true);
}

#[tokio::test]
async fn checkout_then_cancellation_withdraws_e2ee_at_once() {
    let app = billing_app().await;
    let acc = app.account("subscriber").await;
    let t = now(&app);
    let sub = Sub::new(Some(&acc), t - 30);
    let checkout = event(
        "checkout.session.completed",
        t - 29,
        sub.checkout_session("paid"),
    );
    assert_eq!(deliver(&app, &checkout).await, "applied");
    let decision = e2ee(&app, &acc).await;
    assert_eq!(decision["granted"], true, "{decision}");
    assert_eq!(decision["satisfied_by"], json!(["payment"]));
    let created = event(
        "customer.subscription.created",
        t - 30,
        sub.object("active", t + 86_400 * 30),
    );
    // Older than the checkout it follows, and it says nothing new: `stale`.
    assert_eq!(deliver(&app, &created).await, "stale");

    let token = issue_token(&app, &acc, 600).await;
    let answer = authorize(&app, &token).await;
    assert_eq!(answer["allow"], true, "{answer}");
    assert_eq!(answer["entitlements"], json!(["e2ee"]));

    let deleted = event(
        "customer.subscription.deleted",
        t - 1,
        sub.object("canceled", t + 86_400 * 30),
    );
    assert_eq!(deliver(&app, &deleted).await, "applied");
    // No waiting: this instance forgot the account the moment the change committed.
    let answer = authorize(&app, &token).await;
    assert_eq!(answer["allow"], false, "{answer}");
    assert_eq!(answer["reason"], "not_entitled");
    let decision = e2ee(&app, &acc).await;
    assert_eq!(decision["granted"], false);
    assert!(
        decision["reason"]
            .as_str()
            .unwrap()
            .contains("payment evidence is no longer active"),
        "{decision}"
    );
    let res = app
        .post(
            &format!("/v1/accounts/{acc}/tokens"),
            &app.backend_key,
            &json!({}),
        )
        .await;
    assert_problem(res, 403, "not_entitled").await;

    // A late invoice for the canceled subscription (a final proration) does not revive it.
    let final_invoice = event_with(
        &stripe_id("evt"),
        "invoice.paid",
        t,
        ACACIA,
        sub.invoice(true, "subscription_update", t + 86_400, false),
        None,
    );
    assert_eq!(deliver(&app, &final_invoice).await, "applied");
    assert!(!granted(&app, &acc).await);
}

#[tokio::test]
async fn unknown_and_unrelated_events_are_acknowledged_and_ignored() {
    let app = billing_app().await;
    let acc = app.account("bystander").await;
    let t = now(&app);
    let customer = json!({
        "id": stripe_id("cus"), "object": "customer", "address": null, "balance": 0,
        "created": t, "currency": null, "default_source": null, "delinquent": false,
        "description": null, "discount": null, "email": "ann.customer@example.org",
        "invoice_prefix": "A1B2C3D4", "invoice_settings": {"custom_fields": null,
        "default_payment_method": null, "footer": null, "rendering_options": null},
        "livemode": false, "metadata": {"vouch_account_id": acc}, "name": "Ann Customer",
        "next_invoice_sequence": 1, "phone": null, "preferred_locales": [],
        "shipping": null, "tax_exempt": "none", "test_clock": null
    });
    assert_eq!(
        deliver(&app, &event("customer.created", t, customer)).await,
        "ignored"
    );
    // A one-off invoice (no subscription) and a one-time checkout are not subscription payments.
    let sub = Sub::new(Some(&acc), t);
    let mut one_off = sub.invoice(true, "manual", t, false);
    one_off["subscription"] = Value::Null;
    one_off["subscription_details"] = json!({"metadata": null});
    assert_eq!(
        deliver(&app, &event("invoice.paid", t, one_off)).await,
        "ignored"
    );
    let mut one_time = sub.checkout_session("paid");
    one_time["mode"] = json!("payment");
    one_time["subscription"] = Value::Null;
    assert_eq!(
        deliver(&app, &event("checkout.session.completed", t, one_time)).await,
        "ignored"
    );
    assert!(payment_evidence(&app, &acc).await.is_empty());
    // A checkout whose payment is still processing grants nothing yet.
    let pending = sub.checkout_session("unpaid");
    assert_eq!(
        deliver(&app, &event("checkout.session.completed", t, pending)).await,
        "applied"
    );
    assert!(!granted(&app, &acc).await);
}

//! Repeated, concurrent and out-of-order deliveries, and a database failure mid-event: each
//! event applies once, the newest state wins, nothing is half applied.

use super::*;

#[tokio::test]
async fn a_repeated_event_has_no_effect() {
    let app = billing_app().await;
    let acc = app.account("repeat").await;
    let t = now(&app);
    let sub = Sub::new(Some(&acc), t - 100);
    let payload = event(
        "customer.subscription.created",
        t - 50,
        sub.object("active", t + 86_400 * 30),
    );
    assert_eq!(deliver(&app, &payload).await, "applied");
    let evidence = payment_evidence(&app, &acc).await;
    let entries = audit(&app, "").await.len();

    // Stripe retries with a fresh signature and timestamp; the id decides.
    app.clock.advance(chrono::Duration::seconds(90));
    assert_eq!(deliver(&app, &payload).await, "duplicate");
    // Even if the body differs (it cannot, for a real retry), the first delivery stands.
    let id: Value = serde_json::from_str(&payload).unwrap();
    let id = id["id"].as_str().unwrap();
    let altered = event_with(
        id,
        "customer.subscription.deleted",
        t,
        ACACIA,
        sub.object("canceled", t + 86_400 * 30),
        None,
    );
    assert_eq!(deliver(&app, &altered).await, "duplicate");

    assert_eq!(payment_evidence(&app, &acc).await, evidence);
    assert_eq!(audit(&app, "").await.len(), entries);
    assert!(granted(&app, &acc).await);
}

#[tokio::test]
async fn concurrent_duplicates_are_applied_once_across_instances() {
    let app = billing_app().await;
    // A second instance on the same database (SQLite is single-instance: there, both
    // deliveries race on one instance).
    let other = if app.is_postgres() {
        Some(spawn_with_settings(app.settings.clone(), false).await)
    } else {
        None
    };
    let second = other.as_ref().unwrap_or(&app);
    let acc = app.account("race").await;
    let t = now(&app);
    let sub = Sub::new(Some(&acc), t - 100);
    let payload = event(
        "customer.subscription.created",
        t - 50,
        sub.object("active", t + 86_400 * 30),
    );

    let deliveries = (0..8).map(|i| {
        let target = if i % 2 == 0 { &app } else { second };
        deliver(target, &payload)
    });
    let outcomes = futures_util::future::join_all(deliveries).await;
    assert_eq!(
        outcomes.iter().filter(|o| *o == "applied").count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| *o == "duplicate").count(),
        7,
        "{outcomes:?}"
    );
    assert_eq!(payment_evidence(&app, &acc).await.len(), 1);
    let added = audit(&app, "action=evidence.added").await;
    assert_eq!(added.len(), 1, "{added:?}");

    // Two different events of one subscription at once on two instances: whichever commits
    // last has seen the other, so the newer one (paid after being past due) decides.
    for round in 0..3 {
        let base = t - 40 + round * 10;
        let past_due = event(
            "customer.subscription.updated",
            base,
            sub.object("past_due", t + 86_400 * 30),
        );
        let paid = event_with(
            &stripe_id("evt"),
            "invoice.paid",
            base + 5,
            ACACIA,
            sub.invoice(true, "subscription_cycle", t + 86_400 * 30, false),
            None,
        );
        let (a, b) = tokio::join!(deliver(&app, &past_due), deliver(second, &paid));
        // The newer event always changes the evidence. The older one does too when it commits
        // first; committing after the newer one, it changes nothing and says so.
        assert_eq!(b, "applied");
        assert!(a == "applied" || a == "stale", "{a}");
        let evidence = payment_evidence(&app, &acc).await;
        assert_eq!(evidence.len(), 1);
        assert_eq!(evidence[0]["status"], "active", "{evidence:?}");
        assert_eq!(evidence[0]["expires_at"], Value::Null, "{evidence:?}");
        assert_eq!(
            evidence[0]["verified_at"],
            rfc3339(base + 5),
            "{evidence:?}"
        );
    }

    let chain: Value = app
        .get("/v1/admin/audit/verify", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(chain["intact"], true, "{chain}");
}

#[tokio::test]
async fn out_of_order_events_never_override_a_newer_state() {
    let app = billing_app().await;
    let t = now(&app);
    let period_end = t + 86_400 * 30;

    // Lifecycle created (incomplete) -> updated (active) -> deleted (canceled), delivered
    // newest first: it is canceled, and was never seen as paid for a moment.
    let acc = app.account("reverse").await;
    let sub = Sub::new(Some(&acc), t - 300);
    let created = event(
        "customer.subscription.created",
        t - 300,
        sub.object("incomplete", period_end),
    );
    let updated = event(
        "customer.subscription.updated",
        t - 200,
        sub.object("active", period_end),
    );
    let deleted = event(
        "customer.subscription.deleted",
        t - 100,
        sub.object("canceled", period_end),
    );
    // The newest is applied; the older ones find it applied already and change nothing:
    // `stale`, as the response says.
    for (payload, outcome) in [
        (&deleted, "applied"),
        (&updated, "stale"),
        (&created, "stale"),
    ] {
        assert_eq!(deliver(&app, payload).await, outcome);
        assert!(!granted(&app, &acc).await);
        assert!(payment_evidence(&app, &acc)
            .await
            .iter()
            .all(|e| e["status"] != "active"));
    }

    // In order, with stale events arriving late.
    let acc = app.account("late").await;
    let sub = Sub::new(Some(&acc), t - 300);
    let created = event(
        "customer.subscription.created",
        t - 300,
        sub.object("active", period_end),
    );
    let past_due = event(
        "customer.subscription.updated",
        t - 250,
        sub.object("past_due", period_end),
    );
    let renewed = event(
        "customer.subscription.updated",
        t - 200,
        sub.object("active", period_end + 86_400 * 30),
    );
    let deleted = event(
        "customer.subscription.deleted",
        t - 100,
        sub.object("canceled", period_end + 86_400 * 30),
    );
    let stale_active = event(
        "customer.subscription.updated",
        t - 150,
        sub.object("active", period_end + 86_400 * 30),
    );
    assert_eq!(deliver(&app, &created).await, "applied");
    assert_eq!(deliver(&app, &renewed).await, "applied");
    let before = payment_evidence(&app, &acc).await;
    assert_eq!(before[0]["verified_at"], rfc3339(t - 200));
    // The older past_due arrives after the newer active: no effect, and the answer says so.
    assert_eq!(deliver(&app, &past_due).await, "stale");
    assert_eq!(payment_evidence(&app, &acc).await, before);
    assert!(granted(&app, &acc).await);
    assert_eq!(deliver(&app, &deleted).await, "applied");
    assert!(!granted(&app, &acc).await);
    // An update older than the cancellation arrives last: still canceled. Not `stale`: it
    // moves the last time the subscription was seen paid (the lapsed evidence's
    // `verified_at`), so it did change something.
    assert_eq!(deliver(&app, &stale_active).await, "applied");
    assert!(!granted(&app, &acc).await);
    let evidence = payment_evidence(&app, &acc).await;
    assert_eq!(evidence.len(), 1);
    assert_eq!(evidence[0]["status"], "lapsed");

    // created and updated in the same second (Stripe's `created` has whole seconds), updated
    // delivered first: the subscription object's own state (active after incomplete) decides.
    let acc = app.account("same-second").await;
    let sub = Sub::new(Some(&acc), t - 60);
    let created = event(
        "customer.subscription.created",
        t - 60,
        sub.object("incomplete", period_end),
    );
    let updated = event(
        "customer.subscription.updated",
        t - 60,
        sub.object("active", period_end),
    );
    assert_eq!(deliver(&app, &updated).await, "applied");
    assert_eq!(deliver(&app, &created).await, "stale");
    assert!(granted(&app, &acc).await);
}

#[tokio::test]
async fn a_database_failure_is_a_5xx_and_nothing_is_half_applied() {
    let app = billing_app().await;
    let acc = app.account("outage").await;
    let t = now(&app);
    let sub = Sub::new(Some(&acc), t - 100);
    let payload = event(
        "customer.subscription.created",
        t - 50,
        sub.object("active", t + 86_400 * 30),
    );

    // Writing the evidence fails after the event row was inserted: all of it rolls back.
    let conn = &app.db().await;
    let postgres = app.is_postgres();
    if postgres {
        conn.execute_unprepared(
            "CREATE FUNCTION vouch_test_fail() RETURNS trigger AS $$ BEGIN \
             RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER vouch_test_fail BEFORE INSERT ON evidence \
             FOR EACH ROW EXECUTE FUNCTION vouch_test_fail();",
        )
        .await
        .unwrap();
    } else {
        conn.execute_unprepared(
            "CREATE TRIGGER vouch_test_fail BEFORE INSERT ON evidence \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .await
        .unwrap();
    }
    let res = send(&app, Some(&stripe_signature(SECRET, t, &payload)), &payload).await;
    assert!(res.status().is_server_error(), "{}", res.status());
    let drop = if postgres {
        "DROP TRIGGER vouch_test_fail ON evidence; DROP FUNCTION vouch_test_fail();"
    } else {
        "DROP TRIGGER vouch_test_fail;"
    };
    conn.execute_unprepared(drop).await.unwrap();
    // Stripe's retry is applied, not taken for a duplicate: the event was not kept.
    assert_eq!(deliver(&app, &payload).await, "applied");
    assert!(granted(&app, &acc).await);

    // The database goes away: 503, so Stripe retries later.
    let deleted = event(
        "customer.subscription.deleted",
        t - 10,
        sub.object("canceled", t + 86_400 * 30),
    );
    app.lose_database().await;
    let res = send(&app, Some(&stripe_signature(SECRET, t, &deleted)), &deleted).await;
    assert_problem(res, 503, "database_unavailable").await;

    // Another instance on the same database takes the retry.
    let other = spawn_with_settings(app.settings.clone(), false).await;
    let res = send(
        &other,
        Some(&stripe_signature(SECRET, now(&other), &deleted)),
        &deleted,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = other
        .get(
            &format!("/v1/accounts/{acc}/entitlements"),
            &app.backend_key,
        )
        .await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["entitlements"]["e2ee"]["granted"], false);
}

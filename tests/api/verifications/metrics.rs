//! The operations gauges and counters the dashboard and alerts read move with what they measure.

use super::*;

const WAITING: &str = r#"vouch_queue_waiting{queue="verification"}"#;
const OLDEST: &str = r#"vouch_queue_oldest_waiting_age_seconds{queue="verification"}"#;

#[tokio::test]
async fn an_sms_outage_shows_as_a_backlog_that_ages_and_clears() {
    let rig = rig_with(slow_retries).await;
    let app = &rig.app;
    // Exposed from the start, as zeros.
    assert_eq!(app.metric(WAITING).await, 0.0);
    assert_eq!(app.metric(OLDEST).await, 0.0);
    assert_eq!(
        app.metric(r#"vouch_verification_messages_total{channel="sms",outcome="retry"}"#)
            .await,
        0.0
    );
    assert_eq!(
        app.metric("vouch_sms_budget_per_hour").await,
        f64::from(app.settings.verification.sms_hourly_budget)
    );

    rig.twilio.respond_with(503);
    let account = app.account("user-metrics").await;
    let vid = rig.send_ok(&account, "sms", PHONE).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually(
        "a failed first attempt",
        Duration::from_secs(15),
        || async {
            outbox(app, &vid)
                .await
                .filter(|m| m.status == "pending" && m.attempts == 1)
        },
    )
    .await;
    app.clock.advance(chrono::Duration::seconds(50));
    app.sample_gauges().await;
    assert_eq!(app.metric(WAITING).await, 1.0);
    let age = app.metric(OLDEST).await;
    assert!((50.0..60.0).contains(&age), "oldest waiting for {age} s");
    assert_eq!(
        app.metric(r#"vouch_verification_messages_total{channel="sms",outcome="retry"}"#)
            .await,
        1.0
    );
    assert_eq!(app.metric("vouch_sms_sent_last_hour").await, 1.0);
    for queue in ["webhook", "livekit"] {
        let series = format!(r#"vouch_queue_waiting{{queue="{queue}"}}"#);
        assert_eq!(app.metric(&series).await, 0.0, "{series}");
    }

    // The provider recovers: the backlog clears, and the send counts once more as delivered.
    rig.twilio.respond_with(201);
    app.clock.advance(chrono::Duration::seconds(30));
    rig.wait_delivery(&vid, "delivered").await;
    app.sample_gauges().await;
    assert_eq!(app.metric(WAITING).await, 0.0);
    assert_eq!(app.metric(OLDEST).await, 0.0);
    assert_eq!(
        app.metric(r#"vouch_verification_messages_total{channel="sms",outcome="delivered"}"#)
            .await,
        1.0
    );
    assert_eq!(
        app.metric(r#"vouch_verification_messages_total{channel="sms",outcome="failed"}"#)
            .await,
        0.0
    );
    // An hour later the send no longer counts against the budget.
    app.clock.advance(chrono::Duration::minutes(61));
    app.sample_gauges().await;
    assert_eq!(app.metric("vouch_sms_sent_last_hour").await, 0.0);
}

#[tokio::test]
async fn readiness_pool_use_and_the_key_rotation_schedule_are_exposed() {
    let rig = rig().await;
    let app = &rig.app;
    app.sample_gauges().await;
    assert_eq!(app.metric("vouch_ready").await, 1.0);
    assert_eq!(
        app.metric("vouch_db_pool_max_connections").await,
        f64::from(app.settings.database.max_connections)
    );
    // One scrape: pool use is read as it is served.
    let scrape = app.scrape().await;
    let open = scrape.value(r#"vouch_db_pool_connections{state="in_use"}"#)
        + scrape.value(r#"vouch_db_pool_connections{state="idle"}"#);
    assert!(open >= 1.0, "the pool holds {open} connections");
    assert!(open <= f64::from(app.settings.database.max_connections));

    let period = app.settings.tokens.rotation_period_days as f64 * 86_400.0;
    assert!(period > 0.0, "rotation is on by default");
    let due = app.metric("vouch_signing_key_rotation_due_seconds").await;
    assert!(
        due > 0.0 && due <= period,
        "rotation due in {due} s of a {period} s period"
    );
    // Past the period with no maintenance round: overdue, which the alert reads.
    app.clock
        .advance(chrono::Duration::seconds(period as i64 + 3600));
    app.sample_gauges().await;
    let overdue = app.metric("vouch_signing_key_rotation_due_seconds").await;
    assert!((-3601.0..0.0).contains(&overdue), "{overdue}");
    // A round schedules the successor: the next rotation is a period after it activates.
    app.maintain().await;
    app.sample_gauges().await;
    let next = app.metric("vouch_signing_key_rotation_due_seconds").await;
    assert!(next > period, "{next}");

    // The database goes away: readiness drops to 0.
    app.lose_database().await;
    let res = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_ne!(res.status(), 200);
    assert_eq!(app.metric("vouch_ready").await, 0.0);
}

#[tokio::test]
async fn rotation_off_is_never_overdue() {
    let rig = rig_with(|s| s.tokens.rotation_period_days = 0).await;
    rig.app.sample_gauges().await;
    assert_eq!(
        rig.app
            .metric("vouch_signing_key_rotation_due_seconds")
            .await,
        f64::INFINITY
    );
}

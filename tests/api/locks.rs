//! No writer waits for ever: a stuck lock holder costs a request a 503 within
//! `database.lock_timeout_seconds`, and on PostgreSQL a session idle inside its transaction is
//! ended after `database.idle_in_transaction_timeout_seconds`, releasing what it held.

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::json;

use crate::helpers::{assert_problem, spawn_app_with};

#[tokio::test]
async fn a_writer_behind_a_held_lock_gets_503_within_the_lock_timeout() {
    let app = spawn_app_with(|s| s.database.lock_timeout_seconds = 1).await;
    // Someone takes the write lock and sits on it: on SQLite the write queue, on PostgreSQL
    // the audit chain's advisory lock, taken by a session outside the instance's pool.
    let outsider = sea_orm::Database::connect(app.database_url.as_str())
        .await
        .unwrap();
    let held = match app.is_postgres() {
        false => Err(app.hold_write_lock().await),
        true => {
            let txn = outsider.begin().await.unwrap();
            txn.execute_unprepared(&format!(
                "SELECT pg_advisory_xact_lock({})",
                vouch::services::audit::CHAIN_LOCK
            ))
            .await
            .unwrap();
            Ok(txn)
        }
    };

    let started = Instant::now();
    let res = app
        .post(
            "/v1/accounts",
            &app.backend_key,
            &json!({"external_id": "blocked"}),
        )
        .await;
    let waited = started.elapsed();
    assert_problem(res, 503, "database_unavailable").await;
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "answered after {waited:?}, the lock timeout is 1 s"
    );

    // The holder lets go: writes go through again, and nothing half-written remains.
    match held {
        Ok(txn) => txn.rollback().await.unwrap(),
        Err(txn) => drop(txn),
    }
    app.create_account("after").await;
    let list: serde_json::Value = app
        .get("/v1/accounts", &app.backend_key)
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["external_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["after"]);
}

#[tokio::test]
async fn postgres_ends_a_session_that_idles_in_its_transaction() {
    let app = spawn_app_with(|s| {
        s.database.lock_timeout_seconds = 10;
        s.database.idle_in_transaction_timeout_seconds = 1;
    })
    .await;
    if !app.is_postgres() {
        eprintln!("skipped: PostgreSQL only (set VOUCH_TEST_DATABASE_URL)");
        return;
    }
    // Every pooled connection carries the settings.
    for (setting, expected) in [
        ("lock_timeout", "10s"),
        ("idle_in_transaction_session_timeout", "1s"),
    ] {
        assert_eq!(app.pooled_setting(setting).await, expected);
    }

    // One of the instance's own writers takes the chain lock and then does nothing: PostgreSQL
    // ends its session after a second, and the next writer goes through well before its own
    // ten-second lock timeout.
    let stuck = app.hold_write_lock().await;
    let started = Instant::now();
    app.create_account("after-stuck-writer").await;
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "the next writer waited {waited:?}"
    );
    assert!(
        stuck.commit().await.is_err(),
        "the idle session was ended, and its transaction with it"
    );
}

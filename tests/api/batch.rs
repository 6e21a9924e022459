//! Group commit (`db::batch`): jobs queued together share one transaction and one commit, yet
//! each is atomic on its own. Run against the database the suite runs on (SQLite or
//! PostgreSQL), with the audit chain keyed as in the service.

use std::time::Duration;

use entities::audit_log;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::json;
use vouch::{
    crypto::MasterKey,
    db::{
        batch::{Batcher, Outcome},
        Db,
    },
    error::{ApiError, ErrorCode},
    services::audit,
};

use crate::helpers::test_settings;

/// What job `i` does after writing its audit entry.
fn fate(i: usize) -> &'static str {
    match i % 6 {
        1 => "fails",           // returns an error: rolled back to its savepoint
        3 => "breaks", // a statement fails in the database (aborting the transaction on PostgreSQL), then returns the error
        4 => "changes nothing", // keep = false: rolled back, answered Ok
        _ => "commits",
    }
}

#[tokio::test]
async fn jobs_queued_together_commit_together_and_each_one_alone_rolls_back() {
    let settings = test_settings().await;
    let master = MasterKey::new(vouch::crypto::random_bytes::<32>());
    let key = audit::chain_key(&master);
    let db = Db::connect(&settings)
        .await
        .unwrap()
        .with_audit_key(key.clone());
    db.migrate().await.unwrap();
    let batcher = Batcher::start(db.clone());

    // Hold the write lock while the jobs queue, so they cannot trickle through one by one:
    // the writer takes them in batches when it is released.
    let held = db.begin_write().await.unwrap();
    let jobs: Vec<_> = (0..30)
        .map(|i| {
            let batcher = batcher.clone();
            tokio::spawn(async move {
                batcher
                    .write(move |txn| {
                        Box::pin(async move {
                            audit::append(
                                txn,
                                chrono::Utc::now(),
                                audit::Entry {
                                    actor: "test",
                                    action: audit::AuditAction::ClientCreated,
                                    target_type: audit::AuditTarget::Client,
                                    target_id: &format!("job-{i}"),
                                    details: json!({}),
                                },
                            )
                            .await?;
                            match fate(i) {
                                "fails" => Err(ApiError::bad_request(ErrorCode::BadRequest, "no")),
                                "breaks" => {
                                    txn.execute_unprepared("SELECT * FROM no_such_table")
                                        .await?;
                                    Ok(Outcome::keep(i))
                                }
                                "changes nothing" => Ok(Outcome {
                                    value: i,
                                    keep: false,
                                }),
                                _ => Ok(Outcome::keep(i)),
                            }
                        })
                    })
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    held.commit().await.unwrap();

    for (i, job) in jobs.into_iter().enumerate() {
        let answer = job.await.unwrap();
        match fate(i) {
            "fails" => assert_eq!(answer.unwrap_err().code, ErrorCode::BadRequest, "job {i}"),
            "breaks" => assert!(answer.is_err(), "job {i}: {answer:?}"),
            _ => assert_eq!(answer.unwrap(), i, "job {i}"),
        }
    }
    let kept: Vec<String> = audit_log::Entity::find()
        .filter(audit_log::Column::Actor.eq("test"))
        .all(db.conn())
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.target_id)
        .collect();
    let mut expected: Vec<String> = (0..30)
        .filter(|i| fate(*i) == "commits")
        .map(|i| format!("job-{i}"))
        .collect();
    let mut kept_sorted = kept.clone();
    kept_sorted.sort();
    expected.sort();
    assert_eq!(kept_sorted, expected);
    // The chain is whole and every entry sealed, across batches and rolled-back savepoints.
    let report = audit::verify(db.conn(), &key, None).await.unwrap();
    assert!(report.intact, "{report:?}");
}

//! Several instances on one database: what one changes, the others enforce within 1 s.

use std::time::{Duration, Instant};

use serde_json::json;
use vouch::domain::evidence::{EvidenceKind::*, EvidenceStatus::*};

use crate::helpers::{spawn_app, TestApp};

/// Poll `other` until authorize denies with `reason`; returns how long it took.
async fn time_until_denied(other: &TestApp, token: &str, reason: &str) -> Duration {
    let start = Instant::now();
    loop {
        let body = other.authorize(token, None).await;
        if body["allow"] == false {
            assert_eq!(body["reason"], reason, "{body}");
            return start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(5), "never denied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn changes_on_one_instance_are_enforced_by_another_within_a_second() {
    let a = spawn_app().await;
    let b = a.spawn_sibling().await;

    // Suspension.
    let id = a.entitled_account("multi-1").await;
    let token = a.issue_token(&id).await;
    assert_eq!(
        b.authorize(&token, None).await["allow"],
        true,
        "b caches the account as allowed"
    );
    a.patch(
        &format!("/v1/accounts/{id}"),
        &a.admin_key,
        &json!({"status": "suspended"}),
    )
    .await;
    let took = time_until_denied(&b, &token, "account_suspended").await;
    assert!(took <= Duration::from_secs(1), "suspension took {took:?}");

    // Lapsed evidence.
    let id = a.entitled_account("multi-2").await;
    let token = a.issue_token(&id).await;
    assert_eq!(b.authorize(&token, None).await["allow"], true);
    a.add_evidence(&id, Phone, Lapsed, None).await;
    let took = time_until_denied(&b, &token, "not_entitled").await;
    assert!(took <= Duration::from_secs(1), "lapse took {took:?}");

    // Revocation.
    let id = a.entitled_account("multi-3").await;
    let token = a.issue_token(&id).await;
    assert_eq!(b.authorize(&token, None).await["allow"], true);
    a.post(
        "/v1/tokens/revoke",
        &a.backend_key,
        &json!({"token": token}),
    )
    .await;
    let took = time_until_denied(&b, &token, "revoked").await;
    assert!(took <= Duration::from_secs(1), "revocation took {took:?}");

    // Tokens issued by either instance verify on the other.
    let from_b = b.issue_token(&a.entitled_account("multi-4").await).await;
    assert_eq!(a.authorize(&from_b, None).await["allow"], true);
}

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

/// Insert `count` outstanding revocations (unexpired, revoked now) straight into the database,
/// in bulk, the way a busy deployment accumulates them.
async fn bulk_revocations(app: &TestApp, count: usize) {
    use sea_orm::{ActiveValue::Set, EntityTrait, TransactionTrait};
    let now = app.now();
    let db = app.db().await;
    let txn = db.begin().await.unwrap();
    let mut done = 0;
    while done < count {
        let n = (count - done).min(1000);
        let rows = (done..done + n).map(|i| entities::revoked_token::ActiveModel {
            jti: Set(format!("bulk-{i}")),
            account_id: Set("acc_bulk".into()),
            revoked_at: Set(now),
            expires_at: Set(now + chrono::Duration::hours(1)),
            ..Default::default()
        });
        entities::revoked_token::Entity::insert_many(rows)
            .exec_without_returning(&txn)
            .await
            .unwrap();
        done += n;
    }
    txn.commit().await.unwrap();
}

/// A token of `account` carrying the jti of bulk revocation `i`, signed with the instance's
/// key: authorize refuses it as revoked once the instance knows that revocation.
async fn bulk_token(app: &TestApp, account: &str, i: usize) -> String {
    let now = app.now().timestamp();
    let kid = app.signing_key().await.kid;
    let header = json!({"alg": "EdDSA", "typ": "e2ee-ent+jwt", "kid": kid});
    let claims = json!({
        "iss": app.settings.tokens.issuer, "sub": account, "aud": "meeting",
        "iat": now, "nbf": now, "exp": now + 600, "jti": format!("bulk-{i}"),
        "ent": ["e2ee"], "evidence": ["phone"]
    });
    app.forge(&header, &claims).await
}

/// Wait until `app` refuses `token` as revoked: the bulk revocations are mirrored in order, so
/// the last one's token stands for all of them.
async fn until_mirrored(app: &TestApp, token: &str) {
    let start = Instant::now();
    loop {
        let body = app.authorize(token, None).await;
        if body["reason"] == "revoked" {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the backlog was not mirrored: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn revocations_past_a_hundred_thousand_reach_every_instance() {
    const BACKLOG: usize = 100_500;
    let a = spawn_app().await;
    let running = a.spawn_sibling().await;
    bulk_revocations(&a, BACKLOG).await;
    let holder = a.entitled_account("backlog-holder").await;
    let last = bulk_token(&a, &holder, BACKLOG - 1).await;
    // The running instance catches up with the backlog page by page.
    until_mirrored(&running, &last).await;

    // A revocation recorded behind the backlog reaches the running instance within 1 s...
    let id = a.entitled_account("backlog-1").await;
    let token = a.issue_token(&id).await;
    assert_eq!(running.authorize(&token, None).await["allow"], true);
    let res = a
        .post(
            "/v1/tokens/revoke",
            &a.backend_key,
            &json!({"token": token}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let took = time_until_denied(&running, &token, "revoked").await;
    assert!(took <= Duration::from_secs(1), "revocation took {took:?}");

    // ...and an instance started afterwards knows all of it before it serves.
    let fresh = a.spawn_sibling().await;
    let body = fresh.authorize(&last, None).await;
    assert_eq!(body["reason"], "revoked", "the whole backlog: {body}");
    let body = fresh.authorize(&token, None).await;
    assert_eq!(body["allow"], false, "{body}");
    assert_eq!(body["reason"], "revoked", "{body}");

    // Later revocations keep arriving everywhere, whichever instance records them.
    let id = a.entitled_account("backlog-2").await;
    let token = fresh.issue_token(&id).await;
    assert_eq!(a.authorize(&token, None).await["allow"], true);
    assert_eq!(running.authorize(&token, None).await["allow"], true);
    let res = fresh
        .post(
            "/v1/tokens/revoke",
            &fresh.backend_key,
            &json!({"token": token}),
        )
        .await;
    assert_eq!(res.status(), 200);
    for other in [&a, &running] {
        let took = time_until_denied(other, &token, "revoked").await;
        assert!(took <= Duration::from_secs(1), "revocation took {took:?}");
    }
}

/// The claims of a token, as any JWT library would read them (no signature check needed here).
fn claims(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWS");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url"),
    )
    .expect("JSON claims")
}

/// An instance keeps accounts cached for as long as the change feed says they did not change,
/// so a change that leaves the decision as it was (the account stays entitled, its status-list
/// value stays 0) must still reach it: here a payment added to a phone-verified account, which
/// the policy names first, so new tokens name it.
#[tokio::test]
async fn a_change_that_keeps_the_decision_still_reaches_every_instance_within_a_second() {
    let a = spawn_app().await;
    let b = a.spawn_sibling().await;
    let id = a.entitled_account("multi-evidence").await;
    assert_eq!(
        claims(&b.issue_token(&id).await)["evidence"],
        json!(["phone"]),
        "b caches the account with its phone"
    );
    a.add_evidence(&id, Payment, Active, None).await;
    let start = Instant::now();
    loop {
        let evidence = claims(&b.issue_token(&id).await)["evidence"].clone();
        if evidence == json!(["payment"]) {
            break;
        }
        assert_eq!(evidence, json!(["phone"]));
        assert!(
            start.elapsed() <= Duration::from_secs(1),
            "b still issues from the account as it was after {:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

//! Every change of an account's decision, whatever caused it, reaches meeting servers twice: as
//! a signed event (checked with the independent `standardwebhooks` crate) and in the Token
//! Status List (read on a sibling instance through the token's own `status` claim). The causes
//! with their own builders (a verification, Stripe, exceptions) are in their modules and use
//! [`Listener`] and [`listed`] from here.

use std::time::Duration;

use serde_json::{json, Value};
use vouch::{
    config::Settings,
    domain::evidence::{EvidenceKind, EvidenceStatus},
};

use crate::{
    fakes::eventually,
    helpers::{spawn_app_with, spawn_with_settings, token_part, TestApp},
    status_lists::fetch,
    webhooks::Receiver,
};

/// Settings that let an instance deliver events to a local receiver.
pub(crate) fn deliver_locally(s: &mut Settings) {
    s.webhooks.allow_http = true;
    s.webhooks.allow_private_networks = true;
    s.webhooks.poll_interval_millis = 100;
}

/// A meeting server's webhook endpoint: receives, verifies every signature, reads events.
pub(crate) struct Listener {
    receiver: Receiver,
    secret: String,
}

impl Listener {
    /// Register a local receiver as an endpoint for every event type (as an admin).
    pub(crate) async fn attach(app: &TestApp) -> Listener {
        let receiver = Receiver::start().await;
        let res = app
            .post(
                "/v1/admin/webhooks",
                &app.admin_key,
                &json!({"url": receiver.url}),
            )
            .await;
        assert_eq!(res.status(), 201);
        let body: Value = res.json().await.unwrap();
        Listener {
            receiver,
            secret: body["secret"].as_str().unwrap().to_owned(),
        }
    }

    /// Every event received so far (signatures verified), in order of arrival.
    pub(crate) fn events(&self) -> Vec<Value> {
        self.receiver
            .received()
            .into_iter()
            .map(|r| {
                assert!(r.verifies_with(&self.secret), "signature verifies");
                r.json()
            })
            .collect()
    }

    /// Wait for an event of `kind` whose data has `field` = `value`; returns its `data`.
    pub(crate) async fn wait(&self, kind: &str, field: &str, value: &str) -> Value {
        eventually(
            &format!("a {kind} event with {field} = {value}"),
            Duration::from_secs(15),
            || async {
                self.events()
                    .into_iter()
                    .find(|e| e["type"] == kind && e["data"][field] == value)
                    .map(|e| e["data"].clone())
            },
        )
        .await
    }

    /// The types of the events received about `account_id`, sorted (deliveries run
    /// concurrently, so arrival order is not the order of the changes; receivers order by
    /// the body's `timestamp`).
    pub(crate) fn types_for(&self, account_id: &str) -> Vec<String> {
        let mut types: Vec<String> = self
            .events()
            .into_iter()
            .filter(|e| e["data"]["account_id"] == account_id)
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect();
        types.sort();
        types
    }
}

/// The value a verifier reads for `token` in the list its `status` claim names, fetched from
/// `instance` with a meeting key.
pub(crate) async fn listed(instance: &TestApp, token: &str) -> u8 {
    let claims = token_part(token, 1);
    let reference = &claims["status"]["status_list"];
    let uri = reference["uri"].as_str().expect("a status claim");
    let list_id: i64 = uri.rsplit('/').next().unwrap().parse().unwrap();
    let idx = reference["idx"].as_u64().unwrap() as u32;
    fetch(instance, list_id, Some(&instance.meeting_key))
        .await
        .value(idx)
}

/// Wait (up to 3 s) until `instance` lists `token`'s account with `value`.
pub(crate) async fn wait_listed(instance: &TestApp, token: &str, value: u8) {
    eventually(
        &format!("the status list to show {value}"),
        Duration::from_secs(3),
        || async { (listed(instance, token).await == value).then_some(()) },
    )
    .await
}

async fn set_status(app: &TestApp, account: &str, status: &str) {
    let res = app
        .patch(
            &format!("/v1/accounts/{account}"),
            &app.admin_key,
            &json!({"status": status}),
        )
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn tokens_name_the_accounts_place_in_a_status_list() {
    let app = spawn_app_with(deliver_locally).await;
    let acc = app.entitled_account("status-claim").await;
    let token = app.issue_token(&acc).await;
    let claims = token_part(&token, 1);
    let reference = &claims["status"]["status_list"];
    assert!(reference["idx"].is_u64(), "{claims}");
    assert!(
        reference["uri"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/v1/status-lists/", app.settings.tokens.issuer)),
        "{claims}"
    );
    // All of an account's tokens share the index.
    let again = app.issue_token(&acc).await;
    assert_eq!(token_part(&again, 1)["status"], claims["status"]);
    wait_listed(&app, &token, 0).await;
}

#[tokio::test]
async fn suspension_reactivation_revocation_and_erasure_are_announced_and_listed() {
    let app = spawn_app_with(deliver_locally).await;
    let sibling = app.spawn_sibling().await;
    let listener = Listener::attach(&app).await;
    let acc = app.entitled_account("lifecycle").await;
    let granted = listener
        .wait("entitlement.granted", "account_id", &acc)
        .await;
    assert_eq!(granted["external_id"], "lifecycle");
    assert_eq!(granted["entitlement"], "e2ee");
    assert_eq!(granted["reason"], "phone");
    let token = app.issue_token(&acc).await;
    wait_listed(&sibling, &token, 0).await;

    set_status(&app, &acc, "suspended").await;
    listener.wait("account.suspended", "account_id", &acc).await;
    let revoked = listener
        .wait("entitlement.revoked", "account_id", &acc)
        .await;
    assert_eq!(revoked["reason"], "suspended");
    wait_listed(&sibling, &token, 2).await;

    set_status(&app, &acc, "active").await;
    listener
        .wait("account.reactivated", "account_id", &acc)
        .await;
    wait_listed(&sibling, &token, 0).await;
    assert_eq!(
        listener.types_for(&acc),
        [
            "account.reactivated",
            "account.suspended",
            "entitlement.granted",
            "entitlement.granted",
            "entitlement.revoked",
        ]
    );

    let jti = token_part(&token, 1)["jti"].as_str().unwrap().to_owned();
    let res = app
        .post(
            "/v1/tokens/revoke",
            &app.backend_key,
            &json!({"token": token}),
        )
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    let revoked_token = listener.wait("token.revoked", "jti", &jti).await;
    assert_eq!(revoked_token["account_id"], acc.as_str());
    assert!(revoked_token["expires_at"].is_string());

    let res = app
        .delete(&format!("/v1/accounts/{acc}"), &app.backend_key)
        .await;
    assert_eq!(res.status(), 204);
    listener.wait("account.erased", "account_id", &acc).await;
    let reasons = eventually(
        "the erasure's revocation",
        Duration::from_secs(15),
        || async {
            let reasons: Vec<String> = listener
                .events()
                .into_iter()
                .filter(|e| e["type"] == "entitlement.revoked")
                .map(|e| e["data"]["reason"].as_str().unwrap().to_owned())
                .collect();
            (reasons.len() == 2).then_some(reasons)
        },
    )
    .await;
    assert!(reasons.contains(&"erased".to_owned()), "{reasons:?}");
    wait_listed(&sibling, &token, 1).await;
}

#[tokio::test]
async fn evidence_that_lapses_by_time_alone_is_withdrawn_within_a_maintenance_round() {
    let app = spawn_app_with(deliver_locally).await;
    let listener = Listener::attach(&app).await;
    let acc = app.account("lapsing").await;
    let expires = app.now() + chrono::Duration::seconds(30);
    app.add_evidence(
        &acc,
        EvidenceKind::Phone,
        EvidenceStatus::Active,
        Some(expires),
    )
    .await;
    let token = app.issue_token(&acc).await;
    listener
        .wait("entitlement.granted", "account_id", &acc)
        .await;
    app.maintain().await;
    wait_listed(&app, &token, 0).await; // not lapsed yet

    app.clock.advance(chrono::Duration::seconds(31));
    app.maintain().await;
    let revoked = listener
        .wait("entitlement.revoked", "account_id", &acc)
        .await;
    assert_eq!(revoked["reason"], "lapsed");
    wait_listed(&app, &token, 1).await;
    // Once withdrawn, later rounds have nothing more to say.
    app.maintain().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        listener.types_for(&acc),
        ["entitlement.granted", "entitlement.revoked"]
    );
}

#[tokio::test]
async fn a_policy_change_at_start_up_is_announced() {
    let app = spawn_app_with(deliver_locally).await;
    let listener = Listener::attach(&app).await;
    let phone_only = app.entitled_account("phone-only").await;
    let token = app.issue_token(&phone_only).await;
    listener
        .wait("entitlement.granted", "account_id", &phone_only)
        .await;

    // The operator restarts with a stricter policy: phone alone no longer grants E2EE.
    let mut settings = app.settings.clone();
    settings.policy.preset = "paid-only".into();
    let stricter = spawn_with_settings(settings, false).await;
    let revoked = listener
        .wait("entitlement.revoked", "account_id", &phone_only)
        .await;
    assert_eq!(revoked["reason"], "policy");
    wait_listed(&app, &token, 1).await;
    // The policy pass runs once per policy: a further instance with it says nothing new.
    let mut settings = app.settings.clone();
    settings.policy.preset = "paid-only".into();
    let _again = spawn_with_settings(settings, false).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        listener.types_for(&phone_only),
        ["entitlement.granted", "entitlement.revoked"]
    );
    drop(stricter);
}

#[tokio::test]
async fn events_carry_ids_never_personal_data() {
    let app = spawn_app_with(deliver_locally).await;
    let listener = Listener::attach(&app).await;
    let res = app
        .post(
            "/v1/accounts",
            &app.backend_key,
            &json!({"external_id": "private-1", "email": "someone@example.org", "display_name": "Ana Quiroga"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let acc = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.add_evidence(&acc, EvidenceKind::Phone, EvidenceStatus::Active, None)
        .await;
    set_status(&app, &acc, "suspended").await;
    listener
        .wait("entitlement.revoked", "account_id", &acc)
        .await;
    let bodies = serde_json::to_string(&listener.events()).unwrap();
    assert!(!bodies.contains("example.org"), "{bodies}");
    assert!(!bodies.contains("Quiroga"), "{bodies}");
}

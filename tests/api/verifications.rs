//! Email and phone verification end to end: codes travel over real SMTP (a local sink) and a
//! local Twilio-compatible API, and are read back from the delivered messages.

use std::time::Duration;

use entities::{
    audit_log, evidence, outbox_message, verification, verification_send, verified_phone,
};
use futures_util::future::join_all;
use reqwest::{Response, StatusCode};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use secrecy::SecretString;
use serde_json::{json, Value};
use vouch::config::Settings;

use crate::{
    fakes::{eventually, FakeTwilio, SmtpSink, TWILIO_FROM, TWILIO_SID, TWILIO_TOKEN},
    helpers::{assert_problem, spawn_app_with, spawn_with_settings, test_settings, TestApp},
};

const PHONE: &str = "+14155552671";

/// An instance wired to a local SMTP sink and a local Twilio-compatible API.
struct Rig {
    app: TestApp,
    smtp: SmtpSink,
    twilio: FakeTwilio,
}

async fn rig() -> Rig {
    rig_with(|_| {}).await
}

fn use_providers(s: &mut Settings, smtp: &SmtpSink, twilio: &FakeTwilio) {
    s.email.smtp_url = Some(SecretString::from(smtp.url()));
    s.email.from = "Vouch Test <no-reply@vouch.test>".into();
    s.sms.twilio_base_url = Some(twilio.base_url.clone());
    s.sms.twilio_account_sid = Some(TWILIO_SID.into());
    s.sms.twilio_auth_token = Some(SecretString::from(TWILIO_TOKEN));
    s.sms.from = Some(TWILIO_FROM.into());
}

async fn rig_with(configure: impl FnOnce(&mut Settings)) -> Rig {
    let smtp = SmtpSink::start().await;
    let twilio = FakeTwilio::start().await;
    let app = spawn_app_with(|s| {
        use_providers(s, &smtp, &twilio);
        configure(s);
    })
    .await;
    Rig { app, smtp, twilio }
}

impl Rig {
    async fn send(&self, account: &str, channel: &str, to: &str) -> Response {
        self.app
            .post(
                &format!("/v1/accounts/{account}/verifications"),
                &self.app.backend_key,
                &json!({"channel": channel, "to": to}),
            )
            .await
    }

    async fn send_ok(&self, account: &str, channel: &str, to: &str) -> Value {
        let res = self.send(account, channel, to).await;
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    async fn check(&self, vid: &str, code: &str) -> Response {
        self.app
            .post(
                &format!("/v1/verifications/{vid}/check"),
                &self.app.backend_key,
                &json!({"code": code}),
            )
            .await
    }

    async fn check_ok(&self, vid: &str, code: &str) -> Value {
        let res = self.check(vid, code).await;
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn verification(&self, vid: &str) -> Value {
        let res = self
            .app
            .get(&format!("/v1/verifications/{vid}"), &self.app.reviewer_key)
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }

    async fn wait_delivery(&self, vid: &str, status: &str) -> outbox_message::Model {
        eventually(
            &format!("message of {vid} to be {status}"),
            Duration::from_secs(15),
            || async { outbox(&self.app, vid).await.filter(|m| m.status == status) },
        )
        .await
    }

    /// Send an SMS code to `to` for `account` and return (verification id, code).
    async fn sms_code(&self, account: &str, to: &str) -> (String, String) {
        let before = self.twilio.requests().len();
        let vid = self.send_ok(account, "sms", to).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let code = self.twilio.nth(before + 1).await.code();
        (vid, code)
    }

    async fn email_code(&self, account: &str, to: &str) -> (String, String) {
        let before = self.smtp.mails().len();
        let vid = self.send_ok(account, "email", to).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let code = self.smtp.nth(before + 1).await.code();
        (vid, code)
    }

    async fn entitlement(&self, account: &str) -> Value {
        let body: Value = self
            .app
            .get(
                &format!("/v1/accounts/{account}/entitlements"),
                &self.app.backend_key,
            )
            .await
            .json()
            .await
            .unwrap();
        body["entitlements"]["e2ee"].clone()
    }

    async fn audit_count(&self, action: &str, account: &str) -> usize {
        let body: Value = self
            .app
            .get(
                &format!("/v1/admin/audit?action={action}&target_id={account}&limit=200"),
                &self.app.admin_key,
            )
            .await
            .json()
            .await
            .unwrap();
        body["items"].as_array().unwrap().len()
    }
}

async fn outbox(app: &TestApp, vid: &str) -> Option<outbox_message::Model> {
    outbox_message::Entity::find()
        .filter(outbox_message::Column::VerificationId.eq(vid))
        .one(&app.db().await)
        .await
        .unwrap()
}

/// Retries far apart in real time: only moving the test clock brings them on.
fn slow_retries(s: &mut Settings) {
    s.delivery.retry_base_seconds = 60;
    s.delivery.retry_max_seconds = 600;
}

/// Any code but this one.
fn wrong(code: &str) -> String {
    format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000)
}

fn retry_after(res: &Response) -> u64 {
    res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn an_email_code_arrives_over_smtp_and_approves_email_evidence() {
    let rig = rig().await;
    let account = rig.app.account("user-email").await;

    let res = rig.send(&account, "email", "Ann.Smith@Example.ORG").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = res.json().await.unwrap();
    let vid = created["id"].as_str().unwrap().to_owned();
    assert!(vid.starts_with("ver_"), "{created}");
    assert_eq!(location, format!("/v1/verifications/{vid}"));
    assert_eq!(created["channel"], "email");
    assert_eq!(created["status"], "pending");
    assert_eq!(created["to_masked"], "A***@example.org");
    assert_eq!(created["attempts_remaining"], 5);
    let created_at: chrono::DateTime<chrono::Utc> =
        created["created_at"].as_str().unwrap().parse().unwrap();
    let expires_at: chrono::DateTime<chrono::Utc> =
        created["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires_at - created_at, chrono::Duration::minutes(30));
    assert!(!created.to_string().contains("Smith"), "{created}");

    let mail = rig.smtp.nth(1).await;
    assert_eq!(mail.from, "<no-reply@vouch.test>");
    assert_eq!(mail.to, vec!["<Ann.Smith@example.org>".to_owned()]);
    assert!(
        mail.data.contains("Subject: Your verification code"),
        "{}",
        mail.data
    );
    assert!(mail.data.contains("multipart/alternative"), "{}", mail.data);
    assert!(mail.data.contains("text/plain") && mail.data.contains("text/html"));
    let code = mail.code();
    assert!(
        !mail
            .data
            .lines()
            .any(|l| l.starts_with("Subject:") && l.contains(&code)),
        "the code stays out of the subject"
    );

    let delivered = rig.wait_delivery(&vid, "delivered").await;
    assert_eq!(delivered.payload_sealed, None, "the payload is erased");
    assert_eq!(delivered.attempts, 1);
    assert_eq!(rig.verification(&vid).await["delivery_status"], "delivered");

    let checked = rig.check_ok(&vid, &code).await;
    assert_eq!(
        checked,
        json!({"id": vid, "status": "approved", "attempts_remaining": 4})
    );
    let got = rig.verification(&vid).await;
    assert_eq!(got["status"], "approved");
    assert!(got["approved_at"].is_string());

    let account_body: Value = rig
        .app
        .get(&format!("/v1/accounts/{account}"), &rig.app.backend_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(account_body["email_verified"], true);
    assert_eq!(account_body["phone_verified"], false);
    let evidence: Value = rig
        .app
        .get(
            &format!("/v1/accounts/{account}/evidence"),
            &rig.app.backend_key,
        )
        .await
        .json()
        .await
        .unwrap();
    let items = evidence["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{evidence}");
    assert_eq!(items[0]["kind"], "email");
    assert_eq!(items[0]["source"], "email");
    assert_eq!(items[0]["status"], "active");
    // Email alone never grants E2EE.
    assert_eq!(rig.entitlement(&account).await["granted"], false);

    // Checking an approved verification again changes nothing and counts nothing.
    let again = rig.check_ok(&vid, &code).await;
    assert_eq!(again["status"], "approved");
    assert_eq!(again["attempts_remaining"], 4);
    assert_eq!(
        rig.check_ok(&vid, &wrong(&code)).await["status"],
        "approved"
    );
    assert_eq!(rig.audit_count("verification.approved", &account).await, 1);
    assert_eq!(rig.audit_count("evidence.added", &account).await, 1);
}

#[tokio::test]
async fn a_verified_phone_arrives_in_twilio_wire_format_and_grants_e2ee() {
    let rig = rig().await;
    let account = rig.app.account("user-phone").await;
    let before = rig.entitlement(&account).await;
    assert_eq!(before["granted"], false, "{before}");
    assert!(
        before["missing"]
            .as_array()
            .unwrap()
            .contains(&json!(["phone"])),
        "{before}"
    );
    assert_problem(
        rig.app
            .post(
                &format!("/v1/accounts/{account}/tokens"),
                &rig.app.backend_key,
                &json!({}),
            )
            .await,
        403,
        "not_entitled",
    )
    .await;

    let created = rig.send_ok(&account, "sms", "+1 (415) 555-2671").await;
    assert_eq!(created["channel"], "sms");
    assert_eq!(created["to_masked"], "+1******2671");
    let vid = created["id"].as_str().unwrap().to_owned();
    let created_at: chrono::DateTime<chrono::Utc> =
        created["created_at"].as_str().unwrap().parse().unwrap();
    let expires_at: chrono::DateTime<chrono::Utc> =
        created["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires_at - created_at, chrono::Duration::minutes(10));

    let sms = rig.twilio.nth(1).await;
    assert_eq!(sms.method, "POST");
    assert_eq!(
        sms.path,
        format!("/2010-04-01/Accounts/{TWILIO_SID}/Messages.json")
    );
    assert_eq!(
        sms.basic_auth.as_deref(),
        Some(format!("{TWILIO_SID}:{TWILIO_TOKEN}").as_str())
    );
    assert!(
        sms.content_type
            .starts_with("application/x-www-form-urlencoded"),
        "{}",
        sms.content_type
    );
    assert_eq!(sms.field("To"), Some(PHONE));
    assert_eq!(sms.field("From"), Some(TWILIO_FROM));
    let code = sms.code();
    assert!(sms.field("Body").unwrap().contains("10 minutes"), "{sms:?}");

    let delivered = rig.wait_delivery(&vid, "delivered").await;
    assert_eq!(delivered.payload_sealed, None, "the raw number is erased");
    assert_eq!(
        delivered.provider_ref.as_deref(),
        Some("SM0123456789abcdef0123456789abcdef")
    );

    assert_eq!(rig.check_ok(&vid, &code).await["status"], "approved");
    let after = rig.entitlement(&account).await;
    assert_eq!(after["granted"], true, "{after}");
    assert_eq!(after["satisfied_by"], json!(["phone"]));
    let account_body: Value = rig
        .app
        .get(&format!("/v1/accounts/{account}"), &rig.app.backend_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(account_body["phone_verified"], true);
    let res = rig
        .app
        .post(
            &format!("/v1/accounts/{account}/tokens"),
            &rig.app.backend_key,
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let evidence: Value = rig
        .app
        .get(
            &format!("/v1/accounts/{account}/evidence"),
            &rig.app.backend_key,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(evidence["items"][0]["kind"], "phone");
    assert_eq!(evidence["items"][0]["source"], "sms");

    // The raw number is stored nowhere: not in any table, not in the audit trail.
    let conn = &rig.app.db().await;
    let dump = format!(
        "{:?}{:?}{:?}{:?}{:?}{:?}",
        verification::Entity::find().all(conn).await.unwrap(),
        outbox_message::Entity::find().all(conn).await.unwrap(),
        verified_phone::Entity::find().all(conn).await.unwrap(),
        verification_send::Entity::find().all(conn).await.unwrap(),
        evidence::Entity::find().all(conn).await.unwrap(),
        audit_log::Entity::find().all(conn).await.unwrap(),
    );
    assert!(dump.contains("+1******2671"), "the masked form is kept");
    for raw in ["4155552671", "415 555", "(415)"] {
        assert!(!dump.contains(raw), "{raw} stored somewhere: {dump}");
    }
    assert!(!dump.contains(&code), "the code is stored only as an HMAC");
}

#[tokio::test]
async fn wrong_codes_count_and_the_fifth_closes_the_verification() {
    let rig = rig().await;
    let account = rig.app.account("user-wrong").await;
    let (vid, code) = rig.email_code(&account, "bob@example.org").await;
    let bad = wrong(&code);
    for remaining in [4, 3, 2, 1] {
        let body = rig.check_ok(&vid, &bad).await;
        assert_eq!(
            body,
            json!({"id": vid, "status": "pending", "attempts_remaining": remaining})
        );
    }
    let body = rig.check_ok(&vid, &bad).await;
    assert_eq!(body["status"], "max_attempts_reached");
    assert_eq!(body["attempts_remaining"], 0);
    // The right code no longer helps, and is not compared.
    assert_eq!(
        rig.check_ok(&vid, &code).await["status"],
        "max_attempts_reached"
    );
    assert_eq!(
        rig.verification(&vid).await["status"],
        "max_attempts_reached"
    );
    assert_eq!(
        rig.audit_count("verification.check_failed", &account).await,
        5
    );
    assert_eq!(rig.audit_count("verification.approved", &account).await, 0);

    // Malformed codes are refused before counting.
    let (vid, _) = rig.email_code(&account, "bob2@example.org").await;
    for bad in ["12345", "1234567", "abcdef", "", " 12345"] {
        assert_problem(rig.check(&vid, bad).await, 400, "invalid_code").await;
    }
    assert_eq!(rig.verification(&vid).await["attempts_remaining"], 5);
}

#[tokio::test]
async fn codes_expire_on_time() {
    let rig = rig().await;
    let account = rig.app.account("user-expiry").await;

    let (sms_vid, sms_code) = rig.sms_code(&account, PHONE).await;
    let (email_vid, email_code) = rig.email_code(&account, "carol@example.org").await;
    rig.app.clock.advance(chrono::Duration::seconds(601));
    // SMS codes live 10 minutes.
    let body = rig.check_ok(&sms_vid, &sms_code).await;
    assert_eq!(body["status"], "expired", "{body}");
    assert_eq!(
        body["attempts_remaining"], 5,
        "an expired check is not counted"
    );
    assert_eq!(rig.verification(&sms_vid).await["status"], "expired");
    // Email codes live 30 minutes by default.
    rig.app.clock.advance(chrono::Duration::minutes(19));
    assert_eq!(
        rig.check_ok(&email_vid, &email_code).await["status"],
        "approved"
    );

    let (email_vid, email_code) = rig.email_code(&account, "carol2@example.org").await;
    rig.app.clock.advance(chrono::Duration::minutes(30));
    assert_eq!(rig.verification(&email_vid).await["status"], "expired");
    assert_eq!(
        rig.check_ok(&email_vid, &email_code).await["status"],
        "expired"
    );
    assert_eq!(rig.audit_count("verification.expired", &account).await, 2);

    // The email lifetime is configurable.
    let rig = rig_with(|s| s.verification.email_code_ttl_seconds = 120).await;
    let account = rig.app.account("user-expiry-2").await;
    let (vid, code) = rig.email_code(&account, "dan@example.org").await;
    assert!(rig.smtp.nth(1).await.data.contains("2 minutes"));
    rig.app.clock.advance(chrono::Duration::seconds(121));
    assert_eq!(rig.check_ok(&vid, &code).await["status"], "expired");
}

#[tokio::test]
async fn concurrent_correct_checks_approve_once() {
    let rig = rig().await;
    let account = rig.app.account("user-race").await;
    let (vid, code) = rig.sms_code(&account, PHONE).await;
    let results = join_all((0..10).map(|_| rig.check(&vid, &code))).await;
    let mut approved = 0;
    for res in results {
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        // More checks than attempts: those that found every attempt taken by checks still
        // comparing are told so.
        match body["status"].as_str().unwrap() {
            "approved" => approved += 1,
            "max_attempts_reached" => {}
            other => panic!("unexpected status {other}: {body}"),
        }
    }
    assert!(approved >= 1);
    assert_eq!(rig.verification(&vid).await["status"], "approved");
    assert_eq!(rig.audit_count("verification.approved", &account).await, 1);
    assert_eq!(rig.audit_count("evidence.added", &account).await, 1);
    assert_eq!(rig.audit_count("evidence.updated", &account).await, 0);
    let row = verification::Entity::find_by_id(vid.clone())
        .one(&rig.app.db().await)
        .await
        .unwrap()
        .unwrap();
    assert!(row.attempts >= 1 && row.attempts <= 5, "{}", row.attempts);

    // As many concurrent checks as there are attempts: every one of them is told `approved`.
    let other = rig.app.account("user-race-2").await;
    let (vid, code) = rig.sms_code(&other, "+14155550142").await;
    let results = join_all((0..5).map(|_| rig.check(&vid, &code))).await;
    for res in results {
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["status"], "approved", "{body}");
    }
    assert_eq!(rig.audit_count("verification.approved", &other).await, 1);
    assert_eq!(rig.audit_count("evidence.added", &other).await, 1);
}

#[tokio::test]
async fn concurrent_wrong_checks_never_exceed_the_attempt_limit() {
    let rig = rig().await;
    let account = rig.app.account("user-brute").await;
    let (vid, code) = rig.email_code(&account, "eve@example.org").await;
    let bad = wrong(&code);
    let results = join_all((0..20).map(|_| rig.check(&vid, &bad))).await;
    let mut statuses = Vec::new();
    for res in results {
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        statuses.push(body["status"].as_str().unwrap().to_owned());
    }
    assert!(
        statuses
            .iter()
            .all(|s| s == "pending" || s == "max_attempts_reached"),
        "{statuses:?}"
    );
    assert!(statuses.iter().filter(|s| *s == "pending").count() <= 4);
    let row = verification::Entity::find_by_id(vid.clone())
        .one(&rig.app.db().await)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.attempts, 5, "exactly five comparisons were made");
    assert_eq!(row.status, "max_attempts_reached");
    assert_eq!(
        rig.check_ok(&vid, &code).await["status"],
        "max_attempts_reached"
    );
    assert_eq!(
        rig.audit_count("verification.check_failed", &account).await,
        5
    );
}

#[tokio::test]
async fn a_new_code_cancels_the_previous_one_for_the_same_destination() {
    let rig = rig().await;
    let account = rig.app.account("user-resend").await;
    let (first, first_code) = rig.email_code(&account, "fay@example.org").await;
    let (other, _) = rig.email_code(&account, "fay.other@example.org").await;
    let (second, second_code) = rig.email_code(&account, "FAY@example.org").await;
    assert_eq!(rig.verification(&first).await["status"], "canceled");
    assert_eq!(
        rig.check_ok(&first, &first_code).await["status"],
        "canceled"
    );
    assert_eq!(
        rig.verification(&other).await["status"],
        "pending",
        "another destination is not affected"
    );
    assert_eq!(
        rig.check_ok(&second, &second_code).await["status"],
        "approved"
    );
}

#[tokio::test]
async fn per_destination_limit_holds_under_concurrency_per_account() {
    let rig = rig().await;
    let account = rig.app.account("user-dest").await;
    let results = join_all((0..12).map(|_| rig.send(&account, "email", "gus@example.org"))).await;
    let mut created = 0;
    for res in results {
        match res.status().as_u16() {
            201 => created += 1,
            429 => {
                let wait = retry_after(&res);
                assert!((1..=600).contains(&wait), "Retry-After {wait}");
                let body = assert_problem(res, 429, "rate_limited").await;
                assert_eq!(body["limit"], "destination");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(created, 5);
    // The same destination in another spelling is the same destination...
    let body = assert_problem(
        rig.send(&account, "email", "Gus@Example.org").await,
        429,
        "rate_limited",
    )
    .await;
    assert_eq!(body["limit"], "destination");
    // ...another one is not limited by it...
    rig.send_ok(&account, "email", "gus.other@example.org")
        .await;
    // ...and the limit is this account's own: another account's sends to the destination do
    // not count against it, nor its sends against the other's.
    let other = rig.app.account("user-dest-2").await;
    rig.send_ok(&other, "email", "Gus@Example.org").await;
    rig.app.clock.advance(chrono::Duration::seconds(601));
    rig.send_ok(&account, "email", "gus@example.org").await;
}

#[tokio::test]
async fn a_strangers_sends_to_a_number_do_not_lock_its_owner_out() {
    let rig = rig_with(|s| s.verification.young_account_sms_hourly_limit = 10).await;
    let stranger = rig.app.account("user-stranger").await;
    for _ in 0..5 {
        rig.send_ok(&stranger, "sms", PHONE).await;
    }
    let res = rig.send(&stranger, "sms", "+1 415-555-2671").await;
    assert!((1..=600).contains(&retry_after(&res)));
    let body = assert_problem(res, 429, "rate_limited").await;
    assert_eq!(body["limit"], "destination");
    // The owner of the number is not blocked by the stranger's sends.
    let owner = rig.app.account("user-owner").await;
    let (vid, code) = rig.sms_code(&owner, PHONE).await;
    assert_eq!(rig.check_ok(&vid, &code).await["status"], "approved");
    assert_eq!(rig.entitlement(&owner).await["granted"], true);
}

#[tokio::test]
async fn per_account_limit_holds_under_concurrency() {
    let rig = rig().await;
    let account = rig.app.account("user-acct").await;
    let results = join_all((0..15).map(|i| {
        let to = format!("hal{i}@example.org");
        let rig = &rig;
        let account = &account;
        async move { rig.send(account, "email", &to).await }
    }))
    .await;
    let mut created = 0;
    for res in results {
        match res.status().as_u16() {
            201 => created += 1,
            429 => {
                let wait = retry_after(&res);
                assert!((1..=3600).contains(&wait), "Retry-After {wait}");
                let body = assert_problem(res, 429, "rate_limited").await;
                assert_eq!(body["limit"], "account");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(created, 10);
    let other = rig.app.account("user-acct-2").await;
    rig.send_ok(&other, "email", "hal0@example.org").await;
    rig.app.clock.advance(chrono::Duration::seconds(3601));
    rig.send_ok(&account, "email", "hal99@example.org").await;
}

/// Numbers of six countries, one each.
const WORLD: [&str; 6] = [
    "+14155550100",
    "+4930123456",
    "+442079460958",
    "+33123456789",
    "+31201234567",
    "+41441234567",
];

/// How many of `results` were created; every other one must be 429 `rate_limited` with this
/// `limit` (and a `Retry-After` within the hour, unless the limit never resets).
async fn created_or_limited(results: Vec<Response>, limit: &str) -> usize {
    let mut created = 0;
    for res in results {
        match res.status().as_u16() {
            201 => created += 1,
            429 => {
                let retry = res.headers().get("retry-after").map(|_| retry_after(&res));
                let body = assert_problem(res, 429, "rate_limited").await;
                assert_eq!(body["limit"], limit, "{body}");
                if limit == "sms_lifetime" {
                    assert_eq!(retry, None, "a lifetime cap does not reset");
                    assert!(body["detail"].as_str().unwrap().contains("does not reset"));
                } else {
                    let wait = retry.expect("Retry-After");
                    assert!((1..=3600).contains(&wait), "Retry-After {wait}");
                    assert_eq!(body["retry_after"], wait);
                }
            }
            other => panic!("unexpected status {other}"),
        }
    }
    created
}

impl Rig {
    /// Accounts created now and made older than a day (established) by moving the clock.
    async fn established_accounts(&self, prefix: &str, n: usize) -> Vec<String> {
        let mut accounts = Vec::new();
        for i in 0..n {
            accounts.push(self.app.account(&format!("{prefix}-{i}")).await);
        }
        self.app.clock.advance(chrono::Duration::seconds(86_401));
        accounts
    }

    /// One send per (account, number), all at once.
    async fn send_all(&self, sends: &[(&str, String)]) -> Vec<Response> {
        join_all(
            sends
                .iter()
                .map(|(account, to)| async move { self.send(account, "sms", to).await }),
        )
        .await
    }
}

#[tokio::test]
async fn the_global_sms_budget_holds_under_concurrency() {
    let rig = rig_with(|s| {
        s.verification.sms_hourly_budget = 3;
        s.verification.sms_country_hourly_budget = 3;
        s.verification.young_accounts_sms_hourly_budget = 3;
    })
    .await;
    // Established accounts sending to six countries: only the global budget applies.
    let accounts = rig.established_accounts("user-budget", 6).await;
    let results = join_all(accounts.iter().zip(WORLD).map(|(account, to)| {
        let rig = &rig;
        async move { rig.send(account, "sms", to).await }
    }))
    .await;
    let mut created = 0;
    for res in results {
        match res.status().as_u16() {
            201 => created += 1,
            429 => {
                assert!((1..=3600).contains(&retry_after(&res)));
                let body = assert_problem(res, 429, "rate_limited").await;
                assert_eq!(body["limit"], "sms_budget");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(created, 3);
    // Email is not part of the SMS budget; the budget refills after an hour.
    rig.send_ok(&accounts[0], "email", "ivy@example.org").await;
    rig.app.clock.advance(chrono::Duration::seconds(3601));
    rig.send_ok(&accounts[5], "sms", "+14155550199").await;
}

#[tokio::test]
async fn a_countrys_budget_holds_under_concurrency_and_leaves_the_rest_of_the_world() {
    let rig = rig_with(|s| {
        s.verification.sms_country_hourly_budget = 3;
        s.verification
            .sms_country_hourly_budgets
            .insert("de".into(), 5);
    })
    .await;
    let accounts = rig.established_accounts("user-country", 8).await;
    // Eight numbers of one country (consecutive, so also one prefix, whose limit is higher).
    let gb: Vec<(&str, String)> = accounts
        .iter()
        .enumerate()
        .map(|(i, a)| (a.as_str(), format!("+4420794609{}", 50 + i)))
        .collect();
    let created = created_or_limited(rig.send_all(&gb).await, "sms_country").await;
    assert_eq!(created, 3);
    // The override gives Germany its own budget.
    let de: Vec<(&str, String)> = accounts
        .iter()
        .enumerate()
        .map(|(i, a)| (a.as_str(), format!("+49301234{}", 50 + i)))
        .collect();
    let created = created_or_limited(rig.send_all(&de).await, "sms_country").await;
    assert_eq!(created, 5);
    // The rest of the world still gets its codes, from the same accounts.
    for (account, to) in accounts.iter().zip(&WORLD) {
        if !to.starts_with("+44") && !to.starts_with("+49") {
            rig.send_ok(account, "sms", to).await;
        }
    }
    // The country's budget refills after an hour.
    rig.app.clock.advance(chrono::Duration::seconds(3601));
    rig.send_ok(&accounts[0], "sms", "+442079460958").await;
    // Nothing about the number is in the send log but keyed hashes.
    let log = verification_send::Entity::find()
        .all(&rig.app.db().await)
        .await
        .unwrap();
    assert!(log.iter().any(|s| s.region.as_deref() == Some("GB")));
    for send in log {
        let row = format!("{send:?}");
        assert!(!row.contains("2079") && !row.contains("44207"), "{row}");
    }
}

#[tokio::test]
async fn the_prefix_velocity_limit_holds_under_concurrency() {
    let rig = rig_with(|s| s.verification.sms_prefix_hourly_limit = 4).await;
    let accounts = rig.established_accounts("user-prefix", 7).await;
    // +1 415 555 01xx: one exchange, seven digits with the country code.
    let sends: Vec<(&str, String)> = accounts
        .iter()
        .enumerate()
        .map(|(i, a)| (a.as_str(), format!("+1415555010{i}")))
        .collect();
    let created = created_or_limited(rig.send_all(&sends).await, "sms_prefix").await;
    assert_eq!(created, 4);
    // Another exchange of the same area code is another prefix.
    rig.send_ok(&accounts[6], "sms", "+14155560100").await;
    rig.app.clock.advance(chrono::Duration::seconds(3601));
    rig.send_ok(&accounts[6], "sms", "+14155550109").await;
}

#[tokio::test]
async fn the_lifetime_cap_holds_under_concurrency_and_survives_pruning() {
    let rig = rig_with(|s| s.verification.sms_account_lifetime_limit = 3).await;
    let accounts = rig.established_accounts("user-lifetime", 2).await;
    let account = accounts[0].as_str();
    let sends: Vec<(&str, String)> = (0..6)
        .map(|i| (account, format!("+1415555010{i}")))
        .collect();
    let created = created_or_limited(rig.send_all(&sends).await, "sms_lifetime").await;
    assert_eq!(created, 3);

    // Long after every window, with the send log pruned (the delivery worker's housekeeping
    // does that; here it is done in the database), the cap still holds.
    rig.app.clock.advance(chrono::Duration::days(30));
    {
        use sea_orm::ConnectionTrait;
        rig.app
            .db()
            .await
            .execute_unprepared("DELETE FROM verification_send")
            .await
            .unwrap();
    }
    let res = rig.send(account, "sms", "+12125550100").await;
    assert_eq!(created_or_limited(vec![res], "sms_lifetime").await, 0);
    // Email is not capped, nor is another account.
    rig.send_ok(account, "email", "lou@example.org").await;
    rig.send_ok(&accounts[1], "sms", "+12125550100").await;
}

#[tokio::test]
async fn the_lifetime_count_of_existing_accounts_starts_from_their_verifications() {
    use migration::{Migrator, MigratorTrait};
    use sea_orm::ConnectionTrait;

    let mut settings = test_settings().await;
    settings.verification.sms_account_lifetime_limit = 3;
    // A database as the release before the SMS limits left it, with an account that was
    // already sent two SMS codes (and one email).
    let db = vouch::db::Db::connect(&settings).await.unwrap();
    Migrator::up(db.conn(), Some(5)).await.unwrap();
    let at = "'2026-01-01 00:00:00+00:00'";
    db.conn()
        .execute_unprepared(&format!(
            "INSERT INTO account (id, external_id, email, display_name, status, \
             email_verified, phone_verified, created_at, updated_at) VALUES \
             ('acc_0192f5c8a3b47d2e9c1f0a6b5d4e3c2b', 'user-old', NULL, NULL, 'active', \
             false, false, {at}, {at})"
        ))
        .await
        .unwrap();
    for (i, channel) in ["sms", "sms", "email"].iter().enumerate() {
        db.conn()
            .execute_unprepared(&format!(
                "INSERT INTO verification (id, account_id, channel, destination_hash, \
                 to_masked, code_hash, status, attempts, max_attempts, expires_at, \
                 created_at, updated_at, approved_at) VALUES \
                 ('ver_0192f5c8a3b47d2e9c1f0a6b5d4e3c2{i}', \
                 'acc_0192f5c8a3b47d2e9c1f0a6b5d4e3c2b', '{channel}', 'h{i}', 'x', 'c', \
                 'expired', 0, 5, {at}, {at}, {at}, NULL)"
            ))
            .await
            .unwrap();
    }
    drop(db);

    let app = spawn_with_settings(settings, true).await;
    let path = "/v1/accounts/acc_0192f5c8a3b47d2e9c1f0a6b5d4e3c2b/verifications";
    let body = json!({"channel": "sms", "to": PHONE});
    let res = app.post(path, &app.backend_key, &body).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app.post(path, &app.backend_key, &body).await;
    assert_eq!(created_or_limited(vec![res], "sms_lifetime").await, 0);
}

#[tokio::test]
async fn young_accounts_get_a_smaller_hourly_limit() {
    let rig = rig_with(|s| s.verification.young_account_sms_hourly_limit = 3).await;
    let account = rig.app.account("user-young").await;
    let sends: Vec<(&str, String)> = (0..5)
        .map(|i| (account.as_str(), format!("+1415555010{i}")))
        .collect();
    let created = created_or_limited(rig.send_all(&sends).await, "young_account").await;
    assert_eq!(created, 3);
    // An hour later the account may send again, still as a young one.
    rig.app
        .clock
        .advance(chrono::Duration::seconds(86_400 - 100));
    let results = rig.send_all(&sends[..4]).await;
    // Retry-After says when the account stops being young, as that comes sooner than an hour.
    for res in results
        .iter()
        .filter(|r| r.status() == StatusCode::TOO_MANY_REQUESTS)
    {
        let wait = retry_after(res);
        assert!((1..=100).contains(&wait), "Retry-After {wait}");
    }
    assert_eq!(created_or_limited(results, "young_account").await, 3);
    rig.app.clock.advance(chrono::Duration::seconds(101));
    // An established account has only the ordinary limits (here: 10 codes per hour).
    for i in 0..7 {
        rig.send_ok(&account, "sms", &format!("+1212555010{i}"))
            .await;
    }
    let body = assert_problem(
        rig.send(&account, "sms", "+12125550109").await,
        429,
        "rate_limited",
    )
    .await;
    assert_eq!(body["limit"], "account");
}

#[tokio::test]
async fn fresh_accounts_cannot_spend_what_established_accounts_need() {
    let rig = rig_with(|s| {
        s.verification.sms_hourly_budget = 10;
        s.verification.sms_country_hourly_budget = 10;
        s.verification.young_accounts_sms_hourly_budget = 4;
    })
    .await;
    let established = rig.established_accounts("user-old", 1).await;
    let mut fresh = Vec::new();
    for i in 0..8 {
        fresh.push(rig.app.account(&format!("user-fresh-{i}")).await);
    }
    let sends: Vec<(&str, String)> = fresh
        .iter()
        .enumerate()
        .map(|(i, a)| (a.as_str(), format!("+1415555010{i}")))
        .collect();
    let created = created_or_limited(rig.send_all(&sends).await, "young_accounts_budget").await;
    assert_eq!(created, 4);
    // The rest of the budget is still there for established accounts.
    for i in 0..6 {
        rig.send_ok(&established[0], "sms", &format!("+1212555010{i}"))
            .await;
    }
    let body = assert_problem(
        rig.send(&established[0], "sms", "+4930123456").await,
        429,
        "rate_limited",
    )
    .await;
    assert_eq!(body["limit"], "sms_budget");
}

#[tokio::test]
async fn one_number_backs_at_most_three_accounts_even_under_concurrency() {
    let rig = rig_with(|s| s.verification.per_destination_limit = 50).await;
    let mut verified = Vec::new();
    for i in 0..2 {
        let account = rig.app.account(&format!("user-share-{i}")).await;
        let (vid, code) = rig.sms_code(&account, PHONE).await;
        assert_eq!(rig.check_ok(&vid, &code).await["status"], "approved");
        verified.push(account);
    }
    // Three more accounts get codes while two slots are taken; only one may still approve.
    let mut pending = Vec::new();
    for i in 2..5 {
        let account = rig.app.account(&format!("user-share-{i}")).await;
        let (vid, code) = rig.sms_code(&account, PHONE).await;
        pending.push((account, vid, code));
    }
    let results = join_all(pending.iter().map(|(_, vid, code)| rig.check(vid, code))).await;
    let mut approved = 0;
    for res in results {
        match res.status().as_u16() {
            200 => {
                let body: Value = res.json().await.unwrap();
                assert_eq!(body["status"], "approved", "{body}");
                approved += 1;
            }
            409 => {
                assert_problem(res, 409, "phone_in_use").await;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(approved, 1);
    let mut phone_accounts = 0;
    for (account, vid, _) in &pending {
        let status = rig.verification(vid).await["status"].clone();
        if rig.entitlement(account).await["granted"] == true {
            phone_accounts += 1;
            assert_eq!(status, "approved");
        } else {
            assert_eq!(status, "canceled");
        }
    }
    assert_eq!(phone_accounts, 1);

    // A fourth account is refused before any SMS is spent.
    let sent = rig.twilio.requests().len();
    let late = rig.app.account("user-share-late").await;
    assert_problem(rig.send(&late, "sms", PHONE).await, 409, "phone_in_use").await;
    // The same number in another notation is the same number.
    assert_problem(
        rig.send(&late, "sms", "+1 415-555-2671").await,
        409,
        "phone_in_use",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rig.twilio.requests().len(), sent);
    // An account that already holds the number may verify it again.
    let (vid, code) = rig.sms_code(&verified[0], PHONE).await;
    assert_eq!(rig.check_ok(&vid, &code).await["status"], "approved");

    // Erasing an account frees its slot.
    let res = rig
        .app
        .delete(
            &format!("/v1/accounts/{}", verified[1]),
            &rig.app.backend_key,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (vid, code) = rig.sms_code(&late, PHONE).await;
    assert_eq!(rig.check_ok(&vid, &code).await["status"], "approved");
}

#[tokio::test]
async fn the_reuse_limit_is_configurable() {
    let rig = rig_with(|s| s.verification.phone_max_accounts = 1).await;
    let first = rig.app.account("user-solo-1").await;
    let (vid, code) = rig.sms_code(&first, PHONE).await;
    assert_eq!(rig.check_ok(&vid, &code).await["status"], "approved");
    let second = rig.app.account("user-solo-2").await;
    assert_problem(rig.send(&second, "sms", PHONE).await, 409, "phone_in_use").await;
}

#[tokio::test]
async fn invalid_inputs_are_rejected_with_their_codes() {
    let rig = rig_with(|s| s.sms.allowed_countries = vec!["US".into(), "DE".into()]).await;
    let account = rig.app.account("user-invalid").await;
    for bad in [
        "4155552671",
        "+1 415 555",
        "not a number",
        "+999 123456789",
        "1-800-FLOWERS",
        "+1 415 555 2671 ext 5",
        "",
    ] {
        let body = assert_problem(rig.send(&account, "sms", bad).await, 400, "invalid_phone").await;
        if bad.len() > 3 {
            assert!(!body.to_string().contains(bad), "input echoed: {body}");
        }
    }
    assert_problem(
        rig.send(&account, "sms", "+44 20 7946 0958").await,
        400,
        "phone_country_not_allowed",
    )
    .await;
    for bad in ["plain", "a@", "Ann <ann@example.org>", ""] {
        assert_problem(rig.send(&account, "email", bad).await, 400, "invalid_email").await;
    }
    let path = format!("/v1/accounts/{account}/verifications");
    for body in [
        json!({"channel": "fax", "to": "x"}),
        json!({"channel": "sms"}),
        json!({"channel": "email", "to": "a@example.org", "extra": 1}),
        json!({"channel": "email", "to": 5}),
    ] {
        assert_problem(
            rig.app.post(&path, &rig.app.backend_key, &body).await,
            400,
            "invalid_body",
        )
        .await;
    }
    assert_problem(
        rig.send(
            "acc_0000000000000000000000000000dead",
            "email",
            "a@example.org",
        )
        .await,
        404,
        "account_not_found",
    )
    .await;
    for vid in ["ver_0000000000000000000000000000dead", "ver_nothex", "x"] {
        assert_problem(
            rig.check(vid, "123456").await,
            404,
            "verification_not_found",
        )
        .await;
        assert_problem(
            rig.app
                .get(&format!("/v1/verifications/{vid}"), &rig.app.backend_key)
                .await,
            404,
            "verification_not_found",
        )
        .await;
    }
    // Nothing was queued or sent by any of that.
    let count = outbox_message::Entity::find()
        .all(&rig.app.db().await)
        .await
        .unwrap()
        .len();
    assert_eq!(count, 0);

    // A suspended account gets no codes.
    let res = rig
        .app
        .patch(
            &format!("/v1/accounts/{account}"),
            &rig.app.admin_key,
            &json!({"status": "suspended"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_problem(
        rig.send(&account, "email", "a@example.org").await,
        409,
        "account_suspended",
    )
    .await;
}

#[tokio::test]
async fn national_numbers_are_normalised_with_a_default_region() {
    let rig = rig_with(|s| s.sms.default_region = Some("US".into())).await;
    let account = rig.app.account("user-national").await;
    let created = rig.send_ok(&account, "sms", "(415) 555-2671").await;
    assert_eq!(created["to_masked"], "+1******2671");
    assert_eq!(rig.twilio.nth(1).await.field("To"), Some(PHONE));
}

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
async fn without_providers_the_log_transports_deliver_nothing_but_record_delivery() {
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
    let row = eventually("the log transport", Duration::from_secs(15), || async {
        outbox(&app, &vid).await.filter(|m| m.status == "delivered")
    })
    .await;
    assert_eq!(row.payload_sealed, None);
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

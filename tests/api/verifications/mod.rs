//! Email and phone verification end to end: codes travel over real SMTP (a local sink) and a
//! local Twilio-compatible API, and are read back from the delivered messages. This module holds
//! the rig (the instance with its SMTP sink and fake Twilio) and shared builders; the scenarios
//! are in `channels` (email and SMS end to end, input), `checks` (codes, attempts, expiry),
//! `limits` (rate limits and SMS-fraud budgets) and `delivery` (the outbox under failures).

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

mod channels;
mod checks;
mod delivery;
mod events;
mod languages;
mod limits;
mod metrics;

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

    /// Wait until the outbox has nothing left to send (each message delivered or dropped), so
    /// the next SMS the fake receives is the next one queued.
    async fn outbox_idle(&self) {
        use sea_orm::PaginatorTrait;
        let db = self.app.db().await;
        eventually("an idle outbox", Duration::from_secs(15), || async {
            let busy = outbox_message::Entity::find()
                .filter(outbox_message::Column::Status.is_in(["pending", "sending"]))
                .count(&db)
                .await
                .unwrap();
            (busy == 0).then_some(())
        })
        .await
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

//! Stripe webhooks: signatures computed exactly as Stripe's libraries compute them, over
//! realistic event bodies (full Stripe JSON shapes, pretty-printed as Stripe sends them), and
//! their consequences for payment evidence, the e2ee entitlement and the authorize check.

use aws_lc_rs::hmac;
use reqwest::{Response, StatusCode};
use sea_orm::ConnectionTrait;
use secrecy::SecretString;
use serde_json::{json, Value};
use vouch::clock::Clock;

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, spawn_with_settings, TestApp};

const SECRET: &str = "whsec_9kQm2VxL7pT4rYs8NcE1bHfJ6uWzA3Dg";
const OLD_SECRET: &str = "whsec_Old5Pq8Lz2Xv7Tn4Rm1Kc6Hb9Gf3Jd0Sa";

// ---------------------------------------------------------------------------------------------
// Signing, exactly as Stripe does it (and as `stripe.webhooks.generateTestHeaderString` does):
// hex(HMAC-SHA256(secret, "{t}.{payload}")), header `t=<t>,v1=<hex>`.

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn v1(secret: &str, t: i64, payload: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hex(hmac::sign(&key, format!("{t}.{payload}").as_bytes()).as_ref())
}

fn stripe_signature(secret: &str, t: i64, payload: &str) -> String {
    format!("t={t},v1={}", v1(secret, t, payload))
}

fn now(app: &TestApp) -> i64 {
    app.clock.now().timestamp()
}

async fn send(app: &TestApp, signature: Option<&str>, payload: &str) -> Response {
    let mut req = app
        .client
        .post(app.url("/v1/webhooks/stripe"))
        .header("content-type", "application/json; charset=utf-8")
        .header(
            "user-agent",
            "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        )
        .body(payload.to_owned());
    if let Some(sig) = signature {
        req = req.header("Stripe-Signature", sig);
    }
    req.send().await.expect("request sent")
}

/// Deliver as Stripe would, signed now with `SECRET`; expect 200 and return the outcome.
async fn deliver(app: &TestApp, payload: &str) -> String {
    let res = send(
        app,
        Some(&stripe_signature(SECRET, now(app), payload)),
        payload,
    )
    .await;
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["received"], true, "{body}");
    body["outcome"].as_str().unwrap_or_default().to_owned()
}

async fn billing_app() -> TestApp {
    spawn_app_with(|s| s.stripe.webhook_secrets = vec![SecretString::from(SECRET)]).await
}

// ---------------------------------------------------------------------------------------------
// Realistic Stripe objects and events.

fn stripe_id(prefix: &str) -> String {
    let raw = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_1Q{}", &raw[..22])
}

const ACACIA: &str = "2024-09-30.acacia";
const BASIL: &str = "2025-03-31.basil";

#[derive(Clone)]
struct Sub {
    id: String,
    customer: String,
    account: Option<String>,
    price: String,
    product: String,
    started: i64,
}

impl Sub {
    fn new(account: Option<&str>, started: i64) -> Sub {
        Sub {
            id: stripe_id("sub"),
            customer: stripe_id("cus"),
            account: account.map(str::to_owned),
            price: stripe_id("price"),
            product: stripe_id("prod"),
            started,
        }
    }

    fn metadata(&self) -> Value {
        match &self.account {
            Some(a) => json!({"vouch_account_id": a, "plan": "pro"}),
            None => json!({"plan": "pro"}),
        }
    }

    fn price(&self) -> Value {
        json!({
            "id": self.price, "object": "price", "active": true, "billing_scheme": "per_unit",
            "created": self.started - 86_400 * 30, "currency": "eur", "custom_unit_amount": null,
            "livemode": false, "lookup_key": "pro_monthly", "metadata": {},
            "nickname": "Pro monthly", "product": self.product,
            "recurring": {"aggregate_usage": null, "interval": "month", "interval_count": 1,
                          "meter": null, "trial_period_days": null, "usage_type": "licensed"},
            "tax_behavior": "exclusive", "tiers_mode": null, "transform_quantity": null,
            "type": "recurring", "unit_amount": 900, "unit_amount_decimal": "900"
        })
    }

    fn plan(&self) -> Value {
        json!({
            "id": self.price, "object": "plan", "active": true, "aggregate_usage": null,
            "amount": 900, "amount_decimal": "900", "billing_scheme": "per_unit",
            "created": self.started - 86_400 * 30, "currency": "eur", "interval": "month",
            "interval_count": 1, "livemode": false, "metadata": {}, "meter": null,
            "nickname": "Pro monthly", "product": self.product, "tiers_mode": null,
            "transform_usage": null, "trial_period_days": null, "usage_type": "licensed"
        })
    }

    /// The subscription object as API version 2024-09-30.acacia renders it.
    fn object(&self, status: &str, period_end: i64) -> Value {
        let period_start = period_end - 30 * 86_400;
        let canceled = status == "canceled";
        let head = json!({
            "id": self.id,
            "object": "subscription",
            "application": null,
            "application_fee_percent": null,
            "automatic_tax": {"disabled_reason": null, "enabled": false, "liability": null},
            "billing_cycle_anchor": self.started,
            "billing_cycle_anchor_config": null,
            "billing_thresholds": null,
            "cancel_at": null,
            "cancel_at_period_end": false,
            "canceled_at": if canceled { json!(period_start + 86_400) } else { Value::Null },
            "cancellation_details": {
                "comment": null, "feedback": null,
                "reason": if canceled { json!("cancellation_requested") } else { Value::Null }
            },
            "collection_method": "charge_automatically",
            "created": self.started,
            "currency": "eur",
            "current_period_end": period_end,
            "current_period_start": period_start,
            "customer": self.customer,
            "days_until_due": null,
            "default_payment_method": "pm_1Q8fJ2LkdIwHu7ixV0cVZt3X",
            "default_source": null,
            "default_tax_rates": [],
            "description": null,
            "discount": null,
            "discounts": [],
            "ended_at": if canceled { json!(period_start + 86_400) } else { Value::Null },
            "invoice_settings": {"account_tax_ids": null, "issuer": {"type": "self"}},
        });
        let rest = json!({
            "items": {
                "object": "list",
                "data": [{
                    "id": stripe_id("si"),
                    "object": "subscription_item",
                    "billing_thresholds": null,
                    "created": self.started,
                    "discounts": [],
                    "metadata": {},
                    "plan": self.plan(),
                    "price": self.price(),
                    "quantity": 1,
                    "subscription": self.id,
                    "tax_rates": []
                }],
                "has_more": false,
                "total_count": 1,
                "url": format!("/v1/subscription_items?subscription={}", self.id)
            },
            "latest_invoice": stripe_id("in"),
            "livemode": false,
            "metadata": self.metadata(),
            "next_pending_invoice_item_invoice": null,
            "on_behalf_of": null,
            "pause_collection": null,
            "payment_settings": {
                "payment_method_options": {"acss_debit": null, "bancontact": null,
                    "card": {"network": null, "request_three_d_secure": "automatic"},
                    "customer_balance": null, "konbini": null, "sepa_debit": null,
                    "us_bank_account": null},
                "payment_method_types": null,
                "save_default_payment_method": "on_subscription"
            },
            "pending_invoice_item_interval": null,
            "pending_setup_intent": null,
            "pending_update": null,
            "plan": self.plan(),
            "quantity": 1,
            "schedule": null,
            "start_date": self.started,
            "status": status,
            "test_clock": null,
            "transfer_data": null,
            "trial_end": null,
            "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
            "trial_start": null
        });
        merged(head, rest)
    }

    /// The same object in API version 2025-03-31.basil: the period moved onto the items.
    fn object_basil(&self, status: &str, period_end: i64) -> Value {
        let mut object = self.object(status, period_end);
        let map = object.as_object_mut().unwrap();
        map.remove("current_period_end");
        map.remove("current_period_start");
        map.remove("plan");
        map.remove("quantity");
        map.insert("billing_mode".into(), json!({"type": "classic"}));
        let item = &mut map["items"]["data"][0];
        item["current_period_end"] = json!(period_end);
        item["current_period_start"] = json!(period_end - 30 * 86_400);
        object
    }

    fn line(&self, invoice: &str, period_end: i64, basil: bool) -> Value {
        let mut line = json!({
            "id": stripe_id("il"),
            "object": "line_item",
            "amount": 900,
            "currency": "eur",
            "description": "1 × Pro (at €9.00 / month)",
            "discount_amounts": [],
            "discountable": true,
            "discounts": [],
            "invoice": invoice,
            "livemode": false,
            "metadata": self.metadata(),
            "period": {"end": period_end, "start": period_end - 30 * 86_400},
            "pretax_credit_amounts": [],
            "quantity": 1,
            "taxes": []
        });
        if basil {
            line["parent"] = json!({
                "invoice_item_details": null,
                "subscription_item_details": {
                    "invoice_item": null, "proration": false, "proration_details": {"credited_items": null},
                    "subscription": self.id, "subscription_item": stripe_id("si")
                },
                "type": "subscription_item_details"
            });
            line["pricing"] = json!({"price_details": {"price": self.price, "product": self.product},
                                      "type": "price_details", "unit_amount_decimal": "900"});
        } else {
            line["plan"] = self.plan();
            line["price"] = self.price();
            line["proration"] = json!(false);
            line["subscription"] = json!(self.id);
            line["type"] = json!("subscription");
        }
        line
    }

    /// An invoice of this subscription; `paid` or failed. Invoices carry the customer's
    /// contact details, which Vouch must not keep.
    fn invoice(&self, paid: bool, billing_reason: &str, period_end: i64, basil: bool) -> Value {
        let id = stripe_id("in");
        let head = json!({
            "id": id,
            "object": "invoice",
            "account_country": "DE",
            "account_name": "Meeting Platform GmbH",
            "account_tax_ids": null,
            "amount_due": 900,
            "amount_overpaid": 0,
            "amount_paid": if paid { 900 } else { 0 },
            "amount_remaining": if paid { 0 } else { 900 },
            "amount_shipping": 0,
            "application": null,
            "attempt_count": if paid { 1 } else { 2 },
            "attempted": true,
            "auto_advance": !paid,
            "automatic_tax": {"disabled_reason": null, "enabled": false, "liability": null, "status": null},
            "automatically_finalizes_at": null,
            "billing_reason": billing_reason,
            "collection_method": "charge_automatically",
            "created": period_end - 30 * 86_400,
            "currency": "eur",
            "custom_fields": null,
            "customer": self.customer,
            "customer_address": {"city": "Berlin", "country": "DE", "line1": "Example Str. 1",
                                 "line2": null, "postal_code": "10115", "state": null},
            "customer_email": "ann.customer@example.org",
            "customer_name": "Ann Customer",
            "customer_phone": "+4930123456",
            "customer_shipping": null,
            "customer_tax_exempt": "none",
            "customer_tax_ids": [],
        });
        let rest = json!({
            "default_payment_method": null,
            "default_source": null,
            "default_tax_rates": [],
            "description": null,
            "discounts": [],
            "due_date": null,
            "effective_at": period_end - 30 * 86_400,
            "ending_balance": 0,
            "footer": null,
            "from_invoice": null,
            "hosted_invoice_url": format!("https://invoice.stripe.com/i/acct_1Nv0FGQ9RKHgCVdK/test_{id}"),
            "invoice_pdf": format!("https://pay.stripe.com/invoice/acct_1Nv0FGQ9RKHgCVdK/test_{id}/pdf"),
            "issuer": {"type": "self"},
            "last_finalization_error": null,
            "latest_revision": null,
            "lines": {
                "object": "list",
                "data": [self.line(&id, period_end, basil)],
                "has_more": false,
                "total_count": 1,
                "url": format!("/v1/invoices/{id}/lines")
            },
            "livemode": false,
            "metadata": {},
            "next_payment_attempt": if paid { Value::Null } else { json!(period_end - 27 * 86_400) },
        });
        let tail = json!({
            "number": "A1B2C3D4-0002",
            "on_behalf_of": null,
            "payment_settings": {"default_mandate": null, "payment_method_options": null,
                                 "payment_method_types": null},
            "period_end": period_end - 30 * 86_400,
            "period_start": period_end - 60 * 86_400,
            "post_payment_credit_notes_amount": 0,
            "pre_payment_credit_notes_amount": 0,
            "receipt_number": null,
            "rendering": null,
            "shipping_cost": null,
            "shipping_details": null,
            "starting_balance": 0,
            "statement_descriptor": null,
            "status": if paid { "paid" } else { "open" },
            "status_transitions": {
                "finalized_at": period_end - 30 * 86_400,
                "marked_uncollectible_at": null,
                "paid_at": if paid { json!(period_end - 30 * 86_400) } else { Value::Null },
                "voided_at": null
            },
            "subtotal": 900,
            "subtotal_excluding_tax": 900,
            "test_clock": null,
            "total": 900,
            "total_discount_amounts": [],
            "total_excluding_tax": 900,
            "total_pretax_credit_amounts": [],
            "transfer_data": null,
            "webhooks_delivered_at": period_end - 30 * 86_400
        });
        let mut invoice = merged(merged(head, rest), tail);
        let map = invoice.as_object_mut().unwrap();
        if basil {
            map.insert(
                "parent".into(),
                json!({
                    "quote_details": null,
                    "subscription_details": {"metadata": self.metadata(), "subscription": self.id},
                    "type": "subscription_details"
                }),
            );
            map.insert("total_taxes".into(), json!([]));
        } else {
            map.insert("charge".into(), json!(stripe_id("ch")));
            map.insert("discount".into(), Value::Null);
            map.insert("paid".into(), json!(paid));
            map.insert("paid_out_of_band".into(), json!(false));
            map.insert("payment_intent".into(), json!(stripe_id("pi")));
            map.insert("quote".into(), Value::Null);
            map.insert("subscription".into(), json!(self.id));
            map.insert(
                "subscription_details".into(),
                json!({"metadata": self.metadata()}),
            );
            map.insert("tax".into(), Value::Null);
            map.insert("total_tax_amounts".into(), json!([]));
        }
        invoice
    }

    /// The Checkout Session that started this subscription.
    fn checkout_session(&self, payment_status: &str) -> Value {
        let id = format!("cs_test_a1{}", &stripe_id("x")[4..]);
        let head = json!({
            "id": id,
            "object": "checkout.session",
            "adaptive_pricing": {"enabled": false},
            "after_expiration": null,
            "allow_promotion_codes": null,
            "amount_subtotal": 900,
            "amount_total": 900,
            "automatic_tax": {"enabled": false, "liability": null, "status": null},
            "billing_address_collection": null,
            "cancel_url": "https://meet.example.org/billing/cancel",
            "client_reference_id": null,
            "client_secret": null,
            "collected_information": {"shipping_details": null},
            "consent": null,
            "consent_collection": null,
            "created": self.started,
            "currency": "eur",
            "currency_conversion": null,
            "custom_fields": [],
            "custom_text": {"after_submit": null, "shipping_address": null, "submit": null,
                            "terms_of_service_acceptance": null},
            "customer": self.customer,
            "customer_creation": "always",
            "customer_details": {
                "address": {"city": "Berlin", "country": "DE", "line1": "Example Str. 1",
                            "line2": null, "postal_code": "10115", "state": null},
                "email": "ann.customer@example.org",
                "name": "Ann Customer",
                "phone": null,
                "tax_exempt": "none",
                "tax_ids": []
            },
            "customer_email": null,
        });
        let rest = json!({
            "discounts": [],
            "expires_at": self.started + 86_400,
            "invoice": stripe_id("in"),
            "invoice_creation": null,
            "livemode": false,
            "locale": null,
            "metadata": self.metadata(),
            "mode": "subscription",
            "payment_intent": null,
            "payment_link": null,
            "payment_method_collection": "always",
            "payment_method_configuration_details": {"id": "pmc_1Nv0FGQ9RKHgCVdKQ3sJrTwy", "parent": null},
            "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
            "payment_method_types": ["card", "link"],
            "payment_status": payment_status,
            "phone_number_collection": {"enabled": false},
            "recovered_from": null,
            "saved_payment_method_options": {"allow_redisplay_filters": ["always"],
                                             "payment_method_remove": null,
                                             "payment_method_save": null},
            "setup_intent": null,
            "shipping_address_collection": null,
            "shipping_cost": null,
            "shipping_details": null,
            "shipping_options": [],
            "status": "complete",
            "submit_type": null,
            "subscription": self.id,
            "success_url": "https://meet.example.org/billing/success?session_id={CHECKOUT_SESSION_ID}",
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "ui_mode": "hosted",
            "url": null,
            "wallet_options": null
        });
        merged(head, rest)
    }
}

/// One object from two (`json!` has a recursion limit; Stripe objects are big).
fn merged(mut head: Value, rest: Value) -> Value {
    if let (Some(head), Value::Object(rest)) = (head.as_object_mut(), rest) {
        head.extend(rest);
    }
    head
}

/// A complete event envelope, pretty-printed as Stripe sends it.
fn event_with(
    id: &str,
    kind: &str,
    created: i64,
    api_version: &str,
    object: Value,
    previous: Option<Value>,
) -> String {
    let mut data = json!({"object": object});
    if let Some(previous) = previous {
        data["previous_attributes"] = previous;
    }
    let automatic = kind.starts_with("invoice.") || kind.ends_with(".deleted");
    serde_json::to_string_pretty(&json!({
        "id": id,
        "object": "event",
        "api_version": api_version,
        "created": created,
        "data": data,
        "livemode": false,
        "pending_webhooks": 2,
        "request": if automatic {
            json!({"id": null, "idempotency_key": null})
        } else {
            json!({"id": stripe_id("req"), "idempotency_key": uuid::Uuid::new_v4().to_string()})
        },
        "type": kind
    }))
    .unwrap()
}

fn event(kind: &str, created: i64, object: Value) -> String {
    let previous =
        (kind == "customer.subscription.updated").then(|| json!({"status": "incomplete"}));
    event_with(&stripe_id("evt"), kind, created, ACACIA, object, previous)
}

// ---------------------------------------------------------------------------------------------
// Reading the consequences.

async fn payment_evidence(app: &TestApp, account: &str) -> Vec<Value> {
    let res = app
        .get(
            &format!("/v1/accounts/{account}/evidence"),
            &app.reviewer_key,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "payment")
        .cloned()
        .collect()
}

async fn e2ee(app: &TestApp, account: &str) -> Value {
    let res = app
        .get(
            &format!("/v1/accounts/{account}/entitlements"),
            &app.backend_key,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    body["entitlements"]["e2ee"].clone()
}

async fn granted(app: &TestApp, account: &str) -> bool {
    e2ee(app, account).await["granted"].as_bool().unwrap()
}

async fn issue_token(app: &TestApp, account: &str, ttl: u64) -> String {
    let res = app
        .post(
            &format!("/v1/accounts/{account}/tokens"),
            &app.backend_key,
            &json!({"ttl_seconds": ttl}),
        )
        .await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

async fn authorize(app: &TestApp, token: &str) -> Value {
    let res = app
        .post(
            "/v1/e2ee/authorize",
            &app.meeting_key,
            &json!({"token": token, "meeting_id": "standup"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

async fn audit(app: &TestApp, query: &str) -> Vec<Value> {
    let res = app
        .get(
            &format!("/v1/admin/audit?limit=200&{query}"),
            &app.admin_key,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    body["items"].as_array().unwrap().clone()
}

async fn account(app: &TestApp, name: &str) -> String {
    app.create_account(name).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn without_a_secret_the_webhook_is_not_configured() {
    let app = spawn_app().await;
    let payload = event(
        "customer.subscription.created",
        now(&app),
        Sub::new(None, now(&app)).object("active", now(&app) + 86_400),
    );
    let res = send(
        &app,
        Some(&stripe_signature(SECRET, now(&app), &payload)),
        &payload,
    )
    .await;
    assert_problem(res, 503, "not_configured").await;
}

#[tokio::test]
async fn a_signed_subscription_event_becomes_payment_evidence() {
    let app = billing_app().await;
    let acc = account(&app, "payer").await;
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
async fn signatures_are_verified_as_stripe_defines_them() {
    // Two secrets: the new one and the one being rotated out.
    let app = spawn_app_with(|s| {
        s.stripe.webhook_secrets = vec![SecretString::from(SECRET), SecretString::from(OLD_SECRET)]
    })
    .await;
    let acc = account(&app, "signed").await;
    let t = now(&app);
    let sub = Sub::new(Some(&acc), t - 100);
    let payload = event(
        "customer.subscription.created",
        t - 50,
        sub.object("active", t + 86_400 * 30),
    );

    let refused: Vec<(Option<String>, String, &str)> = vec![
        (None, payload.clone(), "invalid_signature"),
        (Some("".into()), payload.clone(), "invalid_signature"),
        (
            Some("nonsense".into()),
            payload.clone(),
            "invalid_signature",
        ),
        (Some(format!("t={t}")), payload.clone(), "invalid_signature"),
        (
            Some(format!("v1={}", v1(SECRET, t, &payload))),
            payload.clone(),
            "invalid_signature",
        ),
        // wrong secret
        (
            Some(stripe_signature("whsec_not_the_right_one", t, &payload)),
            payload.clone(),
            "invalid_signature",
        ),
        // only a v0 (test-mode legacy) signature
        (
            Some(format!("t={t},v0={}", v1(SECRET, t, &payload))),
            payload.clone(),
            "invalid_signature",
        ),
        // signed for another timestamp than the one claimed
        (
            Some(format!("t={},v1={}", t + 1, v1(SECRET, t, &payload))),
            payload.clone(),
            "invalid_signature",
        ),
        // the body changed after signing (active -> trialing)
        (
            Some(stripe_signature(SECRET, t, &payload)),
            payload.replace("\"active\"", "\"trialing\""),
            "invalid_signature",
        ),
        // one byte of whitespace added
        (
            Some(stripe_signature(SECRET, t, &payload)),
            format!("{payload}\n"),
            "invalid_signature",
        ),
        // stale and future timestamps, correctly signed
        (
            Some(stripe_signature(SECRET, t - 301, &payload)),
            payload.clone(),
            "timestamp_out_of_tolerance",
        ),
        (
            Some(stripe_signature(SECRET, t + 301, &payload)),
            payload.clone(),
            "timestamp_out_of_tolerance",
        ),
        (
            Some(stripe_signature(SECRET, t - 86_400, &payload)),
            payload.clone(),
            "timestamp_out_of_tolerance",
        ),
    ];
    for (header, body, code) in refused {
        let res = send(&app, header.as_deref(), &body).await;
        assert_problem(res, 400, code).await;
    }
    // Nothing was stored or changed by any of them.
    assert!(payment_evidence(&app, &acc).await.is_empty());
    assert!(audit(&app, "actor=stripe").await.is_empty());

    // Several v1 entries (Stripe sends one per active secret while rotating): any may match.
    let header = format!(
        "t={t},v1={},v1={}",
        v1("whsec_expired_and_removed", t, &payload),
        v1(SECRET, t, &payload)
    );
    let res = send(&app, Some(&header), &payload).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["outcome"], "applied",
        "the refused deliveries stored nothing"
    );
    assert_eq!(payment_evidence(&app, &acc).await.len(), 1);

    // The old secret still verifies during rotation; timestamps just inside the tolerance pass.
    for (secret, t) in [(OLD_SECRET, t - 299), (SECRET, t + 299)] {
        let payload = event(
            "customer.subscription.updated",
            t - 40,
            sub.object("active", t + 86_400 * 30),
        );
        let res = send(&app, Some(&stripe_signature(secret, t, &payload)), &payload).await;
        assert_eq!(res.status(), StatusCode::OK);
    }

    // An instance configured with the new secret only refuses the old one.
    let rotated =
        spawn_app_with(|s| s.stripe.webhook_secrets = vec![SecretString::from(SECRET)]).await;
    let res = send(
        &rotated,
        Some(&stripe_signature(OLD_SECRET, t, &payload)),
        &payload,
    )
    .await;
    assert_problem(res, 400, "invalid_signature").await;
}

#[tokio::test]
async fn signed_payloads_that_are_not_events_are_malformed() {
    let app = billing_app().await;
    let t = now(&app);
    for payload in [
        "not json at all".to_owned(),
        "[]".to_owned(),
        json!({"object": "event", "type": "customer.subscription.updated"}).to_string(),
        json!({"id": "evt_1", "object": "event", "type": "customer.subscription.updated",
               "created": t, "data": {"object": {"id": "sub_1", "object": "subscription"}}})
        .to_string(),
    ] {
        let res = send(&app, Some(&stripe_signature(SECRET, t, &payload)), &payload).await;
        let body = assert_problem(res, 400, "malformed_payload").await;
        assert!(!body["detail"].as_str().unwrap().contains("not json at all"));
    }
    // The signature is checked first: an unsigned malformed body is an invalid signature.
    let res = send(&app, Some("t=1,v1=00"), "not json").await;
    assert_problem(res, 400, "invalid_signature").await;
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let app = spawn_app_with(|s| {
        s.stripe.webhook_secrets = vec![SecretString::from(SECRET)];
        s.stripe.max_body_bytes = 4096;
    })
    .await;
    let t = now(&app);
    let sub = Sub::new(None, t);
    let payload = event(
        "customer.subscription.created",
        t,
        sub.object("active", t + 86_400),
    );
    assert!(payload.len() > 4096);
    let res = send(&app, Some(&stripe_signature(SECRET, t, &payload)), &payload).await;
    assert_problem(res, 413, "payload_too_large").await;

    // The default limit takes full-size events, larger than the API's own body limit.
    let app = billing_app().await;
    let sub = Sub::new(None, t);
    let mut object = sub.object("active", t + 86_400);
    // Stripe allows 20 items per subscription, each with metadata of its own.
    let item = object["items"]["data"][0].clone();
    let items: Vec<Value> = (0..20)
        .map(|i| {
            let mut item = item.clone();
            item["id"] = json!(stripe_id("si"));
            item["metadata"] = Value::Object(
                (0..10)
                    .map(|k| (format!("seat_{i}_{k}"), json!("x".repeat(400))))
                    .collect(),
            );
            item
        })
        .collect();
    object["items"]["data"] = json!(items);
    object["items"]["total_count"] = json!(20);
    let payload = event("customer.subscription.created", t, object);
    assert!(payload.len() > app.state.settings.http.max_body_bytes);
    assert_eq!(deliver(&app, &payload).await, "pending");
}

#[tokio::test]
async fn a_repeated_event_has_no_effect() {
    let app = billing_app().await;
    let acc = account(&app, "repeat").await;
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
    let other = if app.state.db.backend() == sea_orm::DatabaseBackend::Postgres {
        Some(spawn_with_settings((*app.state.settings).clone(), false).await)
    } else {
        None
    };
    let second = other.as_ref().unwrap_or(&app);
    let acc = account(&app, "race").await;
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
        assert_eq!((a.as_str(), b.as_str()), ("applied", "applied"));
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
    let acc = account(&app, "reverse").await;
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
    for payload in [&deleted, &updated, &created] {
        assert_eq!(deliver(&app, payload).await, "applied");
        assert!(!granted(&app, &acc).await);
        assert!(payment_evidence(&app, &acc)
            .await
            .iter()
            .all(|e| e["status"] != "active"));
    }

    // In order, with stale events arriving late.
    let acc = account(&app, "late").await;
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
    // The older past_due arrives after the newer active: no effect.
    assert_eq!(deliver(&app, &past_due).await, "applied");
    assert_eq!(payment_evidence(&app, &acc).await, before);
    assert!(granted(&app, &acc).await);
    assert_eq!(deliver(&app, &deleted).await, "applied");
    assert!(!granted(&app, &acc).await);
    // An update older than the cancellation arrives last: still canceled.
    assert_eq!(deliver(&app, &stale_active).await, "applied");
    assert!(!granted(&app, &acc).await);
    let evidence = payment_evidence(&app, &acc).await;
    assert_eq!(evidence.len(), 1);
    assert_eq!(evidence[0]["status"], "lapsed");

    // created and updated in the same second (Stripe's `created` has whole seconds), updated
    // delivered first: the subscription object's own state (active after incomplete) decides.
    let acc = account(&app, "same-second").await;
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
    assert_eq!(deliver(&app, &created).await, "applied");
    assert!(granted(&app, &acc).await);
}

#[tokio::test]
async fn past_due_keeps_payment_for_the_grace_period_then_lapses() {
    let app = billing_app().await;
    let acc = account(&app, "late-payer").await;
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
async fn events_for_an_unknown_customer_wait_for_the_link() {
    let app = billing_app().await;
    let acc = account(&app, "linked-later").await;
    let t = now(&app);
    let sub = Sub::new(None, t - 600);
    let created = event(
        "customer.subscription.created",
        t - 600,
        sub.object("incomplete", t + 86_400 * 30),
    );
    let paid = event_with(
        &stripe_id("evt"),
        "invoice.paid",
        t - 590,
        ACACIA,
        sub.invoice(true, "subscription_create", t + 86_400 * 30, false),
        None,
    );
    let active = event(
        "customer.subscription.updated",
        t - 590,
        sub.object("active", t + 86_400 * 30),
    );
    for payload in [&created, &paid, &active] {
        assert_eq!(deliver(&app, payload).await, "pending");
    }
    assert!(payment_evidence(&app, &acc).await.is_empty());
    let link: Value = app
        .get(&format!("/v1/accounts/{acc}/billing"), &app.reviewer_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(link["customer_id"], Value::Null);

    let path = format!("/v1/accounts/{acc}/billing");
    for bad in ["", "sub_123", "cus_", "cus_ünïcode", "cus_a b"] {
        let res = app
            .request(
                reqwest::Method::PUT,
                &path,
                Some(&app.backend_key),
                Some(&json!({"customer_id": bad})),
            )
            .await;
        assert_problem(res, 400, "invalid_customer_id").await;
    }
    let res = app
        .request(
            reqwest::Method::PUT,
            "/v1/accounts/acc_0000000000000000000000000000dead/billing",
            Some(&app.backend_key),
            Some(&json!({"customer_id": sub.customer})),
        )
        .await;
    assert_problem(res, 404, "account_not_found").await;

    // The link appears: the waiting events are applied in the same request.
    let res = app
        .request(
            reqwest::Method::PUT,
            &path,
            Some(&app.backend_key),
            Some(&json!({"customer_id": sub.customer})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["customer_id"], sub.customer.as_str());
    assert_eq!(body["subscriptions_applied"], json!([sub.id]));
    let evidence = payment_evidence(&app, &acc).await;
    assert_eq!(evidence.len(), 1);
    assert_eq!(evidence[0]["status"], "active");
    assert_eq!(evidence[0]["source"], format!("stripe:{}", sub.id));
    assert!(granted(&app, &acc).await);
    let linked = audit(&app, "action=billing.customer_linked").await;
    assert_eq!(linked.len(), 1);
    assert_eq!(linked[0]["actor"], "test-backend");

    // Again: nothing changes. Another account cannot take the customer.
    let res = app
        .request(
            reqwest::Method::PUT,
            &path,
            Some(&app.backend_key),
            Some(&json!({"customer_id": sub.customer})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let other = account(&app, "someone-else").await;
    let res = app
        .request(
            reqwest::Method::PUT,
            &format!("/v1/accounts/{other}/billing"),
            Some(&app.backend_key),
            Some(&json!({"customer_id": sub.customer})),
        )
        .await;
    assert_problem(res, 409, "customer_linked").await;

    // Later events of the customer apply directly.
    let deleted = event(
        "customer.subscription.deleted",
        t - 10,
        sub.object("canceled", t + 86_400 * 30),
    );
    assert_eq!(deliver(&app, &deleted).await, "applied");
    assert!(!granted(&app, &acc).await);

    // Moving the account to another customer withdraws what the old customer's
    // subscriptions gave it.
    let acc2 = account(&app, "switcher").await;
    let sub2 = Sub::new(None, t - 60);
    assert_eq!(
        deliver(
            &app,
            &event(
                "customer.subscription.created",
                t - 60,
                sub2.object("active", t + 86_400)
            )
        )
        .await,
        "pending"
    );
    let path2 = format!("/v1/accounts/{acc2}/billing");
    let res = app
        .request(
            reqwest::Method::PUT,
            &path2,
            Some(&app.backend_key),
            Some(&json!({"customer_id": sub2.customer})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(granted(&app, &acc2).await);
    let res = app
        .request(
            reqwest::Method::PUT,
            &path2,
            Some(&app.backend_key),
            Some(&json!({"customer_id": "cus_Replacement0001"})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(!granted(&app, &acc2).await);
    let link: Value = app
        .get(&path2, &app.backend_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(link["customer_id"], "cus_Replacement0001");
}

#[tokio::test]
async fn checkout_then_cancellation_withdraws_e2ee_at_once() {
    let app = billing_app().await;
    let acc = account(&app, "subscriber").await;
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
    assert_eq!(deliver(&app, &created).await, "applied");

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
    let acc = account(&app, "bystander").await;
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

#[tokio::test]
async fn a_database_failure_is_a_5xx_and_nothing_is_half_applied() {
    let app = billing_app().await;
    let acc = account(&app, "outage").await;
    let t = now(&app);
    let sub = Sub::new(Some(&acc), t - 100);
    let payload = event(
        "customer.subscription.created",
        t - 50,
        sub.object("active", t + 86_400 * 30),
    );

    // Writing the evidence fails after the event row was inserted: all of it rolls back.
    let conn = app.state.db.conn();
    let postgres = app.state.db.backend() == sea_orm::DatabaseBackend::Postgres;
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
    conn.close_by_ref().await.unwrap();
    let res = send(&app, Some(&stripe_signature(SECRET, t, &deleted)), &deleted).await;
    assert_problem(res, 503, "database_unavailable").await;

    // Another instance on the same database takes the retry.
    let other = spawn_with_settings((*app.state.settings).clone(), false).await;
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

#[test]
fn bad_stripe_settings_fail_at_start_naming_the_key() {
    for (var, value, key) in [
        (
            "VOUCH_STRIPE__TOLERANCE_SECONDS",
            "0",
            "stripe.tolerance_seconds",
        ),
        (
            "VOUCH_STRIPE__TOLERANCE_SECONDS",
            "soon",
            "stripe.tolerance_seconds",
        ),
        (
            "VOUCH_STRIPE__PAST_DUE_GRACE_DAYS",
            "365",
            "stripe.past_due_grace_days",
        ),
        (
            "VOUCH_STRIPE__MAX_BODY_BYTES",
            "12",
            "stripe.max_body_bytes",
        ),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_vouch"))
            .arg("migrate")
            .env(var, value)
            .env("VOUCH_STRIPE__WEBHOOK_SECRETS", "whsec_one,whsec_two")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(key), "{var}: {stderr}");
        assert!(
            !stderr.contains("whsec_"),
            "secrets are not echoed: {stderr}"
        );
    }
}

/// The same event as Stripe sends it from live mode.
fn in_live_mode(payload: &str) -> String {
    let mut event: Value = serde_json::from_str(payload).unwrap();
    event["livemode"] = json!(true);
    serde_json::to_string_pretty(&event).unwrap()
}

#[tokio::test]
async fn events_of_the_other_mode_are_refused_and_change_nothing() {
    // Default: test mode. A live-mode event is refused.
    let app = billing_app().await;
    let acc = account(&app, "mode").await;
    let t = now(&app);
    let sub = Sub::new(Some(&acc), t - 10);
    let test_mode = event(
        "customer.subscription.created",
        t - 5,
        sub.object("active", t + 30 * 86_400),
    );
    let live_mode = in_live_mode(&test_mode);
    let res = send(
        &app,
        Some(&stripe_signature(SECRET, t, &live_mode)),
        &live_mode,
    )
    .await;
    let problem = assert_problem(res, 400, "livemode_mismatch").await;
    assert!(problem["detail"].as_str().unwrap().contains("test-mode"));
    assert!(payment_evidence(&app, &acc).await.is_empty());
    assert!(!granted(&app, &acc).await);
    assert!(audit(&app, "actor=stripe").await.is_empty());
    // Not even remembered as seen: the same event id in the right mode still applies.
    assert_eq!(deliver(&app, &test_mode).await, "applied");
    assert!(granted(&app, &acc).await);

    // stripe.livemode = true: the other way round.
    let live_app = spawn_app_with(|s| {
        s.stripe.webhook_secrets = vec![SecretString::from(SECRET)];
        s.stripe.livemode = true;
    })
    .await;
    let acc = account(&live_app, "live").await;
    let t = now(&live_app);
    let sub = Sub::new(Some(&acc), t - 10);
    let test_mode = event(
        "customer.subscription.created",
        t - 5,
        sub.object("active", t + 30 * 86_400),
    );
    let res = send(
        &live_app,
        Some(&stripe_signature(SECRET, t, &test_mode)),
        &test_mode,
    )
    .await;
    assert_problem(res, 400, "livemode_mismatch").await;
    assert!(!granted(&live_app, &acc).await);
    let live_mode = in_live_mode(&test_mode);
    assert_eq!(deliver(&live_app, &live_mode).await, "applied");
    assert!(granted(&live_app, &acc).await);
}

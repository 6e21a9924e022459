//! Realistic Stripe objects and event envelopes (full JSON shapes, pretty-printed as Stripe
//! sends them) for the billing scenarios.

use serde_json::{json, Value};

pub(super) fn stripe_id(prefix: &str) -> String {
    let raw = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_1Q{}", &raw[..22])
}

pub(super) const ACACIA: &str = "2024-09-30.acacia";
pub(super) const BASIL: &str = "2025-03-31.basil";

#[derive(Clone)]
pub(super) struct Sub {
    pub(super) id: String,
    pub(super) customer: String,
    pub(super) account: Option<String>,
    pub(super) price: String,
    pub(super) product: String,
    pub(super) started: i64,
}

impl Sub {
    pub(super) fn new(account: Option<&str>, started: i64) -> Sub {
        Sub {
            id: stripe_id("sub"),
            customer: stripe_id("cus"),
            account: account.map(str::to_owned),
            price: stripe_id("price"),
            product: stripe_id("prod"),
            started,
        }
    }

    pub(super) fn metadata(&self) -> Value {
        match &self.account {
            Some(a) => json!({"vouch_account_id": a, "plan": "pro"}),
            None => json!({"plan": "pro"}),
        }
    }

    pub(super) fn price(&self) -> Value {
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

    pub(super) fn plan(&self) -> Value {
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
    pub(super) fn object(&self, status: &str, period_end: i64) -> Value {
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
    pub(super) fn object_basil(&self, status: &str, period_end: i64) -> Value {
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

    pub(super) fn line(&self, invoice: &str, period_end: i64, basil: bool) -> Value {
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
    pub(super) fn invoice(
        &self,
        paid: bool,
        billing_reason: &str,
        period_end: i64,
        basil: bool,
    ) -> Value {
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
    pub(super) fn checkout_session(&self, payment_status: &str) -> Value {
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
pub(super) fn merged(mut head: Value, rest: Value) -> Value {
    if let (Some(head), Value::Object(rest)) = (head.as_object_mut(), rest) {
        head.extend(rest);
    }
    head
}

/// A complete event envelope, pretty-printed as Stripe sends it.
pub(super) fn event_with(
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

pub(super) fn event(kind: &str, created: i64, object: Value) -> String {
    let previous =
        (kind == "customer.subscription.updated").then(|| json!({"status": "incomplete"}));
    event_with(&stripe_id("evt"), kind, created, ACACIA, object, previous)
}

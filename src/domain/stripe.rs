//! Stripe's webhook wire format: the `Stripe-Signature` header, and the few fields of an event
//! that billing uses. Pure: no I/O, no clock.

use aws_lc_rs::hmac;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::billing::{Change, SubscriptionStatus};
use crate::crypto::{ct_eq, hex};

pub const SIGNATURE_HEADER: &str = "stripe-signature";

/// The metadata key through which a subscription or checkout session names its account.
pub const ACCOUNT_METADATA_KEY: &str = "vouch_account_id";

const MAX_ID_LEN: usize = 255;

/// Why a signature was refused. Only `OutOfTolerance` has its own code; the others are all
/// `invalid_signature` (with a detail saying which).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the request has no Stripe-Signature header")]
    Missing,
    #[error("the Stripe-Signature header needs a `t=<unix time>` and at least one `v1=<hex>`")]
    Malformed,
    #[error("no v1 signature matches a configured endpoint secret")]
    NoMatch,
    #[error("the signature's timestamp is too far from the current time")]
    OutOfTolerance,
}

/// Stripe's v1 scheme: hex HMAC-SHA256 of `"{t}.{payload}"` under the endpoint secret (the whole
/// `whsec_...` string is the key).
pub fn signature(secret: &[u8], timestamp: i64, payload: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(payload);
    hex(ctx.sign().as_ref())
}

/// Check `Stripe-Signature: t=...,v1=...[,v1=...]` as Stripe's libraries do: any `v1` may match
/// under any secret (rotation), compared in constant time; other schemes (`v0`) are ignored.
/// The timestamp is checked after the signature, within `tolerance` seconds either way.
/// Returns the signed timestamp.
pub fn verify(
    header: Option<&str>,
    payload: &[u8],
    secrets: &[&[u8]],
    now: i64,
    tolerance: u64,
) -> Result<i64, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.split_once('=') else {
            continue;
        };
        match key.trim() {
            "t" if timestamp.is_none() => {
                timestamp = Some(
                    value
                        .trim()
                        .parse::<i64>()
                        .map_err(|_| SignatureError::Malformed)?,
                );
            }
            "v1" => candidates.push(value.trim()),
            _ => {}
        }
    }
    let (Some(t), false) = (timestamp, candidates.is_empty()) else {
        return Err(SignatureError::Malformed);
    };
    let mut matched = false;
    for secret in secrets {
        let expected = signature(secret, t, payload);
        for candidate in &candidates {
            // Not short-circuited: every pair is compared, in constant time.
            matched |= ct_eq(expected.as_bytes(), candidate.as_bytes());
        }
    }
    if !matched {
        return Err(SignatureError::NoMatch);
    }
    if (i128::from(now) - i128::from(t)).unsigned_abs() > u128::from(tolerance) {
        return Err(SignatureError::OutOfTolerance);
    }
    Ok(t)
}

/// An event whose signature checked out, reduced to what billing needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: String,
    pub event_type: String,
    pub created: DateTime<Utc>,
    pub livemode: bool,
    /// What it says about a subscription; `None` for events billing ignores.
    pub subject: Option<Subject>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub subscription_id: String,
    pub customer_id: Option<String>,
    /// `metadata.vouch_account_id`, unchecked (it may name no account).
    pub account_ref: Option<String>,
    pub change: Change,
}

/// The payload is not an event this version can read. The message names fields, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(String);

fn malformed(message: impl Into<String>) -> Malformed {
    Malformed(message.into())
}

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// An id, or an expanded object's `id`.
fn id_of(value: Option<&Value>) -> Option<&str> {
    let v = value?;
    let s = v.as_str().or_else(|| v.get("id").and_then(Value::as_str))?;
    Some(s)
}

/// An optional id field: absent or null is fine, anything else must be a sane id.
fn optional_id(object: &Map<String, Value>, field: &str) -> Result<Option<String>, Malformed> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        v => match id_of(v) {
            Some(s) if is_id(s) => Ok(Some(s.to_owned())),
            _ => Err(malformed(format!("`data.object.{field}` is not an id"))),
        },
    }
}

fn account_ref(metadata: Option<&Value>) -> Option<String> {
    let s = metadata?.get(ACCOUNT_METADATA_KEY)?.as_str()?.trim();
    is_id(s).then(|| s.to_owned())
}

fn timestamp(v: Option<&Value>) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(v?.as_i64()?, 0)
}

/// Parse a verified payload. Unknown event types parse (with no subject); a handled type whose
/// object lacks what billing needs is malformed.
pub fn parse_event(payload: &[u8]) -> Result<Event, Malformed> {
    let value: Value = serde_json::from_slice(payload).map_err(|e| {
        malformed(format!(
            "the payload is not JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let event = value
        .as_object()
        .ok_or_else(|| malformed("the payload is not a JSON object"))?;
    if event.get("object").is_some_and(|o| o != "event") {
        return Err(malformed("`object` is not \"event\""));
    }
    let id = event
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| is_id(s))
        .ok_or_else(|| malformed("`id` is missing or not an event id"))?
        .to_owned();
    let event_type = event
        .get("type")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= MAX_ID_LEN && s.is_ascii())
        .ok_or_else(|| malformed("`type` is missing or not an event type"))?
        .to_owned();
    let created = timestamp(event.get("created"))
        .ok_or_else(|| malformed("`created` is missing or not a unix time"))?;
    let livemode = event
        .get("livemode")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let object = event
        .get("data")
        .and_then(|d| d.get("object"))
        .and_then(Value::as_object)
        .ok_or_else(|| malformed("`data.object` is missing or not an object"))?;
    let subject = match event_type.as_str() {
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted" => Some(subscription_subject(object)?),
        "invoice.paid" => invoice_subject(object, Change::InvoicePaid)?,
        "invoice.payment_failed" => {
            let first_invoice =
                object.get("billing_reason").and_then(Value::as_str) == Some("subscription_create");
            invoice_subject(object, Change::InvoicePaymentFailed { first_invoice })?
        }
        "checkout.session.completed" => checkout_subject(object)?,
        _ => None,
    };
    Ok(Event {
        id,
        event_type,
        created,
        livemode,
        subject,
    })
}

fn subscription_subject(object: &Map<String, Value>) -> Result<Subject, Malformed> {
    let subscription_id =
        optional_id(object, "id")?.ok_or_else(|| malformed("`data.object.id` is missing"))?;
    let status = object
        .get("status")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("`data.object.status` is missing"))?;
    let parsed = SubscriptionStatus::parse(status);
    // Before API version 2025-03-31 the period is on the subscription; since, on its items.
    let current_period_end = timestamp(object.get("current_period_end")).or_else(|| {
        object
            .get("items")
            .and_then(|i| i.get("data"))
            .and_then(Value::as_array)?
            .iter()
            .filter_map(|item| timestamp(item.get("current_period_end")))
            .max()
    });
    Ok(Subject {
        subscription_id,
        customer_id: optional_id(object, "customer")?,
        account_ref: account_ref(object.get("metadata")),
        change: Change::Snapshot {
            status: parsed,
            current_period_end,
        },
    })
}

fn invoice_subject(
    object: &Map<String, Value>,
    change: Change,
) -> Result<Option<Subject>, Malformed> {
    // Before API version 2025-03-31: `subscription` and `subscription_details`; since: under
    // `parent.subscription_details`.
    let details = object
        .get("parent")
        .and_then(|p| p.get("subscription_details"))
        .filter(|d| d.is_object());
    let subscription_id = match optional_id(object, "subscription")? {
        Some(id) => Some(id),
        None => match details.and_then(|d| d.as_object()) {
            Some(d) => optional_id(d, "subscription")?,
            None => None,
        },
    };
    let Some(subscription_id) = subscription_id else {
        // A one-off invoice: not a subscription payment.
        return Ok(None);
    };
    let metadata = details.and_then(|d| d.get("metadata")).or_else(|| {
        object
            .get("subscription_details")
            .and_then(|d| d.get("metadata"))
    });
    Ok(Some(Subject {
        subscription_id,
        customer_id: optional_id(object, "customer")?,
        account_ref: account_ref(metadata).or_else(|| account_ref(object.get("metadata"))),
        change,
    }))
}

fn checkout_subject(object: &Map<String, Value>) -> Result<Option<Subject>, Malformed> {
    if object.get("mode").and_then(Value::as_str) != Some("subscription") {
        return Ok(None);
    }
    let Some(subscription_id) = optional_id(object, "subscription")? else {
        return Ok(None);
    };
    let paid = matches!(
        object.get("payment_status").and_then(Value::as_str),
        Some("paid" | "no_payment_required")
    );
    Ok(Some(Subject {
        subscription_id,
        customer_id: optional_id(object, "customer")?,
        account_ref: account_ref(object.get("metadata")),
        change: Change::CheckoutCompleted { paid },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &[u8] = b"whsec_test_secret";

    #[test]
    fn signatures_match_an_independent_computation() {
        // printf '1700000000.{"id":"evt_1"}' | openssl dgst -sha256 -hmac whsec_test_secret
        assert_eq!(
            signature(SECRET, 1_700_000_000, br#"{"id":"evt_1"}"#),
            "248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a"
        );
    }

    #[test]
    fn verification_accepts_any_matching_v1_under_any_secret() {
        let body = br#"{"id":"evt_1"}"#;
        let t = 1_700_000_000;
        let good = signature(SECRET, t, body);
        let other = signature(b"whsec_other", t, body);
        let header = format!("t={t},v1={good}");
        assert_eq!(verify(Some(&header), body, &[SECRET], t, 300), Ok(t));
        let header = format!("t={t},v1={other},v0=abc,v1={good}");
        assert_eq!(verify(Some(&header), body, &[SECRET], t, 300), Ok(t));
        let header = format!("t={t},v1={other}");
        assert_eq!(
            verify(Some(&header), body, &[SECRET, b"whsec_other"], t, 300),
            Ok(t)
        );
        assert_eq!(
            verify(Some(&header), body, &[SECRET], t, 300),
            Err(SignatureError::NoMatch)
        );
        let header = format!("t={t},v1={good}");
        assert_eq!(
            verify(Some(&header), b"{\"id\":\"evt_2\"}", &[SECRET], t, 300),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verify(Some(&header), body, &[SECRET], t + 301, 300),
            Err(SignatureError::OutOfTolerance)
        );
        assert_eq!(
            verify(Some(&header), body, &[SECRET], t - 301, 300),
            Err(SignatureError::OutOfTolerance)
        );
        assert_eq!(verify(Some(&header), body, &[SECRET], t + 300, 300), Ok(t));
        for bad in ["", "t=1", &format!("v1={good}"), "t=x,v1=ab", "garbage"] {
            assert_eq!(
                verify(Some(bad), body, &[SECRET], t, 300),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(
            verify(None, body, &[SECRET], t, 300),
            Err(SignatureError::Missing)
        );
    }

    fn event(kind: &str, object: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "id": "evt_1", "object": "event", "type": kind, "created": 1_700_000_000,
            "livemode": false, "data": {"object": object}
        }))
        .unwrap()
    }

    #[test]
    fn events_are_reduced_to_what_billing_needs() {
        let e = parse_event(&event(
            "customer.subscription.updated",
            json!({"id": "sub_1", "object": "subscription", "status": "past_due",
                   "customer": {"id": "cus_1", "object": "customer"},
                   "metadata": {"vouch_account_id": "acc_1"},
                   "items": {"data": [{"current_period_end": 1_700_000_100}]}}),
        ))
        .unwrap();
        let s = e.subject.unwrap();
        assert_eq!(s.subscription_id, "sub_1");
        assert_eq!(s.customer_id.as_deref(), Some("cus_1"));
        assert_eq!(s.account_ref.as_deref(), Some("acc_1"));
        assert_eq!(
            s.change,
            Change::Snapshot {
                status: SubscriptionStatus::PastDue,
                current_period_end: DateTime::from_timestamp(1_700_000_100, 0)
            }
        );

        let e = parse_event(&event(
            "invoice.payment_failed",
            json!({"id": "in_1", "object": "invoice", "customer": "cus_1",
                   "billing_reason": "subscription_create",
                   "parent": {"type": "subscription_details", "subscription_details":
                       {"subscription": "sub_1", "metadata": {"vouch_account_id": "acc_2"}}}}),
        ))
        .unwrap();
        let s = e.subject.unwrap();
        assert_eq!(s.subscription_id, "sub_1");
        assert_eq!(s.account_ref.as_deref(), Some("acc_2"));
        assert_eq!(
            s.change,
            Change::InvoicePaymentFailed {
                first_invoice: true
            }
        );

        let one_off = parse_event(&event(
            "invoice.paid",
            json!({"id": "in_2", "object": "invoice", "customer": "cus_1", "subscription": null}),
        ))
        .unwrap();
        assert_eq!(one_off.subject, None);
        let payment_mode = parse_event(&event(
            "checkout.session.completed",
            json!({"id": "cs_1", "mode": "payment", "subscription": null}),
        ))
        .unwrap();
        assert_eq!(payment_mode.subject, None);
        let unknown = parse_event(&event("charge.refunded", json!({"id": "ch_1"}))).unwrap();
        assert_eq!(unknown.subject, None);
        assert_eq!(unknown.event_type, "charge.refunded");
    }

    #[test]
    fn malformed_payloads_are_named_without_echoing_values() {
        assert!(parse_event(b"not json").is_err());
        assert!(parse_event(b"[]").is_err());
        assert!(parse_event(br#"{"id":"evt_1","type":"x","created":1}"#).is_err());
        let err = parse_event(&event(
            "customer.subscription.updated",
            json!({"id": "sub_1", "customer": "cus_secret value"}),
        ))
        .unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        let err = parse_event(&event(
            "customer.subscription.updated",
            json!({"id": "sub_1", "status": "active", "customer": "cus_secret value"}),
        ))
        .unwrap_err();
        assert!(err.to_string().contains("customer"), "{err}");
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}

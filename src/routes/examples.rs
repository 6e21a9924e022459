//! Examples for the OpenAPI spec, one per request body and success response, named in each
//! handler's `#[utoipa::path]` (`example = json!(examples::account())`). Values a reader can
//! paste: ids in our formats, RFC 3339 times, and placeholders, never a real secret (tokens
//! are shortened `eyJ...`, keys and secrets are visibly fake). `scripts/spec-check` validates
//! every example against its schema.

use serde_json::{json, Value};

pub const ACCOUNT: &str = "acc_0192f5c8a3b47d2e9c1f0a6b5d4e3c2b";
pub const EXCEPTION: &str = "exc_0192f5d01e7a7c1b8f4e2d3c6b5a4f39";
pub const VERIFICATION: &str = "ver_0192f5c9b2e07a4d8c3b1f0e6d5c4b3a";
pub const CLIENT: &str = "cli_0192f5a1c0d97e3b8a2f4c6d1e0b9a87";
pub const WEBHOOK: &str = "whk_0192f5b3d4c27f1e9a8b7c6d5e4f3a21";
/// Key ids are RFC 7638 thumbprints of the public key.
pub const KID: &str = "Yb9l0PNE2QH2nbQwAGl_VCkU0Fa3yjFH7F3bM7a-0oA";
const TOKEN: &str = "eyJhbGciOiJFZERTQSIsInR5cCI6ImUyZWUtZW50K2p3dCIsImtpZCI6IlliOWwwUE5FMlFIMm5iUXdBR2xfVkNrVTBGYTN5akZIN0YzYk03YS0wb0EifQ.eyJpc3MiOiJodHRwczovL3Zv...";
const JKT: &str = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

pub fn account() -> Value {
    json!({
        "id": ACCOUNT,
        "external_id": "user-8812",
        "display_name": "Ann",
        "status": "active",
        "created_at": "2026-12-01T09:30:00Z",
        "email_verified": true,
        "phone_verified": false
    })
}

pub fn create_account() -> Value {
    json!({"external_id": "user-8812", "email": "ann@example.org", "display_name": "Ann"})
}

pub fn accounts() -> Value {
    json!({"items": [account()], "next_cursor": null})
}

pub fn patch_account() -> Value {
    json!({"status": "suspended"})
}

pub fn suspended_account() -> Value {
    let mut account = account();
    account["status"] = json!("suspended");
    account
}

pub fn evidence() -> Value {
    json!({
        "items": [
            {
                "id": "evd_0192f5ca11b37e2d9c0f8a7b6c5d4e3f",
                "kind": "phone",
                "status": "active",
                "source": "sms",
                "verified_at": "2026-12-01T09:41:12Z",
                "expires_at": null
            },
            {
                "id": "evd_0192f5cb22c48f3e0d1a9b8c7d6e5f40",
                "kind": "payment",
                "status": "active",
                "source": "stripe:sub_1QK2LmHt8bX4rV9a",
                "verified_at": "2026-12-01T10:02:45Z",
                "expires_at": null
            }
        ],
        "next_cursor": null
    })
}

pub fn entitlements() -> Value {
    json!({
        "account_id": ACCOUNT,
        "entitlements": {
            "e2ee": {
                "granted": true,
                "satisfied_by": ["phone"],
                "missing": [],
                "reason": "e2ee granted by active phone evidence"
            }
        },
        "policy": "verified/v1"
    })
}

pub fn billing_link() -> Value {
    json!({"customer_id": "cus_NffrFeUfNV2Hib"})
}

pub fn billing_linked() -> Value {
    json!({
        "account_id": ACCOUNT,
        "customer_id": "cus_NffrFeUfNV2Hib",
        "linked_at": "2026-12-01T10:00:00Z",
        "subscriptions_applied": ["sub_1QK2LmHt8bX4rV9a"]
    })
}

pub fn billing() -> Value {
    json!({
        "account_id": ACCOUNT,
        "customer_id": "cus_NffrFeUfNV2Hib",
        "linked_at": "2026-12-01T10:00:00Z"
    })
}

pub fn stripe_event() -> Value {
    json!({
        "id": "evt_1NG8Du2eZvKYlo2CUI79vXWy",
        "object": "event",
        "type": "customer.subscription.updated",
        "created": 1764583365,
        "livemode": false,
        "data": {
            "object": {
                "id": "sub_1QK2LmHt8bX4rV9a",
                "object": "subscription",
                "customer": "cus_NffrFeUfNV2Hib",
                "status": "active",
                "metadata": {"vouch_account_id": ACCOUNT}
            }
        }
    })
}

pub fn stripe_received() -> Value {
    json!({"received": true, "event_id": "evt_1NG8Du2eZvKYlo2CUI79vXWy", "outcome": "applied"})
}

pub fn submit_exception() -> Value {
    json!({
        "category": "nonprofit",
        "statement": "We run a shelter for journalists in exile and need encrypted calls with them.",
        "organization": "Exile Desk",
        "reference": "EU-REG-2291"
    })
}

pub fn exception() -> Value {
    json!({
        "id": EXCEPTION,
        "account_id": ACCOUNT,
        "category": "nonprofit",
        "status": "pending",
        "submitted_at": "2026-12-01T11:00:00Z",
        "approvals_required": 1,
        "approvals_received": 0
    })
}

pub fn exceptions() -> Value {
    let mut item = exception();
    item["submitted_by"] = json!("meet-backend-eu");
    item["submitted_by_principal"] = json!("meet-backend-eu");
    item["approvals"] = json!([]);
    json!({"items": [item], "next_cursor": null})
}

pub fn retention_hold() -> Value {
    json!({"keep": true, "reason": "Subject of an ongoing appeal; keep until it is decided"})
}

pub fn retention_held() -> Value {
    let mut item = exception_opened();
    item["retention_held_by"] = json!("trust-review");
    item["retention_held_at"] = json!("2026-12-01T12:00:00Z");
    item["retention_reason"] = retention_hold()["reason"].clone();
    item
}

pub fn reveals() -> Value {
    json!({
        "items": [{
            "reviewer": "trust-review",
            "principal": "trust-review",
            "at": "2026-12-01T11:30:00Z",
            "fields": ["statement", "organization"],
            "audit_seq": 4182
        }],
        "next_cursor": null
    })
}

/// As a reviewer reads it: with the sealed text opened.
pub fn exception_opened() -> Value {
    let mut item = exception();
    item["submitted_by"] = json!("meet-backend-eu");
    item["submitted_by_principal"] = json!("meet-backend-eu");
    item["approvals"] = json!([]);
    item["statement"] = submit_exception()["statement"].clone();
    item["organization"] = json!("Exile Desk");
    item["reference"] = json!("EU-REG-2291");
    item
}

pub fn decision() -> Value {
    json!({
        "decision": "approve",
        "reason": "Registered charity; the registry entry matches the organization named.",
        "expires_at": "2027-12-01T00:00:00Z"
    })
}

pub fn approved_exception() -> Value {
    let mut item = exception();
    item["status"] = json!("approved");
    item["approvals_received"] = json!(1);
    item["decided_at"] = json!("2026-12-01T14:20:00Z");
    item["expires_at"] = json!("2027-12-01T00:00:00Z");
    item["evidence_id"] = json!("evd_0192f5e4a9b87c6d5e4f3a2b1c0d9e8f");
    item["submitted_by"] = json!("meet-backend-eu");
    item["submitted_by_principal"] = json!("meet-backend-eu");
    item["decided_by"] = json!("reviewer-ann");
    item["approvals"] = json!([{
        "reviewer": "reviewer-ann",
        "principal": "ann@example.org",
        "approved_at": "2026-12-01T14:20:00Z",
        "expires_at": "2027-12-01T00:00:00Z"
    }]);
    item
}

pub fn revoke_exception() -> Value {
    json!({"reason": "The organization was dissolved in November."})
}

pub fn revoked_exception() -> Value {
    let mut item = approved_exception();
    item["status"] = json!("revoked");
    item["revoked_at"] = json!("2026-12-20T08:00:00Z");
    item["revoked_by"] = json!("reviewer-ann");
    item
}

pub fn create_verification() -> Value {
    json!({"channel": "sms", "to": "+14155552671", "locale": "de"})
}

pub fn verification() -> Value {
    json!({
        "id": VERIFICATION,
        "account_id": ACCOUNT,
        "channel": "sms",
        "status": "pending",
        "expires_at": "2026-12-01T09:50:00Z",
        "to_masked": "+1*******2671",
        "attempts_remaining": 5,
        "created_at": "2026-12-01T09:40:00Z",
        "approved_at": null,
        "delivery_status": "delivered"
    })
}

pub fn check_verification() -> Value {
    json!({"code": "123456"})
}

pub fn checked_verification() -> Value {
    json!({"id": VERIFICATION, "status": "approved", "attempts_remaining": 4})
}

pub fn issue_token() -> Value {
    json!({"audience": "meeting", "device_jkt": JKT, "ttl_seconds": 600})
}

pub fn issued_token() -> Value {
    json!({
        "token": TOKEN,
        "token_type": "e2ee-ent+jwt",
        "expires_at": "2026-12-01T12:10:00Z",
        "kid": KID
    })
}

pub fn authorize() -> Value {
    json!({"token": TOKEN, "device_jkt": JKT, "meeting_id": "standup-2026-12-01"})
}

pub fn authorized() -> Value {
    json!({
        "allow": true,
        "reason": "ok",
        "account_id": ACCOUNT,
        "entitlements": ["e2ee"],
        "expires_at": "2026-12-01T12:10:00Z"
    })
}

pub fn revoke_token() -> Value {
    json!({"token": TOKEN, "token_type_hint": "access_token"})
}

pub fn revoked_token() -> Value {
    json!({})
}

pub fn dpop_nonce() -> Value {
    json!({"nonce": "AZLzzJ4AAAAAZ2ExNzVmZTQ5YjJkNGU0ZjkwYmU0OTk4YTgwOTY3ZjM", "expires_at": "2026-12-01T10:05:00Z"})
}

pub fn account_tokens_revoked() -> Value {
    json!({"account_id": ACCOUNT, "revoked_before": "2026-12-01T10:05:01Z"})
}

pub fn jwks() -> Value {
    json!({
        "keys": [{
            "kty": "OKP",
            "crv": "Ed25519",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
            "kid": KID,
            "alg": "EdDSA",
            "use": "sig"
        }]
    })
}

pub fn exchange_livekit() -> Value {
    json!({"token": TOKEN, "room": "standup", "device_jkt": JKT, "name": "Ann"})
}

pub fn livekit_token() -> Value {
    json!({
        "token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJBUElz...",
        "identity": ACCOUNT,
        "expires_at": "2026-12-01T12:10:00Z"
    })
}

pub fn exchange_jitsi() -> Value {
    json!({"token": TOKEN, "room": "standup", "name": "Ann"})
}

pub fn jitsi_token() -> Value {
    json!({
        "token": "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImppdHNpLWtleS0xIn0.eyJpc3MiOiJ2b3Vj...",
        "expires_at": "2026-12-01T12:10:00Z"
    })
}

pub fn status_list() -> &'static str {
    "eyJhbGciOiJFZERTQSIsInR5cCI6InN0YXR1c2xpc3Qrand0Iiwia2lkIjoiWWI5bDBQTkUyUUgybmJRd0FHbF9WQ2tVMEZhM3lqRkg3RjNiTTdhLTBvQSJ9.eyJzdWIiOiJodHRwczovL3Zv..."
}

pub fn pem() -> &'static str {
    "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo\n...\n-----END PUBLIC KEY-----\n"
}

pub fn create_client() -> Value {
    json!({"name": "moderator-kim", "role": "moderator", "principal": "kim@example.org"})
}

pub fn client() -> Value {
    json!({
        "id": CLIENT,
        "name": "moderator-kim",
        "role": "moderator",
        "principal": "kim@example.org",
        "key_prefix": "vk_Zx81aQ",
        "created_at": "2026-12-01T08:00:00Z",
        "created_by": "admin"
    })
}

pub fn created_client() -> Value {
    let mut client = client();
    client["key"] = json!("vk_Zx81aQ...(shown once)");
    client
}

pub fn clients() -> Value {
    json!({"items": [client()], "next_cursor": null})
}

pub fn me() -> Value {
    json!({
        "client_id": CLIENT,
        "name": "moderator-kim",
        "role": "moderator",
        "principal": "kim@example.org"
    })
}

pub fn audit() -> Value {
    json!({
        "items": [{
            "seq": 1042,
            "at": "2026-12-01T15:03:11Z",
            "actor": "moderator-kim",
            "action": "account.suspended",
            "target_type": "account",
            "target_id": ACCOUNT,
            "details": {"from": "active", "to": "suspended"},
            "prev_hash": "9f2c4e1b7a3d5f60c8e2b4a6d1f3e5c7a9b0d2f4e6a8c1b3d5f7e9a0c2e4b6d8",
            "hash": "3b7d9f1a2c4e6a8b0d2f4e6a8c0b2d4f6e8a1c3e5b7d9f0a2c4e6b8d0f1a3c5e"
        }],
        "next_cursor": null
    })
}

pub fn chain_report() -> Value {
    json!({"entries": 1042, "intact": true, "first_broken_seq": null, "problem": null})
}

fn key(state: &str) -> Value {
    json!({
        "kid": KID,
        "alg": "EdDSA",
        "state": state,
        "created_at": "2026-11-01T00:00:00Z",
        "activates_at": "2026-11-01T00:05:00Z",
        "retires_at": null,
        "removes_at": null
    })
}

pub fn keys() -> Value {
    json!({"items": [key("active")], "next_cursor": null})
}

pub fn rotated_key() -> Value {
    json!({
        "kid": "q2Hc8rVx3JmT0dL6yWn5sKe1fGa9bZu4oPi7jXh2CvE",
        "alg": "EdDSA",
        "state": "next",
        "created_at": "2026-12-01T16:00:00Z",
        "activates_at": "2026-12-01T16:05:00Z",
        "retires_at": null,
        "removes_at": null
    })
}

pub fn create_webhook() -> Value {
    json!({
        "url": "https://meet.example.org/vouch/events",
        "events": ["entitlement.revoked", "account.suspended", "token.revoked"],
        "description": "Meeting cluster EU"
    })
}

pub fn webhook() -> Value {
    json!({
        "id": WEBHOOK,
        "url": "https://meet.example.org/vouch/events",
        "events": ["entitlement.revoked", "account.suspended", "token.revoked"],
        "status": "enabled",
        "description": "Meeting cluster EU",
        "created_at": "2026-12-01T08:30:00Z",
        "previous_secret_expires_at": null
    })
}

pub fn webhook_with_secret() -> Value {
    let mut webhook = webhook();
    webhook["secret"] = json!("whsec_PLACEHOLDERbase64secretShownOnce==");
    webhook
}

pub fn webhooks() -> Value {
    json!({"items": [webhook()], "next_cursor": null})
}

pub fn deliveries() -> Value {
    json!({
        "items": [{
            "id": "whd_0192f5c8a3b47d2e9c1f0a6b5d4e3c2b",
            "event_id": "evt_0192f5c8a3b47d2e9c1f0a6b5d4e3c2c",
            "type": "entitlement.revoked",
            "status": "delivered",
            "attempts": 1,
            "last_status_code": 204,
            "last_error": null,
            "next_attempt_at": null,
            "created_at": "2026-12-01T15:03:11Z",
            "delivered_at": "2026-12-01T15:03:12Z"
        }],
        "next_cursor": null
    })
}

pub fn test_ping() -> Value {
    json!({
        "event_id": "evt_0192f5c8a3b47d2e9c1f0a6b5d4e3c2d",
        "delivery_id": "whd_0192f5c8a3b47d2e9c1f0a6b5d4e3c2e"
    })
}

pub fn health() -> Value {
    json!({"status": "ok"})
}

pub fn ready() -> Value {
    json!({"status": "ready"})
}

pub fn metrics() -> &'static str {
    "# TYPE vouch_http_requests counter\nvouch_http_requests_total{method=\"POST\",route=\"/v1/e2ee/authorize\",status=\"200\"} 1027\n# EOF\n"
}

pub fn overview() -> Value {
    let day = |sends, delivered, failed, waiting| json!({"sends": sends, "delivered": delivered, "failed": failed, "waiting": waiting});
    json!({
        "generated_at": "2026-12-04T14:05:00Z",
        "pending_exceptions": {
            "total": 7,
            "under_1_day": 3,
            "from_1_to_3_days": 2,
            "from_3_to_7_days": 1,
            "over_7_days": 1,
            "oldest_submitted_at": "2026-11-25T09:12:44Z",
            "oldest_age_seconds": 795_136
        },
        "approvals_ending": {
            "within_days": 30,
            "count": 2,
            "soonest": [
                {"id": EXCEPTION, "expires_at": "2026-12-11T00:00:00Z"},
                {"id": "exc_0192f5d2a4c18e9b7d6f5a4b3c2d1e0f", "expires_at": "2026-12-30T12:00:00Z"}
            ]
        },
        "verifications_today": {
            "since": "2026-12-04T00:00:00Z",
            "email": day(412, 409, 1, 2),
            "sms": day(96, 90, 4, 1)
        },
        "sms_budget": {"used": 37, "limit": 1000, "window_seconds": 3600},
        "failing_webhooks": {
            "count": 1,
            "endpoints": [{
                "id": WEBHOOK,
                "host": "meet.example.org",
                "status": "enabled",
                "failing_deliveries": 3,
                "attempts": 4,
                "since": "2026-12-04T11:47:03Z"
            }]
        },
        "signing_key": {
            "kid": KID,
            "alg": "EdDSA",
            "activated_at": "2026-11-20T08:00:00Z",
            "next_rotation_at": "2026-12-20T08:00:00Z",
            "rotation_overdue": false
        }
    })
}

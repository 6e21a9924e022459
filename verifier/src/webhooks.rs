//! Vouch's events as a meeting server receives them (Standard Webhooks): the signature
//! `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` keyed with the endpoint secret
//! (`whsec_<base64>`), a timestamp within the tolerance, then the event itself.

use std::{
    fmt,
    time::{Duration, SystemTime},
};

use aws_lc_rs::hmac;
use base64::{engine::general_purpose::STANDARD, Engine as _};
use serde::Deserialize;

/// Events that mean an admitted participant must leave.
pub const EVICTING: [&str; 5] = [
    "entitlement.revoked",
    "account.suspended",
    "account.erased",
    "token.revoked",
    "tokens.revoked",
];

/// Checks deliveries for one endpoint.
pub struct WebhookVerifier {
    keys: Vec<hmac::Key>,
    tolerance: Duration,
}

/// A delivery that was not Vouch's, or not now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookError {
    /// The secret is not `whsec_<base64>`.
    InvalidSecret,
    /// No signature matches (or the headers are missing).
    InvalidSignature,
    /// `webhook-timestamp` is too far from now (a replay, or a clock far off).
    StaleTimestamp,
    /// Signed, but not an event.
    InvalidBody,
}

impl fmt::Display for WebhookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WebhookError::InvalidSecret => "the webhook secret is not whsec_<base64>",
            WebhookError::InvalidSignature => "no valid webhook signature",
            WebhookError::StaleTimestamp => "webhook timestamp outside the tolerance",
            WebhookError::InvalidBody => "the webhook body is not an event",
        })
    }
}

impl std::error::Error for WebhookError {}

/// A verified event: `{"type", "timestamp", "data"}` and its `webhook-id` (the same on every
/// retry: deduplicate by it).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    pub kind: String,
    pub data: serde_json::Value,
}

#[derive(Deserialize)]
struct Body {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: serde_json::Value,
}

impl Event {
    /// `data.account_id`, on every account, entitlement and token event.
    pub fn account_id(&self) -> Option<&str> {
        self.data.get("account_id")?.as_str()
    }

    /// Whether the event means the account's participants must leave (see [`EVICTING`]).
    pub fn evicts(&self) -> bool {
        EVICTING.contains(&self.kind.as_str())
    }

    /// For `token.revoked`: the token's `jti` and `expires_at` (unix seconds), to pass to
    /// [`crate::Verifier::revoke`].
    pub fn revoked_token(&self) -> Option<(&str, i64)> {
        if self.kind != "token.revoked" {
            return None;
        }
        let jti = self.data.get("jti")?.as_str()?;
        let expires_at = match self.data.get("expires_at")? {
            serde_json::Value::Number(n) => n.as_i64()?,
            // RFC 3339, as JSON bodies carry times: only its date and time matter here.
            serde_json::Value::String(s) => rfc3339_seconds(s)?,
            _ => return None,
        };
        Some((jti, expires_at))
    }

    /// For `tokens.revoked` (every token of an account issued before a time): the account id
    /// and `revoked_before` (unix seconds), to pass to [`crate::Verifier::revoke_account`].
    pub fn revoked_account(&self) -> Option<(&str, i64)> {
        if self.kind != "tokens.revoked" {
            return None;
        }
        let account = self.account_id()?;
        let before = rfc3339_seconds(self.data.get("revoked_before")?.as_str()?)?;
        Some((account, before))
    }
}

impl WebhookVerifier {
    /// For the endpoint secret shown once when the webhook was created (`whsec_...`).
    pub fn new(secret: &str) -> Result<WebhookVerifier, WebhookError> {
        Ok(WebhookVerifier {
            keys: vec![key(secret)?],
            tolerance: Duration::from_secs(300),
        })
    }

    /// Accept signatures with another secret too (while a rotation overlaps).
    pub fn with_secret(mut self, secret: &str) -> Result<WebhookVerifier, WebhookError> {
        self.keys.push(key(secret)?);
        Ok(self)
    }

    /// How far `webhook-timestamp` may be from now (default 5 minutes).
    pub fn tolerance(mut self, tolerance: Duration) -> WebhookVerifier {
        self.tolerance = tolerance;
        self
    }

    /// Check a delivery from its `webhook-id`, `webhook-timestamp` and `webhook-signature`
    /// headers and its raw body.
    pub fn verify(
        &self,
        id: &str,
        timestamp: &str,
        signatures: &str,
        body: &[u8],
    ) -> Result<Event, WebhookError> {
        self.verify_at(id, timestamp, signatures, body, SystemTime::now())
    }

    /// [`WebhookVerifier::verify`] as of `now`.
    pub fn verify_at(
        &self,
        id: &str,
        timestamp: &str,
        signatures: &str,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Event, WebhookError> {
        let mut signed = Vec::with_capacity(id.len() + timestamp.len() + body.len() + 2);
        signed.extend_from_slice(id.as_bytes());
        signed.push(b'.');
        signed.extend_from_slice(timestamp.as_bytes());
        signed.push(b'.');
        signed.extend_from_slice(body);
        let valid = signatures
            .split_whitespace()
            .filter_map(|s| s.strip_prefix("v1,"))
            .filter_map(|s| STANDARD.decode(s).ok())
            .any(|tag| {
                self.keys
                    .iter()
                    .any(|key| hmac::verify(key, &signed, &tag).is_ok())
            });
        if id.is_empty() || !valid {
            return Err(WebhookError::InvalidSignature);
        }
        let sent = timestamp
            .parse::<i64>()
            .map_err(|_| WebhookError::InvalidSignature)?;
        let now = crate::unix(now);
        if sent.abs_diff(now) > self.tolerance.as_secs() {
            return Err(WebhookError::StaleTimestamp);
        }
        let body: Body = serde_json::from_slice(body).map_err(|_| WebhookError::InvalidBody)?;
        Ok(Event {
            id: id.to_owned(),
            kind: body.kind,
            data: body.data,
        })
    }
}

fn key(secret: &str) -> Result<hmac::Key, WebhookError> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    let raw = STANDARD
        .decode(encoded)
        .map_err(|_| WebhookError::InvalidSecret)?;
    if raw.is_empty() {
        return Err(WebhookError::InvalidSecret);
    }
    Ok(hmac::Key::new(hmac::HMAC_SHA256, &raw))
}

/// Unix seconds of an RFC 3339 UTC time such as `2026-12-01T18:00:00Z` (fractions and
/// `+00:00` accepted); other offsets are not Vouch's and read as `None`.
fn rfc3339_seconds(s: &str) -> Option<i64> {
    let (date, time) = s.split_once(['T', 't'])?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time
        .strip_suffix('Z')
        .or_else(|| time.strip_suffix('z'))
        .or_else(|| time.strip_suffix("+00:00"))?;
    let time = time.split('.').next()?;
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn sign(secret: &str, id: &str, ts: &str, body: &str) -> String {
        let raw = STANDARD
            .decode(secret.trim_start_matches("whsec_"))
            .unwrap();
        let key = hmac::Key::new(hmac::HMAC_SHA256, &raw);
        let tag = hmac::sign(&key, format!("{id}.{ts}.{body}").as_bytes());
        format!("v1,{}", STANDARD.encode(tag.as_ref()))
    }

    #[test]
    fn verifies_standard_webhooks_signatures() {
        let body = r#"{"type":"account.suspended","timestamp":"2026-12-01T18:00:00Z","data":{"account_id":"acc_1"}}"#;
        let ts = crate::unix(SystemTime::now()).to_string();
        let sig = sign(SECRET, "evt_1", &ts, body);
        let v = WebhookVerifier::new(SECRET).unwrap();
        let event = v.verify("evt_1", &ts, &sig, body.as_bytes()).unwrap();
        assert_eq!(event.kind, "account.suspended");
        assert_eq!(event.account_id(), Some("acc_1"));
        assert!(event.evicts());
        // Several signatures, one of them ours (a rotation overlapping).
        let other = sign("whsec_c2VjcmV0", "evt_1", &ts, body);
        assert!(v
            .verify("evt_1", &ts, &format!("{other} {sig}"), body.as_bytes())
            .is_ok());
        assert_eq!(
            v.verify("evt_2", &ts, &sig, body.as_bytes()),
            Err(WebhookError::InvalidSignature)
        );
        assert_eq!(
            v.verify("evt_1", &ts, &other, body.as_bytes()),
            Err(WebhookError::InvalidSignature)
        );
        let old = (crate::unix(SystemTime::now()) - 3600).to_string();
        let sig = sign(SECRET, "evt_1", &old, body);
        assert_eq!(
            v.verify("evt_1", &old, &sig, body.as_bytes()),
            Err(WebhookError::StaleTimestamp)
        );
        assert!(WebhookVerifier::new("whsec_***").is_err());
    }

    #[test]
    fn reads_revoked_tokens() {
        let event = Event {
            id: "e".into(),
            kind: "token.revoked".into(),
            data: serde_json::json!({"account_id": "a", "jti": "j", "expires_at": "2026-12-01T18:00:00.123Z"}),
        };
        assert_eq!(event.revoked_token(), Some(("j", 1_796_148_000)));
        assert_eq!(rfc3339_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            rfc3339_seconds("2000-03-01T00:00:01+00:00"),
            Some(951_868_801)
        );
        assert_eq!(rfc3339_seconds("2000-03-01T00:00:01+02:00"), None);
    }

    #[test]
    fn reads_account_wide_revocations() {
        let event = Event {
            id: "e".into(),
            kind: "tokens.revoked".into(),
            data: serde_json::json!({"account_id": "a", "revoked_before": "2026-12-01T18:00:00.000Z"}),
        };
        assert_eq!(event.revoked_account(), Some(("a", 1_796_148_000)));
        assert_eq!(event.revoked_token(), None);
        assert!(event.evicts());
    }
}

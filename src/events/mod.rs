//! Signed entitlement events (Standard Webhooks): the typed events, the outbox they are written
//! to (`emit`, inside the transaction of the change), the SSRF-safe HTTP client and the worker
//! that delivers them from any instance.

pub mod net;
pub mod settings;
pub mod signature;
pub mod worker;

use std::{
    collections::HashMap,
    sync::{Arc, LazyLock, Mutex},
    time::Duration,
};

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::{ConnectionTrait, DbErr};
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::config::ConfigError;
use settings::WebhookSettings;

/// Every event type, as endpoints filter on them.
pub const EVENT_TYPES: [&str; 8] = [
    "entitlement.granted",
    "entitlement.revoked",
    "account.suspended",
    "account.reactivated",
    "account.erased",
    "token.revoked",
    "tokens.revoked",
    "ping",
];

/// The entitlement the entitlement events are about.
pub const ENTITLEMENT: &str = "e2ee";

/// Why an account lost its entitlement.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString, strum::Display,
)]
#[strum(serialize_all = "snake_case")]
pub enum RevokedReason {
    Suspended,
    Lapsed,
    ExceptionRevoked,
    Erased,
    Policy,
}

impl RevokedReason {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// An event for meeting servers. It carries ids only: never an email, a phone number, a name
/// or a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `reason`: what now satisfies the policy, e.g. `verified`, `payment`, `exception`.
    EntitlementGranted {
        account_id: String,
        external_id: String,
        reason: String,
    },
    EntitlementRevoked {
        account_id: String,
        external_id: String,
        reason: RevokedReason,
    },
    AccountSuspended {
        account_id: String,
    },
    AccountReactivated {
        account_id: String,
    },
    AccountErased {
        account_id: String,
    },
    TokenRevoked {
        account_id: String,
        jti: String,
        expires_at: DateTime<Utc>,
    },
    /// Every token of the account issued before `revoked_before` is revoked (an account-wide
    /// revocation: no single `jti`). Tokens issued from then on are not affected.
    TokensRevoked {
        account_id: String,
        revoked_before: DateTime<Utc>,
    },
    Ping,
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Event {
    pub fn event_type(&self) -> &'static str {
        match self {
            Event::EntitlementGranted { .. } => "entitlement.granted",
            Event::EntitlementRevoked { .. } => "entitlement.revoked",
            Event::AccountSuspended { .. } => "account.suspended",
            Event::AccountReactivated { .. } => "account.reactivated",
            Event::AccountErased { .. } => "account.erased",
            Event::TokenRevoked { .. } => "token.revoked",
            Event::TokensRevoked { .. } => "tokens.revoked",
            Event::Ping => "ping",
        }
    }

    pub fn data(&self) -> Value {
        match self {
            Event::EntitlementGranted {
                account_id,
                external_id,
                reason,
            } => json!({
                "account_id": account_id,
                "external_id": external_id,
                "entitlement": ENTITLEMENT,
                "reason": reason,
            }),
            Event::EntitlementRevoked {
                account_id,
                external_id,
                reason,
            } => json!({
                "account_id": account_id,
                "external_id": external_id,
                "entitlement": ENTITLEMENT,
                "reason": reason.as_str(),
            }),
            Event::AccountSuspended { account_id }
            | Event::AccountReactivated { account_id }
            | Event::AccountErased { account_id } => json!({ "account_id": account_id }),
            Event::TokenRevoked {
                account_id,
                jti,
                expires_at,
            } => json!({
                "account_id": account_id,
                "jti": jti,
                "expires_at": rfc3339(*expires_at),
            }),
            Event::TokensRevoked {
                account_id,
                revoked_before,
            } => json!({
                "account_id": account_id,
                "revoked_before": rfc3339(*revoked_before),
            }),
            Event::Ping => json!({}),
        }
    }

    /// The body every endpoint receives: `{"type", "timestamp", "data"}`.
    pub fn body(&self, at: DateTime<Utc>) -> String {
        json!({
            "type": self.event_type(),
            "timestamp": rfc3339(at),
            "data": self.data(),
        })
        .to_string()
    }
}

/// Store `event` and one delivery per enabled endpoint that subscribes to its type. Call it
/// inside the transaction that makes the change, so the event exists exactly when the change
/// does. It wakes this process's workers, which give the commit a moment before they look;
/// calling `wake()` after the commit as well makes the event leave at once even when the
/// commit is slow (the workers would otherwise find it on their next poll).
pub async fn emit(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    event: &Event,
) -> Result<(), DbErr> {
    crate::services::webhooks::emit(conn, now, event).await?;
    wake();
    Ok(())
}

/// Woken on every `emit` in this process (every instance sharing it looks, which is harmless).
static EMITTED: LazyLock<Notify> = LazyLock::new(Notify::new);

/// Wake this process's delivery workers (after committing an emitted event).
pub fn wake() {
    EMITTED.notify_waiters();
}

/// Per instance: the HTTP client (redirects off, SSRF-filtering resolver, timeouts), the worker's
/// wake-up call, and how many requests are in flight to each endpoint.
pub struct Webhooks {
    pub(crate) client: reqwest::Client,
    notify: Arc<Notify>,
    pub(crate) in_flight: Mutex<HashMap<String, usize>>,
}

impl Webhooks {
    pub fn from_settings(settings: &WebhookSettings) -> Result<Webhooks, ConfigError> {
        let timeout = Duration::from_secs(settings.timeout_seconds);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would connect on our behalf, past the resolver's address checks.
            .no_proxy()
            .dns_resolver(Arc::new(net::FilteringResolver {
                allow_private_networks: settings.allow_private_networks,
            }))
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("Vouch-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::Invalid {
                key: "webhooks",
                message: format!("HTTP client: {e}"),
            })?;
        Ok(Webhooks {
            client,
            notify: Arc::new(Notify::new()),
            in_flight: Mutex::new(HashMap::new()),
        })
    }

    /// Wake this instance's worker: an event was just committed.
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    /// Requests in flight from this instance to one endpoint.
    pub fn in_flight_to(&self, endpoint_id: &str) -> usize {
        self.in_flight
            .lock()
            .map(|m| m.get(endpoint_id).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    pub(crate) fn notifier(&self) -> Arc<Notify> {
        self.notify.clone()
    }

    pub(crate) fn emitted() -> &'static Notify {
        &EMITTED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_follow_the_contract_and_carry_ids_only() {
        let at = DateTime::parse_from_rfc3339("2026-12-02T10:05:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let revoked = Event::EntitlementRevoked {
            account_id: "acc_1".into(),
            external_id: "u-1".into(),
            reason: RevokedReason::Lapsed,
        };
        let body: Value = serde_json::from_str(&revoked.body(at)).unwrap();
        assert_eq!(
            body,
            json!({"type": "entitlement.revoked", "timestamp": "2026-12-02T10:05:00.000Z",
                   "data": {"account_id": "acc_1", "external_id": "u-1",
                            "entitlement": "e2ee", "reason": "lapsed"}})
        );
        let ping: Value = serde_json::from_str(&Event::Ping.body(at)).unwrap();
        assert_eq!(ping["data"], json!({}));
        let token = Event::TokenRevoked {
            account_id: "acc_1".into(),
            jti: "j1".into(),
            expires_at: at,
        };
        assert_eq!(token.data()["expires_at"], "2026-12-02T10:05:00.000Z");
        let all = Event::TokensRevoked {
            account_id: "acc_1".into(),
            revoked_before: at,
        };
        assert_eq!(
            all.data(),
            json!({"account_id": "acc_1", "revoked_before": "2026-12-02T10:05:00.000Z"})
        );
        for e in [
            revoked,
            Event::Ping,
            token,
            all,
            Event::AccountErased {
                account_id: "a".into(),
            },
        ] {
            assert!(EVENT_TYPES.contains(&e.event_type()));
        }
    }
}

//! What every handler shares: settings, the database, the clock, keys, caches and metrics. A
//! locator only: the behaviour lives with what it concerns (`tokens::live` loads account
//! snapshots, `services::keys::reload` the keyring, `auth::Authenticator` API keys).

use std::sync::Arc;

use actix_web::web;
use chrono::{DateTime, Utc};

use crate::{
    clock::Clock,
    config::Settings,
    crypto::MasterKey,
    db::Db,
    delivery::Delivery,
    domain::policy::Policy,
    telemetry::Metrics,
    tokens::{
        dpop::Dpop,
        keyring::Keys,
        live::{AccountCache, RevocationSet},
        verify::VerifiedTokens,
    },
};

pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: Db,
    /// Group commit for the busiest write paths (`db::batch`).
    pub writes: crate::db::batch::Batcher,
    pub clock: Arc<dyn Clock>,
    pub master_key: MasterKey,
    pub policy: Policy,
    pub accounts: AccountCache,
    pub revocations: RevocationSet,
    pub keys: Keys,
    /// The Jitsi Meet key ring (RS256), apart from the token keys.
    pub jitsi: crate::adapters::jitsi::JitsiRing,
    pub verified_tokens: VerifiedTokens,
    /// DPoP proof checks: the nonce key and the proofs this instance has seen.
    pub dpop: Dpop,
    /// The same metrics the telemetry middleware records into (its own app data).
    pub metrics: web::Data<Metrics>,
    /// Email and SMS transports, and the outbox worker's wake-up call.
    pub delivery: Delivery,
    /// The webhook HTTP client and the webhook worker's wake-up call.
    pub webhooks: crate::events::Webhooks,
    /// The LiveKit removal worker's HTTP client.
    pub livekit: crate::adapters::livekit::LiveKit,
    /// Token Status Lists, mirrored from the database and served from memory.
    pub status_lists: crate::status_list::cache::StatusLists,
    /// Up to when the maintenance loop looked for evidence that lapsed by time alone (`None`:
    /// not yet in this process, so its first round looks at all of it).
    pub lapses_checked_until: std::sync::Mutex<Option<DateTime<Utc>>>,
}

impl AppState {
    /// Now, to the microsecond (what both SQLite and PostgreSQL store).
    pub fn now(&self) -> DateTime<Utc> {
        let now = self.clock.now();
        DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
    }

    /// Forget what this instance cached about an account (its status or evidence changed).
    /// Other instances see the change when their cache entry ages out (under 1 s).
    pub fn account_changed(&self, account_id: &str) {
        self.accounts.forget(account_id);
    }
}

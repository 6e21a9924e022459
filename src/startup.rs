//! Building the application: database, migrations, state, and an HTTP server bound to its own
//! listener (port 0 works, for tests).

use std::{net::TcpListener, path::PathBuf, sync::Arc, time::Duration};

use actix_web::{dev::Server, middleware::from_fn, web, App, HttpServer};
use secrecy::ExposeSecret;
use utoipa_actix_web::AppExt;

use crate::{
    auth::Authenticator,
    background,
    clock::{Clock, SystemClock},
    config::{decode_master_key, ConfigError, Settings},
    console,
    crypto::{random_bytes, MasterKey},
    db::Db,
    delivery::{self, Delivery},
    docs, openapi,
    routes::{self, RouteTable},
    services::{accounts, audit, clients, exceptions, jitsi_keys, keys},
    state::AppState,
    telemetry::{self, AccessLog, Metrics},
    tokens::{
        keyring::Keys,
        live::{AccountCache, RevocationSet},
        verify::VerifiedTokens,
    },
};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("master key: {0}")]
    MasterKey(String),
    #[error("signing keys: {0}")]
    Keys(String),
}

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Result<Application, StartupError> {
        settings.validate()?;
        settings
            .status_lists
            .validate()
            .map_err(|message| ConfigError::Invalid {
                key: "status_lists",
                message,
            })?;
        let master_key = resolve_master_key(&settings)?;
        let db = Db::connect(&settings)
            .await?
            .with_audit_key(audit::chain_key(&master_key));
        db.migrate().await?;
        {
            let txn = db.begin_write().await?;
            audit::key_chain(&*txn, clock.now()).await?;
            accounts::seal_plaintext_emails(&*txn, &master_key, clock.now()).await?;
            keys::ensure(&*txn, &master_key, &settings.tokens, clock.now())
                .await
                .map_err(|e| StartupError::Keys(e.detail))?;
            if settings.jitsi.configured().is_some() {
                jitsi_keys::ensure(&*txn, &master_key, clock.now())
                    .await
                    .map_err(|e| StartupError::Keys(e.detail))?;
            }
            txn.commit().await?;
        }
        {
            let txn = db.begin_write().await?;
            let sealed =
                exceptions::seal_plaintext_categories(&*txn, &master_key, clock.now()).await?;
            txn.commit().await?;
            if sealed.requests + sealed.evidence + sealed.audit_entries > 0 {
                db.scrub(&["exception_request", "evidence", "audit_log"])
                    .await?;
            }
        }
        let delivery = Delivery::from_settings(&settings)?;
        let webhooks = crate::events::Webhooks::from_settings(&settings.webhooks)?;
        let state = web::Data::new(AppState {
            delivery,
            webhooks,
            livekit: crate::adapters::livekit::LiveKit::new().map_err(|e| {
                ConfigError::Invalid {
                    key: "livekit",
                    message: e.to_string(),
                }
            })?,
            policy: settings.policy().map_err(|e| ConfigError::Invalid {
                key: "policy",
                message: e.to_string(),
            })?,
            accounts: AccountCache::new(Duration::from_millis(
                settings.tokens.account_cache_millis,
            )),
            revocations: RevocationSet::default(),
            keys: Keys::default(),
            jitsi: Default::default(),
            verified_tokens: VerifiedTokens::new(20_000),
            dpop: crate::tokens::dpop::Dpop::new(&settings.tokens, &master_key),
            master_key,
            metrics: web::Data::new(Metrics::new(settings.verification.sms_hourly_budget)),
            status_lists: crate::status_list::cache::StatusLists::new(&settings.status_lists),
            lapses_checked_until: std::sync::Mutex::new(None),
            settings: Arc::new(settings),
            writes: crate::db::batch::Batcher::start(db.clone()),
            db,
            clock,
        });

        keys::reload(state.db.conn(), &state.keys, &state.master_key)
            .await
            .map_err(|e| StartupError::Keys(e.to_string()))?;
        jitsi_keys::reload(state.db.conn(), &state.jitsi.keys, &state.master_key)
            .await
            .map_err(|e| StartupError::Keys(e.to_string()))?;
        background::poll_revocations(&state)
            .await
            .map_err(|e| StartupError::Keys(e.detail))?;
        // The gauges read true from the first scrape, not only after the first maintenance tick.
        if let Err(e) = background::sample_gauges(&state).await {
            tracing::warn!(error = %e, "sampling the operations gauges failed");
        }
        background::spawn(state.clone());
        crate::status_list::cache::refresh(&state)
            .await
            .map_err(|e| StartupError::Keys(e.detail))?;
        crate::status_list::cache::spawn(state.clone());
        delivery::worker::spawn(state.clone());
        crate::events::worker::spawn(state.clone());
        crate::adapters::livekit::spawn(state.clone());

        if clients::active_admins(state.db.conn()).await? == 0 {
            tracing::warn!(
                "no admin API key exists yet; create the first one with: \
                 vouch clients create --name admin --role admin"
            );
        }

        let listener = TcpListener::bind(&state.settings.listen)?;
        let bound = listener.local_addr()?;
        for warning in crate::config::startup_warnings(&state.settings, bound) {
            tracing::warn!("{warning}");
        }
        let port = bound.port();
        let server = serve(listener, state.clone())?;
        tracing::info!(port, "listening");
        Ok(Application {
            port,
            server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serve until SIGTERM/SIGINT, then finish in-flight requests (graceful shutdown).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

fn serve(listener: TcpListener, state: web::Data<AppState>) -> std::io::Result<Server> {
    let spec = openapi::spec();
    let routes = web::Data::new(RouteTable::from_spec(&spec));
    let settings = state.settings.clone();
    let auth = web::Data::new(Authenticator::new(
        state.db.clone(),
        Duration::from_secs(settings.auth.cache_seconds),
    ));
    let metrics = state.metrics.clone();
    let access_log = web::Data::new(AccessLog(settings.log.access));
    let max_body = settings.http.max_body_bytes;
    let docs_enabled = settings.docs.enabled;
    let mut server = HttpServer::new(move || {
        let (app, _) = App::new()
            .into_utoipa_app()
            .app_data(state.clone())
            .app_data(auth.clone())
            .app_data(metrics.clone())
            .app_data(access_log.clone())
            .app_data(routes.clone())
            .app_data(routes::json_config(max_body))
            .app_data(routes::query_config())
            .app_data(routes::path_config())
            .app_data(web::PayloadConfig::new(max_body))
            .configure(routes::configure)
            .split_for_parts();
        app.configure(|cfg| docs::configure(cfg, spec.clone(), docs_enabled))
            .configure(console::configure)
            .default_service(web::to(routes::fallback))
            .wrap(from_fn(telemetry::observe))
            // Outermost, so the docs' headers are on the problem responses `observe` writes too.
            .wrap(from_fn(docs::harden))
    })
    .listen(listener)?
    .shutdown_timeout(settings.http.shutdown_timeout_seconds);
    if settings.http.workers > 0 {
        server = server.workers(settings.http.workers);
    }
    Ok(server.run())
}

/// The master key from configuration; without one on SQLite, a dev key kept beside the
/// database file (with a loud warning); without one on PostgreSQL, an error.
pub fn resolve_master_key(settings: &Settings) -> Result<MasterKey, StartupError> {
    if let Some(key) = settings
        .master_key
        .as_ref()
        .filter(|k| !k.expose_secret().is_empty())
    {
        let bytes =
            decode_master_key(key.expose_secret()).map_err(|message| ConfigError::Invalid {
                key: "master_key",
                message,
            })?;
        return Ok(MasterKey::new(bytes));
    }
    if sqlite_path(settings.database_url.expose_secret()).is_none() {
        return Err(ConfigError::Invalid {
            key: "master_key",
            message: "must be set (base64 of 32 random bytes) when the database is PostgreSQL"
                .into(),
        }
        .into());
    }
    let Some(key_path) = development_key_path(settings) else {
        tracing::warn!("no master_key set and the database is in memory: using a throwaway key");
        return Ok(MasterKey::new(random_bytes::<32>()));
    };
    if key_path.exists() {
        let text = std::fs::read_to_string(&key_path)?;
        let bytes = decode_master_key(&text)
            .map_err(|m| StartupError::MasterKey(format!("{}: {m}", key_path.display())))?;
        tracing::warn!(path = %key_path.display(), "no master_key configured: using the DEVELOPMENT key beside the database; set VOUCH_MASTER_KEY in production");
        return Ok(MasterKey::new(bytes));
    }
    let bytes = random_bytes::<32>();
    write_private(
        &key_path,
        &base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes),
    )?;
    tracing::warn!(path = %key_path.display(), "no master_key configured: GENERATED A DEVELOPMENT KEY beside the database; anyone with this file can read sealed data; set VOUCH_MASTER_KEY in production");
    Ok(MasterKey::new(bytes))
}

/// Where `resolve_master_key` keeps the development key when no `master_key` is configured:
/// beside the SQLite database file. `None` for PostgreSQL and in-memory databases.
pub fn development_key_path(settings: &Settings) -> Option<PathBuf> {
    let db_path = sqlite_path(settings.database_url.expose_secret())?;
    if db_path.as_os_str().is_empty() || db_path.to_string_lossy().contains(":memory:") {
        return None;
    }
    Some(PathBuf::from(format!("{}.master.key", db_path.display())))
}

fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    Some(PathBuf::from(path))
}

fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents.as_bytes())?;
    f.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths_are_read_from_urls() {
        assert_eq!(
            sqlite_path("sqlite://vouch.db?mode=rwc"),
            Some(PathBuf::from("vouch.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:/tmp/x.db"),
            Some(PathBuf::from("/tmp/x.db"))
        );
        assert_eq!(sqlite_path("postgres://localhost/x"), None);
    }
}

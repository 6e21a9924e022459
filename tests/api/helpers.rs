//! `spawn_app()`: the real service on port 0 with its own database (a fresh SQLite file, or a
//! fresh PostgreSQL database when `VOUCH_TEST_DATABASE_URL` points at a server).
//!
//! Tests talk to the instance over HTTP. Besides HTTP they have its test clock, the database
//! itself (`db()`, a connection of their own, for tests about what is stored) and a few named
//! hooks into the running instance where no request does the job: seeding one client per role,
//! recording evidence of any kind and status (`add_evidence`), running a maintenance round now
//! (`maintain`), sampling the operations gauges now and reading `/metrics` (`sample_gauges`,
//! `metric`), holding the instance's write lock (`hold_write_lock`), reading its pooled
//! connections' session settings (`pooled_setting`) and closing its pool (`lose_database`). The instance's state
//! itself is not exposed.

use std::sync::{Arc, Once};

use actix_web::web;
use reqwest::{Method, Response, StatusCode};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, EntityTrait};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use vouch::{
    clock::{Clock, ManualClock},
    config::{decode_master_key, LogFormat, Settings},
    crypto::MasterKey,
    db::WriteTxn,
    domain::{
        evidence::{EvidenceKind, EvidenceStatus},
        role::Role,
    },
    services::{
        clients,
        evidence::{self, EvidenceChange},
    },
    startup::Application,
    state::AppState,
};

static TRACING: Once = Once::new();

pub struct TestApp {
    pub address: String,
    pub settings: Settings,
    pub client: reqwest::Client,
    /// Only for the hooks named in the module doc.
    state: web::Data<AppState>,
    pub clock: Arc<ManualClock>,
    pub database_url: String,
    pub admin_key: String,
    pub backend_key: String,
    pub reviewer_key: String,
    pub meeting_key: String,
    pub moderator_key: String,
}

/// The text of one `/metrics` scrape.
pub struct Scrape(pub String);

impl Scrape {
    /// A series' value by its full name (`name{labels}` exactly as exposed); panics, showing
    /// the exposition, when the series is missing.
    pub fn value(&self, series: &str) -> f64 {
        self.0
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map(|value| value.trim().parse().expect("a number"))
            .unwrap_or_else(|| panic!("no series {series} in:\n{}", self.0))
    }
}

/// A fresh database URL: SQLite file by default, PostgreSQL when configured.
pub async fn fresh_database_url() -> String {
    match std::env::var("VOUCH_TEST_DATABASE_URL") {
        Ok(server) if !server.is_empty() => {
            let name = format!("vouch_test_{}", uuid::Uuid::new_v4().simple());
            let admin = Database::connect(server.as_str())
                .await
                .expect("connect to VOUCH_TEST_DATABASE_URL");
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create test database");
            admin.close().await.ok();
            let base = server.rsplit_once('/').map(|(b, _)| b).unwrap_or(&server);
            format!("{base}/{name}")
        }
        _ => {
            let dir = std::env::temp_dir().join("vouch-tests");
            std::fs::create_dir_all(&dir).expect("temp dir");
            format!(
                "sqlite://{}/{}.db?mode=rwc",
                dir.display(),
                uuid::Uuid::new_v4().simple()
            )
        }
    }
}

/// Settings for a test instance: port 0, one worker, a random master key.
pub async fn test_settings() -> Settings {
    let mut settings = Settings::defaults();
    settings.listen = "127.0.0.1:0".into();
    settings.database_url = SecretString::from(fresh_database_url().await);
    settings.master_key = Some(SecretString::from(base64_key()));
    settings.http.workers = 1;
    settings.database.max_connections = 5;
    // Writers give up after the lock timeout (5 s by default): on a loaded 2-core machine a
    // burst of concurrent writes in a test can queue that long. Tests of the timeout set it.
    settings.database.lock_timeout_seconds = 30;
    settings.log.access = std::env::var("TEST_LOG").is_ok();
    settings.delivery.poll_interval_millis = 100;
    settings
}

fn base64_key() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(vouch::crypto::random_bytes::<32>())
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = test_settings().await;
    configure(&mut settings);
    spawn_with_settings(settings, true).await
}

/// Start an instance on `settings`; `seed_clients` creates one client per role.
pub async fn spawn_with_settings(settings: Settings, seed_clients: bool) -> TestApp {
    TRACING.call_once(|| {
        if std::env::var("TEST_LOG").is_ok() {
            let mut log = Settings::defaults().log;
            log.format = LogFormat::Pretty;
            log.level = "debug".into();
            // The test process exits without flushing; the writer thread keeps up meanwhile.
            std::mem::forget(vouch::telemetry::init(&log, &Default::default()));
        }
    });
    let database_url = settings.database_url.expose_secret().to_owned();
    let clock = Arc::new(ManualClock::default());
    let app = Application::build_with_clock(settings.clone(), clock.clone())
        .await
        .expect("application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    tokio::spawn(app.run_until_stopped());

    let mut keys = Vec::new();
    if seed_clients {
        for role in [
            Role::Admin,
            Role::Backend,
            Role::Reviewer,
            Role::Meeting,
            Role::Moderator,
        ] {
            let txn = state.db.begin_write().await.unwrap();
            let name = format!("test-{}", role.as_str());
            let (_, key) = clients::create(&*txn, "test", &name, None, role, state.now())
                .await
                .unwrap();
            txn.commit().await.unwrap();
            keys.push(key);
        }
    } else {
        keys = vec![String::new(); 5];
    }
    TestApp {
        address,
        settings,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        state,
        clock,
        database_url,
        admin_key: keys[0].clone(),
        backend_key: keys[1].clone(),
        reviewer_key: keys[2].clone(),
        meeting_key: keys[3].clone(),
        moderator_key: keys[4].clone(),
    }
}

impl TestApp {
    /// A second instance on the same database (and master key), sharing this one's API keys.
    pub async fn spawn_sibling(&self) -> TestApp {
        let mut sibling = spawn_with_settings(self.settings.clone(), false).await;
        sibling.admin_key = self.admin_key.clone();
        sibling.backend_key = self.backend_key.clone();
        sibling.reviewer_key = self.reviewer_key.clone();
        sibling.meeting_key = self.meeting_key.clone();
        sibling.moderator_key = self.moderator_key.clone();
        sibling
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// The instance's time: its test clock, to the microsecond as the instance (and
    /// PostgreSQL) keeps it.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        let now = self.clock.now();
        chrono::DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
    }

    /// A connection of its own to the instance's database, as an operator (or someone who
    /// copied the database) would open one.
    pub async fn db(&self) -> DatabaseConnection {
        Database::connect(self.database_url.as_str())
            .await
            .expect("connect to the test database")
    }

    pub fn is_postgres(&self) -> bool {
        self.database_url.starts_with("postgres")
    }

    /// The master key from the instance's settings, as its operator holds it.
    pub fn master_key(&self) -> MasterKey {
        let text = self
            .settings
            .master_key
            .as_ref()
            .expect("a test master key");
        MasterKey::new(decode_master_key(text.expose_secret()).expect("a valid test key"))
    }

    /// Run the instance's maintenance round now instead of waiting for its timer.
    pub async fn maintain(&self) {
        vouch::background::maintain(&self.state)
            .await
            .expect("maintenance round");
    }

    /// Sample the operations gauges now instead of waiting for the maintenance timer.
    pub async fn sample_gauges(&self) {
        vouch::background::sample_gauges(&self.state)
            .await
            .expect("sampling the gauges");
    }

    /// One scrape of `/metrics`.
    pub async fn scrape(&self) -> Scrape {
        Scrape(
            self.client
                .get(self.url("/metrics"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        )
    }

    /// One series' value from a fresh scrape of `/metrics` (see [`Scrape::value`]).
    pub async fn metric(&self, series: &str) -> f64 {
        self.scrape().await.value(series)
    }

    /// Take the instance's own write lock (its write queue, and on PostgreSQL the audit
    /// chain's lock) as one of its slow writers would; writers queue until it ends.
    pub async fn hold_write_lock(&self) -> WriteTxn {
        self.state.db.begin_write().await.expect("write lock")
    }

    /// Close the instance's connection pool: to the instance, the database has gone away.
    pub async fn lose_database(&self) {
        self.state.db.conn().close_by_ref().await.unwrap();
    }

    /// PostgreSQL: `SHOW name` on one of the instance's pooled connections (the session
    /// settings every connection of its pool carries).
    pub async fn pooled_setting(&self, name: &str) -> String {
        let row = self
            .state
            .db
            .conn()
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                format!("SHOW {name}"),
            ))
            .await
            .unwrap()
            .expect("a row");
        row.try_get_by_index::<String>(0).unwrap()
    }

    /// The stored signing key that signs now (the newest active one).
    pub async fn signing_key(&self) -> entities::signing_key::Model {
        let now = self.now();
        entities::signing_key::Entity::find()
            .all(&self.db().await)
            .await
            .unwrap()
            .into_iter()
            .filter(|k| {
                vouch::tokens::keyring::KeyState::of(k, now)
                    == vouch::tokens::keyring::KeyState::Active
            })
            .max_by_key(|k| k.activates_at)
            .expect("a signing key")
    }

    pub fn key(&self, role: Role) -> &str {
        match role {
            Role::Admin => &self.admin_key,
            Role::Backend => &self.backend_key,
            Role::Reviewer => &self.reviewer_key,
            Role::Meeting => &self.meeting_key,
            Role::Moderator => &self.moderator_key,
        }
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        req.send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str, key: &str) -> Response {
        self.request(Method::GET, path, Some(key), None).await
    }

    pub async fn post(&self, path: &str, key: &str, body: &Value) -> Response {
        self.request(Method::POST, path, Some(key), Some(body))
            .await
    }

    pub async fn patch(&self, path: &str, key: &str, body: &Value) -> Response {
        self.request(Method::PATCH, path, Some(key), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, key: &str) -> Response {
        self.request(Method::DELETE, path, Some(key), None).await
    }

    /// Create an account as the backend and return its id: the one account builder.
    pub async fn account(&self, external_id: &str) -> String {
        self.create_account(external_id).await["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Create an account as the backend and return its JSON.
    pub async fn create_account(&self, external_id: &str) -> Value {
        let res = self
            .post(
                "/v1/accounts",
                &self.backend_key,
                &serde_json::json!({"external_id": external_id, "email": "someone@example.org"}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json().await.unwrap()
    }
}

/// Assert a problem+json response with this status and `code`; returns the body.
pub async fn assert_problem(res: Response, status: u16, code: &str) -> Value {
    let got = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "status (body: {body})");
    assert!(
        ct.starts_with("application/problem+json"),
        "content-type {ct} (body: {body})"
    );
    assert_eq!(body["code"], code, "code (body: {body})");
    assert_eq!(body["status"], status, "status member (body: {body})");
    assert!(
        body["title"].is_string() && body["detail"].is_string() && body["type"].is_string(),
        "{body}"
    );
    body
}

impl TestApp {
    /// Record evidence through the one service function the features use.
    pub async fn add_evidence(
        &self,
        account_id: &str,
        kind: EvidenceKind,
        status: EvidenceStatus,
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
    ) {
        let now = self.state.now();
        let txn = self.state.db.begin_write().await.unwrap();
        let change = EvidenceChange {
            kind,
            source: format!("test:{}", kind.as_str()),
            status,
            verified_at: now,
            expires_at,
        };
        if matches!(kind, EvidenceKind::Nonprofit | EvidenceKind::Dissident) {
            // An exception's category is sealed, as an approval records it.
            let key = vouch::services::exceptions::sealing_key(&self.state.master_key);
            evidence::record_exception(&*txn, &key, "test", account_id, change, now).await
        } else {
            evidence::record(&*txn, "test", account_id, change, now).await
        }
        .unwrap();
        let cause = vouch::services::decisions::Cause::Evidence;
        vouch::services::decisions::reconcile(
            &*txn,
            &self.state.policy,
            &self.state.master_key,
            now,
            account_id,
            cause,
        )
        .await
        .unwrap();
        txn.commit().await.unwrap();
        self.state.account_changed(account_id);
    }

    /// An account with active phone evidence; returns its id.
    pub async fn entitled_account(&self, external_id: &str) -> String {
        let id = self.account(external_id).await;
        self.add_evidence(&id, EvidenceKind::Phone, EvidenceStatus::Active, None)
            .await;
        id
    }

    /// Issue a token as the backend; returns the response JSON (asserts 201).
    pub async fn issue(&self, account_id: &str, body: Value) -> Value {
        let res = self
            .post(
                &format!("/v1/accounts/{account_id}/tokens"),
                &self.backend_key,
                &body,
            )
            .await;
        let status = res.status();
        let json: Value = res.json().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{json}");
        json
    }

    pub async fn issue_token(&self, account_id: &str) -> String {
        self.issue(account_id, serde_json::json!({})).await["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Ask authorize as the meeting server.
    pub async fn authorize(&self, token: &str, device_jkt: Option<&str>) -> Value {
        let mut body = serde_json::json!({"token": token});
        if let Some(jkt) = device_jkt {
            body["device_jkt"] = Value::from(jkt);
        }
        let res = self
            .post("/v1/e2ee/authorize", &self.meeting_key, &body)
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }

    /// Sign any header and claims with the private half of the key that signs now: a token
    /// only we could have made, for testing what verification checks beyond the signature.
    pub async fn forge(&self, header: &Value, claims: &Value) -> String {
        use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine as _};
        let row = self.signing_key().await;
        let pkcs8 = self
            .master_key()
            .open(&row.kid, &row.private_key_sealed)
            .unwrap();
        let alg = row
            .alg
            .parse::<vouch::config::Algorithm>()
            .expect("a known algorithm");
        let (signer, _) = vouch::tokens::keys::parse(alg, &pkcs8).unwrap();
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = signer.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", B64.encode(sig))
    }
}

/// The JSON of a token's header (0) or claims (1).
pub fn token_part(token: &str, index: usize) -> Value {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine as _};
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&B64.decode(part).unwrap()).unwrap()
}

/// How long a child process of a test may run before the test fails naming it.
const CHILD_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// The `vouch` binary as a child process. Run it with [`output`]: an async test must never wait
/// for a child with the blocking `std::process` API, which freezes the runtime the app under
/// test runs on (a transaction it holds open then never ends, and the child waits for its lock).
pub fn vouch_command() -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_vouch"));
    cmd.kill_on_drop(true);
    cmd
}

/// Runs `cmd` to completion without blocking the runtime; a child still running after
/// [`CHILD_LIMIT`] is killed and fails the test with its command line.
pub async fn output(cmd: &mut tokio::process::Command) -> std::process::Output {
    cmd.kill_on_drop(true).stdin(std::process::Stdio::null());
    // Program and arguments only: the environment holds the test's master key.
    let std_cmd = cmd.as_std();
    let described = std::iter::once(std_cmd.get_program())
        .chain(std_cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    match tokio::time::timeout(CHILD_LIMIT, cmd.output()).await {
        Ok(out) => out.unwrap_or_else(|e| panic!("run {described}: {e}")),
        Err(_) => panic!("{described} still running after {CHILD_LIMIT:?}: killed"),
    }
}

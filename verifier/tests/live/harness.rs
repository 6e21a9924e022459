//! A real Vouch in the test process, on its own port and database (a fresh SQLite file, or a
//! fresh PostgreSQL database when `VOUCH_TEST_DATABASE_URL` points at a server), whose
//! `tokens.issuer` is its own address: the verifier fetches the JWKS and the status lists
//! from it as a meeting server would. Like the service's own test harness, it seeds one API
//! key per role and records evidence through the service function the features use.

use std::{net::TcpListener, sync::Arc, time::Duration};

use actix_web::web;
use base64::Engine as _;
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Database};
use secrecy::SecretString;
use serde_json::{json, Value};
use vouch::{
    clock::{Clock, ManualClock},
    config::Settings,
    domain::{
        evidence::{EvidenceKind, EvidenceStatus},
        role::Role,
    },
    services::{
        clients,
        decisions::{self, Cause},
        evidence::{self, EvidenceChange},
    },
    startup::Application,
    state::AppState,
};

pub struct Vouch {
    /// Also its `tokens.issuer`.
    pub address: String,
    pub clock: Arc<ManualClock>,
    state: web::Data<AppState>,
    client: reqwest::Client,
    pub admin_key: String,
    pub backend_key: String,
    pub meeting_key: String,
}

/// Start Vouch with test settings changed by `configure`.
pub async fn start(configure: impl Fn(&mut Settings)) -> Vouch {
    // The issuer names the port, so the port is chosen before the service binds it; another
    // process may take it in between, hence a few tries.
    let mut last_error = String::new();
    for _ in 0..5 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let address = format!("http://127.0.0.1:{port}");
        let mut settings = Settings::defaults();
        settings.listen = format!("127.0.0.1:{port}");
        settings.tokens.issuer = address.clone();
        settings.database_url = SecretString::from(database_url().await);
        let key =
            base64::engine::general_purpose::STANDARD.encode(vouch::crypto::random_bytes::<32>());
        settings.master_key = Some(SecretString::from(key));
        settings.http.workers = 1;
        settings.database.max_connections = 5;
        settings.database.lock_timeout_seconds = 30;
        settings.log.access = false;
        settings.delivery.poll_interval_millis = 100;
        configure(&mut settings);
        let clock = Arc::new(ManualClock::default());
        let app = match Application::build_with_clock(settings, clock.clone()).await {
            Ok(app) => app,
            Err(e) => {
                last_error = format!("{e:?}");
                continue;
            }
        };
        let state = app.state();
        tokio::spawn(app.run_until_stopped());
        let mut keys = Vec::new();
        for role in [Role::Admin, Role::Backend, Role::Meeting] {
            let txn = state.db.begin_write().await.unwrap();
            let name = format!("test-{}", role.as_str());
            let (_, key) = clients::create(&*txn, "test", &name, None, role, state.now())
                .await
                .unwrap();
            txn.commit().await.unwrap();
            keys.push(key);
        }
        return Vouch {
            address,
            clock,
            state,
            client: reqwest::Client::new(),
            admin_key: keys[0].clone(),
            backend_key: keys[1].clone(),
            meeting_key: keys[2].clone(),
        };
    }
    panic!("Vouch did not start: {last_error}");
}

async fn database_url() -> String {
    match std::env::var("VOUCH_TEST_DATABASE_URL") {
        Ok(server) if !server.is_empty() => {
            let name = format!(
                "vouch_verifier_{}",
                hex(&vouch::crypto::random_bytes::<8>())
            );
            let admin = Database::connect(server.as_str()).await.unwrap();
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            admin.close().await.ok();
            let base = server.rsplit_once('/').map(|(b, _)| b).unwrap_or(&server);
            format!("{base}/{name}")
        }
        _ => {
            let dir = std::env::temp_dir().join("vouch-verifier-tests");
            std::fs::create_dir_all(&dir).unwrap();
            let file = hex(&vouch::crypto::random_bytes::<16>());
            format!("sqlite://{}/{file}.db?mode=rwc", dir.display())
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Vouch {
    /// Its options for a verifier: this issuer, audience `meeting`, the meeting key for lists.
    pub fn options(&self) -> vouch_verifier::Options {
        vouch_verifier::Options::new(&self.address, "meeting").status_list_key(&self.meeting_key)
    }

    /// The service's time, which tests move forward.
    pub fn now(&self) -> std::time::SystemTime {
        let now = self.clock.now();
        std::time::UNIX_EPOCH + Duration::from_millis(now.timestamp_millis() as u64)
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let res = self
            .client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// An account with active phone evidence, so entitled to E2EE; returns its id.
    pub async fn entitled_account(&self, external_id: &str) -> String {
        let (status, account) = self
            .send(
                reqwest::Method::POST,
                "/v1/accounts",
                &self.backend_key,
                json!({"external_id": external_id}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{account}");
        let id = account["id"].as_str().unwrap().to_owned();
        let now = self.state.now();
        let txn = self.state.db.begin_write().await.unwrap();
        let change = EvidenceChange {
            kind: EvidenceKind::Phone,
            source: "test:phone".into(),
            status: EvidenceStatus::Active,
            verified_at: now,
            expires_at: None,
        };
        evidence::record(&*txn, "test", &id, change, now)
            .await
            .unwrap();
        decisions::reconcile(
            &*txn,
            &self.state.policy,
            &self.state.master_key,
            now,
            &id,
            Cause::Evidence,
        )
        .await
        .unwrap();
        txn.commit().await.unwrap();
        self.state.account_changed(&id);
        self.until_listed_as_entitled(&id).await;
        id
    }

    /// Served status lists follow a change within a second, not at once: wait until a fresh
    /// verifier (no cached list) sees the account entitled, so tests start from a settled list.
    async fn until_listed_as_entitled(&self, account_id: &str) {
        let probe = self.issue(account_id, json!({})).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let decision = vouch_verifier::Verifier::new(self.options())
                .verify(&probe, None)
                .await
                .unwrap();
            if decision.allow {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the status list never showed {account_id} entitled: {decision:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Issue a token as the backend with this request body.
    pub async fn issue(&self, account_id: &str, body: Value) -> String {
        let path = format!("/v1/accounts/{account_id}/tokens");
        let (status, json) = self
            .send(reqwest::Method::POST, &path, &self.backend_key, body)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        json["token"].as_str().unwrap().to_owned()
    }
}

/// The JSON of a token's header.
pub fn header(token: &str) -> Value {
    let part = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

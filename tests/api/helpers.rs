//! `spawn_app()`: the real service on port 0 with its own database (a fresh SQLite file, or a
//! fresh PostgreSQL database when `VOUCH_TEST_DATABASE_URL` points at a server).

use std::sync::{Arc, Once};

use actix_web::web;
use reqwest::{Method, Response, StatusCode};
use sea_orm::{ConnectionTrait, Database};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use vouch::{
    clock::ManualClock,
    config::{LogFormat, Settings},
    domain::role::Role,
    services::clients,
    startup::Application,
    state::AppState,
};

static TRACING: Once = Once::new();

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub state: web::Data<AppState>,
    #[allow(dead_code)] // used by tests that move time
    pub clock: Arc<ManualClock>,
    pub database_url: String,
    pub admin_key: String,
    pub backend_key: String,
    pub reviewer_key: String,
    pub meeting_key: String,
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
            vouch::telemetry::init(&log);
        }
    });
    let database_url = settings.database_url.expose_secret().to_owned();
    let clock = Arc::new(ManualClock::default());
    let app = Application::build_with_clock(settings, clock.clone())
        .await
        .expect("application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    tokio::spawn(app.run_until_stopped());

    let mut keys = Vec::new();
    if seed_clients {
        for role in [Role::Admin, Role::Backend, Role::Reviewer, Role::Meeting] {
            let txn = state.db.begin_write().await.unwrap();
            let name = format!("test-{}", role.as_str());
            let (_, key) = clients::create(&*txn, "test", &name, role, state.now())
                .await
                .unwrap();
            txn.commit().await.unwrap();
            keys.push(key);
        }
    } else {
        keys = vec![String::new(); 4];
    }
    TestApp {
        address,
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
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn key(&self, role: Role) -> &str {
        match role {
            Role::Admin => &self.admin_key,
            Role::Backend => &self.backend_key,
            Role::Reviewer => &self.reviewer_key,
            Role::Meeting => &self.meeting_key,
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

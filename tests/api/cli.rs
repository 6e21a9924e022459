//! The `vouch` binary: key creation for scripts, configuration errors, the spec.

use std::process::Command;

use secrecy::SecretString;

use crate::helpers::{
    fresh_database_url, output, spawn_with_settings, test_settings, vouch_command,
};

fn vouch(db: &str) -> tokio::process::Command {
    let mut cmd = vouch_command();
    cmd.env("VOUCH_DATABASE_URL", db)
        .env("VOUCH_MASTER_KEY", crate::audit::base64_key())
        .env("VOUCH_LOG__FORMAT", "pretty");
    cmd
}

#[tokio::test]
async fn clients_create_prints_the_key_alone_and_it_works() {
    let db = fresh_database_url().await;
    let out =
        output(vouch(&db).args(["clients", "create", "--name", "ops", "--role", "admin"])).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "stdout must hold only the key: {stdout:?}");
    let key = lines[0];
    assert!(key.starts_with("vk_"));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(key));

    let mut settings = test_settings().await;
    settings.database_url = SecretString::from(db.clone());
    let app = spawn_with_settings(settings, false).await;
    let res = app.get("/v1/admin/clients", key).await;
    assert_eq!(res.status(), 200);

    let out = output(vouch(&db).args(["clients", "list"])).await;
    let listing = String::from_utf8(out.stdout).unwrap();
    assert!(
        listing.contains("ops") && listing.contains("admin") && !listing.contains(key),
        "{listing}"
    );
    let id = listing.split_whitespace().next().unwrap().to_owned();

    let out = output(vouch(&db).args(["clients", "revoke", &id])).await;
    assert!(out.status.success());
    // The cache of this instance may hold the key for `auth.cache_seconds`.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(app.get("/v1/admin/clients", key).await.status(), 401);

    let out = output(vouch(&db).args(["clients", "create", "--name", "x", "--role", "root"])).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown role"));
    let out =
        output(vouch(&db).args(["clients", "create", "--name", "ops", "--role", "admin"])).await;
    assert!(!out.status.success(), "duplicate names are refused");
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_configuration_fails_at_start_naming_the_key() {
    for (var, value, key) in [
        ("VOUCH_LISTEN", "not-an-address", "`listen`"),
        ("VOUCH_TOKENS__ALGORITHM", "HS256", "tokens.algorithm"),
        ("VOUCH_POLICY__PRESET", "everyone", "policy.preset"),
        (
            "VOUCH_TOKENS__DEFAULT_TTL_SECONDS",
            "ten",
            "tokens.default_ttl_seconds",
        ),
        ("VOUCH_MASTER_KEY", "dG9vLXNob3J0", "master_key"),
        ("VOUCH_DATABASE_URL", "mysql://x", "database_url"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_vouch"))
            .arg("migrate")
            .env(var, value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(key), "{var}: {stderr}");
        if var == "VOUCH_MASTER_KEY" {
            assert!(!stderr.contains(value), "secrets are not echoed: {stderr}");
        }
    }

    let dir = std::env::temp_dir().join(format!("vouch-cfg-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(&file, "[tokens]\nmax_ttl_seconds = 7200\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(["--config", file.to_str().unwrap(), "migrate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tokens.max_ttl_seconds"));
}

#[test]
fn openapi_command_prints_the_spec() {
    let out = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .arg("openapi")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        vouch::openapi::spec_json()
    );
}

#[tokio::test]
async fn serve_logs_json_with_request_ids_and_stops_gracefully_on_sigterm() {
    let db = fresh_database_url().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = vouch(&db)
        .arg("serve")
        .env("VOUCH_LISTEN", format!("127.0.0.1:{port}"))
        .env("VOUCH_LOG__FORMAT", "json")
        .env("VOUCH_HTTP__WORKERS", "1")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/healthz");
    let mut up = false;
    for _ in 0..100 {
        if client
            .get(&url)
            .header("x-request-id", "sigterm-test-1")
            .send()
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(up, "vouch serve did not come up");
    let pid = child.id().expect("the server is running").to_string();
    let kill = output(tokio::process::Command::new("kill").args(["-TERM", &pid])).await;
    assert!(kill.status.success());
    // Waiting drains stderr as it goes, so a chatty server cannot fill the pipe and stall.
    let out = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("vouch serve did not stop within 10 s of SIGTERM")
        .unwrap();
    let (status, stderr) = (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(status.success(), "exit: {status:?}\n{stderr}");
    // JSON lines, the access line carrying the caller's request id; the warning about the
    // missing admin key tells how to create one.
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(!lines.is_empty(), "{stderr}");
    assert!(
        lines
            .iter()
            .any(|l| l["span"]["request_id"] == "sigterm-test-1"
                && l["fields"]["route"] == "/healthz"),
        "{stderr}"
    );
    assert!(
        stderr.contains("vouch clients create --name admin --role admin"),
        "{stderr}"
    );
    assert!(
        stderr.contains("graceful") || stderr.contains("SIGTERM"),
        "{stderr}"
    );
}

/// Rows in a table, straight from the database.
async fn count(db: &sea_orm::DatabaseConnection, table: &str) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

#[tokio::test]
async fn keys_list_reads_and_changes_nothing() {
    let settings = test_settings().await;
    let url = secrecy::ExposeSecret::expose_secret(&settings.database_url).to_owned();
    let db = vouch::db::Db::connect(&settings).await.unwrap();
    db.migrate().await.unwrap();
    let list = || async {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_vouch"))
            .args(["keys", "list"])
            .env("VOUCH_DATABASE_URL", &url)
            .env("VOUCH_LOG__FORMAT", "pretty")
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };

    // No key yet: listing says so and creates none (it used to create and audit one).
    assert_eq!(list().await, "");
    assert_eq!(count(db.conn(), "signing_key").await, 0);
    assert_eq!(count(db.conn(), "audit_log").await, 0);

    // The service creates one; listing shows it and still writes nothing.
    let mut serving = settings.clone();
    serving.database_url = SecretString::from(url.clone());
    let app = spawn_with_settings(serving, false).await;
    let entries = count(db.conn(), "audit_log").await;
    let listed = list().await;
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(listed.contains("active"), "{listed}");
    assert_eq!(count(db.conn(), "signing_key").await, 1);
    assert_eq!(count(db.conn(), "audit_log").await, entries);
    drop(app);
}

//! The database goes away and comes back: 503 `database_unavailable` meanwhile, `/readyz`
//! fails, and the service recovers without a restart. Runs against a private PostgreSQL
//! cluster that the test starts and stops (PostgreSQL's server binaries must be installed).

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use secrecy::SecretString;
use serde_json::json;

use crate::helpers::{assert_problem, output, spawn_with_settings, test_settings};

fn pg_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    versions.sort();
    versions
        .into_iter()
        .rev()
        .map(|v| v.join("bin"))
        .find(|b| b.join("pg_ctl").exists())
}

/// A PostgreSQL server tool, run as the `postgres` user when the tests run as root.
fn postgres_tool(bin: &Path, args: &[&str], root: bool) -> Command {
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.args(args);
    cmd
}

/// Runs a PostgreSQL tool without blocking the runtime the instance under test runs on.
async fn as_postgres(bin: &Path, args: &[&str], root: bool) -> std::process::Output {
    output(&mut postgres_tool(bin, args, root).into()).await
}

async fn running_as_root() -> bool {
    output(tokio::process::Command::new("id").arg("-u"))
        .await
        .stdout
        .starts_with(b"0")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn database_outage_gives_503_and_recovers_without_restart() {
    let Some(bin) = pg_bin() else {
        panic!("PostgreSQL server binaries are needed for this test (apt-get install postgresql)");
    };
    let dir = std::env::temp_dir().join(format!("vouch-pg-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = running_as_root().await;
    if root {
        output(
            tokio::process::Command::new("chown")
                .args(["postgres:postgres", dir.to_str().unwrap()]),
        )
        .await;
    }
    let data = dir.join("data");
    let data_s = data.to_str().unwrap().to_owned();
    let out = as_postgres(
        &bin.join("initdb"),
        &["-D", &data_s, "-U", "postgres", "--auth=trust"],
        root,
    )
    .await;
    assert!(
        out.status.success(),
        "initdb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = free_port();
    let opts = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1",
        dir.display()
    );
    let log = format!("{}/log", dir.display());
    let start_args = ["-D", &data_s, "-o", &opts, "-l", &log, "-w", "start"];
    let stop_args = ["-D", &data_s, "-m", "immediate", "-w", "stop"];
    let pg_ctl = bin.join("pg_ctl");
    let start = async || {
        let out = as_postgres(&pg_ctl, &start_args, root).await;
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let stop = async || {
        as_postgres(&pg_ctl, &stop_args, root).await;
    };
    start().await;
    // The cluster goes away even when the test fails; nothing of the instance is needed for
    // that, so a blocking wait in `drop` cannot stall it.
    struct Cleanup(Command);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = self.0.output();
        }
    }
    let _cleanup = Cleanup(postgres_tool(&pg_ctl, &stop_args, root));

    let mut settings = test_settings().await;
    settings.database_url =
        SecretString::from(format!("postgres://postgres@127.0.0.1:{port}/postgres"));
    settings.database.acquire_timeout_seconds = 1;
    settings.auth.cache_seconds = 60;
    let app = spawn_with_settings(settings, true).await;
    app.create_account("before").await;

    stop().await;
    let res = app
        .post(
            "/v1/accounts",
            &app.backend_key,
            &json!({"external_id": "during"}),
        )
        .await;
    assert_problem(res, 503, "database_unavailable").await;
    let res = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_problem(res, 503, "database_unavailable").await;
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    start().await;
    let mut recovered = false;
    for _ in 0..50 {
        if app
            .client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            == 200
        {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(recovered, "readyz never recovered");
    app.create_account("after").await;
    let list: serde_json::Value = app
        .get("/v1/accounts", &app.backend_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        2,
        "nothing lost, nothing half-written"
    );
}

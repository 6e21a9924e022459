//! The `vouch` binary: key creation for scripts, configuration errors, the spec, output into a
//! closed pipe, which commands may create a database or a key, the database each one names.

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
    assert!(output(vouch(&db).arg("migrate")).await.status.success());
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
    // It names its database (this one has no password to redact).
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "database" && l["fields"]["database"] == db),
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

/// Runs `cmd` with stdout a pipe whose reader is already gone (`vouch ... | head` once head has
/// exited): every write to it fails with EPIPE. (`output` would capture stdout instead.)
async fn into_a_closed_pipe(cmd: &mut tokio::process::Command) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let child = cmd
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::from(writer))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("still running after 60 s: killed")
        .unwrap()
}

fn assert_ends_quietly(out: &std::process::Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{what}: {stderr}");
    for noise in ["panicked", "Broken pipe", "failed printing", "backtrace"] {
        assert!(!stderr.contains(noise), "{what}: {stderr}");
    }
}

#[tokio::test]
async fn output_into_a_closed_pipe_ends_quietly_with_status_141() {
    let db = fresh_database_url().await;
    assert!(output(vouch(&db).arg("migrate")).await.status.success());
    let created =
        output(vouch(&db).args(["clients", "create", "--name", "ops", "--role", "admin"])).await;
    assert!(created.status.success());
    assert!(output(vouch(&db).args(["keys", "rotate"]))
        .await
        .status
        .success());

    for args in [
        &["openapi"][..],
        &["clients", "list"],
        &["keys", "list"],
        &["audit", "head"],
        &["audit", "verify"],
    ] {
        let out = into_a_closed_pipe(vouch(&db).args(args)).await;
        assert_ends_quietly(&out, &args.join(" "));
    }

    // `| head -c 1024`: the reader takes the start of the spec, then goes.
    let mut child = vouch_command()
        .arg("openapi")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut start = [0u8; 1024];
    tokio::io::AsyncReadExt::read_exact(&mut stdout, &mut start)
        .await
        .unwrap();
    drop(stdout);
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("vouch openapi still running 60 s after its reader left")
        .unwrap();
    assert!(start.starts_with(b"{"));
    assert_ends_quietly(&out, "openapi | head -c 1024");

    // A key nobody could read is not created: the creation rolls back.
    let out = into_a_closed_pipe(
        vouch(&db).args(["clients", "create", "--name", "lost", "--role", "admin"]),
    )
    .await;
    assert_ends_quietly(&out, "clients create");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no client was created"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = output(vouch(&db).args(["clients", "list"])).await;
    let listing = String::from_utf8(listing.stdout).unwrap();
    assert!(
        listing.contains("ops") && !listing.contains("lost"),
        "{listing}"
    );
}

/// A fresh directory of its own, and the SQLite URL of a database in it.
fn empty_dir() -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir()
        .join("vouch-tests")
        .join(format!("cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/vouch.db?mode=rwc", dir.display());
    (dir, url)
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The CLI on `url` with no master key configured (the development key beside the file).
fn vouch_without_master_key(url: &str) -> tokio::process::Command {
    let mut cmd = vouch_command();
    cmd.env("VOUCH_DATABASE_URL", url)
        .env_remove("VOUCH_MASTER_KEY")
        .env("VOUCH_LOG__FORMAT", "pretty");
    cmd
}

#[tokio::test]
async fn commands_other_than_serve_and_migrate_create_no_database() {
    let (dir, url) = empty_dir();
    let file = dir.join("vouch.db");
    for args in [
        &["clients", "list"][..],
        &["keys", "list"],
        &["audit", "head"],
        &["audit", "verify"],
        &["clients", "create", "--name", "ops", "--role", "admin"],
        &["clients", "revoke", "cli_0"],
        &["keys", "rotate"],
    ] {
        let what = args.join(" ");
        let out = output(vouch_without_master_key(&url).args(args)).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
        assert!(out.stdout.is_empty(), "{what}");
        assert!(
            stderr.contains(&format!("vouch: database {url} ({})", file.display())),
            "{what} names its database: {stderr}"
        );
        assert!(
            stderr.contains(&format!(
                "vouch: no database at {}; run `vouch migrate` first",
                file.display()
            )),
            "{what}: {stderr}"
        );
        assert_eq!(files_in(&dir), Vec::<String>::new(), "{what} created files");
    }

    // `migrate` creates it (and no master key); `serve` would too.
    let out = output(vouch_without_master_key(&url).arg("migrate")).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(file.exists());
    assert!(String::from_utf8_lossy(&out.stderr).contains("vouch: database "));
}

#[tokio::test]
async fn read_only_commands_create_no_key_and_say_what_is_missing() {
    let (dir, url) = empty_dir();
    assert!(output(vouch_without_master_key(&url).arg("migrate"))
        .await
        .status
        .success());
    let before = files_in(&dir);
    assert!(before.contains(&"vouch.db".to_owned()), "{before:?}");
    let run = |args: &'static [&'static str]| {
        let url = url.clone();
        async move {
            let out = output(vouch_without_master_key(&url).args(args)).await;
            (
                out.status.code(),
                String::from_utf8(out.stdout).unwrap(),
                String::from_utf8(out.stderr).unwrap(),
            )
        }
    };

    // No signing key and no master key are created by reading.
    let (code, stdout, stderr) = run(&["keys", "list"]).await;
    assert_eq!((code, stdout.as_str()), (Some(0), ""), "{stderr}");
    assert!(stderr.contains("no signing keys yet"), "{stderr}");
    let (code, stdout, stderr) = run(&["clients", "list"]).await;
    assert_eq!((code, stdout.as_str()), (Some(0), ""), "{stderr}");
    let (code, _, stderr) = run(&["audit", "head"]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("the audit log is empty"), "{stderr}");
    let (code, stdout, stderr) = run(&["audit", "verify"]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stdout.is_empty());
    let key_file = format!("{}.master.key", dir.join("vouch.db").display());
    assert!(
        stderr.contains(&format!(
            "vouch: no master key: set VOUCH_MASTER_KEY (`master_key`) to the service's key; \
             without one, `vouch serve` creates a development key at {key_file}"
        )),
        "{stderr}"
    );
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.starts_with("vouch: no"))
            .count(),
        1,
        "one line says what is missing: {stderr}"
    );
    let after: Vec<String> = files_in(&dir)
        .into_iter()
        .filter(|f| !f.ends_with("-wal") && !f.ends_with("-shm"))
        .collect();
    assert_eq!(after, vec!["vouch.db".to_owned()], "nothing was created");
    let settings = {
        let mut s = test_settings().await;
        s.database_url = SecretString::from(url.clone());
        s
    };
    let db = vouch::db::Db::connect(&settings).await.unwrap();
    assert_eq!(count(db.conn(), "signing_key").await, 0);
    assert_eq!(count(db.conn(), "audit_log").await, 0);

    // A file that is not a Vouch database: readers say so and leave it as it was.
    let other = dir.join("other.db");
    std::fs::write(&other, b"").unwrap();
    let other_url = format!("sqlite://{}", other.display());
    for args in [
        &["keys", "list"][..],
        &["clients", "list"],
        &["audit", "head"],
    ] {
        let out = output(vouch_without_master_key(&other_url).args(args)).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("the database has no Vouch schema; run `vouch migrate` first"),
            "{stderr}"
        );
        assert_eq!(std::fs::metadata(&other).unwrap().len(), 0);
    }
}

#[tokio::test]
async fn commands_name_their_database_but_never_its_password() {
    for url in [
        "postgres://vouch:hunter2-secret@127.0.0.1:1/vouch",
        "postgres://vouch@127.0.0.1:1/vouch?password=hunter2-secret&sslmode=disable",
    ] {
        let out = output(
            vouch_command()
                .args(["clients", "list"])
                .env("VOUCH_DATABASE_URL", url)
                .env("VOUCH_MASTER_KEY", crate::audit::base64_key())
                .env("VOUCH_DATABASE__ACQUIRE_TIMEOUT_SECONDS", "1")
                .env("VOUCH_LOG__FORMAT", "pretty"),
        )
        .await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "vouch: database {}",
                url.replace("hunter2-secret", "***")
            )),
            "{stderr}"
        );
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
}

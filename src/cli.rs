//! The `vouch` command line (part of the binary, not the library): the clap definitions and
//! one handler per subcommand. Each handler opens only what it needs (`database`): the readers
//! (`clients list`, `keys list`, `audit head`, `audit verify`) open an existing database
//! read-only and create nothing; the writers migrate first and audit what they do; only `serve`
//! and `migrate` create a SQLite file. Results go to stdout through `emit`, so a reader that
//! goes away (`vouch openapi | head`) ends the command quietly (see `finish`).

mod database;

use std::{io::Write, path::PathBuf, process::ExitCode};

use database::Access;

use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;
use vouch::{
    config::Settings,
    crypto::MasterKey,
    db::Db,
    domain::role::Role,
    services::{audit, clients, keys},
    startup::{development_key_path, resolve_master_key, Application},
};

type CliResult<T = ExitCode> = Result<T, Box<dyn std::error::Error>>;

/// What a shell reports for a process ended by SIGPIPE (128 + 13).
const BROKEN_PIPE_EXIT: u8 = 141;

/// The exit code of a command's result. A closed stdout ends it as `cat` or `ls` end when
/// their reader has gone: no message, status 141 (what the shell shows for SIGPIPE), so a
/// pipeline under `set -o pipefail` sees the output was cut short. Any other error is one line
/// on stderr and status 1.
pub fn finish(result: CliResult) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) if e.is::<StdoutClosed>() => ExitCode::from(BROKEN_PIPE_EXIT),
        Err(e) => {
            say!("vouch: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Stdout's reader has gone (EPIPE). Only `emit` makes this error, so a broken connection to
/// the database is never mistaken for it.
#[derive(Debug)]
struct StdoutClosed;

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stdout was closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// Write a command's result to stdout, flushed. Rust ignores SIGPIPE, so a closed pipe is an
/// EPIPE error here (where `println!` would panic), passed up as `StdoutClosed` to `finish`.
fn emit(text: &str) -> CliResult<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        other => Ok(other?),
    }
}

#[derive(Parser)]
#[command(
    name = "vouch",
    version,
    about = "Identity verification and E2EE entitlement service"
)]
pub struct Cli {
    /// A TOML configuration file, layered over the defaults (environment variables win).
    #[arg(long, global = true, env = "VOUCH_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the HTTP service (applies migrations first).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage API clients.
    Clients {
        #[command(subcommand)]
        command: ClientsCommand,
    },
    /// Manage token signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Inspect the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Print the OpenAPI spec.
    Openapi,
    /// Exit 0 when the service on `listen` answers `/healthz` (for container health checks).
    Health,
}

#[derive(Subcommand)]
pub enum ClientsCommand {
    /// Create a client and print its key, alone, on stdout.
    Create {
        #[arg(long)]
        name: String,
        /// The person (or system) the key belongs to; four-eyes review counts principals, not
        /// keys. Defaults to the name.
        #[arg(long)]
        principal: Option<String>,
        /// backend, meeting, reviewer, moderator or admin
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
    /// List clients.
    List,
    /// Revoke a client's key.
    Revoke { id: String },
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Publish a new key now; it signs after one JWKS max-age, and the current key retires.
    Rotate,
    /// List keys and their states (reads only; changes nothing).
    List,
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Walk the chain (hashes and MACs, with the master key) and report the first broken link.
    Verify {
        /// A head printed earlier by `vouch audit head`: also fail when entries up to it were
        /// cut or replaced.
        #[arg(long)]
        head: Option<String>,
    },
    /// Print the newest entry as `<seq>:<hash>`; keep it outside the database.
    Head,
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse().map_err(|_| {
        let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        format!("unknown role `{s}` ({})", known.join(", "))
    })
}

impl Command {
    /// Run the command; `Ok` carries the exit code (a failed check is not an error).
    pub async fn run(self, settings: Settings) -> CliResult {
        match self {
            Command::Serve => serve(settings).await,
            Command::Migrate => migrate(&settings).await,
            Command::Clients { command } => command.run(&settings).await,
            Command::Keys {
                command: KeysCommand::List,
            } => keys_list(&settings).await,
            Command::Keys {
                command: KeysCommand::Rotate,
            } => keys_rotate(&settings).await,
            Command::Audit {
                command: AuditCommand::Head,
            } => audit_head(&settings).await,
            Command::Audit {
                command: AuditCommand::Verify { head },
            } => audit_verify(&settings, head.as_deref()).await,
            Command::Health => Ok(health(&settings.listen)),
            Command::Openapi => openapi(),
        }
    }
}

/// Print the OpenAPI spec (needs no configuration).
pub fn openapi() -> CliResult {
    emit(&vouch::openapi::spec_json())?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(settings: Settings) -> CliResult {
    // `Application::build` opens the same URL, creating a missing SQLite file and its schema;
    // this says which database that is, in the service's log format.
    let url = settings.database_url.expose_secret();
    let file = database::sqlite_file(url).map(|f| std::path::absolute(&f).unwrap_or(f));
    tracing::info!(database = %database::redacted(url), file = ?file, "database");
    let app = Application::build(settings).await?;
    app.run_until_stopped().await?;
    Ok(ExitCode::SUCCESS)
}

async fn migrate(settings: &Settings) -> CliResult {
    database::open(settings, Access::Create)
        .await?
        .migrate()
        .await?;
    say!("vouch: migrations applied");
    Ok(ExitCode::SUCCESS)
}

/// The database for a command that writes: one that exists (only `serve` and `migrate` create
/// a SQLite file), migrated, its audit entries chained and MACed with the master key.
async fn open_for_writing(settings: &Settings) -> CliResult<(MasterKey, Db)> {
    let db = database::open(settings, Access::Existing).await?;
    let master = resolve_master_key(settings)?;
    let db = db.with_audit_key(audit::chain_key(&master));
    db.migrate().await?;
    Ok((master, db))
}

/// The master key for a command that only reads: the configured one or the development key
/// `vouch serve` left beside the database, never a new one (a new key verifies nothing).
fn existing_master_key(settings: &Settings) -> CliResult<MasterKey> {
    let configured = settings
        .master_key
        .as_ref()
        .is_some_and(|k| !k.expose_secret().is_empty());
    if !configured {
        if let Some(path) = development_key_path(settings).filter(|p| !p.exists()) {
            return Err(format!(
                "no master key: set VOUCH_MASTER_KEY (`master_key`) to the service's key; \
                 without one, `vouch serve` creates a development key at {}",
                std::path::absolute(&path).unwrap_or(path).display()
            )
            .into());
        }
    }
    Ok(resolve_master_key(settings)?)
}

impl ClientsCommand {
    async fn run(self, settings: &Settings) -> CliResult {
        match self {
            ClientsCommand::Create {
                name,
                principal,
                role,
            } => {
                let (_, db) = open_for_writing(settings).await?;
                clients_create(&db, &name, principal.as_deref(), role).await?
            }
            ClientsCommand::List => {
                let db = database::open(settings, Access::ReadOnly).await?;
                clients_list(&db).await?
            }
            ClientsCommand::Revoke { id } => {
                let (_, db) = open_for_writing(settings).await?;
                clients_revoke(&db, &id).await?
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

async fn clients_create(
    db: &Db,
    name: &str,
    principal: Option<&str>,
    role: Role,
) -> Result<(), Box<dyn std::error::Error>> {
    let txn = db.begin_write().await?;
    let (client, key) = clients::create(&*txn, "cli", name, principal, role, chrono::Utc::now())
        .await
        .map_err(|e| e.detail)?;
    // The key goes out before the commit: when stdout is gone, the transaction rolls back and
    // no client exists whose key nobody saw.
    if let Err(e) = emit(&format!("{key}\n")) {
        drop(txn);
        say!("vouch: the key could not be written to stdout; no client was created");
        return Err(e);
    }
    txn.commit()
        .await
        .map_err(|e| format!("no client was created (the key printed above does not work): {e}"))?;
    say!(
        "vouch: created client {} ({}, principal {}, role {}); its key, on stdout, is shown once",
        client.id,
        client.name,
        client.principal,
        client.role
    );
    Ok(())
}

async fn clients_list(db: &Db) -> Result<(), Box<dyn std::error::Error>> {
    const PAGE: usize = 200;
    let mut after: Option<String> = None;
    say!(
        "{:<36} {:<24} {:<24} {:<9} {:<10} status",
        "id",
        "name",
        "principal",
        "role",
        "key"
    );
    loop {
        let page = clients::list(db.conn(), after.as_deref(), PAGE as u64).await?;
        let mut lines = String::new();
        for c in &page {
            let status = match c.revoked_at {
                Some(at) => format!("revoked {}", at.to_rfc3339()),
                None => "active".to_owned(),
            };
            lines.push_str(&format!(
                "{:<36} {:<24} {:<24} {:<9} {:<10} {status}\n",
                c.id, c.name, c.principal, c.role, c.key_prefix
            ));
        }
        emit(&lines)?;
        match page.last() {
            Some(last) if page.len() == PAGE => after = Some(last.id.clone()),
            _ => return Ok(()),
        }
    }
}

async fn clients_revoke(db: &Db, id: &str) -> Result<(), Box<dyn std::error::Error>> {
    let txn = db.begin_write().await?;
    let client = clients::revoke(&*txn, "cli", id, chrono::Utc::now())
        .await
        .map_err(|e| e.detail)?;
    txn.commit().await?;
    say!("vouch: revoked client {} ({})", client.id, client.name);
    Ok(())
}

/// Read only: no migration, no key creation or rotation, no audit entry.
async fn keys_list(settings: &Settings) -> CliResult {
    let db = database::open(settings, Access::ReadOnly).await?;
    let keys = keys::all(db.conn()).await?;
    if keys.is_empty() {
        say!("vouch: no signing keys yet: `vouch serve` or `vouch keys rotate` creates one");
    }
    print_keys(&keys, chrono::Utc::now())?;
    Ok(ExitCode::SUCCESS)
}

async fn keys_rotate(settings: &Settings) -> CliResult {
    let (master, db) = open_for_writing(settings).await?;
    let now = chrono::Utc::now();
    let txn = db.begin_write().await?;
    keys::ensure(&*txn, &master, &settings.tokens, now)
        .await
        .map_err(|e| e.detail)?;
    let key = keys::rotate(&*txn, &master, "cli", &settings.tokens, now)
        .await
        .map_err(|e| e.detail)?;
    txn.commit().await?;
    say!(
        "vouch: published key {} ({}); it signs from {}",
        key.kid,
        key.alg,
        key.activates_at.to_rfc3339()
    );
    print_keys(&keys::all(db.conn()).await?, now)?;
    Ok(ExitCode::SUCCESS)
}

async fn audit_head(settings: &Settings) -> CliResult {
    let db = database::open(settings, Access::ReadOnly).await?;
    match audit::head(db.conn()).await? {
        Some(head) => {
            emit(&format!("{head}\n"))?;
            Ok(ExitCode::SUCCESS)
        }
        None => {
            say!("vouch: the audit log is empty");
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn audit_verify(settings: &Settings, head: Option<&str>) -> CliResult {
    let head = match head.map(audit::Head::parse) {
        None => None,
        Some(Some(head)) => Some(head),
        Some(None) => {
            say!("vouch: --head must be `<seq>:<hash>` as printed by `vouch audit head`");
            return Ok(ExitCode::from(2));
        }
    };
    let db = database::open(settings, Access::ReadOnly).await?;
    let master = existing_master_key(settings)?;
    let report = audit::verify(db.conn(), &audit::chain_key(&master), head.as_ref()).await?;
    if report.intact {
        emit(&format!("audit chain intact: {} entries\n", report.entries))?;
        Ok(ExitCode::SUCCESS)
    } else {
        emit(&format!(
            "audit chain BROKEN at entry {}: {} ({} entries verified before it)\n",
            report.first_broken_seq.unwrap_or_default(),
            report.problem.unwrap_or_default(),
            report.entries
        ))?;
        Ok(ExitCode::FAILURE)
    }
}

fn print_keys(
    keys: &[entities::signing_key::Model],
    now: chrono::DateTime<chrono::Utc>,
) -> CliResult<()> {
    let mut lines = String::new();
    for k in keys {
        let state = vouch::tokens::keyring::KeyState::of(k, now).as_str();
        lines.push_str(&format!(
            "{} {:<6} {:<8} signs from {}\n",
            k.kid,
            k.alg,
            state,
            k.activates_at.to_rfc3339()
        ));
    }
    emit(&lines)
}

/// A bare HTTP/1.1 GET of `/healthz`: no client library, no shell, no curl in the image.
fn health(listen: &str) -> ExitCode {
    use std::{
        io::{Read, Write},
        net::TcpStream,
        time::Duration,
    };
    let addr = listen
        .replace("0.0.0.0", "127.0.0.1")
        .replace("[::]", "[::1]");
    let check = || -> std::io::Result<bool> {
        let addr = addr
            .parse()
            .map_err(|_| std::io::Error::other("listen is not an address"))?;
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head)?;
        Ok(head.starts_with(b"HTTP/1.1 200"))
    };
    match check() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            say!("vouch: /healthz did not answer 200");
            ExitCode::FAILURE
        }
        Err(e) => {
            say!("vouch: {addr}: {e}");
            ExitCode::FAILURE
        }
    }
}

//! The `vouch` command line (part of the binary, not the library): the clap definitions and
//! one handler per subcommand. Each handler opens only what it needs: `keys list`, `audit head`
//! and `audit verify` read without migrating; the writers migrate first and audit what they do.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use vouch::{
    config::Settings,
    crypto::MasterKey,
    db::Db,
    domain::role::Role,
    services::{audit, clients, keys},
    startup::{resolve_master_key, Application},
};

type CliResult = Result<ExitCode, Box<dyn std::error::Error>>;

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
            Command::Openapi => Ok(openapi()),
        }
    }
}

/// Print the OpenAPI spec (needs no configuration).
pub fn openapi() -> ExitCode {
    print!("{}", vouch::openapi::spec_json());
    ExitCode::SUCCESS
}

async fn serve(settings: Settings) -> CliResult {
    let app = Application::build(settings).await?;
    app.run_until_stopped().await?;
    Ok(ExitCode::SUCCESS)
}

async fn migrate(settings: &Settings) -> CliResult {
    Db::connect(settings).await?.migrate().await?;
    eprintln!("migrations applied");
    Ok(ExitCode::SUCCESS)
}

/// The database for a command that writes: migrated, its audit entries chained and MACed with
/// the master key.
async fn open_for_writing(
    settings: &Settings,
) -> Result<(MasterKey, Db), Box<dyn std::error::Error>> {
    let master = resolve_master_key(settings)?;
    let db = Db::connect(settings)
        .await?
        .with_audit_key(audit::chain_key(&master));
    db.migrate().await?;
    Ok((master, db))
}

impl ClientsCommand {
    async fn run(self, settings: &Settings) -> CliResult {
        let (_, db) = open_for_writing(settings).await?;
        match self {
            ClientsCommand::Create {
                name,
                principal,
                role,
            } => clients_create(&db, &name, principal.as_deref(), role).await?,
            ClientsCommand::List => clients_list(&db).await?,
            ClientsCommand::Revoke { id } => clients_revoke(&db, &id).await?,
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
    txn.commit().await?;
    eprintln!(
        "created client {} ({}, principal {}, role {}); the key below is shown once:",
        client.id, client.name, client.principal, client.role
    );
    println!("{key}");
    Ok(())
}

async fn clients_list(db: &Db) -> Result<(), Box<dyn std::error::Error>> {
    const PAGE: usize = 200;
    let mut after: Option<String> = None;
    eprintln!(
        "{:<36} {:<24} {:<24} {:<9} {:<10} status",
        "id", "name", "principal", "role", "key"
    );
    loop {
        let page = clients::list(db.conn(), after.as_deref(), PAGE as u64).await?;
        for c in &page {
            let status = match c.revoked_at {
                Some(at) => format!("revoked {}", at.to_rfc3339()),
                None => "active".to_owned(),
            };
            println!(
                "{:<36} {:<24} {:<24} {:<9} {:<10} {status}",
                c.id, c.name, c.principal, c.role, c.key_prefix
            );
        }
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
    eprintln!("revoked client {} ({})", client.id, client.name);
    Ok(())
}

/// Read only: no migration, no key creation or rotation, no audit entry.
async fn keys_list(settings: &Settings) -> CliResult {
    let db = Db::connect(settings).await?;
    let keys = keys::all(db.conn()).await?;
    if keys.is_empty() {
        eprintln!("no signing keys yet: `vouch serve` or `vouch keys rotate` creates one");
    }
    print_keys(&keys, chrono::Utc::now());
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
    eprintln!(
        "published key {} ({}); it signs from {}",
        key.kid,
        key.alg,
        key.activates_at.to_rfc3339()
    );
    print_keys(&keys::all(db.conn()).await?, now);
    Ok(ExitCode::SUCCESS)
}

async fn audit_head(settings: &Settings) -> CliResult {
    let db = Db::connect(settings).await?;
    match audit::head(db.conn()).await? {
        Some(head) => {
            println!("{head}");
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("the audit log is empty");
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn audit_verify(settings: &Settings, head: Option<&str>) -> CliResult {
    let head = match head.map(audit::Head::parse) {
        None => None,
        Some(Some(head)) => Some(head),
        Some(None) => {
            eprintln!("vouch: --head must be `<seq>:<hash>` as printed by `vouch audit head`");
            return Ok(ExitCode::from(2));
        }
    };
    let master = resolve_master_key(settings)?;
    let db = Db::connect(settings).await?;
    let report = audit::verify(db.conn(), &audit::chain_key(&master), head.as_ref()).await?;
    if report.intact {
        println!("audit chain intact: {} entries", report.entries);
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "audit chain BROKEN at entry {}: {} ({} entries verified before it)",
            report.first_broken_seq.unwrap_or_default(),
            report.problem.unwrap_or_default(),
            report.entries
        );
        Ok(ExitCode::FAILURE)
    }
}

fn print_keys(keys: &[entities::signing_key::Model], now: chrono::DateTime<chrono::Utc>) {
    for k in keys {
        let state = vouch::tokens::keyring::KeyState::of(k, now).as_str();
        println!(
            "{} {:<6} {:<8} signs from {}",
            k.kid,
            k.alg,
            state,
            k.activates_at.to_rfc3339()
        );
    }
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
            eprintln!("vouch: /healthz did not answer 200");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("vouch: {addr}: {e}");
            ExitCode::FAILURE
        }
    }
}

//! The `vouch` command line: serve, migrate, manage API clients, keys and the audit log.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use vouch::{
    config::Settings,
    db::Db,
    domain::role::Role,
    services::{audit, clients, keys},
    startup::Application,
    telemetry,
};

#[derive(Parser)]
#[command(
    name = "vouch",
    version,
    about = "Identity verification and E2EE entitlement service"
)]
struct Cli {
    /// A TOML configuration file, layered over the defaults (environment variables win).
    #[arg(long, global = true, env = "VOUCH_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
enum ClientsCommand {
    /// Create a client and print its key, alone, on stdout.
    Create {
        #[arg(long)]
        name: String,
        /// The person (or system) the key belongs to; four-eyes review counts principals, not
        /// keys. Defaults to the name.
        #[arg(long)]
        principal: Option<String>,
        /// backend, meeting, reviewer or admin
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
    /// List clients.
    List,
    /// Revoke a client's key.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Publish a new key now; it signs after one JWKS max-age, and the current key retires.
    Rotate,
    /// List keys and their states (reads only; changes nothing).
    List,
}

#[derive(Subcommand)]
enum AuditCommand {
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
    Role::parse(s).ok_or_else(|| format!("unknown role `{s}` (backend, meeting, reviewer, admin)"))
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Openapi = cli.command {
        print!("{}", vouch::openapi::spec_json());
        return ExitCode::SUCCESS;
    }
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vouch: {e}");
            return ExitCode::from(2);
        }
    };
    let _log_guard = telemetry::init(&settings.log);
    match run(cli.command, settings).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vouch: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> Result<ExitCode, Box<dyn std::error::Error>> {
    match command {
        Command::Serve => {
            let app = Application::build(settings).await?;
            app.run_until_stopped().await?;
        }
        Command::Migrate => {
            Db::connect(&settings).await?.migrate().await?;
            eprintln!("migrations applied");
        }
        Command::Clients { command } => {
            let master = vouch::startup::resolve_master_key(&settings)?;
            let db = Db::connect(&settings)
                .await?
                .with_audit_key(audit::chain_key(&master));
            db.migrate().await?;
            let now = chrono::Utc::now();
            match command {
                ClientsCommand::Create {
                    name,
                    principal,
                    role,
                } => {
                    let txn = db.begin_write().await?;
                    let (client, key) =
                        clients::create(&*txn, "cli", &name, principal.as_deref(), role, now)
                            .await
                            .map_err(|e| e.detail)?;
                    txn.commit().await?;
                    eprintln!(
                        "created client {} ({}, principal {}, role {}); the key below is shown once:",
                        client.id, client.name, client.principal, client.role
                    );
                    println!("{key}");
                }
                ClientsCommand::List => {
                    let mut after: Option<String> = None;
                    eprintln!(
                        "{:<36} {:<24} {:<24} {:<9} {:<10} status",
                        "id", "name", "principal", "role", "key"
                    );
                    loop {
                        let page = clients::list(db.conn(), after.as_deref(), 200).await?;
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
                            Some(last) if page.len() == 200 => after = Some(last.id.clone()),
                            _ => break,
                        }
                    }
                }
                ClientsCommand::Revoke { id } => {
                    let txn = db.begin_write().await?;
                    let client = clients::revoke(&*txn, "cli", &id, now)
                        .await
                        .map_err(|e| e.detail)?;
                    txn.commit().await?;
                    eprintln!("revoked client {} ({})", client.id, client.name);
                }
            }
        }
        Command::Keys {
            command: KeysCommand::List,
        } => {
            // Read only: no migration, no key creation or rotation, no audit entry.
            let db = Db::connect(&settings).await?;
            let now = chrono::Utc::now();
            let keys = keys::all(db.conn()).await?;
            if keys.is_empty() {
                eprintln!("no signing keys yet: `vouch serve` or `vouch keys rotate` creates one");
            }
            print_keys(&keys, now);
        }
        Command::Keys {
            command: KeysCommand::Rotate,
        } => {
            let master = vouch::startup::resolve_master_key(&settings)?;
            let db = Db::connect(&settings)
                .await?
                .with_audit_key(audit::chain_key(&master));
            db.migrate().await?;
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
        }
        Command::Audit {
            command: AuditCommand::Head,
        } => {
            let db = Db::connect(&settings).await?;
            match audit::head(db.conn()).await? {
                Some(head) => println!("{head}"),
                None => {
                    eprintln!("the audit log is empty");
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        Command::Audit {
            command: AuditCommand::Verify { head },
        } => {
            let head = match head.as_deref().map(audit::Head::parse) {
                None => None,
                Some(Some(head)) => Some(head),
                Some(None) => {
                    eprintln!(
                        "vouch: --head must be `<seq>:<hash>` as printed by `vouch audit head`"
                    );
                    return Ok(ExitCode::from(2));
                }
            };
            let master = vouch::startup::resolve_master_key(&settings)?;
            let db = Db::connect(&settings).await?;
            let report =
                audit::verify(db.conn(), &audit::chain_key(&master), head.as_ref()).await?;
            if report.intact {
                println!("audit chain intact: {} entries", report.entries);
            } else {
                println!(
                    "audit chain BROKEN at entry {}: {} ({} entries verified before it)",
                    report.first_broken_seq.unwrap_or_default(),
                    report.problem.unwrap_or_default(),
                    report.entries
                );
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Health => return Ok(health(&settings.listen)),
        Command::Openapi => unreachable!("handled before configuration is loaded"),
    }
    Ok(ExitCode::SUCCESS)
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

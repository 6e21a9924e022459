//! The `vouch` command line: serve, migrate, manage API clients, keys and the audit log.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use vouch::{
    config::Settings,
    db::Db,
    domain::role::Role,
    services::{audit, clients},
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
    /// Inspect the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Print the OpenAPI spec.
    Openapi,
}

#[derive(Subcommand)]
enum ClientsCommand {
    /// Create a client and print its key, alone, on stdout.
    Create {
        #[arg(long)]
        name: String,
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
enum AuditCommand {
    /// Walk the hash chain and report the first broken link.
    Verify,
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
    telemetry::init(&settings.log);
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
            let db = Db::connect(&settings).await?;
            db.migrate().await?;
            let now = chrono::Utc::now();
            match command {
                ClientsCommand::Create { name, role } => {
                    let txn = db.begin_write().await?;
                    let (client, key) = clients::create(&*txn, "cli", &name, role, now)
                        .await
                        .map_err(|e| e.detail)?;
                    txn.commit().await?;
                    eprintln!(
                        "created client {} ({}, role {}); the key below is shown once:",
                        client.id, client.name, client.role
                    );
                    println!("{key}");
                }
                ClientsCommand::List => {
                    let mut after: Option<String> = None;
                    eprintln!(
                        "{:<36} {:<24} {:<9} {:<10} status",
                        "id", "name", "role", "key"
                    );
                    loop {
                        let page = clients::list(db.conn(), after.as_deref(), 200).await?;
                        for c in &page {
                            let status = match c.revoked_at {
                                Some(at) => format!("revoked {}", at.to_rfc3339()),
                                None => "active".to_owned(),
                            };
                            println!(
                                "{:<36} {:<24} {:<9} {:<10} {status}",
                                c.id, c.name, c.role, c.key_prefix
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
        Command::Audit {
            command: AuditCommand::Verify,
        } => {
            let db = Db::connect(&settings).await?;
            let report = audit::verify(db.conn()).await?;
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
        Command::Openapi => unreachable!("handled before configuration is loaded"),
    }
    Ok(ExitCode::SUCCESS)
}

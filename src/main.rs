//! The `vouch` binary: read the command line, load the settings, start logging, run the
//! command (the commands themselves are in `cli.rs`).

use std::process::ExitCode;

use clap::Parser;
use vouch::{config::Settings, telemetry};

mod cli;

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // The spec needs no configuration: it prints even where the settings would not load.
    if let cli::Command::Openapi = cli.command {
        return cli::openapi();
    }
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vouch: {e}");
            return ExitCode::from(2);
        }
    };
    let _log_guard = telemetry::init(&settings.log);
    match cli.command.run(settings).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vouch: {e}");
            ExitCode::FAILURE
        }
    }
}

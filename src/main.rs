//! The `vouch` binary: read the command line, load the settings, start logging, run the
//! command (the commands themselves are in `cli.rs`).

use std::process::ExitCode;

use clap::Parser;
use vouch::{config::Settings, telemetry};

/// A line on stderr that cannot panic (`eprintln!` does when stderr is closed).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod cli;

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // The spec needs no configuration: it prints even where the settings would not load.
    if let cli::Command::Openapi = cli.command {
        return cli::finish(cli::openapi());
    }
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            say!("vouch: {e}");
            return ExitCode::from(2);
        }
    };
    let _telemetry = telemetry::init(&settings.log, &settings.telemetry);
    cli::finish(cli.command.run(settings).await)
}

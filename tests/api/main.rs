//! Black-box tests over HTTP. Each test spawns its own instance with its own database.

mod accounts;
mod audit;
mod authorize;
mod billing;
mod cli;
mod clients;
mod console;
mod contention;
mod decisions;
mod errors;
mod exceptions;
mod fakes;
mod helpers;
mod instances;
mod keys;
mod livekit;
mod locks;
mod operations;
mod outage;
mod personal_data;
mod principals;
mod roles;
mod status_lists;
mod tokens;
mod verifications;
mod webhooks;

//! Black-box tests over HTTP. Each test spawns its own instance with its own database.

mod accounts;
mod audit;
mod billing;
mod cli;
mod clients;
mod errors;
mod helpers;
mod operations;
mod outage;
mod roles;

//! Black-box tests over HTTP. Each test spawns its own instance with its own database.

mod accounts;
mod audit;
mod cli;
mod clients;
mod errors;
mod fakes;
mod helpers;
mod operations;
mod outage;
mod roles;
mod verifications;

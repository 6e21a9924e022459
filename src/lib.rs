//! Vouch: identity verification evidence, an explainable entitlement policy, and signed
//! tokens that meeting servers check before they allow end-to-end encryption.

/// Meeting-server adapters (`mod.rs` arrives with the LiveKit adapter; until then, declared here).
pub mod adapters {
    pub mod jitsi;
}
pub mod auth;
pub mod background;
pub mod clock;
pub mod config;
pub mod console;
pub mod crypto;
pub mod db;
pub mod delivery;
pub mod docs;
pub mod domain;
pub mod error;
pub mod events;
pub mod openapi;
pub mod routes;
pub mod services;
pub mod startup;
pub mod state;
pub mod status_list;
pub mod telemetry;
pub mod tokens;

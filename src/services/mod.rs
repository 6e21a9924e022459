//! The only code that talks to the database. Functions take `&impl ConnectionTrait` so they
//! compose inside one transaction with their audit entry.

pub mod accounts;
pub mod audit;
pub mod billing;
pub mod clients;
pub mod decisions;
pub mod erasure;
pub mod evidence;
pub mod exceptions;
pub mod jitsi_keys;
pub mod keys;
pub mod outbox;
pub mod page;
pub mod revocations;
pub mod status_lists;
pub mod verifications;
pub mod webhooks;

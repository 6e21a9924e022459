//! sea-orm entities for Vouch: one module per table, singular names.

pub mod account;
pub mod account_revocation;
pub mod api_client;
pub mod audit_log;
pub mod billing_customer;
pub mod evidence;
pub mod exception_approval;
pub mod exception_request;
pub mod instance_state;
pub mod jitsi_key;
pub mod livekit_admission;
pub mod livekit_removal;
pub mod outbox_message;
pub mod revoked_token;
pub mod signing_key;
pub mod status_list;
pub mod status_list_entry;
pub mod stripe_event;
pub mod verification;
pub mod verification_send;
pub mod verified_phone;
pub mod webhook_delivery;
pub mod webhook_endpoint;
pub mod webhook_event;

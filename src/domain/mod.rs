//! Pure logic and newtypes: parsing of user input, roles, the policy. No I/O here.

pub mod account;
pub mod billing;
pub mod evidence;
pub mod exception;
pub mod ids;
pub mod phone;
pub mod policy;
pub mod role;
pub mod stripe;
pub mod verification;

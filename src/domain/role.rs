//! API client roles and what each may do.

use serde::{Deserialize, Serialize};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Role {
    /// Meeting backends: accounts, verifications, exception submission, token issuance.
    Backend,
    /// Meeting servers: `/v1/e2ee/authorize` only.
    Meeting,
    /// People reviewing evidence and exceptions.
    Reviewer,
    /// Everything, including clients, keys and audit.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

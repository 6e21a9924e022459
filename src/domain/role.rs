//! API client roles and what each may do.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
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
        match self {
            Role::Backend => "backend",
            Role::Meeting => "meeting",
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "backend" => Some(Role::Backend),
            "meeting" => Some(Role::Meeting),
            "reviewer" => Some(Role::Reviewer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

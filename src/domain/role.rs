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
    /// Trust and safety: read accounts, suspend and reactivate them, revoke tokens.
    Moderator,
    /// Everything, including clients, keys and audit.
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Backend,
        Role::Meeting,
        Role::Reviewer,
        Role::Moderator,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Who may call each operation. A handler names one of these sets once for both uses:
/// `caller.require(roles::X)` enforces it, and its `#[utoipa::path]` publishes the same const
/// as the operation's `x-vouch-roles` (`extensions(("x-vouch-roles" = json!(roles::X)))`).
/// tests/api/roles.rs takes its expectations from the spec and proves them against every role.
/// Every non-empty set lists `admin`, which may do everything (`Caller::require` lets it in
/// whatever the set says, so the spec would otherwise understate it); `PUBLIC` is for
/// operations without an API key.
pub mod roles {
    use super::Role::{self, *};

    pub const PUBLIC: &[Role] = &[];
    pub const ADMIN: &[Role] = &[Admin];
    pub const BACKEND: &[Role] = &[Backend, Admin];
    pub const MEETING: &[Role] = &[Meeting, Admin];
    pub const REVIEWER: &[Role] = &[Reviewer, Admin];
    /// An account's evidence, entitlements, billing link and verifications.
    pub const BACKEND_REVIEWER: &[Role] = &[Backend, Reviewer, Admin];
    /// Accounts themselves: moderators look up whom to suspend.
    pub const ACCOUNT_READERS: &[Role] = &[Backend, Reviewer, Moderator, Admin];
    /// `PATCH /v1/accounts/{id}`: backends change the display name, moderators the status,
    /// admins both.
    pub const ACCOUNT_EDITORS: &[Role] = &[Backend, Moderator, Admin];
    /// `POST /v1/tokens/revoke`.
    pub const TOKEN_REVOKERS: &[Role] = &[Backend, Moderator, Admin];
    /// `GET /v1/me`.
    pub const ANY: &[Role] = &Role::ALL;
}

#[cfg(test)]
mod tests {
    use super::Role;

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
            assert_eq!(serde_json::to_value(role).unwrap(), role.as_str());
        }
        assert_eq!("moderator".parse::<Role>().unwrap(), Role::Moderator);
    }
}

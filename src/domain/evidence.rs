//! Evidence kinds and statuses.

use serde::{Deserialize, Serialize};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
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
pub enum EvidenceKind {
    Email,
    Phone,
    Payment,
    Nonprofit,
    Dissident,
}

impl EvidenceKind {
    pub const ALL: [EvidenceKind; 5] = [
        EvidenceKind::Email,
        EvidenceKind::Phone,
        EvidenceKind::Payment,
        EvidenceKind::Nonprofit,
        EvidenceKind::Dissident,
    ];

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum EvidenceStatus {
    Active,
    Lapsed,
    Revoked,
}

impl EvidenceStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

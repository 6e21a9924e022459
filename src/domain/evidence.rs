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
)]
#[serde(rename_all = "lowercase")]
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
        match self {
            EvidenceKind::Email => "email",
            EvidenceKind::Phone => "phone",
            EvidenceKind::Payment => "payment",
            EvidenceKind::Nonprofit => "nonprofit",
            EvidenceKind::Dissident => "dissident",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EvidenceStatus {
    Active,
    Lapsed,
    Revoked,
}

impl EvidenceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceStatus::Active => "active",
            EvidenceStatus::Lapsed => "lapsed",
            EvidenceStatus::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(EvidenceStatus::Active),
            "lapsed" => Some(EvidenceStatus::Lapsed),
            "revoked" => Some(EvidenceStatus::Revoked),
            _ => None,
        }
    }
}

//! Append-only, hash-chained audit trail: each row carries the SHA-256 of the previous one, and
//! an HMAC of its own hash under a key derived from the master key.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    /// Position in the chain, starting at 1, without gaps.
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    pub at: DateTimeUtc,
    /// The API client's name, or `cli` / `system`.
    pub actor: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    /// JSON object with non-personal details.
    #[sea_orm(column_type = "Text")]
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
    /// Hex HMAC-SHA256 of `hash` under the audit key; `None` only on entries written before the
    /// chain was keyed (covered by the keyed `audit.chain_keyed` entry after them).
    pub mac: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

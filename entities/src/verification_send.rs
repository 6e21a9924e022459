//! The send log that verification rate limits count: one row per code sent, kept for the
//! longest limit window. No personal data: the destination and the number's prefix are keyed
//! hashes.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "verification_send")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub seq: i64,
    pub account_id: String,
    /// `email` or `sms`.
    pub channel: String,
    pub destination_hash: String,
    pub sent_at: DateTimeUtc,
    /// SMS only: the number's ISO region (`001` for non-geographic numbers).
    pub region: Option<String>,
    /// SMS only: a keyed hash of the number's first digits (velocity per prefix).
    pub prefix_hash: Option<String>,
    /// An SMS sent for an account younger than `verification.young_account_seconds`.
    pub young_account: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

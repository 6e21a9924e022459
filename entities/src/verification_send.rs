//! The send log that verification rate limits count: one row per code sent, kept for the
//! longest limit window. No personal data: the destination is a keyed hash.

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
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

//! Account-wide revocations: every token of the account issued before `revoked_before` is
//! revoked. Remembered until the last such token would have expired anyway.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "account_revocation")]
pub struct Model {
    /// Monotonic row number: instances poll for rows above the last one they saw.
    #[sea_orm(primary_key)]
    pub seq: i64,
    pub account_id: String,
    /// Tokens whose `iat` is before this (a whole second) are revoked.
    pub revoked_before: DateTimeUtc,
    pub revoked_at: DateTimeUtc,
    /// When every token it revokes has expired: the row may be forgotten then.
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

//! An account's place in a status list and its current value (0 entitled, 1 not entitled,
//! 2 suspended). Kept after the account is erased, so the index is never handed out again
//! while a token that names it may still be checked.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "status_list_entry")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub account_id: String,
    pub list_id: i64,
    pub idx: i64,
    pub value: i16,
    /// Bumped to one more than the table's highest on every change (and on allocation), so
    /// instances mirror changes by polling for rows above the last `seq` they saw.
    #[sea_orm(unique)]
    pub seq: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

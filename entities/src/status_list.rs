//! A Token Status List: a fixed number of indices, handed out to accounts in random order.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "status_list")]
pub struct Model {
    /// The `<id>` of `/v1/status-lists/<id>`: 1, 2, ... in order of creation.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i64,
    /// Indices in the list, fixed when it is created.
    pub size: i64,
    /// Indices handed out; the list is full when this reaches `size`.
    pub allocated: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

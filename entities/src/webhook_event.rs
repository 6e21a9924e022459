//! An event to deliver to webhook endpoints, written in the transaction of the change that
//! caused it. `body` is the exact JSON that is signed and sent; it carries ids only.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_event")]
pub struct Model {
    /// `msg_...`: the `webhook-id` header, the same on every retry and every endpoint.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// e.g. `entitlement.revoked`.
    #[sea_orm(column_name = "type")]
    pub event_type: String,
    #[sea_orm(column_type = "Text")]
    pub body: String,
    pub created_at: DateTimeUtc,
    /// The W3C `traceparent` of the request that caused it (ids only); NULL with traces off.
    pub traceparent: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

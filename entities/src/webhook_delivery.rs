//! One event on its way to one endpoint: claimed by a worker of any instance (`sending` with a
//! lease), retried on the Standard Webhooks schedule, and pruned some days after it settles.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_delivery")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    /// `pending`, `sending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i32,
    /// `pending`: when to try next; `sending`: when the claim lapses if its worker died.
    pub next_attempt_at: DateTimeUtc,
    pub last_status_code: Option<i32>,
    /// A short reason for the last failure (never the receiver's response body).
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub delivered_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

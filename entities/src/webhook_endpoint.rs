//! A receiver of signed entitlement events (Standard Webhooks), managed by admins. Its signing
//! secret is sealed under a key derived from the master key; during a rotation the previous
//! secret is kept (sealed) until `previous_secret_expires_at`, and both sign every delivery.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoint")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    /// JSON array of the event types delivered here; `None` means every type.
    pub events: Option<String>,
    /// `enabled` or `disabled` (the receiver answered 410 Gone).
    pub status: String,
    /// `whsec_...`, AES-256-GCM sealed and bound to the id.
    pub secret_sealed: String,
    pub previous_secret_sealed: Option<String>,
    pub previous_secret_expires_at: Option<DateTimeUtc>,
    pub created_by: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub disabled_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

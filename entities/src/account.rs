//! A user of the meeting platform, known to us by the platform's own `external_id`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "account")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    #[sea_orm(unique)]
    pub external_id: String,
    /// Plaintext, from versions before emails were sealed; the service seals and clears it at
    /// start-up, and never writes it.
    pub email: Option<String>,
    /// The email, sealed (AES-256-GCM under a key derived from the master key, bound to the
    /// account id). Never returned by the API.
    #[sea_orm(column_type = "Text", nullable)]
    pub email_sealed: Option<String>,
    pub display_name: Option<String>,
    /// `active` or `suspended`.
    pub status: String,
    pub email_verified: bool,
    pub phone_verified: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// SMS codes ever sent for this account (the lifetime cap; not reset when the send log is
    /// pruned).
    pub sms_sent_total: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

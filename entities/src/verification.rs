//! One attempt to prove control of an email address or phone number with a one-time code.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "verification")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: String,
    /// `email` or `sms`.
    pub channel: String,
    /// Keyed hash (HMAC) of the normalised destination: rate limits and reuse, never reversible.
    pub destination_hash: String,
    /// `a***@example.org` or `+1******4567`.
    pub to_masked: String,
    /// HMAC of the code, bound to this verification's id.
    pub code_hash: String,
    /// `pending`, `approved`, `expired`, `max_attempts_reached` or `canceled`.
    pub status: String,
    /// Checks counted so far (each is counted before its comparison).
    pub attempts: i32,
    pub max_attempts: i32,
    pub expires_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub approved_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

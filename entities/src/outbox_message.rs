//! A message waiting to be delivered (or delivered) by the outbox worker. The recipient and the
//! code travel sealed in `payload_sealed`, which is erased once the message is delivered or
//! given up.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox_message")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub verification_id: String,
    /// `email` or `sms`.
    pub channel: String,
    pub recipient_masked: String,
    /// AES-256-GCM under the master key (bound to `id`): `{"to": ..., "code": ...}`.
    pub payload_sealed: Option<String>,
    /// `pending`, `sending`, `delivered`, `failed`, `canceled` or `expired`.
    pub status: String,
    pub attempts: i32,
    /// `pending`: when to try next; `sending`: when the claim lapses if its worker died.
    pub next_attempt_at: DateTimeUtc,
    /// The code is useless after this; the message is dropped instead of sent late.
    pub expires_at: DateTimeUtc,
    /// A short reason for the last failure, never provider text (it may echo the recipient).
    pub last_error: Option<String>,
    /// The provider's id for the message (e.g. the Twilio message SID).
    pub provider_ref: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub delivered_at: Option<DateTimeUtc>,
    /// The W3C `traceparent` of the request that queued it (ids only); NULL with traces off.
    pub traceparent: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

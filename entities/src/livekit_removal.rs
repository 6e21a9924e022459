//! A `RemoveParticipant` call on its way to LiveKit: claimed by a worker of any instance
//! (`sending` with a lease), retried with backoff, pruned a while after it settles.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "livekit_removal")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub room: String,
    pub identity: String,
    /// Set while the removal waits; unique, so one removal per room and identity waits at a time.
    pub pending_key: Option<String>,
    /// `pending`, `sending`, `done` or `failed`.
    pub status: String,
    pub attempts: i32,
    /// `pending`: when to try next; `sending`: when the claim lapses if its worker died.
    pub next_attempt_at: DateTimeUtc,
    pub last_status_code: Option<i32>,
    /// A short reason for the last failure (never LiveKit's response body).
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

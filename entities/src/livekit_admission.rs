//! One LiveKit access token Vouch issued: which account it let into which room under which
//! identity, on the strength of which Vouch token, until when. Kept until it expires, so a lapse
//! or a revocation can remove the participant.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "livekit_admission")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: String,
    pub room: String,
    pub identity: String,
    /// The `jti` of the Vouch token that was exchanged.
    pub jti: String,
    /// The LiveKit token's `exp`.
    pub expires_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

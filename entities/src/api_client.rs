//! A machine or human caller holding an API key; only the key's SHA-256 is stored.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_client")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    #[sea_orm(unique)]
    pub name: String,
    /// `backend`, `meeting`, `reviewer`, `moderator` or `admin`.
    pub role: String,
    /// The person (or system) this key belongs to. Four-eyes review counts principals, not
    /// keys: two keys of one principal are one reviewer.
    pub principal: String,
    /// Hex SHA-256 of the full key.
    #[sea_orm(unique)]
    pub key_hash: String,
    /// The first characters of the key, to recognise it in listings.
    pub key_prefix: String,
    pub created_at: DateTimeUtc,
    pub created_by: String,
    pub revoked_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

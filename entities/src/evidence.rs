//! One piece of verification evidence for an account (email, phone, payment, exception).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "evidence")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: String,
    /// `email`, `phone`, `payment` or `exception` (whose category is in `kind_sealed`; older
    /// versions wrote `nonprofit` or `dissident`, sealed by the service at start-up).
    pub kind: String,
    /// An exception's category, sealed (AES-256-GCM, bound to the evidence id).
    #[sea_orm(column_type = "Text", nullable)]
    pub kind_sealed: Option<String>,
    /// `active`, `lapsed` or `revoked`.
    pub status: String,
    /// Where it came from (`sms`, `stripe:sub_123`, `exception:<id>`), never personal data.
    pub source: String,
    pub verified_at: DateTimeUtc,
    pub expires_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

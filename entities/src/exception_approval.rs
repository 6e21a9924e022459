//! One reviewer's approval of an exception request; distinct reviewers are counted.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "exception_approval")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub exception_id: String,
    /// The reviewing client's name (the audit actor) and id (unique per request).
    pub reviewer: String,
    pub reviewer_client: String,
    /// The person behind the reviewing client: distinct principals are counted, and one
    /// principal approves a request once whatever keys it holds (unique per request).
    pub reviewer_principal: String,
    /// The reviewer's reason, sealed like the statement.
    #[sea_orm(column_type = "Text", nullable)]
    pub reason_sealed: Option<String>,
    /// The validity end this reviewer asked for, if any (the earliest asked for wins).
    pub expires_at: Option<DateTimeUtc>,
    pub approved_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

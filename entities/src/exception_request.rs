//! A nonprofit or dissident exception request. Free text (statement, organization, reference,
//! reviewers' reasons) is stored only sealed (AES-256-GCM, bound to the request's id).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "exception_request")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: String,
    /// `sealed`: the category is in `category_sealed`. (`nonprofit` or `dissident` only in rows
    /// older versions wrote, until the service seals them at start-up.)
    pub category: String,
    /// The category, sealed (AES-256-GCM, bound to the request's id).
    #[sea_orm(column_type = "Text", nullable)]
    pub category_sealed: Option<String>,
    /// `pending`, `approved`, `denied`, `revoked` or `expired` (recorded once observed; an
    /// `approved` request past `expires_at` is expired already).
    pub status: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub statement_sealed: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub organization_sealed: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub reference_sealed: Option<String>,
    /// The submitting client's name (the audit actor) and id (for the four-eyes rule).
    pub submitted_by: String,
    pub submitted_by_client: String,
    /// The principal (person) behind the submitting client: it may not decide the request.
    pub submitted_by_principal: String,
    pub submitted_at: DateTimeUtc,
    /// Who made the final decision (the approval that completed it, or the denial).
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub decision_reason_sealed: Option<String>,
    pub expires_at: Option<DateTimeUtc>,
    /// The evidence an approval created.
    pub evidence_id: Option<String>,
    pub revoked_by: Option<String>,
    pub revoked_at: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub revoke_reason_sealed: Option<String>,
    /// When the sealed fields were purged (`exceptions.purge_statements_after_days`).
    pub purged_at: Option<DateTimeUtc>,
    /// A reviewer's hold on the sealed text: retention does not purge it while set.
    pub retention_hold_by: Option<String>,
    pub retention_hold_at: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub retention_hold_reason_sealed: Option<String>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

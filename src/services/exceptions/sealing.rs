//! Sealing of exception text and categories: the derived key, the binding of sealed text to
//! its record and field, and the audited opening of a request's sealed text for a reviewer.

use crate::services::audit::{AuditAction, AuditTarget};
use chrono::{DateTime, Utc};
use entities::{exception_approval as approval, exception_request as request};
use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::{
    crypto::MasterKey,
    domain::exception::Category,
    error::ApiError,
    services::audit::{self, Entry},
};

const SEALING_PURPOSE: &str = "vouch exceptions v1";

/// The key exception text is sealed under: derived from the master key, never the key itself.
pub fn sealing_key(master: &MasterKey) -> MasterKey {
    master.derive(SEALING_PURPOSE)
}

/// Sealed text is bound to its record and field.
fn aad(record_id: &str, field: &str) -> String {
    format!("{record_id}/{field}")
}

/// Seal `text` as field `field` of record `record_id`.
pub(super) fn seal(key: &MasterKey, record_id: &str, field: &str, text: &str) -> String {
    key.seal(&aad(record_id, field), text.as_bytes())
}

/// What a request's `category` column holds: the category itself is in `category_sealed`.
pub const SEALED_CATEGORY: &str = "sealed";

/// Seal a request's category (bound to the request, so it cannot be moved to another row).
pub(super) fn seal_category(key: &MasterKey, record_id: &str, category: Category) -> String {
    seal(key, record_id, "category", category.as_str())
}

/// A request's category: opened from `category_sealed`, or read from `category` in a row an
/// older version wrote that start-up has not sealed yet.
pub fn open_category(key: &MasterKey, row: &request::Model) -> Result<Category, ApiError> {
    let Some(sealed) = row.category_sealed.as_deref() else {
        return Ok(crate::services::stored(
            "exception category",
            &row.category,
        )?);
    };
    let opened = open_field(key, &row.id, "category", Some(sealed))?.unwrap_or_default();
    opened.parse::<Category>().map_err(|_| {
        ApiError::internal(format!(
            "the sealed category of {} is not a category",
            row.id
        ))
    })
}

/// Sealed text, opened.
#[derive(Debug, Default)]
pub struct Opened {
    pub statement: Option<String>,
    pub organization: Option<String>,
    pub reference: Option<String>,
    pub decision_reason: Option<String>,
    pub revoke_reason: Option<String>,
    /// Why a reviewer holds the request past its retention.
    pub retention_reason: Option<String>,
    /// By approval id.
    pub approval_reasons: Vec<(String, Option<String>)>,
}

impl Opened {
    /// The names of the fields that held text (what the audit entry lists).
    pub fn fields(&self) -> Vec<&'static str> {
        let mut fields: Vec<&'static str> = [
            ("statement", self.statement.is_some()),
            ("organization", self.organization.is_some()),
            ("reference", self.reference.is_some()),
            ("decision_reason", self.decision_reason.is_some()),
            ("revoke_reason", self.revoke_reason.is_some()),
            ("retention_reason", self.retention_reason.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
        .collect();
        if self.approval_reasons.iter().any(|(_, r)| r.is_some()) {
            fields.push("approval_reasons");
        }
        fields
    }
}

fn open_field(
    key: &MasterKey,
    record_id: &str,
    field: &str,
    sealed: Option<&str>,
) -> Result<Option<String>, ApiError> {
    sealed
        .map(|sealed| {
            key.open(&aad(record_id, field), sealed)
                .ok()
                .and_then(|plain| String::from_utf8(plain).ok())
                .ok_or_else(|| {
                    ApiError::internal(format!(
                        "sealed {field} of {record_id} could not be opened (wrong master key?)"
                    ))
                })
        })
        .transpose()
}

fn open_all(
    key: &MasterKey,
    row: &request::Model,
    approvals: &[approval::Model],
) -> Result<Opened, ApiError> {
    let field =
        |name: &str, sealed: &Option<String>| open_field(key, &row.id, name, sealed.as_deref());
    Ok(Opened {
        statement: field("statement", &row.statement_sealed)?,
        organization: field("organization", &row.organization_sealed)?,
        reference: field("reference", &row.reference_sealed)?,
        decision_reason: field("decision_reason", &row.decision_reason_sealed)?,
        revoke_reason: field("revoke_reason", &row.revoke_reason_sealed)?,
        retention_reason: field("retention_reason", &row.retention_hold_reason_sealed)?,
        approval_reasons: approvals
            .iter()
            .map(|a| {
                Ok((
                    a.id.clone(),
                    open_field(key, &a.id, "reason", a.reason_sealed.as_deref())?,
                ))
            })
            .collect::<Result<_, ApiError>>()?,
    })
}

/// Open a request's sealed text for a reviewer; the read itself is audited (which fields, not
/// what they say). Nothing is audited when nothing sealed remains (purged).
pub async fn read_sealed(
    conn: &impl ConnectionTrait,
    key: &MasterKey,
    actor: super::Actor<'_>,
    row: &request::Model,
    approvals: &[approval::Model],
    now: DateTime<Utc>,
) -> Result<Opened, ApiError> {
    let opened = open_all(key, row, approvals)?;
    let fields = opened.fields();
    if !fields.is_empty() {
        audit::append(
            conn,
            now,
            Entry {
                actor: actor.name,
                action: AuditAction::ExceptionStatementRead,
                target_type: AuditTarget::Exception,
                target_id: &row.id,
                details: json!({
                    "account_id": row.account_id,
                    "fields": fields,
                    "principal": actor.principal,
                }),
            },
        )
        .await?;
    }
    Ok(opened)
}

//! Categories older versions stored in plaintext, sealed at start-up (the migration that added
//! the sealed columns has no master key): requests, their evidence, and the audit details that
//! named them. Idempotent and cheap when there is nothing left: each part looks for plaintext
//! first.

use chrono::{DateTime, Utc};
use entities::{audit_log, evidence, exception_request as request};
use sea_orm::{
    sea_query::Expr, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde_json::Value;

use super::{
    sealing::{seal_category, SEALED_CATEGORY},
    sealing_key,
};
use crate::{
    crypto::MasterKey,
    domain::{evidence::EvidenceKind, exception::Category},
    services::{
        audit::{self, AuditAction, Rechained},
        evidence::EXCEPTION_KIND,
    },
};

const BATCH: u64 = 500;

/// What `seal_plaintext_categories` sealed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub requests: u64,
    pub evidence: u64,
    /// Audit entries whose details named a category.
    pub audit_entries: u64,
    /// The audit chain did not verify, so its details were left as they were (logged).
    pub audit_refused: bool,
}

/// Seal every plaintext category: requests, evidence, then the audit details (re-chained; see
/// `audit::rechain`). Call in a write transaction made with the audit key.
pub async fn seal_plaintext_categories(
    conn: &impl ConnectionTrait,
    master: &MasterKey,
    now: DateTime<Utc>,
) -> Result<Sealed, DbErr> {
    let key = sealing_key(master);
    let mut sealed = Sealed {
        requests: seal_requests(conn, &key).await?,
        evidence: seal_evidence(conn, &key).await?,
        ..Sealed::default()
    };
    if let Some(from) = first_naming_entry(conn).await? {
        let chain_key = audit::chain_key(master);
        let why = "exception categories sealed";
        match audit::rechain(conn, &chain_key, from, unnamed_details, why, now).await? {
            Rechained::Done { rewritten, .. } => sealed.audit_entries = rewritten,
            Rechained::Nothing => {}
            Rechained::Refused(report) => {
                tracing::error!(
                    first_broken_seq = report.first_broken_seq,
                    problem = report.problem.as_deref().unwrap_or(""),
                    "the audit chain does not verify, so the exception categories in its older \
                     entries were left in place: run `vouch audit verify` and look into it"
                );
                sealed.audit_refused = true;
            }
        }
    }
    if sealed != Sealed::default() {
        tracing::warn!(
            requests = sealed.requests,
            evidence = sealed.evidence,
            audit_entries = sealed.audit_entries,
            "sealed exception categories left in plaintext by an older version"
        );
    }
    Ok(sealed)
}

async fn seal_requests(conn: &impl ConnectionTrait, key: &MasterKey) -> Result<u64, DbErr> {
    let mut sealed = 0;
    loop {
        let rows = request::Entity::find()
            .filter(request::Column::CategorySealed.is_null())
            .order_by_asc(request::Column::Id)
            .limit(BATCH)
            .all(conn)
            .await?;
        if rows.is_empty() {
            return Ok(sealed);
        }
        for row in rows {
            let category: Category = crate::services::stored("exception category", &row.category)?;
            request::Entity::update_many()
                .col_expr(
                    request::Column::CategorySealed,
                    Expr::value(seal_category(key, &row.id, category)),
                )
                .col_expr(request::Column::Category, Expr::value(SEALED_CATEGORY))
                .filter(request::Column::Id.eq(row.id.as_str()))
                .exec(conn)
                .await?;
            sealed += 1;
        }
    }
}

async fn seal_evidence(conn: &impl ConnectionTrait, key: &MasterKey) -> Result<u64, DbErr> {
    let plaintext = [EvidenceKind::Nonprofit, EvidenceKind::Dissident].map(EvidenceKind::as_str);
    let mut sealed = 0;
    loop {
        let rows = evidence::Entity::find()
            .filter(evidence::Column::Kind.is_in(plaintext))
            .order_by_asc(evidence::Column::Id)
            .limit(BATCH)
            .all(conn)
            .await?;
        if rows.is_empty() {
            return Ok(sealed);
        }
        for row in rows {
            // The same binding `services::evidence` opens (`<id>/kind`).
            let kind_sealed = key.seal(&format!("{}/kind", row.id), row.kind.as_bytes());
            evidence::Entity::update_many()
                .col_expr(evidence::Column::KindSealed, Expr::value(kind_sealed))
                .col_expr(evidence::Column::Kind, Expr::value(EXCEPTION_KIND))
                .filter(evidence::Column::Id.eq(row.id.as_str()))
                .exec(conn)
                .await?;
            sealed += 1;
        }
    }
}

/// The audit actions whose details older versions wrote a category into: `category` in the
/// exception's own entries, `kind` in its evidence's.
fn names_category(action: &str) -> bool {
    action.starts_with("exception.")
        || action == AuditAction::EvidenceAdded.as_str()
        || action == AuditAction::EvidenceUpdated.as_str()
}

/// The first audit entry whose details name a category, found by text (the details are
/// compact JSON), so start-up reads nothing when none is left.
async fn first_naming_entry(conn: &impl ConnectionTrait) -> Result<Option<i64>, DbErr> {
    let mut naming = Condition::any();
    for category in ["nonprofit", "dissident"] {
        naming = naming
            .add(audit_log::Column::Details.like(format!("%\"category\":\"{category}\"%")))
            .add(audit_log::Column::Details.like(format!("%\"kind\":\"{category}\"%")));
    }
    let rows = audit_log::Entity::find()
        .filter(naming)
        .order_by_asc(audit_log::Column::Seq)
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .find(|row| unnamed_details(row).is_some())
        .map(|row| row.seq))
}

/// The entry's details without the category, if they named one: an exception's entries drop
/// `category` (the request holds it, sealed), its evidence's say `kind: exception`.
fn unnamed_details(row: &audit_log::Model) -> Option<String> {
    if !names_category(&row.action) {
        return None;
    }
    let mut details: Value = serde_json::from_str(&row.details).ok()?;
    let object = details.as_object_mut()?;
    let is_category = |v: &Value| {
        v.as_str()
            .is_some_and(|s| s.parse::<Category>().is_ok_and(|c| c.as_str() == s))
    };
    let changed = if row.action.starts_with("exception.") {
        // `required` (approvals needed) differs by category by default: it named it too.
        let required = row.action == AuditAction::ExceptionApprovalRecorded.as_str()
            && object.remove("required").is_some();
        object.remove("category").is_some() || required
    } else if object.get("kind").is_some_and(is_category) {
        object.insert("kind".into(), Value::from(EXCEPTION_KIND));
        true
    } else {
        false
    };
    changed.then(|| details.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(action: &str, details: &str) -> audit_log::Model {
        audit_log::Model {
            seq: 1,
            at: Utc::now(),
            actor: "test".into(),
            action: action.into(),
            target_type: "exception".into(),
            target_id: "exc_1".into(),
            details: details.into(),
            prev_hash: audit::GENESIS.into(),
            hash: String::new(),
            mac: None,
        }
    }

    #[test]
    fn only_details_that_name_a_category_are_rewritten() {
        let recorded = entry(
            "exception.approval_recorded",
            r#"{"approvals":1,"category":"dissident","required":2}"#,
        );
        assert_eq!(unnamed_details(&recorded).unwrap(), r#"{"approvals":1}"#);
        let approved = entry(
            "exception.approved",
            r#"{"account_id":"acc_1","category":"dissident","approvals":2}"#,
        );
        assert_eq!(
            unnamed_details(&approved).unwrap(),
            r#"{"account_id":"acc_1","approvals":2}"#
        );
        let evidence = entry(
            "evidence.added",
            r#"{"kind":"nonprofit","source":"exception:exc_1"}"#,
        );
        assert_eq!(
            unnamed_details(&evidence).unwrap(),
            r#"{"kind":"exception","source":"exception:exc_1"}"#
        );
        for untouched in [
            entry("evidence.added", r#"{"kind":"phone","source":"sms"}"#),
            entry("exception.statement_read", r#"{"fields":["statement"]}"#),
            entry("account.updated", r#"{"category":"dissident"}"#),
            entry("exception.approved", "not json"),
        ] {
            assert_eq!(unnamed_details(&untouched), None, "{}", untouched.details);
        }
    }
}

//! The life of a request under review: submission, four-eyes decisions (take the pending
//! request, then deny it or record an approval, then complete it once enough people approved),
//! and revocation.

use crate::error::ErrorCode;
use crate::services::audit::{AuditAction, AuditTarget};
use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use entities::{exception_approval as approval, exception_request as request};
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait,
    IntoActiveModel, QueryFilter,
};
use serde_json::json;

use super::{
    approvals_of, category, require, required_approvals,
    sealing::{seal, seal_category, SEALED_CATEGORY},
    source, status, Actor, Outcome, ID_PREFIX,
};
use crate::{
    config::ExceptionSettings,
    crypto::MasterKey,
    domain::{
        account::AccountId,
        evidence::EvidenceStatus,
        exception::{
            check_requested_end, validity_end, Category, ExceptionStatus, Reason, Statement,
        },
        ids::new_id,
    },
    error::{is_unique_violation, ApiError},
    services::{
        accounts,
        audit::{self, Entry},
        evidence::{self, EvidenceChange},
    },
};

const APPROVAL_PREFIX: &str = "exa";

pub struct Submission {
    pub category: Category,
    pub statement: Statement,
    pub organization: Option<String>,
    pub reference: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Deny,
}

pub struct Decision {
    pub verdict: Verdict,
    pub reason: Reason,
    /// The validity end this reviewer asks for (approvals only).
    pub expires_at: Option<DateTime<Utc>>,
}

fn pending_exists() -> ApiError {
    ApiError::conflict(
        ErrorCode::ExceptionPending,
        "the account already has an open request in this category",
    )
}

fn four_eyes() -> ApiError {
    ApiError::forbidden(
        ErrorCode::FourEyes,
        "the principal that submitted a request may not decide it (with any of its keys); another person must",
    )
}

fn already_approved() -> ApiError {
    ApiError::conflict(
        ErrorCode::AlreadyApproved,
        "this principal already approved this request (with this or another of its keys); the next approval must come from another person",
    )
}

/// Submit a request for an account. Its free text and its category are sealed before they are
/// stored.
pub async fn submit(
    conn: &impl ConnectionTrait,
    key: &MasterKey,
    actor: Actor<'_>,
    account_id: &AccountId,
    submission: Submission,
    now: DateTime<Utc>,
) -> Result<request::Model, ApiError> {
    let account = accounts::require(conn, account_id.as_str()).await?;
    // One open request per account and category. The category is sealed, so no index can hold
    // this; writers run one at a time (`db`'s lock policy), so nothing is inserted between this
    // check and the insert below.
    let open = request::Entity::find()
        .filter(request::Column::AccountId.eq(account.id.as_str()))
        .filter(request::Column::Status.eq(ExceptionStatus::Pending.as_str()))
        .all(conn)
        .await?;
    for open in open {
        if category(key, &open)? == submission.category {
            return Err(pending_exists().with("exception_id", open.id));
        }
    }
    let row = new_request(key, actor, account.id, submission, now);
    request::Entity::insert(row.clone().into_active_model().reset_all())
        .exec_without_returning(conn)
        .await?;
    audit::append(
        conn,
        now,
        Entry {
            actor: actor.name,
            action: AuditAction::ExceptionSubmitted,
            target_type: AuditTarget::Exception,
            target_id: &row.id,
            details: json!({
                "account_id": row.account_id,
                "organization_given": row.organization_sealed.is_some(),
                "reference_given": row.reference_sealed.is_some(),
            }),
        },
    )
    .await?;
    Ok(row)
}

/// A pending request with its text sealed.
fn new_request(
    key: &MasterKey,
    actor: Actor<'_>,
    account_id: String,
    submission: Submission,
    now: DateTime<Utc>,
) -> request::Model {
    let id = new_id(ID_PREFIX);
    let seal = |field: &str, text: &str| seal(key, &id, field, text);
    request::Model {
        statement_sealed: Some(seal("statement", submission.statement.as_str())),
        organization_sealed: submission
            .organization
            .as_deref()
            .map(|t| seal("organization", t)),
        reference_sealed: submission
            .reference
            .as_deref()
            .map(|t| seal("reference", t)),
        id: id.clone(),
        account_id,
        category: SEALED_CATEGORY.to_owned(),
        category_sealed: Some(seal_category(key, &id, submission.category)),
        status: ExceptionStatus::Pending.as_str().to_owned(),
        submitted_by: actor.name.to_owned(),
        submitted_by_client: actor.client_id.to_owned(),
        submitted_by_principal: actor.principal.to_owned(),
        submitted_at: now,
        decided_by: None,
        decided_at: None,
        decision_reason_sealed: None,
        expires_at: None,
        evidence_id: None,
        revoked_by: None,
        revoked_at: None,
        revoke_reason_sealed: None,
        purged_at: None,
        retention_hold_by: None,
        retention_hold_at: None,
        retention_hold_reason_sealed: None,
        updated_at: now,
    }
}

/// Approve or deny a pending request. An approval is recorded; once the category's number of
/// distinct reviewers approved, the request is approved and its evidence created. A denial is
/// final. The submitting client never decides (`four_eyes`), and a reviewer approves once.
pub async fn decide(
    conn: &impl ConnectionTrait,
    key: &MasterKey,
    settings: &ExceptionSettings,
    actor: Actor<'_>,
    id: &str,
    decision: Decision,
    now: DateTime<Utc>,
) -> Result<Outcome, ApiError> {
    let row = take_pending(conn, settings, actor, id, &decision, now).await?;
    let category = category(key, &row)?;
    let approvals = approvals_of(conn, &row.id).await?;
    if decision.verdict == Verdict::Deny {
        return deny(conn, key, actor, row, approvals, &decision.reason, now).await;
    }
    let approvals = record_approval(conn, key, actor, &row, approvals, &decision, now).await?;
    let required = required_approvals(settings, category);
    let count = reviewers(&approvals);
    audit_approval(conn, actor, &row, count, decision.expires_at, now).await?;
    if (count as u64) < u64::from(required) {
        return Ok(Outcome {
            exception: row,
            approvals,
            changed_account: None,
        });
    }
    complete(conn, key, settings, actor, row, category, approvals, now).await
}

/// Distinct people among the approvals: one principal's approvals count once however many
/// keys it holds (the unique index on request and principal already keeps it to one row).
fn reviewers(approvals: &[approval::Model]) -> usize {
    approvals
        .iter()
        .map(|a| a.reviewer_principal.as_str())
        .collect::<HashSet<_>>()
        .len()
}

/// Check that this reviewer may decide, then take the row: a decision in flight elsewhere
/// finishes first, and this one sees its result (`exception_decided` if it is no longer
/// pending).
async fn take_pending(
    conn: &impl ConnectionTrait,
    settings: &ExceptionSettings,
    actor: Actor<'_>,
    id: &str,
    decision: &Decision,
    now: DateTime<Utc>,
) -> Result<request::Model, ApiError> {
    let row = require(conn, id).await?;
    if row.submitted_by_client == actor.client_id
        || row.submitted_by == actor.name
        || row.submitted_by_principal == actor.principal
    {
        return Err(four_eyes());
    }
    if let Some(end) = decision.expires_at {
        check_requested_end(end, now, Duration::days(settings.max_validity_days as i64))
            .map_err(|m| ApiError::bad_request(ErrorCode::InvalidExpiresAt, m))?;
    }
    let taken = request::Entity::update_many()
        .col_expr(request::Column::UpdatedAt, Expr::value(now))
        .filter(request::Column::Id.eq(row.id.as_str()))
        .filter(request::Column::Status.eq(ExceptionStatus::Pending.as_str()))
        .exec(conn)
        .await?;
    let row = require(conn, id).await?;
    if taken.rows_affected == 0 {
        return Err(ApiError::conflict(
            ErrorCode::ExceptionDecided,
            "this request was already decided; submit a new one",
        )
        .with("exception_status", status(&row, now)?.as_str()));
    }
    Ok(row)
}

/// Deny a taken request: final, with the reviewer's reason sealed.
async fn deny(
    conn: &impl ConnectionTrait,
    key: &MasterKey,
    actor: Actor<'_>,
    row: request::Model,
    approvals: Vec<approval::Model>,
    reason: &Reason,
    now: DateTime<Utc>,
) -> Result<Outcome, ApiError> {
    let sealed = seal(key, &row.id, "decision_reason", reason.as_str());
    let mut active = row.into_active_model();
    active.status = Set(ExceptionStatus::Denied.as_str().to_owned());
    active.decided_by = Set(Some(actor.name.to_owned()));
    active.decided_at = Set(Some(now));
    active.decision_reason_sealed = Set(Some(sealed));
    active.updated_at = Set(now);
    let row = active.update(conn).await?;
    audit::append(
        conn,
        now,
        Entry {
            actor: actor.name,
            action: AuditAction::ExceptionDenied,
            target_type: AuditTarget::Exception,
            target_id: &row.id,
            details: json!({
                "account_id": row.account_id,
                "approvals_before": approvals.len(),
            }),
        },
    )
    .await?;
    Ok(Outcome {
        exception: row,
        approvals,
        changed_account: None,
    })
}

/// Record this reviewer's approval of a taken request (once per principal). Returns every
/// approval, this one last.
async fn record_approval(
    conn: &impl ConnectionTrait,
    key: &MasterKey,
    actor: Actor<'_>,
    row: &request::Model,
    mut approvals: Vec<approval::Model>,
    decision: &Decision,
    now: DateTime<Utc>,
) -> Result<Vec<approval::Model>, ApiError> {
    if approvals
        .iter()
        .any(|a| a.reviewer_client == actor.client_id || a.reviewer_principal == actor.principal)
    {
        return Err(already_approved());
    }
    let approval_id = new_id(APPROVAL_PREFIX);
    let approval = approval::Model {
        reason_sealed: Some(seal(key, &approval_id, "reason", decision.reason.as_str())),
        id: approval_id,
        exception_id: row.id.clone(),
        reviewer: actor.name.to_owned(),
        reviewer_client: actor.client_id.to_owned(),
        reviewer_principal: actor.principal.to_owned(),
        expires_at: decision.expires_at,
        approved_at: now,
    };
    match approval::Entity::insert(approval.clone().into_active_model().reset_all())
        .exec_without_returning(conn)
        .await
    {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => return Err(already_approved()),
        Err(e) => return Err(e.into()),
    }
    approvals.push(approval);
    Ok(approvals)
}

/// Audit a recorded approval: how many people approved so far.
async fn audit_approval(
    conn: &impl ConnectionTrait,
    actor: Actor<'_>,
    row: &request::Model,
    approvals: usize,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    audit::append(
        conn,
        now,
        Entry {
            actor: actor.name,
            action: AuditAction::ExceptionApprovalRecorded,
            target_type: AuditTarget::Exception,
            target_id: &row.id,
            details: json!({
                "account_id": row.account_id,
                // Not how many are required: that differs by category (by default) and would
                // name it.
                "approvals": approvals,
                "expires_at": expires_at,
                "principal": actor.principal,
                "key_created_by": actor.key_created_by,
            }),
        },
    )
    .await?;
    Ok(())
}

/// Enough people approved: the request is approved until the earliest end any of them agreed
/// to, and its evidence is created.
#[allow(clippy::too_many_arguments)]
async fn complete(
    conn: &impl ConnectionTrait,
    key: &MasterKey,
    settings: &ExceptionSettings,
    actor: Actor<'_>,
    row: request::Model,
    category: Category,
    approvals: Vec<approval::Model>,
    now: DateTime<Utc>,
) -> Result<Outcome, ApiError> {
    let end = validity_end(
        approvals.iter().map(|a| a.expires_at),
        now,
        Duration::days(settings.default_validity_days as i64),
    );
    let change = EvidenceChange {
        kind: category.evidence_kind(),
        source: source(&row.id),
        status: EvidenceStatus::Active,
        verified_at: now,
        expires_at: Some(end),
    };
    let evidence =
        evidence::record_exception(conn, key, actor.name, &row.account_id, change, now).await?;
    let mut active = row.into_active_model();
    active.status = Set(ExceptionStatus::Approved.as_str().to_owned());
    active.decided_by = Set(Some(actor.name.to_owned()));
    active.decided_at = Set(Some(now));
    active.expires_at = Set(Some(end));
    active.evidence_id = Set(Some(evidence.id.clone()));
    active.updated_at = Set(now);
    let row = active.update(conn).await?;
    audit::append(
        conn,
        now,
        Entry {
            actor: actor.name,
            action: AuditAction::ExceptionApproved,
            target_type: AuditTarget::Exception,
            target_id: &row.id,
            details: json!({
                "account_id": row.account_id,
                "evidence_id": evidence.id,
                "expires_at": end,
                "approvals": reviewers(&approvals),
                "reviewers": approvals.iter().map(|a| a.reviewer.as_str()).collect::<Vec<_>>(),
                "principals": approvals.iter().map(|a| a.reviewer_principal.as_str()).collect::<Vec<_>>(),
            }),
        },
    )
    .await?;
    let account = row.account_id.clone();
    Ok(Outcome {
        exception: row,
        approvals,
        changed_account: Some(account),
    })
}

/// Revoke an approved (or expired) exception: its evidence is revoked in the same transaction.
pub async fn revoke(
    conn: &impl ConnectionTrait,
    key: &MasterKey,
    actor: Actor<'_>,
    id: &str,
    reason: &Reason,
    now: DateTime<Utc>,
) -> Result<Outcome, ApiError> {
    let before = require(conn, id).await?;
    let previous = status(&before, now)?;
    let sealed = seal(key, &before.id, "revoke_reason", reason.as_str());
    let revoked = request::Entity::update_many()
        .col_expr(
            request::Column::Status,
            Expr::value(ExceptionStatus::Revoked.as_str()),
        )
        .col_expr(request::Column::RevokedBy, Expr::value(actor.name))
        .col_expr(request::Column::RevokedAt, Expr::value(now))
        .col_expr(request::Column::RevokeReasonSealed, Expr::value(sealed))
        .col_expr(request::Column::UpdatedAt, Expr::value(now))
        .filter(request::Column::Id.eq(before.id.as_str()))
        .filter(request::Column::Status.is_in([
            ExceptionStatus::Approved.as_str(),
            ExceptionStatus::Expired.as_str(),
        ]))
        .exec(conn)
        .await?;
    let row = require(conn, id).await?;
    if revoked.rows_affected == 0 {
        return Err(ApiError::conflict(
            ErrorCode::ExceptionNotApproved,
            "only an approved (or expired) exception can be revoked; deny a pending one",
        )
        .with("exception_status", status(&row, now)?.as_str()));
    }
    revoke_evidence(conn, key, actor, &row, previous, now).await?;
    let approvals = approvals_of(conn, &row.id).await?;
    let account = row.account_id.clone();
    Ok(Outcome {
        exception: row,
        approvals,
        changed_account: Some(account),
    })
}

/// Revoke the evidence a revoked exception had created, audited.
async fn revoke_evidence(
    conn: &impl ConnectionTrait,
    key: &MasterKey,
    actor: Actor<'_>,
    row: &request::Model,
    previous: ExceptionStatus,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let category = category(key, row)?;
    let change = EvidenceChange {
        kind: category.evidence_kind(),
        source: source(&row.id),
        status: EvidenceStatus::Revoked,
        verified_at: row.decided_at.unwrap_or(row.submitted_at),
        expires_at: row.expires_at,
    };
    let evidence =
        evidence::record_exception(conn, key, actor.name, &row.account_id, change, now).await?;
    audit::append(
        conn,
        now,
        Entry {
            actor: actor.name,
            action: AuditAction::ExceptionRevoked,
            target_type: AuditTarget::Exception,
            target_id: &row.id,
            details: json!({
                "account_id": row.account_id,
                "evidence_id": evidence.id,
                "previous_status": previous.as_str(),
            }),
        },
    )
    .await?;
    Ok(())
}

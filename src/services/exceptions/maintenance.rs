//! Work nobody asks for: recording the expiry of approvals past their end, purging sealed text
//! once its retention is over, and erasing an account's requests.
//!
//! Retention: the sealed statement, organization, reference and reasons serve the decision and
//! any dispute about it, nothing after. They are erased `exceptions.retention_approved_days`
//! after an approved exception ended (expired or revoked) and `retention_denied_days` after a
//! denial, unless a reviewer holds the request (`retention::hold`). The decision itself (who
//! decided what, when, and the sealed category the evidence depends on) stays.

use crate::services::audit::{AuditAction, AuditTarget};
use chrono::{DateTime, Duration, Utc};
use entities::{exception_approval as approval, exception_request as request};
use sea_orm::{
    sea_query::Expr, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde_json::json;

use super::{category, source, SYSTEM};
use crate::{
    config::ExceptionSettings,
    crypto::MasterKey,
    domain::{evidence::EvidenceStatus, exception::ExceptionStatus},
    error::ApiError,
    services::{
        audit::{self, Entry},
        evidence::{self, EvidenceChange},
    },
};

/// Record the expiry of approvals past their end (they stopped counting at that moment
/// already): status `expired`, evidence `lapsed`, one audit entry each. Returns the accounts
/// whose evidence changed.
pub async fn expire_due(
    conn: &impl ConnectionTrait,
    key: &MasterKey,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<String>, ApiError> {
    let due = request::Entity::find()
        .filter(request::Column::Status.eq(ExceptionStatus::Approved.as_str()))
        .filter(request::Column::ExpiresAt.lte(now))
        .order_by_asc(request::Column::ExpiresAt)
        .limit(limit)
        .all(conn)
        .await?;
    let mut changed = Vec::new();
    for row in due {
        if expire(conn, key, &row, now).await? {
            changed.push(row.account_id);
        }
    }
    changed.sort();
    changed.dedup();
    Ok(changed)
}

/// Mark one approval expired and lapse its evidence; `false` if it was revoked or recorded
/// meanwhile.
async fn expire(
    conn: &impl ConnectionTrait,
    key: &MasterKey,
    row: &request::Model,
    now: DateTime<Utc>,
) -> Result<bool, ApiError> {
    let marked = request::Entity::update_many()
        .col_expr(
            request::Column::Status,
            Expr::value(ExceptionStatus::Expired.as_str()),
        )
        .col_expr(request::Column::UpdatedAt, Expr::value(now))
        .filter(request::Column::Id.eq(row.id.as_str()))
        .filter(request::Column::Status.eq(ExceptionStatus::Approved.as_str()))
        .exec(conn)
        .await?;
    if marked.rows_affected == 0 {
        return Ok(false);
    }
    let category = category(key, row)?;
    evidence::record_exception(
        conn,
        key,
        SYSTEM,
        &row.account_id,
        EvidenceChange {
            kind: category.evidence_kind(),
            source: source(&row.id),
            status: EvidenceStatus::Lapsed,
            verified_at: row.decided_at.unwrap_or(row.submitted_at),
            expires_at: row.expires_at,
        },
        now,
    )
    .await?;
    audit::append(
        conn,
        now,
        Entry {
            actor: SYSTEM,
            action: AuditAction::ExceptionExpired,
            target_type: AuditTarget::Exception,
            target_id: &row.id,
            details: json!({
                "account_id": row.account_id,
                "expires_at": row.expires_at,
            }),
        },
    )
    .await?;
    Ok(true)
}

/// Erase the sealed text of requests whose retention is over (see the module doc). Returns
/// how many requests were purged.
pub async fn purge_due(
    conn: &impl ConnectionTrait,
    settings: &ExceptionSettings,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<u64, ApiError> {
    let approved = now - Duration::days(settings.retention_approved_days as i64);
    let denied = now - Duration::days(settings.retention_denied_days as i64);
    let due = due_for_purge(conn, approved, denied, limit).await?;
    let mut purged = 0;
    for row in due {
        purge(conn, &row, now).await?;
        purged += 1;
    }
    Ok(purged)
}

/// Requests not held that still hold sealed text and ended before their cutoff: denied before
/// `denied`, revoked before `approved`, or approved and past their end before `approved`.
async fn due_for_purge(
    conn: &impl ConnectionTrait,
    approved: DateTime<Utc>,
    denied: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<request::Model>, DbErr> {
    use request::Column as C;
    let ended = Condition::any()
        .add(
            Condition::all()
                .add(C::Status.eq(ExceptionStatus::Denied.as_str()))
                .add(C::DecidedAt.lte(denied)),
        )
        .add(C::RevokedAt.lte(approved))
        .add(
            Condition::all()
                .add(C::Status.is_in([
                    ExceptionStatus::Approved.as_str(),
                    ExceptionStatus::Expired.as_str(),
                ]))
                .add(C::RevokedAt.is_null())
                .add(C::ExpiresAt.lte(approved)),
        );
    request::Entity::find()
        .filter(ended)
        .filter(C::RetentionHoldAt.is_null())
        .filter(
            Condition::any()
                .add(C::StatementSealed.is_not_null())
                .add(C::OrganizationSealed.is_not_null())
                .add(C::ReferenceSealed.is_not_null())
                .add(C::DecisionReasonSealed.is_not_null())
                .add(C::RevokeReasonSealed.is_not_null()),
        )
        .order_by_asc(C::Id)
        .limit(limit)
        .all(conn)
        .await
}

/// Clear one request's sealed text and its approvals' reasons, audited.
async fn purge(
    conn: &impl ConnectionTrait,
    row: &request::Model,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    use request::Column as C;
    let none = || Expr::value(Option::<String>::None);
    request::Entity::update_many()
        .col_expr(C::StatementSealed, none())
        .col_expr(C::OrganizationSealed, none())
        .col_expr(C::ReferenceSealed, none())
        .col_expr(C::DecisionReasonSealed, none())
        .col_expr(C::RevokeReasonSealed, none())
        .col_expr(C::PurgedAt, Expr::value(now))
        .col_expr(C::UpdatedAt, Expr::value(now))
        .filter(C::Id.eq(row.id.as_str()))
        .exec(conn)
        .await?;
    approval::Entity::update_many()
        .col_expr(approval::Column::ReasonSealed, none())
        .filter(approval::Column::ExceptionId.eq(row.id.as_str()))
        .exec(conn)
        .await?;
    audit::append(
        conn,
        now,
        Entry {
            actor: SYSTEM,
            action: AuditAction::ExceptionStatementsPurged,
            target_type: AuditTarget::Exception,
            target_id: &row.id,
            details: json!({
                "account_id": row.account_id,
                "decided_at": row.decided_at,
            }),
        },
    )
    .await?;
    Ok(())
}

/// Delete every request of an account, with its approvals (account erasure). Returns how many.
pub async fn erase_account(conn: &impl ConnectionTrait, account_id: &str) -> Result<u64, DbErr> {
    let ids: Vec<String> = request::Entity::find()
        .select_only()
        .column(request::Column::Id)
        .filter(request::Column::AccountId.eq(account_id))
        .into_tuple()
        .all(conn)
        .await?;
    if ids.is_empty() {
        return Ok(0);
    }
    approval::Entity::delete_many()
        .filter(approval::Column::ExceptionId.is_in(ids))
        .exec(conn)
        .await?;
    let deleted = request::Entity::delete_many()
        .filter(request::Column::AccountId.eq(account_id))
        .exec(conn)
        .await?;
    Ok(deleted.rows_affected)
}

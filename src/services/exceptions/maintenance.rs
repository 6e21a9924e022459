//! Work nobody asks for: recording the expiry of approvals past their end, purging sealed text
//! once its retention is over, and erasing an account's requests.

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
        if expire(conn, &row, now).await? {
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
    let category = category(row)?;
    evidence::record(
        conn,
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
                "category": row.category,
                "expires_at": row.expires_at,
            }),
        },
    )
    .await?;
    Ok(true)
}

/// Erase the sealed text of requests whose last decision is older than `after`. Returns how
/// many requests were purged.
pub async fn purge_due(
    conn: &impl ConnectionTrait,
    after: Duration,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<u64, ApiError> {
    let due = due_for_purge(conn, now - after, limit).await?;
    let mut purged = 0;
    for row in due {
        purge(conn, &row, now).await?;
        purged += 1;
    }
    Ok(purged)
}

/// Requests decided (and, if revoked, revoked) before `cutoff` that still hold sealed text.
async fn due_for_purge(
    conn: &impl ConnectionTrait,
    cutoff: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<request::Model>, DbErr> {
    use request::Column as C;
    request::Entity::find()
        .filter(C::DecidedAt.lte(cutoff))
        .filter(
            Condition::any()
                .add(C::RevokedAt.is_null())
                .add(C::RevokedAt.lte(cutoff)),
        )
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
                "category": row.category,
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

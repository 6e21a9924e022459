//! Evidence: the single entry point through which verification, billing and exceptions add or
//! change evidence. Every change writes an audit entry in the same transaction and keeps the
//! account's `email_verified` / `phone_verified` flags in step.

use crate::services::audit::{AuditAction, AuditTarget};
use chrono::{DateTime, Utc};
use entities::{account, evidence};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::json;

use super::{
    accounts,
    audit::{self, Entry},
};
use crate::{
    domain::{
        account::AccountStatus,
        evidence::{EvidenceKind, EvidenceStatus},
        ids::new_id,
        policy::{AccountSnapshot, Fact},
    },
    error::ApiError,
};

/// A new state of one piece of evidence, identified by (account, kind, source).
#[derive(Debug, Clone)]
pub struct EvidenceChange {
    pub kind: EvidenceKind,
    /// Where it came from (`sms`, `stripe:sub_123`, `exception:<id>`); never personal data.
    pub source: String,
    pub status: EvidenceStatus,
    pub verified_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Add or update evidence. Returns the stored row.
pub async fn record(
    conn: &impl ConnectionTrait,
    actor: &str,
    account_id: &str,
    change: EvidenceChange,
    now: DateTime<Utc>,
) -> Result<evidence::Model, ApiError> {
    let account = accounts::require(conn, account_id).await?;
    let (row, action, previous) = upsert(conn, account_id, &change, now).await?;
    if matches!(change.kind, EvidenceKind::Email | EvidenceKind::Phone) {
        sync_flags(conn, account, now).await?;
    }
    // The audit entry comes last: appending takes the chain lock, and every writer takes row
    // locks before it (account, then chain), so two transactions never wait on each other.
    audit::append(
        conn,
        now,
        Entry {
            actor,
            action,
            target_type: AuditTarget::Account,
            target_id: account_id,
            details: json!({
                "evidence_id": row.id,
                "kind": row.kind,
                "source": row.source,
                "status": row.status,
                "previous_status": previous,
                "expires_at": row.expires_at,
            }),
        },
    )
    .await?;
    Ok(row)
}

/// Write the change over the account's evidence of that kind and source, or add it. Returns
/// the row, the audit action, and the status it had before.
async fn upsert(
    conn: &impl ConnectionTrait,
    account_id: &str,
    change: &EvidenceChange,
    now: DateTime<Utc>,
) -> Result<(evidence::Model, AuditAction, Option<String>), DbErr> {
    let existing = evidence::Entity::find()
        .filter(evidence::Column::AccountId.eq(account_id))
        .filter(evidence::Column::Kind.eq(change.kind.as_str()))
        .filter(evidence::Column::Source.eq(change.source.as_str()))
        .one(conn)
        .await?;
    if let Some(row) = existing {
        let previous = row.status.clone();
        let mut active = row.into_active_model();
        active.status = Set(change.status.as_str().to_owned());
        active.verified_at = Set(change.verified_at);
        active.expires_at = Set(change.expires_at);
        active.updated_at = Set(now);
        return Ok((
            active.update(conn).await?,
            AuditAction::EvidenceUpdated,
            Some(previous),
        ));
    }
    let row = evidence::Model {
        id: new_id("evd"),
        account_id: account_id.to_owned(),
        kind: change.kind.as_str().to_owned(),
        status: change.status.as_str().to_owned(),
        source: change.source.clone(),
        verified_at: change.verified_at,
        expires_at: change.expires_at,
        created_at: now,
        updated_at: now,
    };
    evidence::Entity::insert(row.clone().into_active_model().reset_all())
        .exec_without_returning(conn)
        .await?;
    Ok((row, AuditAction::EvidenceAdded, None))
}

/// Keep `email_verified` / `phone_verified` equal to "has active evidence of that kind".
async fn sync_flags(
    conn: &impl ConnectionTrait,
    account: account::Model,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let rows = list_all(conn, &account.id).await?;
    let facts = rows.iter().map(fact).collect::<Result<Vec<_>, _>>()?;
    let has = |kind: EvidenceKind| facts.iter().any(|f| f.kind == kind && f.is_active(now));
    let (email, phone) = (has(EvidenceKind::Email), has(EvidenceKind::Phone));
    if account.email_verified != email || account.phone_verified != phone {
        let mut active = account.into_active_model();
        active.email_verified = Set(email);
        active.phone_verified = Set(phone);
        active.updated_at = Set(now);
        active.update(conn).await?;
    }
    Ok(())
}

pub async fn list_all(
    conn: &impl ConnectionTrait,
    account_id: &str,
) -> Result<Vec<evidence::Model>, DbErr> {
    evidence::Entity::find()
        .filter(evidence::Column::AccountId.eq(account_id))
        .order_by_asc(evidence::Column::Id)
        .all(conn)
        .await
}

pub async fn list(
    conn: &impl ConnectionTrait,
    account_id: &str,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<evidence::Model>, DbErr> {
    let mut q = evidence::Entity::find()
        .filter(evidence::Column::AccountId.eq(account_id))
        .order_by_asc(evidence::Column::Id);
    if let Some(after) = after {
        q = q.filter(evidence::Column::Id.gt(after));
    }
    q.limit(limit).all(conn).await
}

/// A stored evidence row as the policy reads it; an unknown kind or status is an error.
pub fn fact(row: &evidence::Model) -> Result<Fact, DbErr> {
    Ok(Fact {
        kind: super::stored("evidence kind", &row.kind)?,
        status: super::stored("evidence status", &row.status)?,
        expires_at: row.expires_at,
    })
}

/// The account's status and evidence, as the policy needs them; `None` if it does not exist.
pub async fn snapshot(
    conn: &impl ConnectionTrait,
    account_id: &str,
) -> Result<Option<AccountSnapshot>, DbErr> {
    let Some(account) = accounts::get(conn, account_id).await? else {
        return Ok(None);
    };
    let rows = list_all(conn, account_id).await?;
    let status = super::status_lists::position(conn, account_id).await?;
    Ok(Some(AccountSnapshot {
        active: super::stored::<AccountStatus>("account status", &account.status)?
            == AccountStatus::Active,
        facts: rows.iter().map(fact).collect::<Result<_, _>>()?,
        status,
    }))
}

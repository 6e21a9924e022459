//! Evidence: the single entry point through which verification, billing and exceptions add or
//! change evidence. Every change writes an audit entry in the same transaction and keeps the
//! account's `email_verified` / `phone_verified` flags in step.
//!
//! Exception evidence is stored as kind `exception` with its category (`nonprofit` or
//! `dissident`) sealed beside it (`kind_sealed`, bound to the evidence id), so a copy of the
//! database does not say which accounts hold a dissident exception. It is opened only where
//! the category is needed (the policy, the evidence API), and only for those rows: the other
//! kinds are stored as they are.

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
    crypto::MasterKey,
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

/// The stored kind of exception evidence, whatever its category.
pub const EXCEPTION_KIND: &str = "exception";

/// The kind as stored: an exception's category is sealed, never in `kind`.
fn stored_kind(kind: EvidenceKind) -> &'static str {
    match kind {
        EvidenceKind::Nonprofit | EvidenceKind::Dissident => EXCEPTION_KIND,
        other => other.as_str(),
    }
}

/// A sealed category is bound to its evidence row.
fn kind_aad(evidence_id: &str) -> String {
    format!("{evidence_id}/kind")
}

/// Add or update evidence of any kind but an exception (`record_exception`). Returns the
/// stored row.
pub async fn record(
    conn: &impl ConnectionTrait,
    actor: &str,
    account_id: &str,
    change: EvidenceChange,
    now: DateTime<Utc>,
) -> Result<evidence::Model, ApiError> {
    record_with(conn, None, actor, account_id, change, now).await
}

/// Add or update an exception's evidence, its category sealed under `key` (the exceptions'
/// sealing key, `services::exceptions::sealing_key`).
pub async fn record_exception(
    conn: &impl ConnectionTrait,
    key: &MasterKey,
    actor: &str,
    account_id: &str,
    change: EvidenceChange,
    now: DateTime<Utc>,
) -> Result<evidence::Model, ApiError> {
    record_with(conn, Some(key), actor, account_id, change, now).await
}

async fn record_with(
    conn: &impl ConnectionTrait,
    key: Option<&MasterKey>,
    actor: &str,
    account_id: &str,
    change: EvidenceChange,
    now: DateTime<Utc>,
) -> Result<evidence::Model, ApiError> {
    let sealed = stored_kind(change.kind) == EXCEPTION_KIND;
    let key = match (sealed, key) {
        (true, None) => {
            return Err(ApiError::internal(
                "exception evidence is recorded with its sealing key",
            ))
        }
        (true, key) => key,
        (false, _) => None,
    };
    let account = accounts::require(conn, account_id).await?;
    let (row, action, previous) = upsert(conn, key, account_id, &change, now).await?;
    // Every instance forgets its cached snapshot of the account (`tokens::live`).
    super::status_lists::touch(conn, account_id).await?;
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
    key: Option<&MasterKey>,
    account_id: &str,
    change: &EvidenceChange,
    now: DateTime<Utc>,
) -> Result<(evidence::Model, AuditAction, Option<String>), DbErr> {
    // An exception's source (`exception:<id>`) names one request, so (kind, source) still
    // finds the one row with the category sealed.
    let existing = evidence::Entity::find()
        .filter(evidence::Column::AccountId.eq(account_id))
        .filter(evidence::Column::Kind.eq(stored_kind(change.kind)))
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
    let id = new_id("evd");
    let row = evidence::Model {
        kind_sealed: key.map(|key| key.seal(&kind_aad(&id), change.kind.as_str().as_bytes())),
        id,
        account_id: account_id.to_owned(),
        kind: stored_kind(change.kind).to_owned(),
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
    // Exception evidence is neither: its category stays sealed here.
    let rows = list_all(conn, &account.id).await?;
    let facts = rows
        .iter()
        .filter(|r| r.kind != EXCEPTION_KIND)
        .map(|r| fact(r, None))
        .collect::<Result<Vec<_>, _>>()?;
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

/// The kind of a stored row: an exception's category is opened under `key` (the exceptions'
/// sealing key); an unknown kind, or a category that does not open, is an error.
pub fn kind(row: &evidence::Model, key: Option<&MasterKey>) -> Result<EvidenceKind, DbErr> {
    kind_of(&row.id, &row.kind, row.kind_sealed.as_deref(), key)
}

/// [`kind`], from the columns it reads.
fn kind_of(
    id: &str,
    stored: &str,
    sealed: Option<&str>,
    key: Option<&MasterKey>,
) -> Result<EvidenceKind, DbErr> {
    if stored != EXCEPTION_KIND {
        return super::stored("evidence kind", stored);
    }
    let opened = match (key, sealed) {
        (Some(key), Some(sealed)) => key
            .open(&kind_aad(id), sealed)
            .ok()
            .and_then(|plain| String::from_utf8(plain).ok()),
        _ => None,
    };
    let kind = opened
        .and_then(|k| k.parse::<EvidenceKind>().ok())
        .filter(|k| stored_kind(*k) == EXCEPTION_KIND);
    kind.ok_or_else(|| {
        DbErr::Custom(format!(
            "the sealed category of evidence {id} could not be opened (wrong master key?)"
        ))
    })
}

/// A stored evidence row as the policy reads it; an unknown kind or status is an error. `key`
/// (the exceptions' sealing key) opens an exception's category; without it such a row is an
/// error.
pub fn fact(row: &evidence::Model, key: Option<&MasterKey>) -> Result<Fact, DbErr> {
    Ok(Fact {
        kind: kind(row, key)?,
        status: super::stored("evidence status", &row.status)?,
        expires_at: row.expires_at,
    })
}

/// Every piece of an account's evidence as the policy reads it. The exceptions' sealing key
/// is derived only when the account has exception evidence (rare), so the authorize path pays
/// nothing for the others.
pub fn facts(rows: &[evidence::Model], master: &MasterKey) -> Result<Vec<Fact>, DbErr> {
    let key = rows
        .iter()
        .any(|r| r.kind == EXCEPTION_KIND)
        .then(|| super::exceptions::sealing_key(master));
    rows.iter().map(|r| fact(r, key.as_ref())).collect()
}

/// The account's status and evidence, as the policy needs them; `None` if it does not exist.
///
/// One statement, on the hot path of issuance and authorize (their account cache lives about a
/// second, so with many accounts nearly every request reads): the account by primary key, its
/// evidence by `idx_evidence_account_kind_source` and its status-list place by primary key,
/// joined, one row per piece of evidence (or one row with none). Only the columns the policy
/// reads are fetched.
pub async fn snapshot(
    conn: &impl ConnectionTrait,
    master: &MasterKey,
    account_id: &str,
) -> Result<Option<AccountSnapshot>, DbErr> {
    if !crate::domain::ids::looks_like(accounts::ID_PREFIX, account_id) {
        return Ok(None);
    }
    let backend = conn.get_database_backend();
    let param = match backend {
        sea_orm::DatabaseBackend::Postgres => "$1",
        _ => "?",
    };
    let sql = format!(
        "SELECT a.status AS account_status, e.id AS evidence_id, e.kind, e.kind_sealed, \
         e.status AS evidence_status, e.expires_at, s.list_id, s.idx \
         FROM account a \
         LEFT JOIN evidence e ON e.account_id = a.id \
         LEFT JOIN status_list_entry s ON s.account_id = a.id \
         WHERE a.id = {param} ORDER BY e.id"
    );
    let rows = conn
        .query_all_raw(sea_orm::Statement::from_sql_and_values(
            backend,
            sql,
            [account_id.into()],
        ))
        .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let account_status: String = first.try_get("", "account_status")?;
    let status = match (
        first.try_get::<Option<i64>>("", "list_id")?,
        first.try_get::<Option<i64>>("", "idx")?,
    ) {
        (Some(list_id), Some(idx)) => Some(crate::status_list::StatusRef {
            list_id,
            idx: u32::try_from(idx)
                .map_err(|_| DbErr::Custom(format!("status list index {idx} out of range")))?,
        }),
        _ => None,
    };
    let mut evidence = Vec::with_capacity(rows.len());
    for row in &rows {
        let Some(id) = row.try_get::<Option<String>>("", "evidence_id")? else {
            continue;
        };
        evidence.push(Evidence {
            id,
            kind: row.try_get("", "kind")?,
            kind_sealed: row.try_get("", "kind_sealed")?,
            status: row.try_get("", "evidence_status")?,
            expires_at: row.try_get("", "expires_at")?,
        });
    }
    let key = evidence
        .iter()
        .any(|r| r.kind == EXCEPTION_KIND)
        .then(|| super::exceptions::sealing_key(master));
    let facts = evidence
        .iter()
        .map(|e| {
            Ok(Fact {
                kind: kind_of(&e.id, &e.kind, e.kind_sealed.as_deref(), key.as_ref())?,
                status: super::stored("evidence status", &e.status)?,
                expires_at: e.expires_at,
            })
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    Ok(Some(AccountSnapshot {
        active: super::stored::<AccountStatus>("account status", &account_status)?
            == AccountStatus::Active,
        facts,
        status,
    }))
}

/// The columns of an evidence row the policy reads.
struct Evidence {
    id: String,
    kind: String,
    kind_sealed: Option<String>,
    status: String,
    expires_at: Option<DateTime<Utc>>,
}

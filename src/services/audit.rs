//! The audit log: append-only and hash-chained. Each entry's hash covers its own fields and the
//! previous entry's hash, so editing or deleting any row breaks every link after it.

use chrono::{DateTime, SecondsFormat, Utc};
use entities::audit_log;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::Value;

use crate::crypto::sha256_hex;

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Serialises appends on PostgreSQL (SQLite has one writer already).
pub const CHAIN_LOCK: i64 = 0x766f_7563_685f_6175; // "vouch_au"

/// What happened, to what, by whom. `details` must never hold personal data or secrets.
pub struct Entry<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub target_type: &'a str,
    pub target_id: &'a str,
    pub details: Value,
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Stored times lose sub-microsecond precision; hash what will be read back.
fn truncate_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

/// SHA-256 over the entry's fields (all but `hash`) and the previous entry's hash.
pub fn entry_hash(row: &audit_log::Model) -> String {
    let canonical = serde_json::json!([
        row.seq,
        timestamp(row.at),
        row.actor,
        row.action,
        row.target_type,
        row.target_id,
        row.details,
        row.prev_hash
    ]);
    sha256_hex(canonical.to_string().as_bytes())
}

/// Append one entry; call inside the transaction that makes the change it records.
pub async fn append(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    entry: Entry<'_>,
) -> Result<audit_log::Model, DbErr> {
    if conn.get_database_backend() == DatabaseBackend::Postgres {
        conn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({CHAIN_LOCK})"))
            .await?;
    }
    let last = audit_log::Entity::find()
        .order_by_desc(audit_log::Column::Seq)
        .one(conn)
        .await?;
    let (seq, prev_hash) = match last {
        Some(last) => (last.seq + 1, last.hash),
        None => (1, GENESIS.to_owned()),
    };
    let at = truncate_micros(now);
    let mut model = audit_log::Model {
        seq,
        at,
        actor: entry.actor.to_owned(),
        action: entry.action.to_owned(),
        target_type: entry.target_type.to_owned(),
        target_id: entry.target_id.to_owned(),
        details: entry.details.to_string(),
        prev_hash,
        hash: String::new(),
    };
    model.hash = entry_hash(&model);
    audit_log::Entity::insert(model.clone().into_active_model().reset_all())
        .exec_without_returning(conn)
        .await?;
    Ok(model)
}

#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub action: Option<String>,
    pub actor: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    /// Entries at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Entries before this time.
    pub until: Option<DateTime<Utc>>,
}

/// Newest first; `before` is the `seq` of the last entry already seen.
pub async fn list(
    conn: &impl ConnectionTrait,
    filter: &Filter,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<audit_log::Model>, DbErr> {
    let mut q = audit_log::Entity::find().order_by_desc(audit_log::Column::Seq);
    if let Some(a) = &filter.action {
        q = q.filter(audit_log::Column::Action.eq(a.as_str()));
    }
    if let Some(a) = &filter.actor {
        q = q.filter(audit_log::Column::Actor.eq(a.as_str()));
    }
    if let Some(t) = &filter.target_type {
        q = q.filter(audit_log::Column::TargetType.eq(t.as_str()));
    }
    if let Some(t) = &filter.target_id {
        q = q.filter(audit_log::Column::TargetId.eq(t.as_str()));
    }
    if let Some(since) = filter.since {
        q = q.filter(audit_log::Column::At.gte(since));
    }
    if let Some(until) = filter.until {
        q = q.filter(audit_log::Column::At.lt(until));
    }
    if let Some(b) = before {
        q = q.filter(audit_log::Column::Seq.lt(b));
    }
    q.limit(limit).all(conn).await
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ChainReport {
    /// Entries checked.
    pub entries: u64,
    /// Whether every link holds.
    pub intact: bool,
    /// The first entry whose link is broken.
    pub first_broken_seq: Option<i64>,
    pub problem: Option<String>,
}

/// Walk the whole chain from the start and report the first broken link.
pub async fn verify(conn: &impl ConnectionTrait) -> Result<ChainReport, DbErr> {
    let mut prev_hash = GENESIS.to_owned();
    let mut expected_seq = 1i64;
    let mut entries = 0u64;
    loop {
        let batch = audit_log::Entity::find()
            .filter(audit_log::Column::Seq.gte(expected_seq))
            .order_by_asc(audit_log::Column::Seq)
            .limit(1000)
            .all(conn)
            .await?;
        if batch.is_empty() {
            break;
        }
        for row in batch {
            let broken = |problem: String| ChainReport {
                entries,
                intact: false,
                first_broken_seq: Some(row.seq),
                problem: Some(problem),
            };
            if row.seq != expected_seq {
                return Ok(broken(format!("entry {expected_seq} is missing")));
            }
            if row.prev_hash != prev_hash {
                return Ok(broken("does not link to the previous entry".into()));
            }
            if entry_hash(&row) != row.hash {
                return Ok(broken("its content does not match its hash".into()));
            }
            entries += 1;
            prev_hash = row.hash;
            expected_seq += 1;
        }
    }
    Ok(ChainReport {
        entries,
        intact: true,
        first_broken_seq: None,
        problem: None,
    })
}

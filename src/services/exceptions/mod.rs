//! Exceptions: submission with sealed statements, four-eyes review, revocation, recorded expiry
//! and purge of sealed text. Approval and revocation change evidence only through
//! `evidence::record`; every change, and every read of sealed text, writes an audit entry in
//! the same transaction (never the text itself).
//!
//! Free text (statement, organization, reference, reviewers' reasons) and the category itself
//! are sealed with AES-256-GCM under a key derived from the master key, bound to its record id
//! and field, so a copy of the database alone reveals none of it (not even which accounts asked
//! for a dissident exception) and sealed text moved to another row does not open. Nothing
//! names the category in the clear: not the row, not its evidence (`services::evidence`), not
//! the audit details. Queries that need it (the queue filtered by category, the one open
//! request per account and category) open it row by row; there is deliberately no blind index,
//! which with two categories would split the rows into two groups anyone could tell apart.
//!
//! Decisions on one request are serialised by a conditional update of its row before anything
//! else is read (a row lock on PostgreSQL; SQLite has one writer already): two reviewers
//! approving at once are both counted, and a request is decided once.
//!
//! This module holds what the parts share (lookups, the queue, statuses); `review` the
//! workflow of a request, `sealing` the sealed text, `maintenance` expiry, purge and erasure,
//! `legacy` the sealing of categories older versions stored in plaintext.

mod legacy;
mod maintenance;
mod retention;
mod review;
mod sealing;

use crate::error::ErrorCode;
use chrono::{DateTime, Duration, Utc};
use entities::{exception_approval as approval, exception_request as request};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

pub use legacy::{seal_plaintext_categories, Sealed};
pub use maintenance::{erase_account, expire_due, purge_due};
pub use retention::set_hold;
pub use review::{decide, revoke, submit, Decision, Submission, Verdict};
pub use sealing::{open_category, read_sealed, sealing_key, Opened, SEALED_CATEGORY};

use crate::{
    config::ExceptionSettings,
    crypto::MasterKey,
    domain::{
        exception::{Category, ExceptionStatus},
        ids::looks_like,
    },
    error::ApiError,
};

pub const ID_PREFIX: &str = "exc";
/// The audit actor of changes nobody asked for (expiry, purge).
pub const SYSTEM: &str = "system";

/// The evidence source an approval records.
pub fn source(exception_id: &str) -> String {
    format!("exception:{exception_id}")
}

/// The API client acting: its name is the audit actor; its principal (the person behind the
/// key) is what four-eyes counts, so two keys of one person are one reviewer.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub name: &'a str,
    pub client_id: &'a str,
    pub principal: &'a str,
    /// Who created the acting key, recorded with each approval.
    pub key_created_by: &'a str,
}

/// A request with its approvals, after a change.
#[derive(Debug)]
pub struct Outcome {
    pub exception: request::Model,
    pub approvals: Vec<approval::Model>,
    /// The account whose evidence changed: forget it in caches after commit.
    pub changed_account: Option<String>,
}

#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// As readers see it: `approved` excludes, `expired` includes approvals past their end.
    pub status: Option<ExceptionStatus>,
    pub category: Option<Category>,
    pub account_id: Option<String>,
    /// Approved and ending within this long from now.
    pub expiring_within: Option<Duration>,
}

fn not_found() -> ApiError {
    ApiError::not_found(ErrorCode::ExceptionNotFound, "no exception with this id")
}

pub fn required_approvals(settings: &ExceptionSettings, category: Category) -> u32 {
    match category {
        Category::Nonprofit => settings.approvals.nonprofit,
        Category::Dissident => settings.approvals.dissident,
    }
}

/// A request's category, opened under `key` (`sealing_key`).
pub fn category(key: &MasterKey, row: &request::Model) -> Result<Category, ApiError> {
    open_category(key, row)
}

/// The status as readers see it (an approval past its end is expired).
pub fn status(row: &request::Model, now: DateTime<Utc>) -> Result<ExceptionStatus, ApiError> {
    let stored: ExceptionStatus = super::stored("exception status", &row.status)?;
    Ok(stored.effective(row.expires_at, now))
}

pub async fn get(conn: &impl ConnectionTrait, id: &str) -> Result<Option<request::Model>, DbErr> {
    if !looks_like(ID_PREFIX, id) {
        return Ok(None);
    }
    request::Entity::find_by_id(id.to_owned()).one(conn).await
}

pub async fn require(conn: &impl ConnectionTrait, id: &str) -> Result<request::Model, ApiError> {
    get(conn, id).await?.ok_or_else(not_found)
}

/// A request's approvals, first first.
pub async fn approvals_of(
    conn: &impl ConnectionTrait,
    exception_id: &str,
) -> Result<Vec<approval::Model>, DbErr> {
    approval::Entity::find()
        .filter(approval::Column::ExceptionId.eq(exception_id))
        .order_by_asc(approval::Column::ApprovedAt)
        .order_by_asc(approval::Column::Id)
        .all(conn)
        .await
}

/// Approvals of several requests at once (for a page of the queue).
pub async fn approvals_of_many(
    conn: &impl ConnectionTrait,
    exception_ids: Vec<String>,
) -> Result<Vec<approval::Model>, DbErr> {
    if exception_ids.is_empty() {
        return Ok(Vec::new());
    }
    approval::Entity::find()
        .filter(approval::Column::ExceptionId.is_in(exception_ids))
        .order_by_asc(approval::Column::ApprovedAt)
        .order_by_asc(approval::Column::Id)
        .all(conn)
        .await
}

/// How many rows a filtered page reads at a time while it opens their categories.
const SCAN_BATCH: u64 = 200;

/// The audited reads of a request's sealed text (`exception.statement_read`), newest first;
/// `before` is the `seq` of the last one already seen. They outlive the request (erasure keeps
/// the audit log).
pub async fn reveals(
    conn: &impl ConnectionTrait,
    id: &str,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<entities::audit_log::Model>, DbErr> {
    let filter = super::audit::Filter {
        action: Some(super::audit::AuditAction::ExceptionStatementRead.to_string()),
        target_type: Some(super::audit::AuditTarget::Exception.to_string()),
        target_id: Some(id.to_owned()),
        ..Default::default()
    };
    super::audit::list(conn, &filter, before, limit).await
}

/// Requests, oldest first; `after` is the id of the last one already seen. Up to `limit` rows.
///
/// A category filter is applied after opening each row's category (there is no clear column
/// to filter on), reading on in batches until `limit` rows match or the table ends, so the
/// pages keep their order and the cursor (the last id returned) stays exact.
pub async fn list(
    conn: &impl ConnectionTrait,
    key: &MasterKey,
    filter: &Filter,
    now: DateTime<Utc>,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<request::Model>, ApiError> {
    let Some(wanted) = filter.category else {
        return Ok(list_rows(conn, filter, now, after, limit).await?);
    };
    let mut found = Vec::new();
    let mut cursor = after.map(str::to_owned);
    loop {
        let batch = list_rows(conn, filter, now, cursor.as_deref(), SCAN_BATCH).await?;
        let last = batch.len() < SCAN_BATCH as usize;
        cursor = batch.last().map(|r| r.id.clone());
        for row in batch {
            if category(key, &row)? == wanted {
                found.push(row);
                if found.len() as u64 == limit {
                    return Ok(found);
                }
            }
        }
        if last {
            return Ok(found);
        }
    }
}

/// Requests matching every filter but the category, oldest first.
async fn list_rows(
    conn: &impl ConnectionTrait,
    filter: &Filter,
    now: DateTime<Utc>,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<request::Model>, DbErr> {
    use request::Column as C;
    let approved = || C::Status.eq(ExceptionStatus::Approved.as_str());
    let mut q = request::Entity::find().order_by_asc(C::Id);
    match filter.status {
        Some(ExceptionStatus::Approved) => q = q.filter(approved()).filter(C::ExpiresAt.gt(now)),
        Some(ExceptionStatus::Expired) => {
            q = q.filter(
                Condition::any()
                    .add(C::Status.eq(ExceptionStatus::Expired.as_str()))
                    .add(Condition::all().add(approved()).add(C::ExpiresAt.lte(now))),
            )
        }
        Some(other) => q = q.filter(C::Status.eq(other.as_str())),
        None => {}
    }
    if let Some(account_id) = &filter.account_id {
        q = q.filter(C::AccountId.eq(account_id.as_str()));
    }
    if let Some(within) = filter.expiring_within {
        q = q
            .filter(approved())
            .filter(C::ExpiresAt.gt(now))
            .filter(C::ExpiresAt.lte(now + within));
    }
    if let Some(after) = after {
        q = q.filter(C::Id.gt(after));
    }
    q.limit(limit).all(conn).await
}

//! Exceptions: submission with sealed statements, four-eyes review, revocation, recorded expiry
//! and purge of sealed text. Approval and revocation change evidence only through
//! `evidence::record`; every change, and every read of sealed text, writes an audit entry in
//! the same transaction (never the text itself).
//!
//! Free text (statement, organization, reference, reviewers' reasons) is sealed with AES-256-GCM
//! under a key derived from the master key, bound to its record id and field, so a copy of the
//! database alone reveals none of it and sealed text moved to another row does not open.
//!
//! Decisions on one request are serialised by a conditional update of its row before anything
//! else is read (a row lock on PostgreSQL; SQLite has one writer already): two reviewers
//! approving at once are both counted, and a request is decided once.
//!
//! This module holds what the parts share (lookups, the queue, statuses); `review` the
//! workflow of a request, `sealing` the sealed text, `maintenance` expiry, purge and erasure.

mod maintenance;
mod review;
mod sealing;

use crate::error::ErrorCode;
use chrono::{DateTime, Duration, Utc};
use entities::{exception_approval as approval, exception_request as request};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

pub use maintenance::{erase_account, expire_due, purge_due};
pub use review::{decide, revoke, submit, Decision, Submission, Verdict};
pub use sealing::{read_sealed, sealing_key, Opened};

use crate::{
    config::ExceptionSettings,
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

pub fn category(row: &request::Model) -> Result<Category, ApiError> {
    Ok(super::stored("exception category", &row.category)?)
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

/// Requests, oldest first; `after` is the id of the last one already seen.
pub async fn list(
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
    if let Some(category) = filter.category {
        q = q.filter(C::Category.eq(category.as_str()));
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

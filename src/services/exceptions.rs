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

use chrono::{DateTime, Duration, Utc};
use entities::{exception_approval as approval, exception_request as request};
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait,
    DbErr, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::json;

use crate::error::is_unique_violation;

use super::{
    accounts,
    audit::{self, Entry},
    evidence::{self, EvidenceChange},
};
use crate::{
    config::ExceptionSettings,
    crypto::MasterKey,
    domain::{
        evidence::EvidenceStatus,
        exception::{check_requested_end, validity_end, Category, ExceptionStatus},
        ids::{looks_like, new_id},
    },
    error::ApiError,
};

pub const ID_PREFIX: &str = "exc";
const APPROVAL_PREFIX: &str = "exa";
/// The audit actor of changes nobody asked for (expiry, purge).
pub const SYSTEM: &str = "system";
const SEALING_PURPOSE: &str = "vouch exceptions v1";

/// The key exception text is sealed under: derived from the master key, never the key itself.
pub fn sealing_key(master: &MasterKey) -> MasterKey {
    master.derive(SEALING_PURPOSE)
}

/// Sealed text is bound to its record and field.
fn aad(record_id: &str, field: &str) -> String {
    format!("{record_id}/{field}")
}

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

pub struct Submission {
    pub category: Category,
    pub statement: String,
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
    pub reason: String,
    /// The validity end this reviewer asks for (approvals only).
    pub expires_at: Option<DateTime<Utc>>,
}

/// A request with its approvals, after a change.
#[derive(Debug)]
pub struct Outcome {
    pub exception: request::Model,
    pub approvals: Vec<approval::Model>,
    /// The account whose evidence changed: forget it in caches after commit.
    pub changed_account: Option<String>,
}

/// Sealed text, opened.
#[derive(Debug, Default)]
pub struct Opened {
    pub statement: Option<String>,
    pub organization: Option<String>,
    pub reference: Option<String>,
    pub decision_reason: Option<String>,
    pub revoke_reason: Option<String>,
    /// By approval id.
    pub approval_reasons: Vec<(String, Option<String>)>,
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
    ApiError::not_found("exception_not_found", "no exception with this id")
}

fn pending_exists() -> ApiError {
    ApiError::conflict(
        "exception_pending",
        "the account already has an open request in this category",
    )
}

fn four_eyes() -> ApiError {
    ApiError::forbidden(
        "four_eyes",
        "the principal that submitted a request may not decide it (with any of its keys); another person must",
    )
}

fn already_approved() -> ApiError {
    ApiError::conflict(
        "already_approved",
        "this principal already approved this request (with this or another of its keys); the next approval must come from another person",
    )
}

pub fn required_approvals(settings: &ExceptionSettings, category: Category) -> u32 {
    match category {
        Category::Nonprofit => settings.approvals.nonprofit,
        Category::Dissident => settings.approvals.dissident,
    }
}

pub fn category(row: &request::Model) -> Result<Category, ApiError> {
    Category::parse(&row.category)
        .ok_or_else(|| ApiError::internal(format!("exception {} has an unknown category", row.id)))
}

/// The status as readers see it (an approval past its end is expired).
pub fn status(row: &request::Model, now: DateTime<Utc>) -> Result<ExceptionStatus, ApiError> {
    ExceptionStatus::parse(&row.status)
        .map(|s| s.effective(row.expires_at, now))
        .ok_or_else(|| ApiError::internal(format!("exception {} has an unknown status", row.id)))
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

/// Submit a request for an account. Its free text is sealed before it is stored.
pub async fn submit(
    conn: &impl ConnectionTrait,
    key: &MasterKey,
    actor: Actor<'_>,
    account_id: &str,
    submission: Submission,
    now: DateTime<Utc>,
) -> Result<request::Model, ApiError> {
    let account = accounts::require(conn, account_id).await?;
    let open = request::Entity::find()
        .filter(request::Column::AccountId.eq(account.id.as_str()))
        .filter(request::Column::Category.eq(submission.category.as_str()))
        .filter(request::Column::Status.eq(ExceptionStatus::Pending.as_str()))
        .one(conn)
        .await?;
    if let Some(open) = open {
        return Err(pending_exists().with("exception_id", open.id));
    }
    let id = new_id(ID_PREFIX);
    let seal = |field: &str, text: &str| key.seal(&aad(&id, field), text.as_bytes());
    let row = request::Model {
        id: id.clone(),
        account_id: account.id.clone(),
        category: submission.category.as_str().to_owned(),
        status: ExceptionStatus::Pending.as_str().to_owned(),
        statement_sealed: Some(seal("statement", &submission.statement)),
        organization_sealed: submission
            .organization
            .as_deref()
            .map(|t| seal("organization", t)),
        reference_sealed: submission
            .reference
            .as_deref()
            .map(|t| seal("reference", t)),
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
        updated_at: now,
    };
    match request::Entity::insert(row.clone().into_active_model().reset_all())
        .exec_without_returning(conn)
        .await
    {
        Ok(_) => {}
        // Another submission for the same account and category won the race.
        Err(e) if is_unique_violation(&e) => return Err(pending_exists()),
        Err(e) => return Err(e.into()),
    }
    audit::append(
        conn,
        now,
        Entry {
            actor: actor.name,
            action: "exception.submitted",
            target_type: "exception",
            target_id: &row.id,
            details: json!({
                "account_id": row.account_id,
                "category": row.category,
                "organization_given": row.organization_sealed.is_some(),
                "reference_given": row.reference_sealed.is_some(),
            }),
        },
    )
    .await?;
    Ok(row)
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

/// Open a request's sealed text for a reviewer; the read itself is audited (which fields, not
/// what they say). Nothing is audited when nothing sealed remains (purged).
pub async fn read_sealed(
    conn: &impl ConnectionTrait,
    key: &MasterKey,
    actor: &str,
    row: &request::Model,
    approvals: &[approval::Model],
    now: DateTime<Utc>,
) -> Result<Opened, ApiError> {
    let field =
        |name: &str, sealed: &Option<String>| open_field(key, &row.id, name, sealed.as_deref());
    let opened = Opened {
        statement: field("statement", &row.statement_sealed)?,
        organization: field("organization", &row.organization_sealed)?,
        reference: field("reference", &row.reference_sealed)?,
        decision_reason: field("decision_reason", &row.decision_reason_sealed)?,
        revoke_reason: field("revoke_reason", &row.revoke_reason_sealed)?,
        approval_reasons: approvals
            .iter()
            .map(|a| {
                Ok((
                    a.id.clone(),
                    open_field(key, &a.id, "reason", a.reason_sealed.as_deref())?,
                ))
            })
            .collect::<Result<_, ApiError>>()?,
    };
    let mut fields: Vec<&str> = [
        ("statement", opened.statement.is_some()),
        ("organization", opened.organization.is_some()),
        ("reference", opened.reference.is_some()),
        ("decision_reason", opened.decision_reason.is_some()),
        ("revoke_reason", opened.revoke_reason.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, present)| present.then_some(name))
    .collect();
    if opened.approval_reasons.iter().any(|(_, r)| r.is_some()) {
        fields.push("approval_reasons");
    }
    if !fields.is_empty() {
        audit::append(
            conn,
            now,
            Entry {
                actor,
                action: "exception.statement_read",
                target_type: "exception",
                target_id: &row.id,
                details: json!({"account_id": row.account_id, "fields": fields}),
            },
        )
        .await?;
    }
    Ok(opened)
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
    let row = require(conn, id).await?;
    if row.submitted_by_client == actor.client_id
        || row.submitted_by == actor.name
        || row.submitted_by_principal == actor.principal
    {
        return Err(four_eyes());
    }
    if let Some(end) = decision.expires_at {
        check_requested_end(end, now, Duration::days(settings.max_validity_days as i64))
            .map_err(|m| ApiError::bad_request("invalid_expires_at", m))?;
    }
    // Take the row: a decision in flight elsewhere finishes first, and this one sees its result.
    let taken = request::Entity::update_many()
        .col_expr(request::Column::UpdatedAt, Expr::value(now))
        .filter(request::Column::Id.eq(row.id.as_str()))
        .filter(request::Column::Status.eq(ExceptionStatus::Pending.as_str()))
        .exec(conn)
        .await?;
    let row = require(conn, id).await?;
    if taken.rows_affected == 0 {
        return Err(ApiError::conflict(
            "exception_decided",
            "this request was already decided; submit a new one",
        )
        .with("exception_status", status(&row, now)?.as_str()));
    }
    let category = category(&row)?;
    let mut approvals = approvals_of(conn, &row.id).await?;
    match decision.verdict {
        Verdict::Deny => {
            let sealed = key.seal(&aad(&row.id, "decision_reason"), decision.reason.as_bytes());
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
                    action: "exception.denied",
                    target_type: "exception",
                    target_id: &row.id,
                    details: json!({
                        "account_id": row.account_id,
                        "category": row.category,
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
        Verdict::Approve => {
            if approvals.iter().any(|a| {
                a.reviewer_client == actor.client_id || a.reviewer_principal == actor.principal
            }) {
                return Err(already_approved());
            }
            let approval_id = new_id(APPROVAL_PREFIX);
            let approval = approval::Model {
                reason_sealed: Some(
                    key.seal(&aad(&approval_id, "reason"), decision.reason.as_bytes()),
                ),
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
            let required = required_approvals(settings, category);
            // People, not keys: one principal's approvals count once however many keys it holds
            // (the unique index on request and principal already keeps it to one row).
            let count = approvals
                .iter()
                .map(|a| a.reviewer_principal.as_str())
                .collect::<std::collections::HashSet<_>>()
                .len();
            audit::append(
                conn,
                now,
                Entry {
                    actor: actor.name,
                    action: "exception.approval_recorded",
                    target_type: "exception",
                    target_id: &row.id,
                    details: json!({
                        "account_id": row.account_id,
                        "category": row.category,
                        "approvals": count,
                        "required": required,
                        "expires_at": decision.expires_at,
                        "principal": actor.principal,
                        "key_created_by": actor.key_created_by,
                    }),
                },
            )
            .await?;
            if (count as u64) < u64::from(required) {
                return Ok(Outcome {
                    exception: row,
                    approvals,
                    changed_account: None,
                });
            }
            let end = validity_end(
                approvals.iter().map(|a| a.expires_at),
                now,
                Duration::days(settings.default_validity_days as i64),
            );
            let evidence = evidence::record(
                conn,
                actor.name,
                &row.account_id,
                EvidenceChange {
                    kind: category.evidence_kind(),
                    source: source(&row.id),
                    status: EvidenceStatus::Active,
                    verified_at: now,
                    expires_at: Some(end),
                },
                now,
            )
            .await?;
            let mut active = row.into_active_model();
            active.status = Set(ExceptionStatus::Approved.as_str().to_owned());
            active.decided_by = Set(Some(actor.name.to_owned()));
            active.decided_at = Set(Some(now));
            active.expires_at = Set(Some(end));
            active.evidence_id = Set(Some(evidence.id.clone()));
            active.updated_at = Set(now);
            let row = active.update(conn).await?;
            let reviewers: Vec<&str> = approvals.iter().map(|a| a.reviewer.as_str()).collect();
            let principals: Vec<&str> = approvals
                .iter()
                .map(|a| a.reviewer_principal.as_str())
                .collect();
            audit::append(
                conn,
                now,
                Entry {
                    actor: actor.name,
                    action: "exception.approved",
                    target_type: "exception",
                    target_id: &row.id,
                    details: json!({
                        "account_id": row.account_id,
                        "category": row.category,
                        "evidence_id": evidence.id,
                        "expires_at": end,
                        "approvals": count,
                        "reviewers": reviewers,
                        "principals": principals,
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
    }
}

/// Revoke an approved (or expired) exception: its evidence is revoked in the same transaction.
pub async fn revoke(
    conn: &impl ConnectionTrait,
    key: &MasterKey,
    actor: Actor<'_>,
    id: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Outcome, ApiError> {
    let before = require(conn, id).await?;
    let previous = status(&before, now)?;
    let sealed = key.seal(&aad(&before.id, "revoke_reason"), reason.as_bytes());
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
            "exception_not_approved",
            "only an approved (or expired) exception can be revoked; deny a pending one",
        )
        .with("exception_status", status(&row, now)?.as_str()));
    }
    let category = category(&row)?;
    let evidence = evidence::record(
        conn,
        actor.name,
        &row.account_id,
        EvidenceChange {
            kind: category.evidence_kind(),
            source: source(&row.id),
            status: EvidenceStatus::Revoked,
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
            actor: actor.name,
            action: "exception.revoked",
            target_type: "exception",
            target_id: &row.id,
            details: json!({
                "account_id": row.account_id,
                "category": row.category,
                "evidence_id": evidence.id,
                "previous_status": previous.as_str(),
            }),
        },
    )
    .await?;
    let approvals = approvals_of(conn, &row.id).await?;
    let account = row.account_id.clone();
    Ok(Outcome {
        exception: row,
        approvals,
        changed_account: Some(account),
    })
}

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
            continue; // revoked or recorded meanwhile
        }
        let category = category(&row)?;
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
                action: "exception.expired",
                target_type: "exception",
                target_id: &row.id,
                details: json!({
                    "account_id": row.account_id,
                    "category": row.category,
                    "expires_at": row.expires_at,
                }),
            },
        )
        .await?;
        changed.push(row.account_id);
    }
    changed.sort();
    changed.dedup();
    Ok(changed)
}

/// Erase the sealed text of requests whose last decision is older than `after`. Returns how
/// many requests were purged.
pub async fn purge_due(
    conn: &impl ConnectionTrait,
    after: Duration,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<u64, ApiError> {
    use request::Column as C;
    let cutoff = now - after;
    let due = request::Entity::find()
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
        .await?;
    let none = || Expr::value(Option::<String>::None);
    let mut purged = 0;
    for row in due {
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
                action: "exception.statements_purged",
                target_type: "exception",
                target_id: &row.id,
                details: json!({
                    "account_id": row.account_id,
                    "category": row.category,
                    "decided_at": row.decided_at,
                }),
            },
        )
        .await?;
        purged += 1;
    }
    Ok(purged)
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

//! Nonprofit and dissident exceptions: submission (backend), the review queue, decisions and
//! revocation (reviewer). Sealed text is returned only by `GET /v1/exceptions/{eid}` to
//! reviewers and admins, and every such read is audited.

use super::{examples, json::Json};
use crate::error::ErrorCode;
use std::collections::HashMap;

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use entities::{exception_approval, exception_request};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::{
    auth::Caller,
    config::ExceptionSettings,
    crypto::MasterKey,
    domain::{
        account::AccountId,
        exception::{parse_line, Category, ExceptionStatus, Reason, Statement},
        role::{roles, Role},
    },
    error::{ApiError, ApiResult},
    services::{
        decisions::{self, Cause},
        exceptions::{self, Actor, Decision, Filter, Opened, Submission, Verdict},
        page::{Page, PageQuery},
    },
    state::AppState,
};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(post_exception)
        .service(get_exceptions)
        .service(get_exception)
        .service(post_exception_decision)
        .service(post_exception_revoke)
        .service(post_exception_retention)
        .service(get_exception_reveals);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitExceptionRequest {
    pub category: Category,
    /// Why the person needs the exception, 1–10,000 characters. Sealed at rest; returned only
    /// to reviewers and admins.
    #[schema(
        example = "I coordinate legal aid for detained journalists and ...",
        min_length = 1,
        max_length = 10000,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    pub statement: String,
    /// Up to 200 characters; sealed like the statement.
    #[schema(
        example = "Press Freedom Legal Aid",
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub organization: Option<String>,
    /// A way for reviewers to check the claim (a registry number, a referee), up to 200
    /// characters; sealed like the statement.
    #[schema(max_length = 200, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub reference: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DecisionKind {
    Approve,
    Deny,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    pub decision: DecisionKind,
    /// Required, 1–2,000 characters. Sealed like the statement.
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    pub reason: String,
    /// Approvals only: when the exception should end (in the future, at most
    /// `exceptions.max_validity_days` away). Default: `exceptions.default_validity_days` from
    /// the approval that completes it. With several approvers the earliest end applies.
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeExceptionRequest {
    /// Required, 1–2,000 characters. Sealed like the statement.
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    pub reason: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionRequest {
    /// `true` holds the sealed text past its retention (`exceptions.retention_*_days`) until
    /// released; `false` releases it, and retention applies again from the next maintenance
    /// round.
    pub keep: bool,
    /// Required to hold, not accepted to release: 1–2,000 characters, sealed like the
    /// statement.
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    pub reason: Option<String>,
}

/// A reveal of a request's sealed text, from the audit log.
#[derive(Serialize, ToSchema)]
pub struct RevealResponse {
    /// The reviewing client's name.
    pub reviewer: String,
    /// The person behind the key (absent in reads recorded before it was).
    pub principal: Option<String>,
    pub at: DateTime<Utc>,
    /// The fields that held text and were opened.
    pub fields: Vec<String>,
    /// The audit entry's `seq`.
    pub audit_seq: i64,
}

impl From<entities::audit_log::Model> for RevealResponse {
    fn from(row: entities::audit_log::Model) -> Self {
        let details: serde_json::Value =
            serde_json::from_str(&row.details).unwrap_or(serde_json::Value::Null);
        RevealResponse {
            principal: details["principal"].as_str().map(str::to_owned),
            fields: details["fields"]
                .as_array()
                .map(|f| {
                    f.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            reviewer: row.actor,
            at: row.at,
            audit_seq: row.seq,
        }
    }
}

impl TryFrom<SubmitExceptionRequest> for Submission {
    type Error = ApiError;

    fn try_from(body: SubmitExceptionRequest) -> Result<Self, Self::Error> {
        let line = |field: &'static str, code: ErrorCode, value: Option<String>| {
            value
                .as_deref()
                .map(|s| parse_line(field, s))
                .transpose()
                .map_err(|m| ApiError::bad_request(code, m))
                .map(Option::flatten)
        };
        Ok(Submission {
            category: body.category,
            statement: Statement::parse(&body.statement)
                .map_err(|m| ApiError::bad_request(ErrorCode::InvalidStatement, m))?,
            organization: line(
                "organization",
                ErrorCode::InvalidOrganization,
                body.organization,
            )?,
            reference: line("reference", ErrorCode::InvalidReference, body.reference)?,
        })
    }
}

fn invalid_reason(parsed: Result<Reason, &'static str>) -> ApiResult<Reason> {
    parsed.map_err(|m| ApiError::bad_request(ErrorCode::InvalidReason, m))
}

impl TryFrom<DecisionRequest> for Decision {
    type Error = ApiError;

    fn try_from(body: DecisionRequest) -> Result<Self, Self::Error> {
        let reason = invalid_reason(Reason::parse(&body.reason))?;
        let verdict = match body.decision {
            DecisionKind::Approve => Verdict::Approve,
            DecisionKind::Deny => Verdict::Deny,
        };
        if verdict == Verdict::Deny && body.expires_at.is_some() {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidExpiresAt,
                "only an approval may set expires_at",
            ));
        }
        Ok(Decision {
            verdict,
            reason,
            expires_at: body.expires_at,
        })
    }
}

#[derive(Serialize, ToSchema)]
pub struct ApprovalResponse {
    /// The reviewing client's name.
    pub reviewer: String,
    /// The person behind the reviewing key; each principal approves once.
    pub principal: String,
    pub approved_at: DateTime<Utc>,
    /// The end this reviewer asked for, if any.
    pub expires_at: Option<DateTime<Utc>>,
    /// Only in `GET /v1/exceptions/{eid}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An exception request. Backends see its state; reviewers and admins also see who acted, and
/// (in `GET /v1/exceptions/{eid}` only) the sealed text.
#[derive(Serialize, ToSchema)]
pub struct ExceptionResponse {
    #[schema(example = "exc_0192f5c8a3b47d2e9c1f0a6b5d4e3c2b")]
    pub id: String,
    pub account_id: String,
    pub category: Category,
    /// `expired` once an approval is past `expires_at`.
    pub status: ExceptionStatus,
    pub submitted_at: DateTime<Utc>,
    /// Distinct reviewers needed for this category.
    pub approvals_required: u32,
    pub approvals_received: u32,
    /// When it was approved (the last approval needed) or denied.
    pub decided_at: Option<DateTime<Utc>>,
    /// When an approved exception ends (its evidence lapses).
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The evidence an approval created (source `exception:<id>`).
    pub evidence_id: Option<String>,
    /// Reviewers and admins: the submitting client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submitted_by: Option<String>,
    /// Reviewers and admins: the principal behind the submitting client (it may not decide).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submitted_by_principal: Option<String>,
    /// Reviewers and admins: the approvals so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approvals: Option<Vec<ApprovalResponse>>,
    /// Reviewers and admins: who approved last or denied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
    /// Reviewers and admins: when the sealed text was purged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statements_purged_at: Option<DateTime<Utc>>,
    /// Reviewers and admins: who holds the sealed text past its retention
    /// (`POST /v1/exceptions/{eid}/retention`), and since when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_held_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_held_at: Option<DateTime<Utc>>,
    /// Sealed text: reviewers and admins, `GET /v1/exceptions/{eid}` only (audited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The reason given for a denial.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoke_reason: Option<String>,
    /// Why the sealed text is held past its retention.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_reason: Option<String>,
}

/// How much of a request a caller sees.
enum View {
    /// State only.
    Backend,
    /// State and who acted.
    Reviewer,
    /// Everything, sealed text opened.
    Sealed(Opened),
}

impl View {
    fn for_caller(caller: &Caller) -> View {
        if caller.is(Role::Admin) || caller.is(Role::Reviewer) {
            View::Reviewer
        } else {
            View::Backend
        }
    }
}

/// `key` (`exceptions::sealing_key`) opens the category: every caller that sees a request sees
/// its category, as before it was sealed.
/// The 200 a reviewer's action answers with: the request as reviewers see it.
fn reviewed(
    state: &AppState,
    key: &MasterKey,
    outcome: exceptions::Outcome,
    now: DateTime<Utc>,
) -> ApiResult<HttpResponse> {
    let response = respond(
        key,
        outcome.exception,
        outcome.approvals,
        &state.settings.exceptions,
        now,
        View::Reviewer,
    )?;
    Ok(HttpResponse::Ok().json(response))
}

fn respond(
    key: &MasterKey,
    row: exception_request::Model,
    approvals: Vec<exception_approval::Model>,
    settings: &ExceptionSettings,
    now: DateTime<Utc>,
    view: View,
) -> ApiResult<ExceptionResponse> {
    let category = exceptions::category(key, &row)?;
    let status = exceptions::status(&row, now)?;
    let row_parts = ReviewerParts {
        submitted_by: row.submitted_by,
        submitted_by_principal: row.submitted_by_principal,
        decided_by: row.decided_by,
        revoked_by: row.revoked_by,
        purged_at: row.purged_at,
        retention_held_by: row.retention_hold_by,
        retention_held_at: row.retention_hold_at,
    };
    let mut response = ExceptionResponse {
        id: row.id,
        account_id: row.account_id,
        category,
        status,
        submitted_at: row.submitted_at,
        approvals_required: exceptions::required_approvals(settings, category),
        approvals_received: u32::try_from(approvals.len()).unwrap_or(u32::MAX),
        decided_at: row.decided_at,
        expires_at: row.expires_at,
        revoked_at: row.revoked_at,
        evidence_id: row.evidence_id,
        submitted_by: None,
        submitted_by_principal: None,
        approvals: None,
        decided_by: None,
        revoked_by: None,
        statements_purged_at: None,
        retention_held_by: None,
        retention_held_at: None,
        statement: None,
        organization: None,
        reference: None,
        decision_reason: None,
        revoke_reason: None,
        retention_reason: None,
    };
    match view {
        View::Backend => {}
        View::Reviewer => reviewer_fields(&mut response, row_parts, approvals, None),
        View::Sealed(opened) => reviewer_fields(&mut response, row_parts, approvals, Some(opened)),
    }
    Ok(response)
}

/// Who acted, the approvals, and (opened) the sealed text: for reviewers and admins.
fn reviewer_fields(
    response: &mut ExceptionResponse,
    row: ReviewerParts,
    approvals: Vec<exception_approval::Model>,
    opened: Option<Opened>,
) {
    let mut reasons: HashMap<String, Option<String>> = HashMap::new();
    if let Some(opened) = opened {
        response.statement = opened.statement;
        response.organization = opened.organization;
        response.reference = opened.reference;
        response.decision_reason = opened.decision_reason;
        response.revoke_reason = opened.revoke_reason;
        response.retention_reason = opened.retention_reason;
        reasons = opened.approval_reasons.into_iter().collect();
    }
    response.submitted_by = Some(row.submitted_by);
    response.submitted_by_principal = Some(row.submitted_by_principal);
    response.decided_by = row.decided_by;
    response.revoked_by = row.revoked_by;
    response.statements_purged_at = row.purged_at;
    response.retention_held_by = row.retention_held_by;
    response.retention_held_at = row.retention_held_at;
    response.approvals = Some(
        approvals
            .into_iter()
            .map(|a| ApprovalResponse {
                reason: reasons.remove(&a.id).flatten(),
                reviewer: a.reviewer,
                principal: a.reviewer_principal,
                approved_at: a.approved_at,
                expires_at: a.expires_at,
            })
            .collect(),
    );
}

/// The parts of a request only reviewers and admins see.
struct ReviewerParts {
    submitted_by: String,
    submitted_by_principal: String,
    decided_by: Option<String>,
    revoked_by: Option<String>,
    purged_at: Option<DateTime<Utc>>,
    retention_held_by: Option<String>,
    retention_held_at: Option<DateTime<Utc>>,
}

fn actor(caller: &Caller) -> Actor<'_> {
    Actor {
        name: &caller.name,
        client_id: &caller.client_id,
        principal: &caller.principal,
        key_created_by: &caller.created_by,
    }
}

/// Submit a nonprofit or dissident exception request for an account.
///
/// The statement, organization and reference are sealed before they are stored. At most one
/// request per account and category is open at a time.
#[utoipa::path(
    tag = "exceptions",
    extensions(("x-vouch-roles" = json!(roles::BACKEND))),
    params(("id" = String, Path, description = "Account id")),
    request_body(content = SubmitExceptionRequest, example = json!(examples::submit_exception())),
    responses(
        (status = 201, description = "Submitted; pending review", body = ExceptionResponse,
            example = json!(examples::exception())),
        (status = 400, description = "`invalid_statement`, `invalid_organization`, `invalid_reference`, `invalid_body`"),
        (status = 404, description = "`account_not_found`"),
        (status = 409, description = "`exception_pending`: the account has an open request in this category (its id in `exception_id`)"),
    ),
    security(("api_key" = []))
)]
#[post("/v1/accounts/{id}/exceptions")]
pub async fn post_exception(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: Json<SubmitExceptionRequest>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::BACKEND)?;
    let submission = Submission::try_from(body.into_inner())?;
    let account_id = AccountId::parse(&id)?;
    let key = exceptions::sealing_key(&state.master_key);
    let now = state.now();
    let txn = state.db.begin_write().await?;
    let row = exceptions::submit(&*txn, &key, actor(&caller), &account_id, submission, now).await?;
    txn.commit().await?;
    let location = format!("/v1/exceptions/{}", row.id);
    let response = respond(
        &key,
        row,
        Vec::new(),
        &state.settings.exceptions,
        now,
        View::for_caller(&caller),
    )?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", location))
        .json(response))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExceptionListQuery {
    /// e.g. `pending` for the review queue.
    pub status: Option<ExceptionStatus>,
    pub category: Option<Category>,
    /// Only this account's requests.
    pub account_id: Option<String>,
    /// Only approved exceptions that end within this many days (1–3650).
    #[param(minimum = 1, maximum = 3650)]
    pub expiring_within_days: Option<u32>,
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u64>,
    /// `next_cursor` from the previous page.
    #[param(pattern = r"^([A-Za-z0-9_-]{4}){0,42}([A-Za-z0-9_-]{2,3})?$")]
    pub cursor: Option<String>,
}

/// The review queue: exception requests, oldest first, without their sealed text.
#[utoipa::path(
    tag = "exceptions",
    extensions(("x-vouch-roles" = json!(roles::REVIEWER))),
    params(ExceptionListQuery),
    responses(
        (status = 200, description = "A page of requests, oldest first, without their sealed text", body = Page<ExceptionResponse>,
            example = json!(examples::exceptions())),
        (status = 400, description = "`invalid_query`, `invalid_expiring_within_days`, `invalid_limit`, `invalid_cursor`"),
    ),
    security(("api_key" = []))
)]
#[get("/v1/exceptions")]
pub async fn get_exceptions(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ExceptionListQuery>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::REVIEWER)?;
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor.clone(),
    };
    let limit = page.limit()?;
    let after = page.after()?;
    let expiring_within = query
        .expiring_within_days
        .map(|days| {
            if (1..=3650).contains(&days) {
                Ok(Duration::days(i64::from(days)))
            } else {
                Err(ApiError::bad_request(
                    ErrorCode::InvalidExpiringWithinDays,
                    "expiring_within_days must be between 1 and 3650",
                ))
            }
        })
        .transpose()?;
    let filter = Filter {
        status: query.status,
        category: query.category,
        account_id: query.account_id.clone(),
        expiring_within,
    };
    let now = state.now();
    let conn = state.db.conn();
    let key = exceptions::sealing_key(&state.master_key);
    let rows = exceptions::list(conn, &key, &filter, now, after.as_deref(), limit + 1).await?;
    let mut approvals: HashMap<String, Vec<exception_approval::Model>> = HashMap::new();
    let ids = rows
        .iter()
        .take(limit as usize)
        .map(|r| r.id.clone())
        .collect();
    for a in exceptions::approvals_of_many(conn, ids).await? {
        approvals.entry(a.exception_id.clone()).or_default().push(a);
    }
    let page = Page::from_rows(
        rows,
        limit,
        |r| r.id.clone(),
        |r| {
            let of = approvals.get(&r.id).cloned().unwrap_or_default();
            respond(&key, r, of, &state.settings.exceptions, now, View::Reviewer)
        },
    );
    Ok(HttpResponse::Ok().json(Page {
        items: page.items.into_iter().collect::<ApiResult<Vec<_>>>()?,
        next_cursor: page.next_cursor,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExceptionQuery {
    /// Reviewers and admins: `false` leaves the sealed text closed (who acted and the approvals
    /// only; no `exception.statement_read` entry). Default `true`.
    pub sealed: Option<bool>,
}

/// One exception request.
///
/// Reviewers and admins get the sealed text (statement, organization, reference, reasons), and
/// each such read writes an `exception.statement_read` audit entry; with `sealed=false` they get
/// everything else, and nothing is opened or audited. Backends get its state only.
#[utoipa::path(
    tag = "exceptions",
    extensions(("x-vouch-roles" = json!(roles::BACKEND_REVIEWER))),
    params(("eid" = String, Path, description = "Exception id"), ExceptionQuery),
    responses(
        (status = 200, description = "The request; for reviewers and admins with its sealed text opened (unless `sealed=false`)", body = ExceptionResponse,
            example = json!(examples::exception_opened())),
        (status = 404, description = "`exception_not_found`"),
    ),
    security(("api_key" = []))
)]
#[get("/v1/exceptions/{eid}")]
pub async fn get_exception(
    state: web::Data<AppState>,
    caller: Caller,
    eid: web::Path<String>,
    query: web::Query<ExceptionQuery>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::BACKEND_REVIEWER)?;
    let now = state.now();
    let settings = &state.settings.exceptions;
    let view = View::for_caller(&caller);
    let open_sealed = matches!(view, View::Reviewer) && query.sealed != Some(false);
    let key = exceptions::sealing_key(&state.master_key);
    let response = if open_sealed {
        let txn = state.db.begin_write().await?;
        let row = exceptions::require(&*txn, &eid).await?;
        let approvals = exceptions::approvals_of(&*txn, &row.id).await?;
        let opened =
            exceptions::read_sealed(&*txn, &key, actor(&caller), &row, &approvals, now).await?;
        txn.commit().await?;
        if !opened.fields().is_empty() {
            state.metrics.exception_revealed(&caller.name);
        }
        respond(&key, row, approvals, settings, now, View::Sealed(opened))?
    } else {
        let conn = state.db.conn();
        let row = exceptions::require(conn, &eid).await?;
        let approvals = exceptions::approvals_of(conn, &row.id).await?;
        respond(&key, row, approvals, settings, now, view)?
    };
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(response))
}

/// Approve or deny a pending request.
///
/// The client that submitted it may never decide it. Each approval is recorded; once the
/// category's number of distinct reviewers (`exceptions.approvals.*`) approved, the request is
/// approved and `nonprofit`/`dissident` evidence created until `expires_at`. A denial is final.
#[utoipa::path(
    tag = "exceptions",
    extensions(("x-vouch-roles" = json!(roles::REVIEWER))),
    params(("eid" = String, Path, description = "Exception id")),
    request_body(content = DecisionRequest, example = json!(examples::decision())),
    responses(
        (status = 200, description = "The request's new state: `pending` (approval recorded, more needed), `approved` or `denied`", body = ExceptionResponse,
            example = json!(examples::approved_exception())),
        (status = 400, description = "`invalid_reason`, `invalid_expires_at` (in the past, too far ahead, or on a denial)"),
        (status = 403, description = "`four_eyes`: this client submitted the request; `forbidden`: the role may not decide"),
        (status = 404, description = "`exception_not_found`"),
        (status = 409, description = "`already_approved`: this reviewer approved it already; `exception_decided`: it is no longer pending (its `exception_status` included)"),
    ),
    security(("api_key" = []))
)]
#[post("/v1/exceptions/{eid}/decision")]
pub async fn post_exception_decision(
    state: web::Data<AppState>,
    caller: Caller,
    eid: web::Path<String>,
    body: Json<DecisionRequest>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::REVIEWER)?;
    let decision = Decision::try_from(body.into_inner())?;
    let key = exceptions::sealing_key(&state.master_key);
    let now = state.now();
    let settings = &state.settings.exceptions;
    let txn = state.db.begin_write().await?;
    let outcome =
        exceptions::decide(&*txn, &key, settings, actor(&caller), &eid, decision, now).await?;
    if let Some(account_id) = &outcome.changed_account {
        decisions::reconcile(
            &*txn,
            &state.policy,
            &state.master_key,
            now,
            account_id,
            Cause::Evidence,
        )
        .await?;
    }
    txn.commit().await?;
    if let Some(account_id) = &outcome.changed_account {
        state.account_changed(account_id);
    }
    let response = respond(
        &key,
        outcome.exception,
        outcome.approvals,
        settings,
        now,
        View::Reviewer,
    )?;
    Ok(HttpResponse::Ok().json(response))
}

/// Revoke an approved exception: its evidence is revoked at once, so tokens issued on it stop
/// passing the authorize check.
#[utoipa::path(
    tag = "exceptions",
    extensions(("x-vouch-roles" = json!(roles::REVIEWER))),
    params(("eid" = String, Path, description = "Exception id")),
    request_body(content = RevokeExceptionRequest, example = json!(examples::revoke_exception())),
    responses(
        (status = 200, description = "Revoked; its evidence is revoked at once", body = ExceptionResponse,
            example = json!(examples::revoked_exception())),
        (status = 400, description = "`invalid_reason`"),
        (status = 404, description = "`exception_not_found`"),
        (status = 409, description = "`exception_not_approved`: only an approved (or expired) exception can be revoked (its `exception_status` included)"),
    ),
    security(("api_key" = []))
)]
#[post("/v1/exceptions/{eid}/revoke")]
pub async fn post_exception_revoke(
    state: web::Data<AppState>,
    caller: Caller,
    eid: web::Path<String>,
    body: Json<RevokeExceptionRequest>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::REVIEWER)?;
    let reason = invalid_reason(Reason::parse(&body.reason))?;
    let key = exceptions::sealing_key(&state.master_key);
    let now = state.now();
    let txn = state.db.begin_write().await?;
    let outcome = exceptions::revoke(&*txn, &key, actor(&caller), &eid, &reason, now).await?;
    if let Some(account_id) = &outcome.changed_account {
        let cause = Cause::ExceptionRevoked;
        decisions::reconcile(
            &*txn,
            &state.policy,
            &state.master_key,
            now,
            account_id,
            cause,
        )
        .await?;
    }
    txn.commit().await?;
    if let Some(account_id) = &outcome.changed_account {
        state.account_changed(account_id);
    }
    reviewed(&state, &key, outcome, now)
}

/// Hold a request's sealed text past its retention, or release it.
///
/// Sealed text is purged `exceptions.retention_approved_days` after an approved exception
/// ended and `exceptions.retention_denied_days` after a denial. A hold (with a reason, sealed)
/// keeps it until released; both are audited (`exception.retention_held`,
/// `exception.retention_released`).
#[utoipa::path(
    tag = "exceptions",
    extensions(("x-vouch-roles" = json!(roles::REVIEWER))),
    params(("eid" = String, Path, description = "Exception id")),
    request_body(content = RetentionRequest, example = json!(examples::retention_hold())),
    responses(
        (status = 200, description = "The request, with `retention_held_by`/`retention_held_at` set or cleared", body = ExceptionResponse,
            example = json!(examples::retention_held())),
        (status = 400, description = "`invalid_reason`: missing to hold, given to release, or not 1–2,000 characters"),
        (status = 404, description = "`exception_not_found`"),
        (status = 409, description = "`exception_purged`: the sealed text is gone already"),
    ),
    security(("api_key" = []))
)]
#[post("/v1/exceptions/{eid}/retention")]
pub async fn post_exception_retention(
    state: web::Data<AppState>,
    caller: Caller,
    eid: web::Path<String>,
    body: Json<RetentionRequest>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::REVIEWER)?;
    let body = body.into_inner();
    let reason = match (body.keep, body.reason) {
        (true, Some(reason)) => Some(invalid_reason(Reason::parse(&reason))?),
        (true, None) => {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidReason,
                "a hold needs a reason",
            ))
        }
        (false, None) => None,
        (false, Some(_)) => {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidReason,
                "only a hold carries a reason; release without one",
            ))
        }
    };
    let key = exceptions::sealing_key(&state.master_key);
    let now = state.now();
    let txn = state.db.begin_write().await?;
    let outcome =
        exceptions::set_hold(&*txn, &key, actor(&caller), &eid, reason.as_ref(), now).await?;
    txn.commit().await?;
    reviewed(&state, &key, outcome, now)
}

/// Who revealed a request's sealed text, and when (admin).
///
/// Every `GET /v1/exceptions/{eid}` that opened sealed text, newest first, from the audit log:
/// the reviewing client, the person behind its key, and the fields opened. The reads outlive
/// the request: after the account is erased they are still listed.
#[utoipa::path(
    tag = "exceptions",
    extensions(("x-vouch-roles" = json!(roles::ADMIN))),
    params(("eid" = String, Path, description = "Exception id"), PageQuery),
    responses(
        (status = 200, description = "Who opened the request's sealed text, newest first", body = Page<RevealResponse>,
            example = json!(examples::reveals())),
        (status = 400, description = "`invalid_limit`, `invalid_cursor`"),
        (status = 404, description = "`exception_not_found`: no such request, and no reads of one"),
    ),
    security(("api_key" = []))
)]
#[get("/v1/exceptions/{eid}/reveals")]
pub async fn get_exception_reveals(
    state: web::Data<AppState>,
    caller: Caller,
    eid: web::Path<String>,
    query: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    caller.require(roles::ADMIN)?;
    let limit = query.limit()?;
    let before = query
        .after()?
        .map(|s| s.parse::<i64>())
        .transpose()
        .map_err(|_| {
            ApiError::bad_request(ErrorCode::InvalidCursor, "cursor is not one we issued")
        })?;
    let conn = state.db.conn();
    let rows = exceptions::reveals(conn, &eid, before, limit + 1).await?;
    if rows.is_empty() && before.is_none() {
        exceptions::require(conn, &eid).await?;
    }
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(Page::from_rows(
            rows,
            limit,
            |e| e.seq.to_string(),
            RevealResponse::from,
        )))
}

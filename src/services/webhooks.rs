//! Webhook endpoints, the event outbox and deliveries: the only code that reads or writes their
//! tables. Claims work like the verification outbox's: `FOR UPDATE SKIP LOCKED` on PostgreSQL
//! (instances never claim the same row), SQLite's single writer elsewhere, and a lease after
//! which another worker may take over a delivery whose worker died.

use crate::error::ErrorCode;
use crate::services::audit::{AuditAction, AuditTarget};
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entities::{webhook_delivery, webhook_endpoint, webhook_event};
use sea_orm::{
    sea_query::{Expr, ExprTrait, LockBehavior, LockType, Query},
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde_json::json;

use super::audit::{self, Entry};
use crate::{
    crypto::MasterKey,
    domain::ids::new_id,
    error::ApiError,
    events::{signature, Event, EVENT_TYPES},
};

pub const ENDPOINT_PREFIX: &str = "whk";
pub const EVENT_PREFIX: &str = "msg";
pub const DELIVERY_PREFIX: &str = "whd";

/// An endpoint's state, as stored in `webhook_endpoint.status`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString, strum::Display,
)]
#[strum(serialize_all = "snake_case")]
pub enum EndpointStatus {
    Enabled,
    Disabled,
}

impl EndpointStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl From<EndpointStatus> for sea_orm::Value {
    fn from(status: EndpointStatus) -> Self {
        status.as_str().into()
    }
}

/// A delivery's state, as stored in `webhook_delivery.status`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString, strum::Display,
)]
#[strum(serialize_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Sending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl From<DeliveryStatus> for sea_orm::Value {
    fn from(status: DeliveryStatus) -> Self {
        status.as_str().into()
    }
}

/// How long the previous secret keeps signing after a rotation.
pub const ROTATION_OVERLAP_HOURS: i64 = 24;

const SEAL_PURPOSE: &str = "vouch webhook secrets v1";

fn seal_key(master: &MasterKey) -> MasterKey {
    master.derive(SEAL_PURPOSE)
}

fn current_aad(id: &str) -> String {
    format!("{id}:current")
}

fn previous_aad(id: &str) -> String {
    format!("{id}:previous")
}

/// Scheme, host and port only: a receiver's path or query may carry a token of its own, which
/// the audit log must not keep.
fn url_origin(url: &str) -> String {
    reqwest::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default()
}

/// The event types an endpoint receives (`None` stored: all of them).
pub fn endpoint_events(endpoint: &webhook_endpoint::Model) -> Vec<String> {
    endpoint
        .events
        .as_deref()
        .and_then(|e| serde_json::from_str::<Vec<String>>(e).ok())
        .unwrap_or_else(|| EVENT_TYPES.iter().map(|t| (*t).to_owned()).collect())
}

fn subscribes(endpoint: &webhook_endpoint::Model, event_type: &str) -> bool {
    endpoint.status == EndpointStatus::Enabled.as_str()
        && endpoint_events(endpoint).iter().any(|t| t == event_type)
}

/// Check an events filter: known types, no duplicates kept, at least one.
pub fn validate_events(events: &[String]) -> Result<Vec<String>, ApiError> {
    if events.is_empty() {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidEventType,
            "events must name at least one event type (leave it out for all)",
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(events.len());
    for e in events {
        if !EVENT_TYPES.contains(&e.as_str()) {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidEventType,
                format!(
                    "events may only name these types: {}",
                    EVENT_TYPES.join(", ")
                ),
            ));
        }
        if !out.contains(e) {
            out.push(e.clone());
        }
    }
    Ok(out)
}

/// The keys deliveries are signed with now: the current secret, and the previous one while a
/// rotation overlaps.
pub fn signing_keys(
    master: &MasterKey,
    endpoint: &webhook_endpoint::Model,
    now: DateTime<Utc>,
) -> Vec<Vec<u8>> {
    let key = seal_key(master);
    let mut keys = Vec::with_capacity(2);
    let open = |aad: String, sealed: &str| {
        key.open(&aad, sealed)
            .ok()
            .and_then(|plain| String::from_utf8(plain).ok())
            .and_then(|secret| signature::secret_key(&secret))
    };
    if let Some(k) = open(current_aad(&endpoint.id), &endpoint.secret_sealed) {
        keys.push(k);
    }
    if let (Some(sealed), Some(until)) = (
        endpoint.previous_secret_sealed.as_deref(),
        endpoint.previous_secret_expires_at,
    ) {
        if until > now {
            if let Some(k) = open(previous_aad(&endpoint.id), sealed) {
                keys.push(k);
            }
        }
    }
    keys
}

/// Create an endpoint (the URL already checked); returns it with its secret, shown once.
pub async fn create_endpoint(
    conn: &impl ConnectionTrait,
    master: &MasterKey,
    actor: &str,
    url: &str,
    description: Option<&str>,
    events: Option<Vec<String>>,
    now: DateTime<Utc>,
) -> Result<(webhook_endpoint::Model, String), ApiError> {
    let id = new_id(ENDPOINT_PREFIX);
    let secret = signature::generate_secret();
    let events = events
        .map(|e| serde_json::to_string(&e))
        .transpose()
        .map_err(ApiError::internal)?;
    let model = webhook_endpoint::Model {
        secret_sealed: seal_key(master).seal(&current_aad(&id), secret.as_bytes()),
        id,
        url: url.to_owned(),
        description: description.map(str::to_owned),
        events,
        status: EndpointStatus::Enabled.to_string(),
        previous_secret_sealed: None,
        previous_secret_expires_at: None,
        created_by: actor.to_owned(),
        created_at: now,
        updated_at: now,
        disabled_at: None,
    };
    webhook_endpoint::Entity::insert(model.clone().into_active_model().reset_all())
        .exec_without_returning(conn)
        .await?;
    audit::append(
        conn,
        now,
        Entry {
            actor,
            action: AuditAction::WebhookCreated,
            target_type: AuditTarget::Webhook,
            target_id: &model.id,
            details: json!({"url": url_origin(&model.url), "events": endpoint_events(&model)}),
        },
    )
    .await?;
    Ok((model, secret))
}

pub async fn get_endpoint(
    conn: &impl ConnectionTrait,
    id: &str,
) -> Result<Option<webhook_endpoint::Model>, DbErr> {
    webhook_endpoint::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await
}

pub fn not_found() -> ApiError {
    ApiError::not_found(
        ErrorCode::WebhookNotFound,
        "no webhook endpoint with this id",
    )
}

pub async fn require_endpoint(
    conn: &impl ConnectionTrait,
    id: &str,
) -> Result<webhook_endpoint::Model, ApiError> {
    get_endpoint(conn, id).await?.ok_or_else(not_found)
}

pub async fn list_endpoints(
    conn: &impl ConnectionTrait,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<webhook_endpoint::Model>, DbErr> {
    let mut q = webhook_endpoint::Entity::find().order_by_asc(webhook_endpoint::Column::Id);
    if let Some(after) = after {
        q = q.filter(webhook_endpoint::Column::Id.gt(after));
    }
    q.limit(limit).all(conn).await
}

/// Delete an endpoint and its deliveries (events no endpoint waits for are pruned later).
pub async fn delete_endpoint(
    conn: &impl ConnectionTrait,
    actor: &str,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let endpoint = require_endpoint(conn, id).await?;
    webhook_delivery::Entity::delete_many()
        .filter(webhook_delivery::Column::EndpointId.eq(id))
        .exec(conn)
        .await?;
    webhook_endpoint::Entity::delete_by_id(id.to_owned())
        .exec(conn)
        .await?;
    audit::append(
        conn,
        now,
        Entry {
            actor,
            action: AuditAction::WebhookDeleted,
            target_type: AuditTarget::Webhook,
            target_id: id,
            details: json!({"url": url_origin(&endpoint.url)}),
        },
    )
    .await?;
    Ok(())
}

/// A new secret, returned once; the one it replaces keeps signing for 24 h beside it.
pub async fn rotate_secret(
    conn: &impl ConnectionTrait,
    master: &MasterKey,
    actor: &str,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(webhook_endpoint::Model, String), ApiError> {
    let endpoint = require_endpoint(conn, id).await?;
    let key = seal_key(master);
    let old = key
        .open(&current_aad(id), &endpoint.secret_sealed)
        .map_err(ApiError::internal)?;
    let secret = signature::generate_secret();
    let until = now + chrono::Duration::hours(ROTATION_OVERLAP_HOURS);
    let mut active = endpoint.into_active_model();
    active.secret_sealed = Set(key.seal(&current_aad(id), secret.as_bytes()));
    active.previous_secret_sealed = Set(Some(key.seal(&previous_aad(id), &old)));
    active.previous_secret_expires_at = Set(Some(until));
    active.updated_at = Set(now);
    let endpoint = active.update(conn).await?;
    audit::append(
        conn,
        now,
        Entry {
            actor,
            action: AuditAction::WebhookSecretRotated,
            target_type: AuditTarget::Webhook,
            target_id: id,
            details: json!({"previous_secret_until": until}),
        },
    )
    .await?;
    Ok((endpoint, secret))
}

async fn insert_event(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    event: &Event,
) -> Result<webhook_event::Model, DbErr> {
    let row = webhook_event::Model {
        id: new_id(EVENT_PREFIX),
        event_type: event.event_type().to_owned(),
        body: event.body(now),
        created_at: now,
        traceparent: crate::telemetry::traces::traceparent(),
    };
    webhook_event::Entity::insert(row.clone().into_active_model().reset_all())
        .exec_without_returning(conn)
        .await?;
    Ok(row)
}

async fn insert_delivery(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    event: &webhook_event::Model,
    endpoint_id: &str,
) -> Result<webhook_delivery::Model, DbErr> {
    let row = webhook_delivery::Model {
        id: new_id(DELIVERY_PREFIX),
        endpoint_id: endpoint_id.to_owned(),
        event_id: event.id.clone(),
        event_type: event.event_type.clone(),
        status: DeliveryStatus::Pending.to_string(),
        attempts: 0,
        next_attempt_at: now,
        last_status_code: None,
        last_error: None,
        created_at: now,
        updated_at: now,
        delivered_at: None,
    };
    webhook_delivery::Entity::insert(row.clone().into_active_model().reset_all())
        .exec_without_returning(conn)
        .await?;
    Ok(row)
}

/// Store an event and a delivery to every enabled endpoint subscribed to its type; returns the
/// event and how many deliveries were queued.
pub async fn emit(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    event: &Event,
) -> Result<(webhook_event::Model, usize), DbErr> {
    let endpoints = webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::Status.eq(EndpointStatus::Enabled))
        .order_by_asc(webhook_endpoint::Column::Id)
        .all(conn)
        .await?;
    let row = insert_event(conn, now, event).await?;
    let mut queued = 0;
    for endpoint in endpoints
        .iter()
        .filter(|e| subscribes(e, event.event_type()))
    {
        insert_delivery(conn, now, &row, &endpoint.id).await?;
        queued += 1;
    }
    Ok((row, queued))
}

/// Queue `event` for one endpoint only (the test ping), whatever its filter says.
pub async fn emit_to(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    event: &Event,
    endpoint_id: &str,
) -> Result<(webhook_event::Model, webhook_delivery::Model), DbErr> {
    let row = insert_event(conn, now, event).await?;
    let delivery = insert_delivery(conn, now, &row, endpoint_id).await?;
    Ok((row, delivery))
}

pub async fn get_event(
    conn: &impl ConnectionTrait,
    id: &str,
) -> Result<Option<webhook_event::Model>, DbErr> {
    webhook_event::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await
}

/// An endpoint's deliveries, newest first.
pub async fn list_deliveries(
    conn: &impl ConnectionTrait,
    endpoint_id: &str,
    before: Option<&str>,
    limit: u64,
) -> Result<Vec<webhook_delivery::Model>, DbErr> {
    let mut q = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::EndpointId.eq(endpoint_id))
        .order_by_desc(webhook_delivery::Column::Id);
    if let Some(before) = before {
        q = q.filter(webhook_delivery::Column::Id.lt(before));
    }
    q.limit(limit).all(conn).await
}

fn due(now: DateTime<Utc>) -> sea_orm::Select<webhook_delivery::Entity> {
    webhook_delivery::Entity::find()
        .filter(
            webhook_delivery::Column::Status
                .is_in([DeliveryStatus::Pending, DeliveryStatus::Sending]),
        )
        .filter(webhook_delivery::Column::NextAttemptAt.lte(now))
}

/// Whether any delivery is due (a cheap read before taking a write transaction).
pub async fn has_due(conn: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<bool, DbErr> {
    Ok(due(now).limit(1).one(conn).await?.is_some())
}

/// Claim up to `limit` due deliveries, at most `per_endpoint` in flight to any one endpoint
/// counting the `in_flight` ones already there: each is marked `sending` until `lease_until`
/// and its attempt counted.
pub async fn claim(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u64,
    in_flight: &HashMap<String, usize>,
    per_endpoint: usize,
) -> Result<Vec<webhook_delivery::Model>, DbErr> {
    let busy: Vec<&str> = in_flight
        .iter()
        .filter(|(_, n)| **n >= per_endpoint)
        .map(|(id, _)| id.as_str())
        .collect();
    let mut q = due(now);
    if !busy.is_empty() {
        q = q.filter(webhook_delivery::Column::EndpointId.is_not_in(busy));
    }
    // SQLite ignores the lock clause; its single writer already serialises claims.
    let rows = q
        .order_by_asc(webhook_delivery::Column::NextAttemptAt)
        .limit(Ord::min(limit.saturating_mul(4), 400))
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .all(conn)
        .await?;
    let mut counts = in_flight.clone();
    let mut claimed = Vec::new();
    for mut row in rows {
        if claimed.len() as u64 >= limit {
            break;
        }
        let count = counts.entry(row.endpoint_id.clone()).or_default();
        if *count >= per_endpoint {
            continue;
        }
        let res = webhook_delivery::Entity::update_many()
            .col_expr(
                webhook_delivery::Column::Status,
                Expr::value(DeliveryStatus::Sending),
            )
            .col_expr(
                webhook_delivery::Column::Attempts,
                Expr::col(webhook_delivery::Column::Attempts).add(1),
            )
            .col_expr(
                webhook_delivery::Column::NextAttemptAt,
                Expr::value(lease_until),
            )
            .col_expr(webhook_delivery::Column::UpdatedAt, Expr::value(now))
            .filter(webhook_delivery::Column::Id.eq(row.id.as_str()))
            .filter(webhook_delivery::Column::Attempts.eq(row.attempts))
            .exec(conn)
            .await?;
        if res.rows_affected == 1 {
            *count += 1;
            row.status = DeliveryStatus::Sending.to_string();
            row.attempts += 1;
            row.next_attempt_at = lease_until;
            claimed.push(row);
        }
    }
    Ok(claimed)
}

/// What happened to one attempt.
pub enum Outcome<'a> {
    Delivered {
        status_code: i32,
    },
    Retry {
        at: DateTime<Utc>,
        status_code: Option<i32>,
        error: &'a str,
    },
    Failed {
        status_code: Option<i32>,
        error: &'a str,
    },
}

/// Record an attempt on a delivery this worker holds (still `sending`, same attempt); `false`
/// if another worker took it over meanwhile.
pub async fn record(
    conn: &impl ConnectionTrait,
    claimed: &webhook_delivery::Model,
    outcome: Outcome<'_>,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let mut update = webhook_delivery::Entity::update_many()
        .col_expr(webhook_delivery::Column::UpdatedAt, Expr::value(now));
    update = match outcome {
        Outcome::Delivered { status_code } => update
            .col_expr(
                webhook_delivery::Column::Status,
                Expr::value(DeliveryStatus::Delivered),
            )
            .col_expr(webhook_delivery::Column::DeliveredAt, Expr::value(now))
            .col_expr(
                webhook_delivery::Column::LastStatusCode,
                Expr::value(status_code),
            )
            .col_expr(
                webhook_delivery::Column::LastError,
                Expr::value(Option::<String>::None),
            ),
        Outcome::Retry {
            at,
            status_code,
            error,
        } => update
            .col_expr(
                webhook_delivery::Column::Status,
                Expr::value(DeliveryStatus::Pending),
            )
            .col_expr(webhook_delivery::Column::NextAttemptAt, Expr::value(at))
            .col_expr(
                webhook_delivery::Column::LastStatusCode,
                Expr::value(status_code),
            )
            .col_expr(webhook_delivery::Column::LastError, Expr::value(error)),
        Outcome::Failed { status_code, error } => update
            .col_expr(
                webhook_delivery::Column::Status,
                Expr::value(DeliveryStatus::Failed),
            )
            .col_expr(
                webhook_delivery::Column::LastStatusCode,
                Expr::value(status_code),
            )
            .col_expr(webhook_delivery::Column::LastError, Expr::value(error)),
    };
    let res = update
        .filter(webhook_delivery::Column::Id.eq(claimed.id.as_str()))
        .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Sending))
        .filter(webhook_delivery::Column::Attempts.eq(claimed.attempts))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// The receiver answered 410 Gone: disable the endpoint and give up its waiting deliveries.
pub async fn disable_endpoint(
    conn: &impl ConnectionTrait,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let res = webhook_endpoint::Entity::update_many()
        .col_expr(
            webhook_endpoint::Column::Status,
            Expr::value(EndpointStatus::Disabled),
        )
        .col_expr(webhook_endpoint::Column::DisabledAt, Expr::value(now))
        .col_expr(webhook_endpoint::Column::UpdatedAt, Expr::value(now))
        .filter(webhook_endpoint::Column::Id.eq(id))
        .filter(webhook_endpoint::Column::Status.eq(EndpointStatus::Enabled))
        .exec(conn)
        .await?;
    webhook_delivery::Entity::update_many()
        .col_expr(
            webhook_delivery::Column::Status,
            Expr::value(DeliveryStatus::Failed),
        )
        .col_expr(
            webhook_delivery::Column::LastError,
            Expr::value("endpoint disabled"),
        )
        .col_expr(webhook_delivery::Column::UpdatedAt, Expr::value(now))
        .filter(webhook_delivery::Column::EndpointId.eq(id))
        .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending))
        .exec(conn)
        .await?;
    if res.rows_affected == 1 {
        audit::append(
            conn,
            now,
            Entry {
                actor: "system",
                action: AuditAction::WebhookDisabled,
                target_type: AuditTarget::Webhook,
                target_id: id,
                details: json!({"reason": "410 Gone"}),
            },
        )
        .await?;
    }
    Ok(())
}

fn settled_before(cutoff: DateTime<Utc>) -> sea_orm::Select<webhook_delivery::Entity> {
    webhook_delivery::Entity::find()
        .filter(
            webhook_delivery::Column::Status
                .is_in([DeliveryStatus::Delivered, DeliveryStatus::Failed]),
        )
        .filter(webhook_delivery::Column::UpdatedAt.lt(cutoff))
}

fn orphaned_events_before(cutoff: DateTime<Utc>) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(webhook_event::Column::CreatedAt.lt(cutoff))
        .add(
            webhook_event::Column::Id.not_in_subquery(
                Query::select()
                    .column(webhook_delivery::Column::EventId)
                    .from(webhook_delivery::Entity)
                    .to_owned(),
            ),
        )
}

/// Whether `prune` has anything to do (a read, so idle instances take no write lock).
pub async fn has_prunable(
    conn: &impl ConnectionTrait,
    cutoff: DateTime<Utc>,
) -> Result<bool, DbErr> {
    if settled_before(cutoff).limit(1).one(conn).await?.is_some() {
        return Ok(true);
    }
    Ok(webhook_event::Entity::find()
        .filter(orphaned_events_before(cutoff))
        .limit(1)
        .one(conn)
        .await?
        .is_some())
}

/// Delete deliveries settled before `cutoff`, then events no delivery refers to any more.
pub async fn prune(conn: &impl ConnectionTrait, cutoff: DateTime<Utc>) -> Result<u64, DbErr> {
    let deliveries = webhook_delivery::Entity::delete_many()
        .filter(
            webhook_delivery::Column::Status
                .is_in([DeliveryStatus::Delivered, DeliveryStatus::Failed]),
        )
        .filter(webhook_delivery::Column::UpdatedAt.lt(cutoff))
        .exec(conn)
        .await?;
    let events = webhook_event::Entity::delete_many()
        .filter(orphaned_events_before(cutoff))
        .exec(conn)
        .await?;
    Ok(deliveries.rows_affected + events.rows_affected)
}

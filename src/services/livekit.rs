//! LiveKit admissions and the removals outbox: the only code that reads or writes their tables.
//!
//! Every LiveKit token the exchange issues is remembered as an admission until it expires. When
//! the account stops being entitled (it lapses, is suspended or erased) or the Vouch token
//! behind an admission is revoked, a `RemoveParticipant` call is queued for each live admission
//! in the same transaction, so it can neither be lost nor be sent for a change that was rolled
//! back. One removal per room and identity waits at a time (a unique `pending_key`). Claims work
//! like the webhook outbox's: `FOR UPDATE SKIP LOCKED` on PostgreSQL, SQLite's single writer
//! elsewhere, and a lease after which another worker takes over.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use entities::{livekit_admission, livekit_removal, revoked_token};
use sea_orm::{
    sea_query::{Expr, ExprTrait, LockBehavior, LockType, OnConflict},
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect,
};
use tokio::sync::Notify;

use super::status_lists;
use crate::{
    crypto::sha256_hex, domain::ids::new_id, status_list::StatusValue, tokens::verify::Reason,
};

pub const ADMISSION_PREFIX: &str = "lka";
pub const REMOVAL_PREFIX: &str = "lkr";

pub const PENDING: &str = "pending";
pub const SENDING: &str = "sending";
pub const DONE: &str = "done";
pub const FAILED: &str = "failed";

/// Woken whenever a removal is queued in this process (its worker gives the commit a moment).
static QUEUED: LazyLock<Notify> = LazyLock::new(Notify::new);

/// What wakes this process's removal worker.
pub fn queued() -> &'static Notify {
    &QUEUED
}

/// Remember an admission.
#[allow(clippy::too_many_arguments)]
pub async fn admit(
    conn: &impl ConnectionTrait,
    id: &str,
    account_id: &str,
    room: &str,
    identity: &str,
    jti: &str,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let row = livekit_admission::Model {
        id: id.to_owned(),
        account_id: account_id.to_owned(),
        room: room.to_owned(),
        identity: identity.to_owned(),
        jti: jti.to_owned(),
        expires_at,
        created_at: now,
    };
    livekit_admission::Entity::insert(row.into_active_model().reset_all())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Inside the write transaction that records an admission: why it must be refused after all (a
/// revocation of its token, alone or with every token of the account issued before it, or a
/// loss of the right, that committed since the checks), if so. `iat`: the token's.
pub async fn refusal(
    conn: &impl ConnectionTrait,
    account_id: &str,
    jti: &str,
    iat: i64,
) -> Result<Option<Reason>, DbErr> {
    let revoked = revoked_token::Entity::find()
        .filter(revoked_token::Column::Jti.eq(jti))
        .one(conn)
        .await?
        .is_some();
    if revoked || super::revocations::account_revokes(conn, account_id, iat).await? {
        return Ok(Some(Reason::Revoked));
    }
    // No stored decision yet (never reconciled): the live check the caller made stands.
    Ok(match status_lists::value(conn, account_id).await? {
        Some(StatusValue::Suspended) => Some(Reason::AccountSuspended),
        Some(StatusValue::NotEntitled) => Some(Reason::NotEntitled),
        Some(StatusValue::Entitled) | None => None,
    })
}

/// The account is no longer entitled (or is being erased): queue a removal for each of its live
/// admissions and forget them. Returns how many removals were queued.
pub async fn remove_account(
    conn: &impl ConnectionTrait,
    account_id: &str,
    now: DateTime<Utc>,
) -> Result<usize, DbErr> {
    let which = Condition::all().add(livekit_admission::Column::AccountId.eq(account_id));
    remove_where(conn, which, now).await
}

/// The Vouch token `jti` was revoked: queue a removal for each live admission it bought.
pub async fn remove_token(
    conn: &impl ConnectionTrait,
    jti: &str,
    now: DateTime<Utc>,
) -> Result<usize, DbErr> {
    let which = Condition::all().add(livekit_admission::Column::Jti.eq(jti));
    remove_where(conn, which, now).await
}

async fn remove_where(
    conn: &impl ConnectionTrait,
    which: Condition,
    now: DateTime<Utc>,
) -> Result<usize, DbErr> {
    let admissions = livekit_admission::Entity::find()
        .filter(which.clone())
        .order_by_asc(livekit_admission::Column::Id)
        .all(conn)
        .await?;
    if admissions.is_empty() {
        return Ok(0);
    }
    let mut queued = 0;
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for a in admissions.iter().filter(|a| a.expires_at > now) {
        let key = (a.room.as_str(), a.identity.as_str());
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        enqueue(conn, &a.room, &a.identity, now).await?;
        queued += 1;
    }
    livekit_admission::Entity::delete_many()
        .filter(which)
        .exec(conn)
        .await?;
    if queued > 0 {
        QUEUED.notify_waiters();
    }
    Ok(queued)
}

fn pending_key(room: &str, identity: &str) -> String {
    let mut bytes = Vec::with_capacity(room.len() + identity.len() + 1);
    bytes.extend_from_slice(room.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(identity.as_bytes());
    sha256_hex(&bytes)
}

/// Queue a removal, unless one for the same room and identity is already waiting.
pub async fn enqueue(
    conn: &impl ConnectionTrait,
    room: &str,
    identity: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let row = livekit_removal::Model {
        id: new_id(REMOVAL_PREFIX),
        room: room.to_owned(),
        identity: identity.to_owned(),
        pending_key: Some(pending_key(room, identity)),
        status: PENDING.to_owned(),
        attempts: 0,
        next_attempt_at: now,
        last_status_code: None,
        last_error: None,
        created_at: now,
        updated_at: now,
    };
    livekit_removal::Entity::insert(row.into_active_model().reset_all())
        .on_conflict(
            OnConflict::column(livekit_removal::Column::PendingKey)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

fn due(now: DateTime<Utc>) -> sea_orm::Select<livekit_removal::Entity> {
    livekit_removal::Entity::find()
        .filter(livekit_removal::Column::Status.is_in([PENDING, SENDING]))
        .filter(livekit_removal::Column::NextAttemptAt.lte(now))
}

/// Whether any removal is due (a cheap read before taking a write transaction).
pub async fn has_due(conn: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<bool, DbErr> {
    Ok(due(now).limit(1).one(conn).await?.is_some())
}

/// Claim up to `limit` due removals: each is marked `sending` until `lease_until` and its
/// attempt counted.
pub async fn claim(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<livekit_removal::Model>, DbErr> {
    // SQLite ignores the lock clause; its single writer already serialises claims.
    let rows = due(now)
        .order_by_asc(livekit_removal::Column::NextAttemptAt)
        .limit(limit)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .all(conn)
        .await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for mut row in rows {
        let res = livekit_removal::Entity::update_many()
            .col_expr(livekit_removal::Column::Status, Expr::value(SENDING))
            .col_expr(
                livekit_removal::Column::Attempts,
                Expr::col(livekit_removal::Column::Attempts).add(1),
            )
            .col_expr(
                livekit_removal::Column::NextAttemptAt,
                Expr::value(lease_until),
            )
            .col_expr(livekit_removal::Column::UpdatedAt, Expr::value(now))
            .filter(livekit_removal::Column::Id.eq(row.id.as_str()))
            .filter(livekit_removal::Column::Attempts.eq(row.attempts))
            .exec(conn)
            .await?;
        if res.rows_affected == 1 {
            row.status = SENDING.to_owned();
            row.attempts += 1;
            row.next_attempt_at = lease_until;
            claimed.push(row);
        }
    }
    Ok(claimed)
}

/// What happened to one attempt.
pub enum Outcome<'a> {
    /// LiveKit removed the participant, or answered `not_found` (nobody to remove).
    Done { status_code: i32 },
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

/// Record an attempt on a removal this worker holds (still `sending`, same attempt); `false` if
/// another worker took it over meanwhile. A settled removal frees its room and identity for the
/// next one.
pub async fn record(
    conn: &impl ConnectionTrait,
    claimed: &livekit_removal::Model,
    outcome: Outcome<'_>,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    use livekit_removal::Column as C;
    let mut update =
        livekit_removal::Entity::update_many().col_expr(C::UpdatedAt, Expr::value(now));
    let settled = |update: sea_orm::UpdateMany<livekit_removal::Entity>, status: &str| {
        update
            .col_expr(C::Status, Expr::value(status))
            .col_expr(C::PendingKey, Expr::value(Option::<String>::None))
    };
    update = match outcome {
        Outcome::Done { status_code } => settled(update, DONE)
            .col_expr(C::LastStatusCode, Expr::value(status_code))
            .col_expr(C::LastError, Expr::value(Option::<String>::None)),
        Outcome::Retry {
            at,
            status_code,
            error,
        } => update
            .col_expr(C::Status, Expr::value(PENDING))
            .col_expr(C::NextAttemptAt, Expr::value(at))
            .col_expr(C::LastStatusCode, Expr::value(status_code))
            .col_expr(C::LastError, Expr::value(error)),
        Outcome::Failed { status_code, error } => settled(update, FAILED)
            .col_expr(C::LastStatusCode, Expr::value(status_code))
            .col_expr(C::LastError, Expr::value(error)),
    };
    let res = update
        .filter(C::Id.eq(claimed.id.as_str()))
        .filter(C::Status.eq(SENDING))
        .filter(C::Attempts.eq(claimed.attempts))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

fn prunable(now: DateTime<Utc>, settled_before: DateTime<Utc>) -> (Condition, Condition) {
    (
        Condition::all().add(livekit_admission::Column::ExpiresAt.lte(now)),
        Condition::all()
            .add(livekit_removal::Column::Status.is_in([DONE, FAILED]))
            .add(livekit_removal::Column::UpdatedAt.lt(settled_before)),
    )
}

/// Whether [`prune`] has anything to do (a read, so idle instances take no write lock).
pub async fn has_prunable(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    settled_before: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let (admissions, removals) = prunable(now, settled_before);
    if livekit_admission::Entity::find()
        .filter(admissions)
        .limit(1)
        .one(conn)
        .await?
        .is_some()
    {
        return Ok(true);
    }
    Ok(livekit_removal::Entity::find()
        .filter(removals)
        .limit(1)
        .one(conn)
        .await?
        .is_some())
}

/// Forget admissions that have expired and removals settled before `settled_before`.
pub async fn prune(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    settled_before: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let (admissions, removals) = prunable(now, settled_before);
    let a = livekit_admission::Entity::delete_many()
        .filter(admissions)
        .exec(conn)
        .await?;
    let r = livekit_removal::Entity::delete_many()
        .filter(removals)
        .exec(conn)
        .await?;
    Ok(a.rows_affected + r.rows_affected)
}

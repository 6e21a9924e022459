//! Revoked tokens: remembered until the token would have expired anyway.

use crate::services::audit::{AuditAction, AuditTarget};
use chrono::{DateTime, Utc};
use entities::revoked_token;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde_json::json;

use super::audit::{self, Entry};
use crate::{
    db::WriteTxn,
    error::ApiError,
    events::{self, Event},
};

/// Record a revocation; `false` if the token was already revoked.
///
/// Only inside a [`WriteTxn`]: instances mirror revocations by `seq` (see [`after`]), which is
/// sound only if rows become visible in `seq` order, and that holds because every write
/// transaction is serialized before it takes its `seq` (see `Db::begin_write`).
pub async fn revoke(
    txn: &WriteTxn,
    actor: &str,
    jti: &str,
    account_id: &str,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, ApiError> {
    let conn: &DatabaseTransaction = txn;
    let exists = revoked_token::Entity::find()
        .filter(revoked_token::Column::Jti.eq(jti))
        .one(conn)
        .await?
        .is_some();
    if exists {
        return Ok(false);
    }
    revoked_token::Entity::insert(revoked_token::ActiveModel {
        seq: NotSet,
        jti: Set(jti.to_owned()),
        account_id: Set(account_id.to_owned()),
        revoked_at: Set(now),
        expires_at: Set(expires_at),
    })
    .exec_without_returning(conn)
    .await?;
    let event = Event::TokenRevoked {
        account_id: account_id.to_owned(),
        jti: jti.to_owned(),
        expires_at,
    };
    events::emit(conn, now, &event).await?;
    audit::append(
        conn,
        now,
        Entry {
            actor,
            action: AuditAction::TokenRevoked,
            target_type: AuditTarget::Account,
            target_id: account_id,
            details: json!({"jti": jti, "expires_at": expires_at}),
        },
    )
    .await?;
    Ok(true)
}

/// Up to `limit` revocations with `seq` above `cursor`, in `seq` order, of tokens still
/// unexpired at `now` (a range scan of the primary key). A poller pages with the last `seq`
/// it read until a page comes back short.
///
/// Why a `seq` cursor cannot skip a row: `seq` is taken inside the writing transaction, and
/// write transactions run one at a time (SQLite: one writer, `BEGIN IMMEDIATE`; PostgreSQL:
/// each takes the audit chain's advisory lock first and holds it until its commit has become
/// visible). So a row with a higher `seq` never becomes visible before one with a lower `seq`,
/// and a reader that has seen `seq` n has seen every committed row below it. A wall-clock
/// cursor had neither property (slow writers, clock skew between instances).
pub async fn after(
    conn: &impl ConnectionTrait,
    cursor: i64,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<revoked_token::Model>, DbErr> {
    revoked_token::Entity::find()
        .filter(revoked_token::Column::Seq.gt(cursor))
        .filter(revoked_token::Column::ExpiresAt.gte(now))
        .order_by_asc(revoked_token::Column::Seq)
        .limit(limit)
        .all(conn)
        .await
}

/// Forget revocations of tokens that have expired.
pub async fn purge(conn: &impl ConnectionTrait, before: DateTime<Utc>) -> Result<u64, DbErr> {
    let res = revoked_token::Entity::delete_many()
        .filter(revoked_token::Column::ExpiresAt.lt(before))
        .exec(conn)
        .await?;
    Ok(res.rows_affected)
}

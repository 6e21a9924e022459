//! Revoked tokens: remembered until the token would have expired anyway.

use chrono::{DateTime, Utc};
use entities::revoked_token;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::json;

use super::audit::{self, Entry};
use crate::error::ApiError;

/// Record a revocation; `false` if the token was already revoked.
pub async fn revoke(
    conn: &impl ConnectionTrait,
    actor: &str,
    jti: &str,
    account_id: &str,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, ApiError> {
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
    audit::append(
        conn,
        now,
        Entry {
            actor,
            action: "token.revoked",
            target_type: "account",
            target_id: account_id,
            details: json!({"jti": jti, "expires_at": expires_at}),
        },
    )
    .await?;
    Ok(true)
}

/// Revocations recorded at or after `since` whose tokens are still unexpired at `now`.
/// Pollers ask with an overlap: a row's `revoked_at` is set before its transaction commits.
pub async fn since(
    conn: &impl ConnectionTrait,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<revoked_token::Model>, DbErr> {
    revoked_token::Entity::find()
        .filter(revoked_token::Column::RevokedAt.gte(since))
        .filter(revoked_token::Column::ExpiresAt.gte(now))
        .order_by_asc(revoked_token::Column::Seq)
        .limit(100_000)
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

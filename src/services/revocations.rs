//! Revoked tokens, one by one (`revoked_token`) or all of an account's issued before a time
//! (`account_revocation`): remembered until the tokens would have expired anyway.

use crate::services::audit::{AuditAction, AuditTarget};
use chrono::{DateTime, Utc};
use entities::{account_revocation, revoked_token};
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
    super::livekit::remove_token(conn, jti, now).await?;
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

/// Forget revocations (single and account-wide) of tokens that have expired.
pub async fn purge(conn: &impl ConnectionTrait, before: DateTime<Utc>) -> Result<u64, DbErr> {
    let single = revoked_token::Entity::delete_many()
        .filter(revoked_token::Column::ExpiresAt.lt(before))
        .exec(conn)
        .await?;
    let accounts = account_revocation::Entity::delete_many()
        .filter(account_revocation::Column::ExpiresAt.lt(before))
        .exec(conn)
        .await?;
    Ok(single.rows_affected + accounts.rows_affected)
}

/// The longest a token can live, beyond its `iat`, under any valid configuration: the
/// largest `tokens.max_ttl_seconds` (3600) and `tokens.leeway_seconds` (300) the settings
/// accept. An account-wide revocation is kept that long past its `revoked_before`, so a change
/// of either setting cannot let a revoked token outlive its revocation.
const LONGEST_TOKEN_LIFE: chrono::Duration = chrono::Duration::seconds(3600 + 300);

/// The `revoked_before` of an account-wide revocation made at `now`: the next whole second.
///
/// A token's `iat` counts whole seconds, so a token issued earlier in the second of `now` has
/// the same `iat` as one issued later in it. Refusing `iat < revoked_before` with
/// `revoked_before` rounded up refuses every token issued up to `now` (the purpose of the
/// call), and with them the tokens issued in the rest of that second: the safe side. Rounding
/// down would leave the tokens issued earlier in that second working.
pub fn revoked_before(now: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(now.timestamp() + 1, 0).unwrap_or(now)
}

/// Revoke every token of `account_id` issued before [`revoked_before`]`(now)`: stored for the
/// mirror of every instance, announced (`tokens.revoked`), audited, and the account's live
/// LiveKit admissions queued for removal, all in `txn`. `account_not_found` if there is no
/// such account. Returns the stored revocation (for this instance's mirror).
///
/// Only inside a [`WriteTxn`], for the reason given at [`revoke`].
pub async fn revoke_account(
    txn: &WriteTxn,
    actor: &str,
    account_id: &str,
    now: DateTime<Utc>,
) -> Result<account_revocation::Model, ApiError> {
    let conn: &DatabaseTransaction = txn;
    super::accounts::require(conn, account_id).await?;
    let before = revoked_before(now);
    let row = account_revocation::Entity::insert(account_revocation::ActiveModel {
        seq: NotSet,
        account_id: Set(account_id.to_owned()),
        revoked_before: Set(before),
        revoked_at: Set(now),
        expires_at: Set(before + LONGEST_TOKEN_LIFE),
    })
    .exec_with_returning(conn)
    .await?;
    let event = Event::TokensRevoked {
        account_id: account_id.to_owned(),
        revoked_before: before,
    };
    events::emit(conn, now, &event).await?;
    let removals = super::livekit::remove_account(conn, account_id, now).await?;
    audit::append(
        conn,
        now,
        Entry {
            actor,
            action: AuditAction::TokensRevoked,
            target_type: AuditTarget::Account,
            target_id: account_id,
            details: json!({"revoked_before": before, "livekit_removals": removals}),
        },
    )
    .await?;
    Ok(row)
}

/// Up to `limit` account-wide revocations with `seq` above `cursor`, in `seq` order, that
/// still revoke an unexpired token at `now`. Paged and sound as [`after`].
pub async fn accounts_after(
    conn: &impl ConnectionTrait,
    cursor: i64,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<account_revocation::Model>, DbErr> {
    account_revocation::Entity::find()
        .filter(account_revocation::Column::Seq.gt(cursor))
        .filter(account_revocation::Column::ExpiresAt.gte(now))
        .order_by_asc(account_revocation::Column::Seq)
        .limit(limit)
        .all(conn)
        .await
}

/// Whether a token of the account issued at `iat` is revoked by an account-wide revocation
/// stored in `conn` (for checks inside a write transaction, where the mirror may lag).
pub async fn account_revokes(
    conn: &impl ConnectionTrait,
    account_id: &str,
    iat: i64,
) -> Result<bool, DbErr> {
    let Some(iat) = DateTime::from_timestamp(iat, 0) else {
        return Ok(false);
    };
    Ok(account_revocation::Entity::find()
        .filter(account_revocation::Column::AccountId.eq(account_id))
        .filter(account_revocation::Column::RevokedBefore.gt(iat))
        .one(conn)
        .await?
        .is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoked_before_is_the_next_whole_second() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let now = at("2026-12-01T10:00:00.250Z");
        let before = revoked_before(now);
        assert_eq!(before, at("2026-12-01T10:00:01Z"));
        // A token issued earlier in the same second has iat 10:00:00 < before: refused.
        assert!(now.timestamp() < before.timestamp());
        // On a whole second exactly, tokens of that second may predate the call: still refused.
        assert_eq!(
            revoked_before(at("2026-12-01T10:00:00Z")),
            at("2026-12-01T10:00:01Z")
        );
    }
}

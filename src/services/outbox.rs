//! The delivery outbox: messages are written in the transaction that creates their
//! verification, claimed by a worker (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so instances
//! never claim the same row; SQLite has a single writer), and their outcome recorded. The
//! recipient and the code are sealed under the master key and erased once the message is
//! delivered (or logged, without a provider) or given up.

use chrono::{DateTime, Utc};
use entities::{outbox_message, verification};
use sea_orm::{
    sea_query::{Expr, ExprTrait, LockBehavior, LockType},
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};

use crate::{
    crypto::MasterKey, delivery::locale::Locale, domain::ids::new_id, domain::verification::Code,
};

pub const ID_PREFIX: &str = "msg";

/// A message's state, as stored in `outbox_message.status`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString, strum::Display,
)]
#[strum(serialize_all = "snake_case")]
pub enum MessageStatus {
    Pending,
    Sending,
    Delivered,
    /// No provider is configured: a log transport wrote a line instead; nobody received it.
    Logged,
    Failed,
    Canceled,
    Expired,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl From<MessageStatus> for sea_orm::Value {
    fn from(status: MessageStatus) -> Self {
        status.as_str().into()
    }
}

/// What the sealed payload holds. Its `Debug` shows none of its fields.
#[derive(Serialize, Deserialize)]
pub struct Payload {
    pub to: String,
    pub code: String,
    /// The negotiated language's tag (one of `delivery::locale`'s, never the request's text);
    /// absent in messages queued before messages had languages: English. Sealed with the
    /// rest, it is erased with them: a person's language is nobody's business once the code
    /// is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Payload(..)")
    }
}

impl Payload {
    /// The language to write in.
    pub fn locale(&self) -> Locale {
        self.locale
            .as_deref()
            .map_or(Locale::ENGLISH, Locale::from_stored)
    }
}

/// Open a message's payload; `None` once erased or if it cannot be opened.
pub fn open(master: &MasterKey, message: &outbox_message::Model) -> Option<Payload> {
    let sealed = message.payload_sealed.as_deref()?;
    let plain = master.open(&message.id, sealed).ok()?;
    serde_json::from_slice(&plain).ok()
}

/// Queue the message that carries `code` to `to`, written in `locale`.
pub async fn enqueue(
    conn: &impl ConnectionTrait,
    master: &MasterKey,
    verification: &verification::Model,
    to: &str,
    code: &Code,
    locale: Locale,
    now: DateTime<Utc>,
) -> Result<outbox_message::Model, DbErr> {
    let id = new_id(ID_PREFIX);
    let payload = serde_json::to_vec(&Payload {
        to: to.to_owned(),
        code: code.expose().to_owned(),
        locale: Some(locale.tag().to_owned()),
    })
    .map_err(|e| DbErr::Custom(format!("outbox payload: {e}")))?;
    let row = outbox_message::Model {
        payload_sealed: Some(master.seal(&id, &payload)),
        id,
        verification_id: verification.id.clone(),
        channel: verification.channel.clone(),
        recipient_masked: verification.to_masked.clone(),
        status: MessageStatus::Pending.to_string(),
        attempts: 0,
        next_attempt_at: now,
        expires_at: verification.expires_at,
        last_error: None,
        provider_ref: None,
        created_at: now,
        updated_at: now,
        delivered_at: None,
        traceparent: crate::telemetry::traces::traceparent(),
    };
    outbox_message::Entity::insert(row.clone().into_active_model().reset_all())
        .exec_without_returning(conn)
        .await?;
    Ok(row)
}

fn due(now: DateTime<Utc>) -> sea_orm::Select<outbox_message::Entity> {
    outbox_message::Entity::find()
        .filter(
            outbox_message::Column::Status.is_in([MessageStatus::Pending, MessageStatus::Sending]),
        )
        .filter(outbox_message::Column::NextAttemptAt.lte(now))
}

/// Whether any message is due (a cheap read before taking a write transaction).
pub async fn has_due(conn: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<bool, DbErr> {
    Ok(due(now).limit(1).one(conn).await?.is_some())
}

/// Claim up to `limit` due messages: each is marked `sending` until `lease_until` (after which
/// another worker may take it over, should this one have died) and its attempt is counted.
/// Returns the rows as claimed.
pub async fn claim(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<outbox_message::Model>, DbErr> {
    // SQLite ignores the lock clause; its single writer already serialises claims.
    let rows = due(now)
        .order_by_asc(outbox_message::Column::NextAttemptAt)
        .limit(limit)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .all(conn)
        .await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for mut row in rows {
        let res = outbox_message::Entity::update_many()
            .col_expr(
                outbox_message::Column::Status,
                Expr::value(MessageStatus::Sending),
            )
            .col_expr(
                outbox_message::Column::Attempts,
                Expr::col(outbox_message::Column::Attempts).add(1),
            )
            .col_expr(
                outbox_message::Column::NextAttemptAt,
                Expr::value(lease_until),
            )
            .col_expr(outbox_message::Column::UpdatedAt, Expr::value(now))
            .filter(outbox_message::Column::Id.eq(row.id.as_str()))
            .filter(outbox_message::Column::Attempts.eq(row.attempts))
            .exec(conn)
            .await?;
        if res.rows_affected == 1 {
            row.status = MessageStatus::Sending.to_string();
            row.attempts += 1;
            row.next_attempt_at = lease_until;
            claimed.push(row);
        }
    }
    Ok(claimed)
}

/// Update a message this worker holds (still `sending`, same attempt); `false` if another
/// worker took it over meanwhile.
async fn finish(
    conn: &impl ConnectionTrait,
    claimed: &outbox_message::Model,
    update: sea_orm::UpdateMany<outbox_message::Entity>,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let res = update
        .col_expr(outbox_message::Column::UpdatedAt, Expr::value(now))
        .filter(outbox_message::Column::Id.eq(claimed.id.as_str()))
        .filter(outbox_message::Column::Status.eq(MessageStatus::Sending))
        .filter(outbox_message::Column::Attempts.eq(claimed.attempts))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

fn erase(
    update: sea_orm::UpdateMany<outbox_message::Entity>,
) -> sea_orm::UpdateMany<outbox_message::Entity> {
    update.col_expr(
        outbox_message::Column::PayloadSealed,
        Expr::value(Option::<String>::None),
    )
}

/// Done: handed to the provider (`provider_ref`: its id for the message, if any), or only
/// logged (`logged`: no provider is configured). The payload (recipient and code) is erased.
pub async fn mark_delivered(
    conn: &impl ConnectionTrait,
    claimed: &outbox_message::Model,
    provider_ref: Option<String>,
    logged: bool,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let status = if logged {
        MessageStatus::Logged
    } else {
        MessageStatus::Delivered
    };
    let update = erase(outbox_message::Entity::update_many())
        .col_expr(outbox_message::Column::Status, Expr::value(status))
        .col_expr(outbox_message::Column::DeliveredAt, Expr::value(now))
        .col_expr(
            outbox_message::Column::ProviderRef,
            Expr::value(provider_ref),
        )
        .col_expr(
            outbox_message::Column::LastError,
            Expr::value(Option::<String>::None),
        );
    finish(conn, claimed, update, now).await
}

/// A retryable failure: back to `pending`, due again at `next_attempt_at`.
pub async fn mark_retry(
    conn: &impl ConnectionTrait,
    claimed: &outbox_message::Model,
    next_attempt_at: DateTime<Utc>,
    error: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let update = outbox_message::Entity::update_many()
        .col_expr(
            outbox_message::Column::Status,
            Expr::value(MessageStatus::Pending),
        )
        .col_expr(
            outbox_message::Column::NextAttemptAt,
            Expr::value(next_attempt_at),
        )
        .col_expr(outbox_message::Column::LastError, Expr::value(error));
    finish(conn, claimed, update, now).await
}

/// Given up (`failed`), or found moot (`canceled`, `expired`): the payload is erased.
pub async fn mark_closed(
    conn: &impl ConnectionTrait,
    claimed: &outbox_message::Model,
    status: MessageStatus,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let update = erase(outbox_message::Entity::update_many())
        .col_expr(outbox_message::Column::Status, Expr::value(status))
        .col_expr(
            outbox_message::Column::LastError,
            Expr::value(error.map(str::to_owned)),
        );
    finish(conn, claimed, update, now).await
}

/// Cancel the not-yet-claimed messages of these verifications (a message being sent right now
/// is left to finish).
pub async fn cancel_for(
    conn: &impl ConnectionTrait,
    verification_ids: &[String],
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let res = erase(outbox_message::Entity::update_many())
        .col_expr(
            outbox_message::Column::Status,
            Expr::value(MessageStatus::Canceled),
        )
        .col_expr(outbox_message::Column::UpdatedAt, Expr::value(now))
        .filter(
            outbox_message::Column::VerificationId
                .is_in(verification_ids.iter().map(String::as_str)),
        )
        .filter(outbox_message::Column::Status.eq(MessageStatus::Pending))
        .exec(conn)
        .await?;
    Ok(res.rows_affected)
}

/// Past the code's expiry, and not in flight (or in flight on a lapsed claim).
fn expirable_condition(now: DateTime<Utc>) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(outbox_message::Column::ExpiresAt.lte(now))
        .add(
            sea_orm::Condition::any()
                .add(outbox_message::Column::Status.eq(MessageStatus::Pending))
                .add(
                    sea_orm::Condition::all()
                        .add(outbox_message::Column::Status.eq(MessageStatus::Sending))
                        .add(outbox_message::Column::NextAttemptAt.lte(now)),
                ),
        )
}

fn expirable(now: DateTime<Utc>) -> sea_orm::Select<outbox_message::Entity> {
    outbox_message::Entity::find().filter(expirable_condition(now))
}

/// Whether `expire` has anything to do (a read, so idle instances take no write lock).
pub async fn has_expirable(conn: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<bool, DbErr> {
    Ok(expirable(now).limit(1).one(conn).await?.is_some())
}

/// Messages whose code has expired are not worth sending: close them and erase their payload.
/// A message in flight is left alone unless its claim has lapsed too.
pub async fn expire(conn: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64, DbErr> {
    let res = erase(outbox_message::Entity::update_many())
        .col_expr(
            outbox_message::Column::Status,
            Expr::value(MessageStatus::Expired),
        )
        .col_expr(outbox_message::Column::UpdatedAt, Expr::value(now))
        .filter(expirable_condition(now))
        .exec(conn)
        .await?;
    Ok(res.rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_queued_before_languages_read_as_english() {
        let old: Payload =
            serde_json::from_str(r#"{"to":"a@example.org","code":"042517"}"#).unwrap();
        assert_eq!(old.locale(), Locale::ENGLISH);
        let new: Payload =
            serde_json::from_str(r#"{"to":"a@example.org","code":"042517","locale":"pt-BR"}"#)
                .unwrap();
        assert_eq!(new.locale().tag(), "pt-BR");
        assert_eq!(format!("{new:?}"), "Payload(..)");
    }
}

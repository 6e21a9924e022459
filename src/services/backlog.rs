//! What the operations gauges show, read from the database by the maintenance loop: the
//! backlog of each queue the workers drain (verification messages, webhook deliveries, LiveKit
//! removals), webhook endpoints that are failing, the SMS codes counted against the hourly
//! budget, and when the signing key is due for rotation. A queue row waits while it is
//! `pending` (due, or retrying later) or `sending` (claimed by a worker). Counts and one indexed `MIN`-like
//! lookup per queue: cheap enough to run every few seconds.

use chrono::{DateTime, Utc};
use entities::{livekit_removal, outbox_message, webhook_delivery};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Select,
};

use super::{keys, livekit, outbox::MessageStatus, webhooks::DeliveryStatus};
use crate::{
    config::TokenSettings,
    domain::verification::Channel,
    telemetry::{Backlog, Sample},
};

/// An hour: the window of the SMS budget (`verification.sms_hourly_budget`).
const HOUR: chrono::Duration = chrono::Duration::hours(1);

fn backlog(waiting: u64, oldest: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Backlog {
    Backlog {
        waiting,
        oldest_age_seconds: oldest
            .map(|at| (now - at).num_milliseconds().max(0) as f64 / 1000.0)
            .unwrap_or(0.0),
    }
}

/// A queue's backlog: how many rows `waiting` selects, and the `created_at` of the oldest.
async fn queue_backlog<E>(
    conn: &impl ConnectionTrait,
    waiting: Select<E>,
    created_at: E::Column,
    now: DateTime<Utc>,
) -> Result<Backlog, DbErr>
where
    E: EntityTrait,
    E::Model: Sync,
{
    let count = waiting.clone().count(conn).await?;
    let oldest = if count == 0 {
        None
    } else {
        waiting
            .select_only()
            .column(created_at)
            .order_by_asc(created_at)
            .into_tuple::<DateTime<Utc>>()
            .one(conn)
            .await?
    };
    Ok(backlog(count, oldest, now))
}

async fn verification_backlog(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<Backlog, DbErr> {
    let waiting = outbox_message::Entity::find().filter(outbox_message::Column::Status.is_in([
        MessageStatus::Pending.as_str(),
        MessageStatus::Sending.as_str(),
    ]));
    queue_backlog(conn, waiting, outbox_message::Column::CreatedAt, now).await
}

async fn webhook_backlog(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<Backlog, DbErr> {
    let waiting =
        webhook_delivery::Entity::find().filter(webhook_delivery::Column::Status.is_in([
            DeliveryStatus::Pending.as_str(),
            DeliveryStatus::Sending.as_str(),
        ]));
    queue_backlog(conn, waiting, webhook_delivery::Column::CreatedAt, now).await
}

async fn livekit_backlog(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<Backlog, DbErr> {
    let waiting = livekit_removal::Entity::find()
        .filter(livekit_removal::Column::Status.is_in([livekit::PENDING, livekit::SENDING]));
    queue_backlog(conn, waiting, livekit_removal::Column::CreatedAt, now).await
}

/// Endpoints with a delivery that failed at least once and waits for its retry.
async fn failing_endpoints(conn: &impl ConnectionTrait) -> Result<u64, DbErr> {
    let ids = webhook_delivery::Entity::find()
        .select_only()
        .column(webhook_delivery::Column::EndpointId)
        .distinct()
        .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending.as_str()))
        .filter(webhook_delivery::Column::Attempts.gt(0))
        .into_tuple::<String>()
        .all(conn)
        .await?;
    Ok(ids.len() as u64)
}

async fn sms_sent_last_hour(conn: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64, DbErr> {
    entities::verification_send::Entity::find()
        .filter(entities::verification_send::Column::Channel.eq(Channel::Sms.as_str()))
        .filter(entities::verification_send::Column::SentAt.gt(now - HOUR))
        .count(conn)
        .await
}

/// Everything the maintenance loop records into the gauges.
pub async fn sample(
    conn: &impl ConnectionTrait,
    tokens: &TokenSettings,
    now: DateTime<Utc>,
) -> Result<Sample, DbErr> {
    Ok(Sample {
        backlogs: [
            verification_backlog(conn, now).await?,
            webhook_backlog(conn, now).await?,
            livekit_backlog(conn, now).await?,
        ],
        failing_endpoints: failing_endpoints(conn).await?,
        sms_sent_last_hour: sms_sent_last_hour(conn, now).await?,
        key_rotation_due_seconds: keys::rotation_due_at(conn, tokens, now)
            .await?
            .map(|at| (at - now).num_milliseconds() as f64 / 1000.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_age_of_nothing_waiting_is_zero() {
        let now = Utc::now();
        assert_eq!(backlog(0, None, now), Backlog::default());
        let b = backlog(3, Some(now - chrono::Duration::milliseconds(90_500)), now);
        assert_eq!(b.waiting, 3);
        assert!((b.oldest_age_seconds - 90.5).abs() < 1e-9);
        // A row stamped by an instance whose clock runs ahead is not "negative seconds old".
        let ahead = backlog(1, Some(now + chrono::Duration::seconds(2)), now);
        assert_eq!(ahead.oldest_age_seconds, 0.0);
    }
}

//! The console overview: what needs an admin's or reviewer's attention, read from the database
//! with a handful of aggregate queries (counts, `GROUP BY`, a few indexed lookups), so every
//! instance shows the same numbers and no table is loaded row by row. Ids, counts and times
//! only: no category, statement, name, address or number.

use chrono::{DateTime, Duration, NaiveTime, Utc};
use entities::{
    exception_request as request, outbox_message, verification_send, webhook_delivery,
    webhook_endpoint,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::{keys, outbox::MessageStatus, webhooks::DeliveryStatus, webhooks::EndpointStatus};
use crate::{
    config::{TokenSettings, VerificationSettings},
    domain::{exception::ExceptionStatus, verification::Channel},
};

/// Approvals ending within this many days are listed.
pub const APPROVALS_ENDING_WITHIN_DAYS: i64 = 30;
/// How many of the soonest-ending approvals are named.
pub const SOONEST_APPROVALS: u64 = 10;
/// How many failing webhook endpoints are named (the count covers all of them).
pub const FAILING_ENDPOINTS_SHOWN: usize = 50;
/// The window of the SMS budget (`verification.sms_hourly_budget`): a rolling hour.
pub const SMS_BUDGET_WINDOW_SECONDS: i64 = 3600;

/// Pending exception requests by how long they have waited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingExceptions {
    pub total: u64,
    pub under_1_day: u64,
    pub from_1_to_3_days: u64,
    pub from_3_to_7_days: u64,
    pub over_7_days: u64,
    /// When the request waiting longest was submitted.
    pub oldest_submitted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndingApproval {
    pub id: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndingApprovals {
    pub count: u64,
    /// The soonest first, at most [`SOONEST_APPROVALS`].
    pub soonest: Vec<EndingApproval>,
}

/// One channel's verification messages queued since the start of the UTC day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelDay {
    pub sends: u64,
    /// Handed to the provider, or written to the log transport when none is configured.
    pub delivered: u64,
    /// Given up, or dropped because the code expired before it could be sent.
    pub failed: u64,
    /// Waiting for a first attempt or a retry, or being sent.
    pub waiting: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationsToday {
    pub since: DateTime<Utc>,
    pub email: ChannelDay,
    pub sms: ChannelDay,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsBudget {
    pub used: u64,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailingEndpoint {
    pub id: String,
    pub url: String,
    /// `enabled`, or `disabled` (the receiver answered 410 Gone).
    pub status: String,
    /// Deliveries that failed at least once and are still being retried.
    pub failing_deliveries: u64,
    /// The attempts made so far on the most-retried of them (one may be in flight).
    pub attempts: u64,
    /// Since when: the oldest failing delivery's creation, or when the endpoint was disabled.
    pub since: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailingEndpoints {
    pub count: u64,
    /// The longest-failing first, at most [`FAILING_ENDPOINTS_SHOWN`].
    pub endpoints: Vec<FailingEndpoint>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyState {
    pub kid: String,
    pub alg: String,
    pub activated_at: DateTime<Utc>,
    /// When the maintenance loop schedules the next rotation; `None` when rotation is off.
    pub next_rotation_at: Option<DateTime<Utc>>,
    pub rotation_overdue: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overview {
    pub generated_at: DateTime<Utc>,
    pub pending_exceptions: PendingExceptions,
    pub approvals_ending: EndingApprovals,
    pub verifications_today: VerificationsToday,
    pub sms_budget: SmsBudget,
    pub failing_webhooks: FailingEndpoints,
    pub signing_key: Option<SigningKeyState>,
}

/// Everything the overview shows, as of `now`.
#[tracing::instrument(skip_all)]
pub async fn overview(
    conn: &impl ConnectionTrait,
    tokens: &TokenSettings,
    verification: &VerificationSettings,
    now: DateTime<Utc>,
) -> Result<Overview, DbErr> {
    Ok(Overview {
        generated_at: now,
        pending_exceptions: pending_exceptions(conn, now).await?,
        approvals_ending: approvals_ending(conn, now).await?,
        verifications_today: verifications_today(conn, now).await?,
        sms_budget: SmsBudget {
            used: sms_used(conn, now).await?,
            limit: verification.sms_hourly_budget,
        },
        failing_webhooks: failing_webhooks(conn).await?,
        signing_key: signing_key(conn, tokens, now).await?,
    })
}

/// Counts of requests submitted after each cut-off (the status index narrows them to pending
/// ones); the buckets are their differences.
async fn pending_exceptions(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<PendingExceptions, DbErr> {
    use request::Column as C;
    let pending =
        || request::Entity::find().filter(C::Status.eq(ExceptionStatus::Pending.as_str()));
    let total = pending().count(conn).await?;
    let newer_than = |days: i64| {
        pending()
            .filter(C::SubmittedAt.gt(now - Duration::days(days)))
            .count(conn)
    };
    let (day, three, week) = if total == 0 {
        (0, 0, 0)
    } else {
        (
            newer_than(1).await?,
            newer_than(3).await?,
            newer_than(7).await?,
        )
    };
    let oldest_submitted_at = if total == 0 {
        None
    } else {
        pending()
            .select_only()
            .column(C::SubmittedAt)
            .order_by_asc(C::SubmittedAt)
            .into_tuple::<DateTime<Utc>>()
            .one(conn)
            .await?
    };
    Ok(PendingExceptions {
        total,
        under_1_day: day,
        from_1_to_3_days: three.saturating_sub(day),
        from_3_to_7_days: week.saturating_sub(three),
        over_7_days: total.saturating_sub(week),
        oldest_submitted_at,
    })
}

/// Approved requests whose end falls within the window (an approval past its end is expired,
/// whether or not maintenance has recorded it yet).
async fn approvals_ending(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<EndingApprovals, DbErr> {
    use request::Column as C;
    let ending = request::Entity::find()
        .filter(C::Status.eq(ExceptionStatus::Approved.as_str()))
        .filter(C::ExpiresAt.gt(now))
        .filter(C::ExpiresAt.lte(now + Duration::days(APPROVALS_ENDING_WITHIN_DAYS)));
    let count = ending.clone().count(conn).await?;
    let soonest = if count == 0 {
        Vec::new()
    } else {
        ending
            .select_only()
            .column(C::Id)
            .column(C::ExpiresAt)
            .order_by_asc(C::ExpiresAt)
            .order_by_asc(C::Id)
            .limit(SOONEST_APPROVALS)
            .into_tuple::<(String, DateTime<Utc>)>()
            .all(conn)
            .await?
            .into_iter()
            .map(|(id, expires_at)| EndingApproval { id, expires_at })
            .collect()
    };
    Ok(EndingApprovals { count, soonest })
}

/// The start of `now`'s UTC day.
pub fn start_of_day(now: DateTime<Utc>) -> DateTime<Utc> {
    now.date_naive().and_time(NaiveTime::MIN).and_utc()
}

/// Verification messages queued today, counted by channel and status in one `GROUP BY`.
async fn verifications_today(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<VerificationsToday, DbErr> {
    use outbox_message::Column as C;
    let since = start_of_day(now);
    let groups = outbox_message::Entity::find()
        .select_only()
        .column(C::Channel)
        .column(C::Status)
        .column_as(C::Id.count(), "n")
        .filter(C::CreatedAt.gte(since))
        .group_by(C::Channel)
        .group_by(C::Status)
        .into_tuple::<(String, String, i64)>()
        .all(conn)
        .await?;
    let mut today = VerificationsToday {
        since,
        email: ChannelDay::default(),
        sms: ChannelDay::default(),
    };
    for (channel, status, n) in groups {
        let day = match channel.parse::<Channel>() {
            Ok(Channel::Email) => &mut today.email,
            Ok(Channel::Sms) => &mut today.sms,
            Err(_) => continue,
        };
        let n = u64::try_from(n).unwrap_or(0);
        day.sends += n;
        match status.parse::<MessageStatus>() {
            Ok(MessageStatus::Delivered | MessageStatus::Logged) => day.delivered += n,
            Ok(MessageStatus::Failed | MessageStatus::Expired) => day.failed += n,
            Ok(MessageStatus::Pending | MessageStatus::Sending) => day.waiting += n,
            // Canceled (a newer code replaced it) is neither a success nor a failure.
            Ok(MessageStatus::Canceled) | Err(_) => {}
        }
    }
    Ok(today)
}

/// SMS counted against the hourly budget, as the send path counts them.
async fn sms_used(conn: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64, DbErr> {
    verification_send::Entity::find()
        .filter(verification_send::Column::Channel.eq(Channel::Sms.as_str()))
        .filter(
            verification_send::Column::SentAt
                .gt(now - Duration::seconds(SMS_BUDGET_WINDOW_SECONDS)),
        )
        .count(conn)
        .await
}

/// Endpoints with a delivery that failed at least once and is not yet delivered or given up
/// (waiting for its retry, or being retried right now), and endpoints disabled by a 410 Gone.
async fn failing_webhooks(conn: &impl ConnectionTrait) -> Result<FailingEndpoints, DbErr> {
    use webhook_delivery::Column as D;
    use webhook_endpoint::Column as W;
    let retrying = webhook_delivery::Entity::find()
        .select_only()
        .column(D::EndpointId)
        .column_as(D::Id.count(), "n")
        .column_as(D::Attempts.max(), "attempts")
        .column_as(D::CreatedAt.min(), "since")
        .filter(
            // Claiming counts an attempt: a delivery being sent has failed before only if this
            // is not its first attempt.
            sea_orm::Condition::any()
                .add(
                    sea_orm::Condition::all()
                        .add(D::Status.eq(DeliveryStatus::Pending.as_str()))
                        .add(D::Attempts.gt(0)),
                )
                .add(
                    sea_orm::Condition::all()
                        .add(D::Status.eq(DeliveryStatus::Sending.as_str()))
                        .add(D::Attempts.gt(1)),
                ),
        )
        .group_by(D::EndpointId)
        .into_tuple::<(String, i64, i32, DateTime<Utc>)>()
        .all(conn)
        .await?;
    let ids: Vec<String> = retrying.iter().map(|(id, ..)| id.clone()).collect();
    let endpoints = webhook_endpoint::Entity::find()
        .filter(
            sea_orm::Condition::any()
                .add(W::Status.eq(EndpointStatus::Disabled.as_str()))
                .add(W::Id.is_in(ids)),
        )
        .all(conn)
        .await?;
    let mut failing: Vec<FailingEndpoint> = endpoints
        .into_iter()
        .map(|e| {
            let retry = retrying.iter().find(|(id, ..)| *id == e.id);
            let since = retry
                .map(|(.., since)| *since)
                .into_iter()
                .chain(e.disabled_at)
                .min()
                .unwrap_or(e.updated_at);
            FailingEndpoint {
                failing_deliveries: retry.map_or(0, |(_, n, ..)| u64::try_from(*n).unwrap_or(0)),
                attempts: retry.map_or(0, |(_, _, a, _)| u64::try_from(*a).unwrap_or(0)),
                since,
                id: e.id,
                url: e.url,
                status: e.status,
            }
        })
        .collect();
    failing.sort_by(|a, b| a.since.cmp(&b.since).then_with(|| a.id.cmp(&b.id)));
    let count = failing.len() as u64;
    failing.truncate(FAILING_ENDPOINTS_SHOWN);
    Ok(FailingEndpoints {
        count,
        endpoints: failing,
    })
}

async fn signing_key(
    conn: &impl ConnectionTrait,
    tokens: &TokenSettings,
    now: DateTime<Utc>,
) -> Result<Option<SigningKeyState>, DbErr> {
    let Some(current) = keys::current(conn, now).await? else {
        return Ok(None);
    };
    let next_rotation_at = keys::rotation_due_at(conn, tokens, now).await?;
    Ok(Some(SigningKeyState {
        kid: current.kid,
        alg: current.alg,
        activated_at: current.activates_at,
        next_rotation_at,
        rotation_overdue: next_rotation_at.is_some_and(|at| at <= now),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_day_starts_at_midnight_utc() {
        let now: DateTime<Utc> = "2026-12-04T17:45:12.5Z".parse().unwrap();
        assert_eq!(
            start_of_day(now),
            "2026-12-04T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(start_of_day(start_of_day(now)), start_of_day(now));
    }
}

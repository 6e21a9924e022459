//! The outbox worker: wakes when a message is queued or every `delivery.poll_interval_millis`,
//! claims due messages, delivers them concurrently, and records each outcome. Failures back off
//! exponentially (with jitter) up to `delivery.max_attempts`; a message whose code expired or
//! whose verification closed is dropped unsent. Delivered or abandoned, the payload is erased.

use std::{
    sync::{Arc, Weak},
    time::{Duration, Instant},
};

use actix_web::web;
use chrono::{DateTime, Utc};
use entities::outbox_message;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::{DeliveryError, Outgoing, Sent};
use crate::{
    config::DeliverySettings,
    crypto::random_bytes,
    domain::verification::{Channel, Code, VerificationStatus},
    error::ApiError,
    services::{outbox, verifications},
    state::AppState,
    telemetry::{traces, MessageOutcome},
};

/// How often expired messages are closed and the send log is pruned.
const HOUSEKEEPING: Duration = Duration::from_secs(30);

/// Start the worker; it ends when the application state is dropped.
pub fn spawn(state: web::Data<AppState>) {
    let weak: Weak<AppState> = Arc::downgrade(&state.into_inner());
    tokio::spawn(async move {
        let mut last_housekeeping: Option<Instant> = None;
        loop {
            let Some(state) = weak.upgrade() else { break };
            let notify = state.delivery.notifier();
            let interval = Duration::from_millis(state.settings.delivery.poll_interval_millis);
            if last_housekeeping.is_none_or(|at| at.elapsed() >= HOUSEKEEPING) {
                match housekeeping(&state).await {
                    Ok(()) => last_housekeeping = Some(Instant::now()),
                    Err(e) => tracing::warn!(error = %e, "outbox housekeeping failed"),
                }
            }
            let more = match run_round(&state).await {
                Ok(more) => more,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox round failed");
                    false
                }
            };
            drop(state);
            if !more {
                tokio::select! {
                    _ = notify.notified() => {}
                    _ = tokio::time::sleep(interval) => {}
                }
            }
        }
    });
}

async fn housekeeping(state: &AppState) -> Result<(), ApiError> {
    let now = state.now();
    let v = &state.settings.verification;
    let longest = v
        .per_destination_window_seconds
        .max(v.per_account_window_seconds)
        .max(3600);
    let cutoff = now - chrono::Duration::seconds(i64::try_from(longest).unwrap_or(86_400));
    // Look before taking the write lock: most rounds have nothing to do.
    let conn = state.db.conn();
    if !outbox::has_expirable(conn, now).await?
        && !verifications::has_old_sends(conn, cutoff).await?
    {
        return Ok(());
    }
    let txn = state.db.begin_write().await?;
    let expired = outbox::expire(&*txn, now).await?;
    let pruned = verifications::prune_sends(&*txn, cutoff).await?;
    txn.commit().await?;
    tracing::debug!(expired, pruned, "outbox housekeeping");
    Ok(())
}

/// Claim and deliver one batch; `true` if the batch was full (more may be due).
pub async fn run_round(state: &Arc<AppState>) -> Result<bool, ApiError> {
    let now = state.now();
    if !outbox::has_due(state.db.conn(), now).await? {
        return Ok(false);
    }
    let settings = &state.settings.delivery;
    let lease = chrono::Duration::seconds(
        i64::try_from(settings.timeout_seconds.saturating_mul(2) + 30).unwrap_or(60),
    );
    let batch = u64::from(settings.batch_size);
    let txn = state.db.begin_write().await?;
    let claimed = outbox::claim(&*txn, now, now + lease, batch).await?;
    txn.commit().await?;
    let full = claimed.len() as u64 == batch;
    let mut tasks = JoinSet::new();
    for message in claimed {
        let state = state.clone();
        tasks.spawn(async move {
            let id = message.id.clone();
            if let Err(e) = deliver(&state, message).await {
                tracing::warn!(message_id = %id, error = %e, "recording a delivery failed");
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(full)
}

/// The wait before attempt `attempts + 1`: base × 2^(attempts−1), capped, plus up to 20 %
/// jitter so that instances retrying a recovered provider do not all arrive at once.
pub fn backoff(settings: &DeliverySettings, attempts: i32) -> chrono::Duration {
    let exp = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(30);
    let secs = settings
        .retry_base_seconds
        .saturating_mul(1u64 << exp)
        .min(settings.retry_max_seconds);
    let millis = secs.saturating_mul(1000);
    let jitter = u64::from(u16::from_be_bytes(random_bytes::<2>())) * (millis / 5) / 65_535;
    chrono::Duration::milliseconds(i64::try_from(millis + jitter).unwrap_or(i64::MAX / 2))
}

fn minutes_left(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    let secs = (expires_at - now).num_seconds().max(0);
    ((secs + 59) / 60).max(1)
}

async fn close(
    state: &AppState,
    message: &outbox_message::Model,
    status: outbox::MessageStatus,
    error: Option<&str>,
) -> Result<(), ApiError> {
    let txn = state.db.begin_write().await?;
    let recorded = outbox::mark_closed(&*txn, message, status, error, state.now()).await?;
    txn.commit().await?;
    if recorded {
        let outcome = match status {
            outbox::MessageStatus::Failed => MessageOutcome::failed,
            _ => MessageOutcome::dropped,
        };
        count(state, message, outcome);
    }
    Ok(())
}

/// Count a recorded outcome in `vouch_verification_messages_total`.
fn count(state: &AppState, message: &outbox_message::Model, outcome: MessageOutcome) {
    if let Ok(channel) = message.channel.parse::<Channel>() {
        state.metrics.message(channel, outcome);
    }
}

async fn deliver(state: &AppState, message: outbox_message::Model) -> Result<(), ApiError> {
    let now = state.now();
    if message.expires_at <= now {
        tracing::info!(message_id = %message.id, "code expired before delivery; dropped");
        return close(state, &message, outbox::MessageStatus::Expired, None).await;
    }
    let open = match verifications::get(state.db.conn(), &message.verification_id).await? {
        Some(v) => verifications::effective_status(&v, now)? == VerificationStatus::Pending,
        None => false,
    };
    if !open {
        return close(state, &message, outbox::MessageStatus::Canceled, None).await;
    }
    let (Some(payload), Some(channel)) = (
        outbox::open(&state.master_key, &message),
        message.channel.parse::<Channel>().ok(),
    ) else {
        tracing::error!(message_id = %message.id, "outbox payload cannot be opened; message dropped");
        return close(
            state,
            &message,
            outbox::MessageStatus::Failed,
            Some("payload unreadable"),
        )
        .await;
    };
    let Some(code) = Code::parse(&payload.code) else {
        return close(
            state,
            &message,
            outbox::MessageStatus::Failed,
            Some("payload unreadable"),
        )
        .await;
    };
    let outgoing = Outgoing {
        channel,
        to: &payload.to,
        masked: &message.recipient_masked,
        code: &code,
        minutes: minutes_left(message.expires_at, now),
        locale: payload.locale(),
    };
    // With traces on, the send is a client span in the trace of the request that queued the
    // message (its `traceparent`), and the SMS provider's request carries it on.
    let send_span = if traces::enabled() {
        let span = tracing::info_span!(
            "verification.send",
            otel.name = match channel {
                Channel::Email => "SMTP send",
                Channel::Sms => "SMS send",
            },
            otel.kind = "client",
            message_id = %message.id,
            channel = %message.channel,
            attempts = message.attempts,
        );
        traces::follow(&span, message.traceparent.as_deref());
        span
    } else {
        tracing::Span::none()
    };
    let result = state.delivery.send(&outgoing).instrument(send_span).await;
    drop(payload);
    let now = state.now();
    let settings = &state.settings.delivery;
    // Exported as a span too: ids only (the masked recipient goes on the log lines).
    let span = tracing::info_span!(
        "delivery",
        message_id = %message.id,
        channel = %message.channel,
        attempts = message.attempts,
    );
    traces::follow(&span, message.traceparent.as_deref());
    let to = message.recipient_masked.as_str();
    async {
        let txn = state.db.begin_write().await?;
        let outcome = match &result {
            Ok(Sent::Delivered(_)) => MessageOutcome::delivered,
            Ok(Sent::Logged) => MessageOutcome::logged,
            Err(DeliveryError::Retryable(_))
                if message.attempts < i32::try_from(settings.max_attempts).unwrap_or(i32::MAX) =>
            {
                MessageOutcome::retry
            }
            Err(_) => MessageOutcome::failed,
        };
        let recorded = match &result {
            Ok(Sent::Delivered(provider_ref)) => {
                tracing::info!(to, "verification message delivered");
                outbox::mark_delivered(&*txn, &message, provider_ref.clone(), false, now).await?
            }
            Ok(Sent::Logged) => {
                outbox::mark_delivered(&*txn, &message, None, true, now).await?
            }
            Err(DeliveryError::Retryable(reason))
                if message.attempts < i32::try_from(settings.max_attempts).unwrap_or(i32::MAX) =>
            {
                let next = now + backoff(settings, message.attempts);
                tracing::warn!(to, %reason, retry_at = %next, "verification message not delivered; will retry");
                outbox::mark_retry(&*txn, &message, next, reason, now).await?
            }
            Err(e) => {
                tracing::warn!(to, reason = %e.reason(), "verification message given up");
                outbox::mark_closed(&*txn, &message, outbox::MessageStatus::Failed, Some(e.reason()), now)
                    .await?
            }
        };
        txn.commit().await?;
        if recorded {
            count(state, &message, outcome);
        } else {
            // Our claim lapsed and another worker took the message over.
            tracing::warn!("delivery outcome not recorded: the claim had lapsed");
        }
        Ok(())
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_bounded_jitter() {
        let mut s = Settings::defaults().delivery;
        s.retry_base_seconds = 2;
        s.retry_max_seconds = 60;
        for (attempts, base) in [(1, 2), (2, 4), (3, 8), (5, 32), (6, 60), (40, 60)] {
            let d = backoff(&s, attempts).num_milliseconds();
            assert!(
                d >= base * 1000 && d <= base * 1200,
                "attempt {attempts}: {d} ms"
            );
        }
    }

    #[test]
    fn minutes_round_up() {
        let now = Utc::now();
        assert_eq!(minutes_left(now + chrono::Duration::seconds(600), now), 10);
        assert_eq!(minutes_left(now + chrono::Duration::seconds(61), now), 2);
        assert_eq!(minutes_left(now, now), 1);
    }
}

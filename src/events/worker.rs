//! The webhook delivery worker, one per instance: wakes when an event is emitted or every
//! `webhooks.poll_interval_millis`, claims due deliveries up to its free slots (never more than
//! `max_concurrency_per_endpoint` to one endpoint, so a slow or dead receiver cannot hold up the
//! others), sends each in its own task without holding a transaction across the request, and
//! records the outcome. Failures are retried on the Standard Webhooks schedule with jitter; 410
//! Gone disables the endpoint. Settled deliveries are pruned after `webhooks.retention_days`.

use std::{
    sync::{Arc, Weak},
    time::{Duration, Instant},
};

use actix_web::web;
use chrono::{DateTime, Utc};
use entities::{webhook_delivery, webhook_endpoint, webhook_event};
use reqwest::header::{HeaderValue, CONTENT_TYPE};
use tracing::Instrument;

use super::{net, signature};
use crate::{
    crypto::random_bytes,
    error::ApiError,
    services::webhooks::{self, Outcome},
    state::AppState,
    telemetry::WebhookOutcome,
};

/// How often settled deliveries are pruned.
const HOUSEKEEPING: Duration = Duration::from_secs(60);
/// Receivers' answers are read up to this much, then dropped unread.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// The waits before attempts 2..=8 (attempt 1 is immediate), per Standard Webhooks.
const SCHEDULE_SECONDS: [i64; 7] = [5, 300, 1800, 7200, 18_000, 36_000, 36_000];
/// An emitted event wakes the worker before its transaction commits; give the commit a moment.
const COMMIT_GRACE: Duration = Duration::from_millis(30);

/// Attempts before a delivery is given up.
pub const MAX_ATTEMPTS: i32 = SCHEDULE_SECONDS.len() as i32 + 1;

/// When to try again after `attempts` failed attempts, or `None` once they are used up. Up to
/// 10 % jitter spreads retries to a receiver that comes back.
pub fn next_attempt(attempts: i32, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let idx = usize::try_from(attempts.checked_sub(1)?).ok()?;
    let secs = *SCHEDULE_SECONDS.get(idx)?;
    let millis = secs * 1000;
    let jitter = i64::from(u16::from_be_bytes(random_bytes::<2>())) * (millis / 10) / 65_535;
    Some(now + chrono::Duration::milliseconds(millis + jitter))
}

/// Start the worker; it ends when the application state is dropped.
pub fn spawn(state: web::Data<AppState>) {
    let weak: Weak<AppState> = Arc::downgrade(&state.into_inner());
    tokio::spawn(async move {
        let mut last_housekeeping: Option<Instant> = None;
        loop {
            let Some(state) = weak.upgrade() else { break };
            let notify = state.webhooks.notifier();
            let interval = Duration::from_millis(state.settings.webhooks.poll_interval_millis);
            if last_housekeeping.is_none_or(|at| at.elapsed() >= HOUSEKEEPING) {
                match housekeeping(&state).await {
                    Ok(()) => last_housekeeping = Some(Instant::now()),
                    Err(e) => tracing::warn!(error = %e, "webhook housekeeping failed"),
                }
            }
            let more = match run_round(&state).await {
                Ok(more) => more,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook round failed");
                    false
                }
            };
            drop(state);
            if !more {
                tokio::select! {
                    _ = notify.notified() => {}
                    _ = super::Webhooks::emitted().notified() => {
                        tokio::time::sleep(COMMIT_GRACE).await;
                    }
                    _ = tokio::time::sleep(interval) => {}
                }
            }
        }
    });
}

async fn housekeeping(state: &AppState) -> Result<(), ApiError> {
    let days = i64::try_from(state.settings.webhooks.retention_days).unwrap_or(7);
    let cutoff = state.now() - chrono::Duration::days(days);
    if !webhooks::has_prunable(state.db.conn(), cutoff).await? {
        return Ok(());
    }
    let txn = state.db.begin_write().await?;
    let pruned = webhooks::prune(&*txn, cutoff).await?;
    txn.commit().await?;
    tracing::debug!(pruned, "webhook deliveries pruned");
    Ok(())
}

/// Releases a delivery's slot when its task ends, however it ends.
struct Slot {
    state: Arc<AppState>,
    endpoint_id: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut map) = self.state.webhooks.in_flight.lock() {
            if let Some(n) = map.get_mut(&self.endpoint_id) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    map.remove(&self.endpoint_id);
                }
            }
        }
        self.state.webhooks.wake();
    }
}

/// Claim due deliveries for the free slots and start them; `true` if it filled every slot it
/// had and more may be due.
pub async fn run_round(state: &Arc<AppState>) -> Result<bool, ApiError> {
    let now = state.now();
    let settings = &state.settings.webhooks;
    let (free, in_flight) = {
        let map = state
            .webhooks
            .in_flight
            .lock()
            .map_err(|_| ApiError::internal("webhook slot table poisoned"))?;
        let used: usize = map.values().sum();
        (settings.max_concurrency.saturating_sub(used), map.clone())
    };
    if free == 0 || !webhooks::has_due(state.db.conn(), now).await? {
        return Ok(false);
    }
    let lease = chrono::Duration::seconds(
        i64::try_from(settings.timeout_seconds.saturating_mul(3) + 30).unwrap_or(60),
    );
    let txn = state.db.begin_write().await?;
    let candidates = webhooks::claim(
        &*txn,
        now,
        now + lease,
        free as u64,
        &in_flight,
        settings.max_concurrency_per_endpoint,
    )
    .await?;
    txn.commit().await?;
    let claimed = candidates.len();
    for delivery in candidates {
        let slot = {
            let mut map = state
                .webhooks
                .in_flight
                .lock()
                .map_err(|_| ApiError::internal("webhook slot table poisoned"))?;
            *map.entry(delivery.endpoint_id.clone()).or_default() += 1;
            Slot {
                state: state.clone(),
                endpoint_id: delivery.endpoint_id.clone(),
            }
        };
        tokio::spawn(async move {
            let id = delivery.id.clone();
            if let Err(e) = deliver(&slot.state, delivery).await {
                tracing::warn!(delivery_id = %id, error = %e, "recording a webhook delivery failed");
            }
            drop(slot);
        });
    }
    Ok(claimed == free)
}

/// What a receiver did with one request.
enum Sent {
    Status(u16),
    Error(&'static str),
}

async fn send(
    state: &AppState,
    endpoint: &webhook_endpoint::Model,
    event: &webhook_event::Model,
    keys: &[Vec<u8>],
) -> Sent {
    let Ok(url) = reqwest::Url::parse(&endpoint.url) else {
        return Sent::Error("invalid url");
    };
    if net::check_literal(&url, &state.settings.webhooks).is_err() {
        return Sent::Error("address not allowed");
    }
    let timestamp = state.now().timestamp();
    let signature = signature::header(keys, &event.id, timestamp, &event.body);
    let request = crate::telemetry::traces::inject(state.webhooks.client.post(url))
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .header("webhook-id", event.id.as_str())
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(event.body.clone());
    let mut response = match request.send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return Sent::Error("timeout"),
        Err(e) if e.is_connect() => return Sent::Error("connection failed"),
        Err(_) => return Sent::Error("request failed"),
    };
    let status = response.status().as_u16();
    // Read a bounded amount so the connection can be reused, and drop it.
    let mut read = 0usize;
    while let Ok(Some(chunk)) = response.chunk().await {
        read += chunk.len();
        if read >= MAX_RESPONSE_BYTES {
            break;
        }
    }
    Sent::Status(status)
}

async fn deliver(state: &AppState, delivery: webhook_delivery::Model) -> Result<(), ApiError> {
    let conn = state.db.conn();
    let Some(endpoint) = webhooks::get_endpoint(conn, &delivery.endpoint_id).await? else {
        // Deleted meanwhile, with its deliveries.
        return Ok(());
    };
    let event = webhooks::get_event(conn, &delivery.event_id).await?;
    let keys = webhooks::signing_keys(&state.master_key, &endpoint, state.now());
    let sent = match (
        &event,
        endpoint.status == webhooks::EndpointStatus::Enabled.as_str(),
        keys.is_empty(),
    ) {
        (_, false, _) => Err("endpoint disabled"),
        (None, _, _) => Err("event missing"),
        (_, _, true) => Err("secret unreadable"),
        (Some(event), true, false) => {
            // With traces on, a client span in the trace of the request that caused the event.
            let span = if crate::telemetry::traces::enabled() {
                let span = tracing::info_span!(
                    "webhook.send",
                    otel.name = "webhook POST",
                    otel.kind = "client",
                    delivery_id = %delivery.id,
                    endpoint_id = %endpoint.id,
                    event_id = %delivery.event_id,
                    attempts = delivery.attempts,
                );
                crate::telemetry::traces::follow(&span, event.traceparent.as_deref());
                span
            } else {
                tracing::Span::none()
            };
            Ok(send(state, &endpoint, event, &keys).instrument(span).await)
        }
    };
    let now = state.now();
    let span = tracing::info_span!(
        "webhook",
        delivery_id = %delivery.id,
        endpoint_id = %endpoint.id,
        event_id = %delivery.event_id,
        attempts = delivery.attempts,
    );
    if let Some(event) = &event {
        crate::telemetry::traces::follow(&span, event.traceparent.as_deref());
    }
    let _enter = span.enter();
    let retry_or_fail = |status_code: Option<i32>, error: &'static str| match next_attempt(
        delivery.attempts,
        now,
    ) {
        Some(at) => Outcome::Retry {
            at,
            status_code,
            error,
        },
        None => Outcome::Failed { status_code, error },
    };
    let mut gone = false;
    let outcome = match sent {
        Err(reason) => Outcome::Failed {
            status_code: None,
            error: reason,
        },
        Ok(Sent::Status(code)) if (200..300).contains(&code) => Outcome::Delivered {
            status_code: i32::from(code),
        },
        Ok(Sent::Status(410)) => {
            gone = true;
            Outcome::Failed {
                status_code: Some(410),
                error: "410 Gone: endpoint disabled",
            }
        }
        Ok(Sent::Status(code)) => retry_or_fail(Some(i32::from(code)), "non-2xx answer"),
        Ok(Sent::Error(reason)) => retry_or_fail(None, reason),
    };
    match &outcome {
        Outcome::Delivered { status_code } => {
            tracing::info!(status_code, "webhook delivered");
        }
        Outcome::Retry {
            at,
            status_code,
            error,
        } => {
            tracing::info!(?status_code, %error, retry_at = %at, "webhook not delivered; will retry");
        }
        Outcome::Failed { status_code, error } => {
            tracing::warn!(?status_code, %error, "webhook delivery given up");
        }
    }
    drop(_enter);
    let counted = match &outcome {
        Outcome::Delivered { .. } => WebhookOutcome::delivered,
        Outcome::Retry { .. } => WebhookOutcome::retry,
        Outcome::Failed { .. } => WebhookOutcome::failed,
    };
    let txn = state.db.begin_write().await?;
    let recorded = webhooks::record(&*txn, &delivery, outcome, now).await?;
    if gone {
        webhooks::disable_endpoint(&*txn, &endpoint.id, now).await?;
    }
    txn.commit().await?;
    if recorded {
        state.metrics.webhook(counted);
    } else {
        tracing::warn!(delivery_id = %delivery.id, "webhook outcome not recorded: the claim had lapsed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_standard_webhooks_with_bounded_jitter() {
        let now = Utc::now();
        for (attempts, secs) in [
            (1, 5),
            (2, 300),
            (3, 1800),
            (4, 7200),
            (5, 18_000),
            (6, 36_000),
            (7, 36_000),
        ] {
            let wait = (next_attempt(attempts, now).unwrap() - now).num_milliseconds();
            assert!(
                wait >= secs * 1000 && wait <= secs * 1100,
                "after attempt {attempts}: {wait} ms"
            );
        }
        assert_eq!(MAX_ATTEMPTS, 8);
        assert!(
            next_attempt(8, now).is_none(),
            "eight attempts, then failed"
        );
        assert!(next_attempt(0, now).is_none());
    }
}

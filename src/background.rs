//! Work an instance does on its own: mirror revocations, single and account-wide (every 250 ms,
//! by `seq`), reload keys (token and Jitsi keys) written by other instances, rotate keys when
//! due, erase removed keys, forget expired revocations, record expired exceptions and purge
//! their sealed text when due, and sample the operations gauges (`telemetry::Metrics`).

use std::{
    sync::{Arc, Weak},
    time::Duration,
};

use actix_web::web;
use chrono::{DateTime, Utc};

use crate::{
    error::ApiError,
    services::{
        backlog,
        decisions::{self, Cause},
        exceptions, jitsi_keys, keys, revocations,
    },
    state::AppState,
};

const REVOCATION_POLL: Duration = Duration::from_millis(250);
const MAINTENANCE: Duration = Duration::from_secs(5);
/// Rows per query when mirroring revocations; a poll pages until a page comes back short.
const REVOCATION_PAGE: u64 = 10_000;

/// Bring the in-memory revocation set up to date with the database: every row above the
/// cursor, page by page, the cursor moving only to a `seq` that was read; single revocations,
/// then account-wide ones.
pub async fn poll_revocations(state: &AppState) -> Result<(), ApiError> {
    let now = state.now();
    poll_token_revocations(state, now).await?;
    poll_account_revocations(state, now).await
}

async fn poll_token_revocations(state: &AppState, now: DateTime<Utc>) -> Result<(), ApiError> {
    loop {
        let rows = revocations::after(
            state.db.conn(),
            state.revocations.cursor(),
            now,
            REVOCATION_PAGE,
        )
        .await?;
        let full = rows.len() as u64 == REVOCATION_PAGE;
        let last = rows.last().map(|row| row.seq);
        for row in rows {
            state
                .revocations
                .insert(row.jti, row.expires_at.timestamp());
        }
        if let Some(seq) = last {
            state.revocations.advance(seq);
        }
        if !full {
            return Ok(());
        }
    }
}

async fn poll_account_revocations(state: &AppState, now: DateTime<Utc>) -> Result<(), ApiError> {
    loop {
        let rows = revocations::accounts_after(
            state.db.conn(),
            state.revocations.account_cursor(),
            now,
            REVOCATION_PAGE,
        )
        .await?;
        let full = rows.len() as u64 == REVOCATION_PAGE;
        let last = rows.last().map(|row| row.seq);
        for row in rows {
            state.revocations.insert_account(
                row.account_id,
                row.revoked_before.timestamp(),
                row.expires_at.timestamp(),
            );
        }
        if let Some(seq) = last {
            state.revocations.advance_accounts(seq);
        }
        if !full {
            return Ok(());
        }
    }
}

/// Sample the operations gauges: readiness (the database answers) and, from the database,
/// queue backlogs, failing webhook endpoints, SMS budget use and the key rotation schedule.
pub async fn sample_gauges(state: &AppState) -> Result<(), ApiError> {
    let ready = state.db.ping().await.is_ok();
    state.metrics.set_ready(ready);
    let sample = backlog::sample(state.db.conn(), &state.settings.tokens, state.now()).await?;
    state.metrics.sampled(&sample);
    Ok(())
}

pub async fn maintain(state: &AppState) -> Result<(), ApiError> {
    let now = state.now();
    if let Err(e) = keys::reload(state.db.conn(), &state.keys, &state.master_key).await {
        tracing::warn!(error = %e, "reloading signing keys failed");
    }
    if let Err(e) = jitsi_keys::reload(state.db.conn(), &state.jitsi.keys, &state.master_key).await
    {
        tracing::warn!(error = %e, "reloading Jitsi keys failed");
    }
    let txn = state.db.begin_write().await?;
    let rotated =
        keys::rotate_if_due(&*txn, &state.master_key, &state.settings.tokens, now).await?;
    let erased = keys::erase_removed(&*txn, now).await?;
    let leeway = chrono::Duration::seconds(state.settings.tokens.leeway_seconds as i64);
    revocations::purge(&*txn, now - leeway).await?;
    crate::adapters::livekit::prune(&*txn, now).await?;
    txn.commit().await?;
    let changed = rotated.is_some() || erased > 0;
    if let Some(key) = rotated {
        tracing::info!(kid = %key.kid, activates_at = %key.activates_at, "scheduled key rotation");
    }
    if changed {
        if let Err(e) = keys::reload(state.db.conn(), &state.keys, &state.master_key).await {
            tracing::warn!(error = %e, "reloading signing keys failed");
        }
        if let Err(e) =
            jitsi_keys::reload(state.db.conn(), &state.jitsi.keys, &state.master_key).await
        {
            tracing::warn!(error = %e, "reloading Jitsi keys failed");
        }
    }
    state.revocations.purge((now - leeway).timestamp());
    maintain_exceptions(state, now).await?;
    withdraw_lapsed(state, now).await
}

/// Reconcile the entitled accounts whose evidence lapsed by time alone since the last round
/// (all of them in the first round of this process), so the withdrawal is stored, announced
/// and in the status lists within one maintenance interval of its `expires_at`.
async fn withdraw_lapsed(state: &AppState, now: DateTime<Utc>) -> Result<(), ApiError> {
    const BATCH: u64 = 200;
    let after = *state.lapses_checked_until.lock().expect("lapse cursor");
    let mut after_account = String::new();
    loop {
        let candidates =
            decisions::lapse_candidates(state.db.conn(), after, now, &after_account, BATCH).await?;
        let Some(last) = candidates.last().cloned() else {
            break;
        };
        let txn = state.db.begin_write().await?;
        let changes = decisions::reconcile_all(
            &*txn,
            &state.policy,
            &state.master_key,
            now,
            &candidates,
            Cause::Lapsed,
        )
        .await?;
        txn.commit().await?;
        for change in &changes {
            state.account_changed(&change.account_id);
        }
        if !changes.is_empty() {
            tracing::info!(accounts = changes.len(), "entitlements lapsed by time");
        }
        if (candidates.len() as u64) < BATCH {
            break;
        }
        after_account = last;
    }
    *state.lapses_checked_until.lock().expect("lapse cursor") = Some(now);
    Ok(())
}

/// When the configured policy is not the one the stored decisions were computed with (or
/// none was recorded yet), reconcile every account with it, a page per transaction, then
/// record its fingerprint. Meeting servers get the events of every decision it changes.
pub async fn reconcile_policy(state: &AppState) -> Result<(), ApiError> {
    const PAGE: u64 = 500;
    let fingerprint = decisions::policy_fingerprint(&state.policy);
    if decisions::stored_fingerprint(state.db.conn())
        .await?
        .as_deref()
        == Some(&fingerprint)
    {
        return Ok(());
    }
    let mut after = String::new();
    let mut changed = 0usize;
    loop {
        let page = decisions::account_page(state.db.conn(), &after, PAGE).await?;
        let Some(last) = page.last().cloned() else {
            break;
        };
        let now = state.now();
        let txn = state.db.begin_write().await?;
        let changes = decisions::reconcile_all(
            &*txn,
            &state.policy,
            &state.master_key,
            now,
            &page,
            Cause::Policy,
        )
        .await?;
        txn.commit().await?;
        changed += changes.len();
        for change in &changes {
            state.account_changed(&change.account_id);
        }
        after = last;
    }
    let txn = state.db.begin_write().await?;
    decisions::store_fingerprint(&*txn, &fingerprint, state.now()).await?;
    txn.commit().await?;
    tracing::info!(changed, "decisions reconciled with the configured policy");
    Ok(())
}

/// Record expired exceptions (they stopped counting at `expires_at` already) and purge sealed
/// text that is due, a bounded batch per run.
async fn maintain_exceptions(state: &AppState, now: DateTime<Utc>) -> Result<(), ApiError> {
    const BATCH: u64 = 100;
    let txn = state.db.begin_write().await?;
    let key = exceptions::sealing_key(&state.master_key);
    let changed = exceptions::expire_due(&*txn, &key, now, BATCH).await?;
    let purged = exceptions::purge_due(&*txn, &state.settings.exceptions, now, BATCH).await?;
    decisions::reconcile_all(
        &*txn,
        &state.policy,
        &state.master_key,
        now,
        &changed,
        Cause::Lapsed,
    )
    .await?;
    txn.commit().await?;
    for account_id in &changed {
        state.account_changed(account_id);
    }
    if !changed.is_empty() || purged > 0 {
        tracing::info!(
            accounts = changed.len(),
            purged,
            "exceptions: expiry recorded, sealed text purged"
        );
    }
    Ok(())
}

/// Start the loops; they end when the application state is dropped.
pub fn spawn(state: web::Data<AppState>) {
    let weak: Weak<AppState> = Arc::downgrade(&state.into_inner());
    let revocation_weak = weak.clone();
    let policy_weak = weak.clone();
    tokio::spawn(async move {
        let Some(state) = policy_weak.upgrade() else {
            return;
        };
        if let Err(e) = reconcile_policy(&state).await {
            tracing::warn!(error = %e, "reconciling decisions with the policy failed");
        }
    });
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(REVOCATION_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(state) = revocation_weak.upgrade() else {
                break;
            };
            if let Err(e) = poll_revocations(&state).await {
                tracing::debug!(error = %e, "revocation poll failed");
            }
        }
    });
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(MAINTENANCE);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(state) = weak.upgrade() else { break };
            // First, so a failing round still leaves gauges that show why.
            if let Err(e) = sample_gauges(&state).await {
                tracing::warn!(error = %e, "sampling the operations gauges failed");
            }
            if let Err(e) = maintain(&state).await {
                tracing::warn!(error = %e, "maintenance failed");
            }
        }
    });
}

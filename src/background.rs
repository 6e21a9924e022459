//! Work an instance does on its own: mirror revocations (every 250 ms, by `seq`), reload keys
//! written by other instances, rotate keys when due, erase removed keys, forget expired
//! revocations, record expired exceptions and purge their sealed text when due.

use std::{
    sync::{Arc, Weak},
    time::Duration,
};

use actix_web::web;
use chrono::{DateTime, Utc};

use crate::{
    error::ApiError,
    services::{exceptions, keys, revocations},
    state::AppState,
};

const REVOCATION_POLL: Duration = Duration::from_millis(250);
const MAINTENANCE: Duration = Duration::from_secs(5);
/// Rows per query when mirroring revocations; a poll pages until a page comes back short.
const REVOCATION_PAGE: u64 = 10_000;

/// Bring the in-memory revocation set up to date with the database: every row above the
/// cursor, page by page, the cursor moving only to a `seq` that was read.
pub async fn poll_revocations(state: &AppState) -> Result<(), ApiError> {
    let now = state.now();
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

pub async fn maintain(state: &AppState) -> Result<(), ApiError> {
    let now = state.now();
    if let Err(e) = keys::reload(state.db.conn(), &state.keys, &state.master_key).await {
        tracing::warn!(error = %e, "reloading signing keys failed");
    }
    let txn = state.db.begin_write().await?;
    let rotated =
        keys::rotate_if_due(&*txn, &state.master_key, &state.settings.tokens, now).await?;
    let erased = keys::erase_removed(&*txn, now).await?;
    let leeway = chrono::Duration::seconds(state.settings.tokens.leeway_seconds as i64);
    revocations::purge(&*txn, now - leeway).await?;
    txn.commit().await?;
    let changed = rotated.is_some() || erased > 0;
    if let Some(key) = rotated {
        tracing::info!(kid = %key.kid, activates_at = %key.activates_at, "scheduled key rotation");
    }
    if changed {
        if let Err(e) = keys::reload(state.db.conn(), &state.keys, &state.master_key).await {
            tracing::warn!(error = %e, "reloading signing keys failed");
        }
    }
    state.revocations.purge((now - leeway).timestamp());
    maintain_exceptions(state, now).await
}

/// Record expired exceptions (they stopped counting at `expires_at` already) and purge sealed
/// text that is due, a bounded batch per run.
async fn maintain_exceptions(state: &AppState, now: DateTime<Utc>) -> Result<(), ApiError> {
    const BATCH: u64 = 100;
    let txn = state.db.begin_write().await?;
    let changed = exceptions::expire_due(&*txn, now, BATCH).await?;
    let purge_after = state.settings.exceptions.purge_statements_after_days;
    let purged = if purge_after > 0 {
        exceptions::purge_due(
            &*txn,
            chrono::Duration::days(purge_after as i64),
            now,
            BATCH,
        )
        .await?
    } else {
        0
    };
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
            if let Err(e) = maintain(&state).await {
                tracing::warn!(error = %e, "maintenance failed");
            }
        }
    });
}

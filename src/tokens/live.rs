//! What authorize and issuance need to know about the present, cached briefly: an account's
//! status and evidence (at most `tokens.account_cache_millis` old, so a change on any instance
//! is seen everywhere within 1 s), and the revoked token ids (polled from the database).

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicI64, Ordering},
        Arc, RwLock,
    },
    time::{Duration, Instant},
};

use moka::{sync::Cache, Expiry};
use sea_orm::{ConnectionTrait, DbErr};

pub use crate::domain::policy::AccountSnapshot;
use crate::services::evidence;

const MAX_ENTRIES: u64 = 100_000;

/// A cached snapshot (`None`: the account does not exist) and when its read began.
type Entry = (Option<Arc<AccountSnapshot>>, Instant);

/// Accounts as the policy last saw them, for at most `ttl` after the read that produced them
/// began. Bounded; when full, TinyLFU keeps the accounts asked about most.
pub struct AccountCache {
    ttl: Duration,
    cache: Cache<String, Entry>,
}

/// An entry's life is counted from the start of its read, not its insertion, so it never
/// outlives its freshness.
struct FromReadStart(Duration);

impl Expiry<String, Entry> for FromReadStart {
    fn expire_after_create(
        &self,
        _: &String,
        entry: &Entry,
        created_at: Instant,
    ) -> Option<Duration> {
        Some(
            self.0
                .saturating_sub(created_at.saturating_duration_since(entry.1)),
        )
    }
}

impl AccountCache {
    pub fn new(ttl: Duration) -> Self {
        AccountCache {
            ttl,
            cache: Cache::builder()
                .max_capacity(MAX_ENTRIES)
                .expire_after(FromReadStart(ttl))
                .build(),
        }
    }

    /// The account as the policy sees it, at most `tokens.account_cache_millis` old; `None`
    /// if it does not exist.
    pub async fn snapshot(
        &self,
        conn: &impl ConnectionTrait,
        account_id: &str,
    ) -> Result<Option<Arc<AccountSnapshot>>, DbErr> {
        if let Some(cached) = self.get(account_id) {
            return Ok(cached);
        }
        let started = Instant::now();
        let snapshot = evidence::snapshot(conn, account_id).await?.map(Arc::new);
        self.put(account_id, snapshot.clone(), started);
        Ok(snapshot)
    }

    /// `Some(None)`: known not to exist; `None`: not cached (or too old).
    fn get(&self, account_id: &str) -> Option<Option<Arc<AccountSnapshot>>> {
        self.cache.get(account_id).map(|(snapshot, _)| snapshot)
    }

    /// Cache what was read at `read_started`.
    fn put(&self, account_id: &str, snapshot: Option<Arc<AccountSnapshot>>, read_started: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        self.cache
            .insert(account_id.to_owned(), (snapshot, read_started));
    }

    pub fn forget(&self, account_id: &str) {
        self.cache.invalidate(account_id);
    }
}

/// Revoked `jti`s with their expiry (unix seconds), mirrored from the database.
#[derive(Default)]
pub struct RevocationSet {
    jtis: RwLock<HashMap<String, i64>>,
    /// The highest `seq` read from the database: the next poll asks for rows above it.
    cursor: AtomicI64,
}

impl RevocationSet {
    pub fn contains(&self, jti: &str) -> bool {
        self.jtis
            .read()
            .map(|m| m.contains_key(jti))
            .unwrap_or(false)
    }

    pub fn insert(&self, jti: String, expires_at: i64) {
        if let Ok(mut m) = self.jtis.write() {
            m.insert(jti, expires_at);
        }
    }

    /// The highest `seq` mirrored so far (0 before the first row).
    pub fn cursor(&self) -> i64 {
        self.cursor.load(Ordering::Acquire)
    }

    /// Move the cursor to `seq`, a row that has been inserted; never backwards.
    pub fn advance(&self, seq: i64) {
        self.cursor.fetch_max(seq, Ordering::AcqRel);
    }

    /// Drop ids whose tokens have expired anyway.
    pub fn purge(&self, now_unix: i64) {
        if let Ok(mut m) = self.jtis.write() {
            m.retain(|_, exp| *exp >= now_unix);
        }
    }
}

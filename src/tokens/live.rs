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

use crate::domain::policy::Fact;

/// An account as the policy sees it.
#[derive(Debug, Clone)]
pub struct AccountSnapshot {
    pub active: bool,
    pub facts: Vec<Fact>,
}

const MAX_ENTRIES: usize = 100_000;

type Entry = (Option<Arc<AccountSnapshot>>, Instant);

pub struct AccountCache {
    ttl: Duration,
    map: RwLock<HashMap<String, Entry>>,
}

impl AccountCache {
    pub fn new(ttl: Duration) -> Self {
        AccountCache {
            ttl,
            map: RwLock::new(HashMap::new()),
        }
    }

    /// `Some(None)`: known not to exist; `None`: not cached (or too old).
    pub fn get(&self, account_id: &str) -> Option<Option<Arc<AccountSnapshot>>> {
        let map = self.map.read().ok()?;
        let (snapshot, at) = map.get(account_id)?;
        (at.elapsed() < self.ttl).then(|| snapshot.clone())
    }

    /// Cache what was read at `read_started` (so the entry never outlives its freshness).
    pub fn put(
        &self,
        account_id: &str,
        snapshot: Option<Arc<AccountSnapshot>>,
        read_started: Instant,
    ) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut map) = self.map.write() {
            if map.len() >= MAX_ENTRIES {
                let ttl = self.ttl;
                map.retain(|_, (_, at)| at.elapsed() < ttl);
                if map.len() >= MAX_ENTRIES {
                    map.clear();
                }
            }
            map.insert(account_id.to_owned(), (snapshot, read_started));
        }
    }

    pub fn forget(&self, account_id: &str) {
        if let Ok(mut map) = self.map.write() {
            map.remove(account_id);
        }
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

    pub fn len(&self) -> usize {
        self.jtis.read().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

//! What authorize and issuance need to know about the present, cached briefly: an account's
//! status and evidence (at most `tokens.account_cache_millis` old, so a change on any instance
//! is seen everywhere within 1 s), and the revocations: token ids and account-wide
//! watermarks (polled from the database).

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
use crate::{crypto::MasterKey, services::evidence};

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

impl FromReadStart {
    fn left(&self, entry: &Entry, at: Instant) -> Option<Duration> {
        Some(self.0.saturating_sub(at.saturating_duration_since(entry.1)))
    }
}

impl Expiry<String, Entry> for FromReadStart {
    fn expire_after_create(&self, _: &String, entry: &Entry, at: Instant) -> Option<Duration> {
        self.left(entry, at)
    }

    /// A new read replaces the entry (even one that aged out but was not evicted yet): its
    /// life starts over from that read, not from the old one's.
    fn expire_after_update(
        &self,
        _: &String,
        entry: &Entry,
        at: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        self.left(entry, at)
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
        master: &MasterKey,
        account_id: &str,
    ) -> Result<Option<Arc<AccountSnapshot>>, DbErr> {
        if let Some(cached) = self.get(account_id) {
            return Ok(cached);
        }
        let started = Instant::now();
        let snapshot = evidence::snapshot(conn, master, account_id)
            .await?
            .map(Arc::new);
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

/// Revocations mirrored from the database: revoked `jti`s with their expiry, and account-wide
/// revocations (every token of the account with `iat` before a time). Times are unix seconds.
#[derive(Default)]
pub struct RevocationSet {
    jtis: RwLock<HashMap<String, i64>>,
    /// The highest `seq` read from the database: the next poll asks for rows above it.
    cursor: AtomicI64,
    /// Per account: `(revoked_before, expires_at)` of its latest account-wide revocation.
    accounts: RwLock<HashMap<String, (i64, i64)>>,
    /// As `cursor`, for account-wide revocations (a table of their own).
    account_cursor: AtomicI64,
}

impl RevocationSet {
    pub fn contains(&self, jti: &str) -> bool {
        self.jtis
            .read()
            .map(|m| m.contains_key(jti))
            .unwrap_or(false)
    }

    /// Whether a token is revoked: its `jti` alone, or every token of its account (`sub`)
    /// issued before a time later than its `iat`.
    pub fn revokes(&self, jti: &str, sub: &str, iat: i64) -> bool {
        self.contains(jti)
            || self
                .accounts
                .read()
                .map(|m| m.get(sub).is_some_and(|(before, _)| iat < *before))
                .unwrap_or(false)
    }

    pub fn insert(&self, jti: String, expires_at: i64) {
        if let Ok(mut m) = self.jtis.write() {
            m.insert(jti, expires_at);
        }
    }

    /// Revoke every token of `account_id` issued before `revoked_before`, until `expires_at`;
    /// an earlier watermark never replaces a later one.
    pub fn insert_account(&self, account_id: String, revoked_before: i64, expires_at: i64) {
        if let Ok(mut m) = self.accounts.write() {
            let entry = m.entry(account_id).or_insert((revoked_before, expires_at));
            *entry = (entry.0.max(revoked_before), entry.1.max(expires_at));
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

    /// As [`Self::cursor`], for account-wide revocations.
    pub fn account_cursor(&self) -> i64 {
        self.account_cursor.load(Ordering::Acquire)
    }

    /// As [`Self::advance`], for account-wide revocations.
    pub fn advance_accounts(&self, seq: i64) {
        self.account_cursor.fetch_max(seq, Ordering::AcqRel);
    }

    /// Drop what revokes only tokens that have expired anyway.
    pub fn purge(&self, now_unix: i64) {
        if let Ok(mut m) = self.jtis.write() {
            m.retain(|_, exp| *exp >= now_unix);
        }
        if let Ok(mut m) = self.accounts.write() {
            m.retain(|_, (_, exp)| *exp >= now_unix);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Option<Arc<AccountSnapshot>> {
        Some(Arc::new(AccountSnapshot {
            active: true,
            facts: Vec::new(),
            status: None,
        }))
    }

    #[test]
    fn account_revocations_refuse_tokens_issued_before_their_time() {
        let set = RevocationSet::default();
        set.insert_account("acc_1".into(), 1_000, 5_000);
        assert!(set.revokes("j1", "acc_1", 999));
        assert!(
            !set.revokes("j1", "acc_1", 1_000),
            "issued at the watermark"
        );
        assert!(!set.revokes("j1", "acc_2", 999), "another account");
        // A later watermark moves it on; an earlier one (a late mirror row) never moves it back.
        set.insert_account("acc_1".into(), 2_000, 6_000);
        set.insert_account("acc_1".into(), 1_500, 5_500);
        assert!(set.revokes("j1", "acc_1", 1_999));
        set.insert("j2".into(), 9_000);
        assert!(
            set.revokes("j2", "acc_3", 0),
            "single revocations still count"
        );
        set.purge(6_001);
        assert!(!set.revokes("j1", "acc_1", 1_999), "forgotten once expired");
        assert!(set.contains("j2"));
    }

    #[test]
    fn entries_live_from_their_read_and_start_over_when_read_again() {
        let cache = AccountCache::new(Duration::from_millis(200));
        cache.put("acc_1", snapshot(), Instant::now());
        assert!(cache.get("acc_1").is_some());
        // Read long ago: already too old when it would be cached.
        cache.put("acc_2", snapshot(), Instant::now() - Duration::from_secs(1));
        assert!(cache.get("acc_2").is_none());
        std::thread::sleep(Duration::from_millis(250));
        assert!(cache.get("acc_1").is_none());
        // Read again after it aged out: cached again for a full life.
        cache.put("acc_1", snapshot(), Instant::now());
        assert!(cache.get("acc_1").is_some());
        cache.forget("acc_1");
        assert!(cache.get("acc_1").is_none());
        // Known not to exist is an answer too.
        cache.put("acc_3", None, Instant::now());
        assert!(matches!(cache.get("acc_3"), Some(None)));
        // A zero life caches nothing.
        let off = AccountCache::new(Duration::ZERO);
        off.put("acc_1", snapshot(), Instant::now());
        assert!(off.get("acc_1").is_none());
    }
}

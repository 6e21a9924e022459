//! What authorize and issuance need to know about the present: an account's status and
//! evidence (at most `tokens.account_cache_millis` behind the database, so a change on any
//! instance is seen everywhere within 1 s: [`AccountCache`]), and the revocations: token ids and account-wide
//! watermarks (polled from the database).

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicI64, AtomicU64, Ordering},
        Arc, RwLock,
    },
    time::{Duration, Instant},
};

use moka::{sync::Cache, Expiry};
use sea_orm::{ConnectionTrait, DbErr};

pub use crate::domain::policy::AccountSnapshot;
use crate::{crypto::MasterKey, services::evidence};

const MAX_ENTRIES: u64 = 100_000;
/// An entry's longest life, while the change feed keeps it current.
const MAX_AGE: Duration = Duration::from_secs(300);
/// How long an account this instance changed is remembered as such: a read that began before
/// is not cached (reads that take longer are not cached at all).
const FORGOTTEN_FOR: Duration = Duration::from_secs(2);
/// Accounts remembered as changed here at most (this instance's writes in `FORGOTTEN_FOR`).
const FORGOTTEN_MAX: u64 = 20_000;

/// A cached snapshot (`None`: the account does not exist) and when its read began.
type Entry = (Option<Arc<AccountSnapshot>>, Instant);

/// Accounts as the policy last saw them. An entry serves while it is at most `ttl`
/// (`tokens.account_cache_millis`) old, or, for up to `MAX_AGE`, while this instance's view of
/// the change feed is at most `ttl` old: every change to an account's evidence or status
/// moves its status-list entry's `seq` (`services::status_lists::touch`), the status-list poll
/// (every 250 ms) reads those changes and forgets the accounts ([`AccountCache::forget`]), then
/// says when it began ([`AccountCache::changes_seen_until`]). So a change made on any instance
/// is seen everywhere within `ttl`, as before, while the accounts asked about often stay
/// cached. Bounded; when full, TinyLFU keeps the accounts asked about most.
pub struct AccountCache {
    ttl: Duration,
    cache: Cache<String, Entry>,
    /// Accounts this instance changed within `FORGOTTEN_FOR`, and when.
    forgotten: Cache<String, Instant>,
    /// When the last complete read of the change feed began, as nanoseconds after `base`
    /// plus one (0: never).
    feed: AtomicU64,
    /// When the change feed last forgot accounts (or all of them), as `feed` counts (0:
    /// never): a read that began before is not cached, whichever account it was for. (Marking
    /// the moment rather than each account keeps memory flat however many accounts change, as
    /// when a million are imported; a read overlapping a poll that found changes, one in a few
    /// hundred under steady writes, is simply not cached.)
    all_forgotten: AtomicU64,
    base: Instant,
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
                .expire_after(FromReadStart(MAX_AGE))
                .build(),
            forgotten: Cache::builder()
                .max_capacity(FORGOTTEN_MAX)
                .time_to_live(FORGOTTEN_FOR)
                .build(),
            feed: AtomicU64::new(0),
            all_forgotten: AtomicU64::new(0),
            base: Instant::now(),
        }
    }

    /// The account as the policy sees it, at most `tokens.account_cache_millis` behind the
    /// database; `None` if it does not exist.
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

    /// Whether the change feed was read completely within `ttl`.
    fn feed_current(&self, now: Instant) -> bool {
        match self.feed.load(Ordering::Acquire) {
            0 => false,
            n => {
                let seen = self.base + Duration::from_nanos(n - 1);
                now.saturating_duration_since(seen) <= self.ttl
            }
        }
    }

    /// `Some(None)`: known not to exist; `None`: not cached (or too old).
    fn get(&self, account_id: &str) -> Option<Option<Arc<AccountSnapshot>>> {
        let (snapshot, read_started) = self.cache.get(account_id)?;
        let now = Instant::now();
        (now.saturating_duration_since(read_started) <= self.ttl || self.feed_current(now))
            .then_some(snapshot)
    }

    /// Cache what was read at `read_started`, unless the account was forgotten since (the
    /// read may predate the change that made it forgotten).
    fn put(&self, account_id: &str, snapshot: Option<Arc<AccountSnapshot>>, read_started: Instant) {
        if self.ttl.is_zero() || read_started.elapsed() >= FORGOTTEN_FOR {
            return;
        }
        self.cache
            .insert(account_id.to_owned(), (snapshot, read_started));
        // After the insert: a `forget` racing with it either is seen here or removes the entry
        // after it was inserted (it records before it removes).
        if self
            .forgotten
            .get(account_id)
            .is_some_and(|at| at >= read_started)
            || self.all_forgotten.load(Ordering::Acquire) >= self.tick(read_started)
        {
            self.cache.invalidate(account_id);
        }
    }

    /// The change feed named these accounts: drop their snapshots, and keep reads that began
    /// before now from caching theirs. The mark comes first: a read that caches after the drop
    /// sees it.
    pub fn forget_changed<'a>(&self, account_ids: impl IntoIterator<Item = &'a str>) {
        let mut ids = account_ids.into_iter().peekable();
        if self.ttl.is_zero() || ids.peek().is_none() {
            return;
        }
        self.all_forgotten
            .fetch_max(self.tick(Instant::now()), Ordering::AcqRel);
        for id in ids {
            self.cache.invalidate(id);
        }
    }

    /// This instance changed the account (after its commit): drop its snapshot, and keep reads
    /// that began before now from caching theirs.
    pub fn forget(&self, account_id: &str) {
        if self.ttl.is_zero() {
            return;
        }
        self.forgotten.insert(account_id.to_owned(), Instant::now());
        self.cache.invalidate(account_id);
    }

    /// Whether a complete read of the change feed was ever reported.
    pub fn feed_seen(&self) -> bool {
        self.feed.load(Ordering::Acquire) != 0
    }

    /// Forget every account (the change feed is read from its start, as at start-up).
    pub fn forget_all(&self) {
        self.all_forgotten
            .fetch_max(self.tick(Instant::now()), Ordering::AcqRel);
        self.cache.invalidate_all();
    }

    /// `at` as `feed` and `all_forgotten` count it.
    fn tick(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.base).as_nanos() as u64 + 1
    }

    /// Every account changed before `started` was forgotten (a complete read of the change
    /// feed began then).
    pub fn changes_seen_until(&self, started: Instant) {
        self.feed.fetch_max(self.tick(started), Ordering::AcqRel);
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
    fn entries_outlive_their_ttl_only_while_the_change_feed_is_current() {
        let cache = AccountCache::new(Duration::from_millis(100));
        let read = Instant::now();
        cache.put("acc_1", snapshot(), read);
        std::thread::sleep(Duration::from_millis(150));
        assert!(
            cache.get("acc_1").is_none(),
            "no feed read yet: the ttl alone"
        );
        cache.changes_seen_until(Instant::now());
        assert!(cache.get("acc_1").is_some(), "the feed is current");
        std::thread::sleep(Duration::from_millis(150));
        assert!(cache.get("acc_1").is_none(), "the feed fell behind");
        cache.changes_seen_until(Instant::now());
        assert!(cache.get("acc_1").is_some());
        // The feed names the account: gone, and a read that began before is not cached.
        let before = Instant::now();
        cache.forget_changed(["acc_1"]);
        assert!(cache.get("acc_1").is_none());
        cache.put("acc_1", snapshot(), before);
        assert!(
            cache.get("acc_1").is_none(),
            "a read from before the change"
        );
        cache.put("acc_1", snapshot(), Instant::now());
        assert!(cache.get("acc_1").is_some(), "a read from after it");
        // Changed here: the same, account by account.
        let before = Instant::now();
        cache.forget("acc_2");
        cache.put("acc_2", snapshot(), before);
        assert!(cache.get("acc_2").is_none());
        cache.put("acc_3", snapshot(), before);
        assert!(cache.get("acc_3").is_some(), "another account is cached");
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

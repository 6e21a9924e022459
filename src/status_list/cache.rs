//! The status lists in memory on every instance: one packed array per list, mirrored from the
//! database by `seq` every 250 ms (the same poll tells the account cache which accounts
//! changed: `tokens::live::AccountCache`), compressed and signed again only when it changed (or its
//! signature is due or made with a key that no longer signs), so serving a list is handing out
//! a cached byte string.

use crate::error::ErrorCode;
use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak},
    time::Duration,
};

use actix_web::web::{self, Bytes};
use chrono::{DateTime, Utc};
use entities::status_list;
use serde_json::json;

use super::{list_uri, settings::StatusListSettings, StatusArray, StatusValue, BITS};
use crate::{
    error::ApiError,
    services::status_lists::{self, Change},
    state::AppState,
    tokens::keyring::KeyRing,
};

/// The `typ` of a status list token.
pub const STATUS_LIST_TYPE: &str = "statuslist+jwt";
/// How often every instance reads changes: a change is served everywhere well within 1 s.
const POLL: Duration = Duration::from_millis(250);
/// Entries read per query while catching up.
const PAGE: u64 = 10_000;

/// A signed list, ready to serve.
#[derive(Debug)]
pub struct Signed {
    /// The compact JWS (`application/statuslist+jwt`).
    pub jwt: Bytes,
    pub iat: i64,
    pub exp: i64,
    pub kid: String,
    /// The list version it shows.
    version: u64,
    /// `lst`, kept so a re-signature of an unchanged list does not compress again.
    lst: Arc<str>,
}

struct List {
    array: StatusArray,
    /// Bumped by every change applied.
    version: u64,
    signed: Option<Arc<Signed>>,
}

#[derive(Default)]
struct Lists {
    /// The highest `seq` applied.
    cursor: i64,
    lists: BTreeMap<i64, List>,
}

pub struct StatusLists {
    ttl_seconds: u64,
    lifetime_seconds: i64,
    lists: RwLock<Lists>,
    /// One build at a time, so concurrent requests for a stale list compress it once.
    building: Mutex<()>,
}

impl StatusLists {
    /// Empty lists (filled by [`refresh`]); makes `settings.list_size` the size of new lists.
    pub fn new(settings: &StatusListSettings) -> StatusLists {
        settings.install();
        StatusLists {
            ttl_seconds: settings.ttl_seconds,
            lifetime_seconds: settings.lifetime_seconds(),
            lists: RwLock::new(Lists::default()),
            building: Mutex::new(()),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Lists> {
        match self.lists.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn write(&self) -> RwLockWriteGuard<'_, Lists> {
        match self.lists.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The highest change `seq` this instance has applied.
    pub fn cursor(&self) -> i64 {
        self.read().cursor
    }

    /// The ids of the lists this instance knows.
    pub fn ids(&self) -> Vec<i64> {
        self.read().lists.keys().copied().collect()
    }

    /// Whether list `list_id` may have been created since the last poll: lists are numbered
    /// in order, so only the one after the last known (a request for any other unknown id
    /// costs no database query).
    pub fn may_be_new(&self, list_id: i64) -> bool {
        let last = self.read().lists.keys().next_back().copied().unwrap_or(0);
        list_id == last + 1
    }

    /// `idx`'s value in list `list_id` as this instance holds it now.
    pub fn value(&self, list_id: i64, idx: u32) -> Option<u8> {
        self.read().lists.get(&list_id)?.array.get(idx)
    }

    /// Apply `changes` (in `seq` order); `known` describes at least every list they name.
    pub fn apply(&self, known: &[status_list::Model], changes: &[Change]) {
        let mut guard = self.write();
        let lists = &mut *guard;
        for list in known {
            lists.lists.entry(list.id).or_insert_with(|| List {
                array: StatusArray::new(
                    BITS,
                    list.size.clamp(0, u32::MAX as i64) as u32,
                    StatusValue::NotEntitled.as_u8(),
                ),
                // Version 1: a list that no signature shows yet.
                version: 1,
                signed: None,
            });
        }
        for change in changes {
            if let Some(list) = lists.lists.get_mut(&change.list_id) {
                if list.array.get(change.idx) != Some(change.value)
                    && list.array.set(change.idx, change.value)
                {
                    list.version += 1;
                }
            }
            lists.cursor = lists.cursor.max(change.seq);
        }
    }

    fn fresh(&self, signed: &Signed, version: u64, kid: &str, now: i64) -> bool {
        signed.version == version
            && signed.kid == kid
            && now < signed.exp - self.lifetime_seconds / 2
    }

    /// The signed list `list_id`, as served: the cached token while it shows the current
    /// version and is not due for a new signature; otherwise built now. `None`: no such list.
    pub fn serve(
        &self,
        list_id: i64,
        issuer: &str,
        ring: &KeyRing,
        now: DateTime<Utc>,
    ) -> Result<Option<Bytes>, ApiError> {
        let signer = ring.signer(now).ok_or_else(no_signer)?;
        {
            let lists = self.read();
            let Some(list) = lists.lists.get(&list_id) else {
                return Ok(None);
            };
            if let Some(signed) = &list.signed {
                if self.fresh(signed, list.version, &signer.kid, now.timestamp()) {
                    return Ok(Some(signed.jwt.clone()));
                }
            }
        }
        self.build(list_id, issuer, ring, now)
            .map(|s| s.map(|s| s.jwt.clone()))
    }

    /// Compress (if the list changed) and sign list `list_id` unless its cached token is
    /// still good; `None`: no such list.
    pub fn build(
        &self,
        list_id: i64,
        issuer: &str,
        ring: &KeyRing,
        now: DateTime<Utc>,
    ) -> Result<Option<Arc<Signed>>, ApiError> {
        let signer = ring.signer(now).ok_or_else(no_signer)?;
        let _one_at_a_time = match self.building.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let iat = now.timestamp();
        // Copy what is needed under the read lock, compress and sign without it.
        let (version, lst_or_bytes) = {
            let lists = self.read();
            let Some(list) = lists.lists.get(&list_id) else {
                return Ok(None);
            };
            match &list.signed {
                Some(s) if self.fresh(s, list.version, &signer.kid, iat) => {
                    return Ok(Some(s.clone()));
                }
                Some(s) if s.version == list.version => (list.version, Ok(s.lst.clone())),
                _ => (list.version, Err(list.array.bytes().to_vec())),
            }
        };
        let lst: Arc<str> = match lst_or_bytes {
            Ok(lst) => lst,
            Err(bytes) => super::encode_lst(&bytes).into(),
        };
        let exp = iat + self.lifetime_seconds;
        let claims = json!({
            "sub": list_uri(issuer, list_id),
            "iat": iat,
            "exp": exp,
            "ttl": self.ttl_seconds,
            "status_list": {"bits": BITS, "lst": &*lst},
        });
        let payload = serde_json::to_vec(&claims).map_err(ApiError::internal)?;
        let jwt = signer
            .sign_typed(STATUS_LIST_TYPE, &payload)
            .map_err(|e| ApiError::internal(e.0))?;
        let signed = Arc::new(Signed {
            jwt: Bytes::from(jwt),
            iat,
            exp,
            kid: signer.kid.clone(),
            version,
            lst,
        });
        let mut lists = self.write();
        if let Some(list) = lists.lists.get_mut(&list_id) {
            let newer = list
                .signed
                .as_ref()
                .is_none_or(|old| (old.version, old.iat) <= (version, iat));
            if newer {
                list.signed = Some(signed.clone());
            }
        }
        Ok(Some(signed))
    }
}

fn no_signer() -> ApiError {
    ApiError::unavailable(
        ErrorCode::NoSigningKey,
        "no key can sign status lists right now",
    )
}

/// Bring this instance's lists up to date with the database (every entry changed after the
/// cursor, page by page), then compress and sign the lists that changed or are due.
pub async fn refresh(state: &AppState) -> Result<(), ApiError> {
    let cache = &state.status_lists;
    let mut known: Vec<status_list::Model> = Vec::new();
    // Every change committed before this instant is read below: once all pages are in, the
    // account cache may count on having forgotten every account changed before it.
    let started = std::time::Instant::now();
    // Until this instance's first complete poll, every entry is a "change": forget all at
    // once rather than account by account.
    let from_start = !state.accounts.feed_seen();
    if from_start {
        state.accounts.forget_all();
    }
    loop {
        let changed = status_lists::changes_after(state.db.conn(), cache.cursor(), PAGE).await?;
        let full = changed.len() as u64 == PAGE;
        if !from_start {
            state
                .accounts
                .forget_changed(changed.iter().map(|c| c.account_id.as_str()));
        }
        let changes: Vec<_> = changed.into_iter().map(|c| c.change).collect();
        let ids = cache.ids();
        let unknown = changes.iter().any(|c| {
            ids.binary_search(&c.list_id).is_err() && !known.iter().any(|l| l.id == c.list_id)
        });
        if unknown {
            known = status_lists::lists(state.db.conn()).await?;
        }
        cache.apply(&known, &changes);
        if !full {
            break;
        }
    }
    state.accounts.changes_seen_until(started);
    let now = state.now();
    let ring = state.keys.current();
    for id in cache.ids() {
        cache.build(id, &state.settings.tokens.issuer, &ring, now)?;
    }
    Ok(())
}

/// Keep this instance's lists current until the application state is dropped.
pub fn spawn(state: web::Data<AppState>) {
    let weak: Weak<AppState> = Arc::downgrade(&state.into_inner());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(state) = weak.upgrade() else { break };
            if let Err(e) = refresh(&state).await {
                tracing::debug!(error = %e, "status list refresh failed");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(id: i64, size: i64) -> status_list::Model {
        status_list::Model {
            id,
            size,
            allocated: 0,
        }
    }

    fn ring() -> std::sync::Arc<KeyRing> {
        use crate::{config::Algorithm, crypto::MasterKey, tokens::keyring::Keys};
        let master = MasterKey::new([7u8; 32]);
        let generated = crate::tokens::keys::generate(Algorithm::EdDSA).unwrap();
        let at = Utc::now() - chrono::Duration::days(1);
        let model = entities::signing_key::Model {
            kid: generated.jwk.kid.clone(),
            alg: "EdDSA".into(),
            public_jwk: serde_json::to_string(&generated.jwk).unwrap(),
            private_key_sealed: master.seal(&generated.jwk.kid, &generated.pkcs8),
            created_at: at,
            activates_at: at,
            retires_at: None,
            removes_at: None,
        };
        let keys = Keys::default();
        keys.load(&[model], &master).unwrap();
        keys.current()
    }

    /// A list is signed once and served from the cache until it changes or half its
    /// lifetime has passed.
    #[test]
    fn lists_are_signed_again_only_when_changed_or_due() {
        let settings = StatusListSettings::default();
        let cache = StatusLists::new(&settings);
        let ring = ring();
        let t0 = Utc::now();
        assert!(cache.serve(1, "https://v", &ring, t0).unwrap().is_none());
        cache.apply(&[list(1, 1 << 20)], &[]);
        let first = cache.serve(1, "https://v", &ring, t0).unwrap().unwrap();
        let again = cache.serve(1, "https://v", &ring, t0).unwrap().unwrap();
        assert_eq!(first.as_ptr(), again.as_ptr(), "served from the cache");
        let later = t0 + chrono::Duration::seconds(settings.lifetime_seconds() / 2 - 5);
        let cached = cache.serve(1, "https://v", &ring, later).unwrap().unwrap();
        assert_eq!(first.as_ptr(), cached.as_ptr());
        let due = t0 + chrono::Duration::seconds(settings.lifetime_seconds() / 2 + 1);
        let resigned = cache.serve(1, "https://v", &ring, due).unwrap().unwrap();
        assert_ne!(first, resigned, "re-signed before it expires");
        let change = Change {
            list_id: 1,
            idx: 9,
            value: 0,
            seq: 1,
        };
        cache.apply(&[], &[change]);
        let changed = cache.serve(1, "https://v", &ring, due).unwrap().unwrap();
        assert_ne!(resigned, changed, "a change is signed at once");
        // Applying the same value again is no change.
        cache.apply(&[], &[change]);
        let same = cache.serve(1, "https://v", &ring, due).unwrap().unwrap();
        assert_eq!(changed.as_ptr(), same.as_ptr());
    }

    #[test]
    fn changes_apply_in_order_and_move_the_cursor() {
        let cache = StatusLists::new(&StatusListSettings::default());
        let change = |idx, value, seq| Change {
            list_id: 1,
            idx,
            value,
            seq,
        };
        cache.apply(
            &[list(1, 64)],
            &[change(3, 0, 5), change(4, 2, 6), change(3, 1, 9)],
        );
        assert_eq!(cache.cursor(), 9);
        assert_eq!(cache.value(1, 3), Some(1));
        assert_eq!(cache.value(1, 4), Some(2));
        assert_eq!(cache.value(1, 5), Some(1));
        assert_eq!(cache.value(2, 0), None);
        // A change to a list not described is skipped, but the cursor still moves.
        cache.apply(
            &[],
            &[Change {
                list_id: 7,
                idx: 0,
                value: 0,
                seq: 10,
            }],
        );
        assert_eq!(cache.cursor(), 10);
        assert_eq!(cache.ids(), vec![1]);
    }
}

//! Token Status Lists (draft-ietf-oauth-status-list) as Vouch serves them: a `statuslist+jwt`
//! signed by a key of the same JWKS, whose `lst` is zlib-compressed, base64url-encoded
//! `bits`-bit values (index 0 in the least significant bits of byte 0). Cached per list for its
//! `ttl`; when Vouch cannot be reached, a cached list serves until its own `exp`.

use std::{
    collections::HashMap,
    io::Read as _,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use base64::{
    alphabet::URL_SAFE,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
    Engine as _,
};
use flate2::read::ZlibDecoder;
use jsonwebtoken::{decode, decode_header, Validation};
use serde::Deserialize;

use crate::{lock, Error, StatusListReference, Verifier};

/// The `typ` of a status list token.
pub const STATUS_LIST_TYPE: &str = "statuslist+jwt";
/// A signed list as fetched; a compressed list of 2^20 2-bit values is far smaller.
const MAX_LIST_JWT_BYTES: usize = 4 << 20;
/// The inflated list: 2^24 indices of 8 bits.
const MAX_LIST_BYTES: u64 = 16 << 20;
/// How long a list is cached when it names no `ttl` and its answer no `max-age`.
const DEFAULT_TTL: Duration = Duration::from_secs(60);
/// After a failed fetch, the next one waits this long (answering from the cached list).
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(5);
/// Vouch serves a list showing every change made more than this long before.
const SHOWN_WITHIN: Duration = Duration::from_millis(1500);
/// The value for an index a list does not have: not entitled (fail closed).
pub(crate) const OUT_OF_RANGE: u8 = u8::MAX;

/// `lst` is base64url, unpadded in Vouch's lists; padding is tolerated.
const B64: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A verified, inflated list.
struct List {
    bits: u8,
    bytes: Vec<u8>,
    fetched_at: Instant,
    /// How long it may be used without fetching again.
    ttl: Duration,
    /// Its `exp` (unix seconds): never used after it.
    exp: Option<i64>,
}

impl List {
    fn value(&self, idx: u32) -> u8 {
        let bits = u64::from(self.bits);
        let bit = u64::from(idx) * bits;
        let Some(byte) = usize::try_from(bit / 8)
            .ok()
            .and_then(|i| self.bytes.get(i))
        else {
            return OUT_OF_RANGE;
        };
        let mask = ((1u16 << bits) - 1) as u8;
        (byte >> (bit % 8)) & mask
    }

    fn fresh(&self, now: Instant) -> bool {
        now.duration_since(self.fetched_at) < self.ttl
    }

    fn unexpired(&self, unix_now: i64, leeway: i64) -> bool {
        self.exp.is_none_or(|exp| exp + leeway >= unix_now)
    }
}

#[derive(Default)]
struct Entry {
    list: Option<Arc<List>>,
    failed_at: Option<Instant>,
    error: Option<String>,
}

pub(crate) struct ListCache {
    max_age: Option<Duration>,
    lists: Mutex<HashMap<String, Entry>>,
    /// Lists fetched before this are stale ([`ListCache::refresh`]).
    stale_before: Mutex<Option<Instant>>,
    /// One fetch at a time.
    fetching: tokio::sync::Mutex<()>,
}

impl ListCache {
    pub fn new(max_age: Option<Duration>) -> ListCache {
        ListCache {
            max_age,
            lists: Mutex::new(HashMap::new()),
            stale_before: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// Fetch every list again before using it, also during the next [`SHOWN_WITHIN`]: a list
    /// fetched right after a change may not show it yet.
    pub fn refresh(&self) {
        *lock(&self.stale_before) = Some(Instant::now() + SHOWN_WITHIN);
    }

    /// The value at the token's index (or [`OUT_OF_RANGE`]).
    pub async fn status(
        &self,
        verifier: &Verifier,
        reference: &StatusListReference,
        now: i64,
    ) -> Result<u8, Error> {
        let leeway = verifier.inner.options.leeway.as_secs() as i64;
        if let Some(answer) = self.cached(reference, now, leeway) {
            return answer;
        }
        let _fetching = self.fetching.lock().await;
        if let Some(answer) = self.cached(reference, now, leeway) {
            return answer;
        }
        let fetched = self.fetch(verifier, &reference.uri, now).await;
        let mut lists = lock(&self.lists);
        let entry = lists.entry(reference.uri.clone()).or_default();
        match fetched {
            Ok(list) => {
                let value = list.value(reference.idx);
                *entry = Entry {
                    list: Some(Arc::new(list)),
                    failed_at: None,
                    error: None,
                };
                Ok(value)
            }
            Err(e) => {
                entry.failed_at = Some(Instant::now());
                entry.error = Some(e.clone());
                match &entry.list {
                    Some(list) if list.unexpired(now, leeway) => Ok(list.value(reference.idx)),
                    _ => Err(Error::StatusList(e)),
                }
            }
        }
    }

    /// The answer without fetching: from a fresh list, or from the cached one (or the last
    /// error) while a failed fetch is too recent to try again.
    fn cached(
        &self,
        reference: &StatusListReference,
        now: i64,
        leeway: i64,
    ) -> Option<Result<u8, Error>> {
        let stale_before = *lock(&self.stale_before);
        let lists = lock(&self.lists);
        let entry = lists.get(&reference.uri)?;
        let instant = Instant::now();
        if let Some(list) = &entry.list {
            let refreshed = stale_before.is_none_or(|at| list.fetched_at >= at);
            if refreshed && list.fresh(instant) && list.unexpired(now, leeway) {
                return Some(Ok(list.value(reference.idx)));
            }
        }
        let failed_recently = entry
            .failed_at
            .is_some_and(|at| instant.duration_since(at) < RETRY_AFTER_ERROR);
        if !failed_recently {
            return None;
        }
        Some(match &entry.list {
            Some(list) if list.unexpired(now, leeway) => Ok(list.value(reference.idx)),
            _ => Err(Error::StatusList(
                entry.error.clone().unwrap_or_else(|| "fetch failed".into()),
            )),
        })
    }

    async fn fetch(&self, verifier: &Verifier, uri: &str, now: i64) -> Result<List, String> {
        let inner = &verifier.inner;
        let started = Instant::now();
        let fetched = inner
            .http
            .get(
                uri,
                inner.options.status_list_key.as_deref(),
                MAX_LIST_JWT_BYTES,
            )
            .await?;
        let jwt = std::str::from_utf8(&fetched.body)
            .map_err(|_| "status list: not text".to_owned())?
            .trim();
        let claims = self.check_signed(verifier, jwt, uri).await?;
        let leeway = inner.options.leeway.as_secs() as i64;
        if claims.exp.is_some_and(|exp| exp + leeway < now) {
            return Err("status list: expired".into());
        }
        if !matches!(claims.status_list.bits, 1 | 2 | 4 | 8) {
            return Err("status list: bits must be 1, 2, 4 or 8".into());
        }
        let bytes = inflate(&claims.status_list.lst)?;
        let ttl = claims
            .ttl
            .map(Duration::from_secs)
            .or(fetched.max_age)
            .unwrap_or(DEFAULT_TTL);
        let ttl = match self.max_age {
            Some(max) => ttl.min(max),
            None => ttl,
        };
        Ok(List {
            bits: claims.status_list.bits,
            bytes,
            fetched_at: started,
            ttl,
            exp: claims.exp,
        })
    }

    /// Signed by a key of Vouch's JWKS, with the key's one algorithm, about this list.
    async fn check_signed(
        &self,
        verifier: &Verifier,
        jwt: &str,
        uri: &str,
    ) -> Result<ListClaims, String> {
        let header = decode_header(jwt).map_err(|e| format!("status list: {e}"))?;
        if header.typ.as_deref() != Some(STATUS_LIST_TYPE)
            || header.jku.is_some()
            || header.jwk.is_some()
            || header.x5u.is_some()
            || header.x5c.is_some()
            || header.crit.is_some()
        {
            return Err("status list: not a statuslist+jwt from Vouch".into());
        }
        let kid = header.kid.as_deref().ok_or("status list: no kid")?;
        let key = inner_key(verifier, kid)
            .await?
            .ok_or("status list: signed by a key not in the JWKS")?;
        if header.alg != key.alg {
            return Err("status list: algorithm does not match its key".into());
        }
        let mut validation = Validation::new(key.alg);
        validation.algorithms = vec![key.alg];
        validation.validate_aud = false;
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_required_spec_claims(&["sub"]);
        let claims = decode::<ListClaims>(jwt, &key.decoding, &validation)
            .map_err(|e| format!("status list: {e}"))?
            .claims;
        if claims.sub != uri {
            return Err("status list: its sub is another list".into());
        }
        Ok(claims)
    }
}

async fn inner_key(
    verifier: &Verifier,
    kid: &str,
) -> Result<Option<Arc<crate::jwks::Key>>, String> {
    let inner = &verifier.inner;
    inner
        .keys
        .get(&inner.http, kid)
        .await
        .map_err(|e| e.to_string())
}

#[derive(Deserialize)]
struct ListClaims {
    sub: String,
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    ttl: Option<u64>,
    status_list: Bits,
}

#[derive(Deserialize)]
struct Bits {
    bits: u8,
    lst: String,
}

fn inflate(lst: &str) -> Result<Vec<u8>, String> {
    let compressed = B64
        .decode(lst)
        .map_err(|_| "status list: lst is not base64url".to_owned())?;
    let mut bytes = Vec::new();
    ZlibDecoder::new(compressed.as_slice())
        .take(MAX_LIST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|_| "status list: lst is not zlib".to_owned())?;
    if bytes.len() as u64 > MAX_LIST_BYTES {
        return Err("status list: too large".into());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use flate2::{write::ZlibEncoder, Compression};

    use super::*;

    fn list(bits: u8, bytes: Vec<u8>) -> List {
        List {
            bits,
            bytes,
            fetched_at: Instant::now(),
            ttl: DEFAULT_TTL,
            exp: None,
        }
    }

    #[test]
    fn reads_values_as_the_draft_packs_them() {
        // The draft's 2-bit example: [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3] = c9 44 f9.
        let l = list(2, vec![0xc9, 0x44, 0xf9]);
        let values: Vec<u8> = (0..12).map(|i| l.value(i)).collect();
        assert_eq!(values, [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3]);
        assert_eq!(l.value(12), OUT_OF_RANGE);
        let one_bit = list(1, vec![0b1011_1001]);
        assert_eq!(
            (0..8).map(|i| one_bit.value(i)).collect::<Vec<_>>(),
            [1, 0, 0, 1, 1, 1, 0, 1]
        );
        assert_eq!(list(8, vec![7, 9]).value(1), 9);
    }

    #[test]
    fn inflates_lst() {
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(&[0xc9, 0x44, 0xf9]).unwrap();
        let lst = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(z.finish().unwrap());
        assert_eq!(inflate(&lst).unwrap(), [0xc9, 0x44, 0xf9]);
        assert!(inflate("!!").is_err());
        assert!(inflate("AAAA").is_err());
    }
}

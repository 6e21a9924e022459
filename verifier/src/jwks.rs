//! Vouch's signing keys, from its JWKS only: cached for the answer's `Cache-Control: max-age`,
//! fetched again early when a token names an unknown `kid` (at most once per refetch interval),
//! and kept a while past their age when Vouch cannot be reached.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use jsonwebtoken::{
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse},
    Algorithm, DecodingKey,
};
use serde::Deserialize;

use crate::{http::Fetcher, lock, Error};

/// The age assumed when the JWKS names none (Vouch's default).
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
/// How long past its age a JWKS still verifies while Vouch cannot be reached.
const STALE_IF_ERROR: Duration = Duration::from_secs(600);
/// A JWKS is a handful of keys.
const MAX_JWKS_BYTES: usize = 1 << 20;

/// A verification key and the one algorithm it verifies.
pub(crate) struct Key {
    pub alg: Algorithm,
    pub decoding: DecodingKey,
}

#[derive(Default)]
struct State {
    keys: HashMap<String, Arc<Key>>,
    fetched_at: Option<Instant>,
    max_age: Duration,
    last_attempt: Option<Instant>,
    last_error: Option<String>,
}

impl State {
    fn usable(&self, now: Instant) -> bool {
        self.fetched_at
            .is_some_and(|at| now.duration_since(at) < self.max_age + STALE_IF_ERROR)
    }
}

pub(crate) struct KeyCache {
    url: String,
    refetch_interval: Duration,
    max_age_cap: Duration,
    state: Mutex<State>,
    /// One fetch at a time: concurrent verifications wait for it instead of fetching too.
    fetching: tokio::sync::Mutex<()>,
}

impl KeyCache {
    pub fn new(url: String, refetch_interval: Duration, max_age_cap: Duration) -> KeyCache {
        KeyCache {
            url,
            refetch_interval,
            max_age_cap,
            state: Mutex::new(State::default()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// The key `kid`, or `None` when the JWKS has no such key.
    pub async fn get(&self, http: &Fetcher, kid: &str) -> Result<Option<Arc<Key>>, Error> {
        if let Some(answer) = self.cached(kid) {
            return answer;
        }
        let _fetching = self.fetching.lock().await;
        if let Some(answer) = self.cached(kid) {
            return answer;
        }
        let started = Instant::now();
        lock(&self.state).last_attempt = Some(started);
        let fetched = http
            .get(&self.url, None, MAX_JWKS_BYTES)
            .await
            .and_then(|f| Ok((parse(&f.body)?, f.max_age)));
        let mut state = lock(&self.state);
        match fetched {
            Ok((keys, max_age)) => {
                state.keys = keys;
                state.fetched_at = Some(started);
                state.max_age = max_age.unwrap_or(DEFAULT_MAX_AGE).min(self.max_age_cap);
                state.last_error = None;
                Ok(state.keys.get(kid).cloned())
            }
            Err(e) if state.usable(Instant::now()) => {
                state.last_error = Some(e);
                Ok(state.keys.get(kid).cloned())
            }
            Err(e) => {
                state.last_error = Some(e.clone());
                Err(Error::Jwks(e))
            }
        }
    }

    /// The answer without fetching, when there is one: the key from a fresh JWKS, or what
    /// the last fetch left when it was too recent to fetch again.
    fn cached(&self, kid: &str) -> Option<Result<Option<Arc<Key>>, Error>> {
        let state = lock(&self.state);
        let now = Instant::now();
        let fresh = state
            .fetched_at
            .is_some_and(|at| now.duration_since(at) < state.max_age);
        if fresh {
            if let Some(key) = state.keys.get(kid) {
                return Some(Ok(Some(key.clone())));
            }
        }
        let too_soon = state
            .last_attempt
            .is_some_and(|at| now.duration_since(at) < self.refetch_interval);
        if !too_soon {
            return None;
        }
        if state.usable(now) {
            Some(Ok(state.keys.get(kid).cloned()))
        } else {
            let e = state
                .last_error
                .clone()
                .unwrap_or_else(|| "not fetched yet".into());
            Some(Err(Error::Jwks(e)))
        }
    }
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<serde_json::Value>,
}

/// The signing keys of a JWKS by kid. Keys this verifier cannot use (another algorithm, an
/// encryption key, no kid) are skipped, not an error.
fn parse(body: &[u8]) -> Result<HashMap<String, Arc<Key>>, String> {
    let set: JwkSet = serde_json::from_slice(body).map_err(|e| format!("JWKS: {e}"))?;
    let mut keys = HashMap::new();
    for value in set.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            continue;
        };
        if let Some((kid, key)) = usable_key(&jwk) {
            keys.insert(kid, Arc::new(key));
        }
    }
    Ok(keys)
}

fn usable_key(jwk: &Jwk) -> Option<(String, Key)> {
    let kid = jwk.common.key_id.clone()?;
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    // The algorithm the key's type allows; a stated `alg` must agree with it.
    let alg = match &jwk.algorithm {
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        _ => return None,
    };
    let stated = match jwk.common.key_algorithm {
        None => alg,
        Some(KeyAlgorithm::EdDSA) => Algorithm::EdDSA,
        Some(KeyAlgorithm::ES256) => Algorithm::ES256,
        Some(KeyAlgorithm::RS256) => Algorithm::RS256,
        Some(_) => return None,
    };
    if stated != alg {
        return None;
    }
    let decoding = DecodingKey::from_jwk(jwk).ok()?;
    Some((kid, Key { alg, decoding }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_keys_it_cannot_use() {
        let body = br#"{"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "ed", "alg": "EdDSA", "use": "sig"},
            {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "enc", "use": "enc"},
            {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "lies", "alg": "RS256"},
            {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac", "alg": "HS256"},
            {"kty": "XYZ", "kid": "weird"}
        ]}"#;
        let keys = parse(body).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys["ed"].alg, Algorithm::EdDSA);
        assert!(parse(b"[]").is_err());
    }
}

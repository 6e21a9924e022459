//! The keys this instance signs and verifies with, loaded from the database. A key's state
//! follows from its timestamps, so every instance sharing a database agrees on it:
//! next (published, not yet signing) → active → retired (published, not signing) → removed.

use std::sync::{Arc, RwLock};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine as _};
use chrono::{DateTime, Utc};
use entities::signing_key;
use jsonwebtoken::DecodingKey;
use serde::Serialize;

use super::{
    keys::{self, Jwk, KeyError, Signer},
    TOKEN_TYPE,
};
use crate::{config::Algorithm, crypto::MasterKey};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    utoipa::ToSchema,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum KeyState {
    Next,
    Active,
    Retired,
    Removed,
}

impl KeyState {
    /// A key's state at `now`, from its timestamps alone.
    pub fn at(
        activates_at: DateTime<Utc>,
        retires_at: Option<DateTime<Utc>>,
        removes_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> KeyState {
        if removes_at.is_some_and(|r| r <= now) {
            KeyState::Removed
        } else if retires_at.is_some_and(|r| r <= now) {
            KeyState::Retired
        } else if activates_at > now {
            KeyState::Next
        } else {
            KeyState::Active
        }
    }

    pub fn of(key: &signing_key::Model, now: DateTime<Utc>) -> KeyState {
        KeyState::at(key.activates_at, key.retires_at, key.removes_at, now)
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

pub struct LoadedKey {
    pub kid: String,
    pub alg: Algorithm,
    pub jwk: Jwk,
    pub decoding: DecodingKey,
    /// `None` once the private half has been erased.
    signer: Option<Signer>,
    /// base64url of the JWS header, computed once.
    header_b64: String,
    pub created_at: DateTime<Utc>,
    pub activates_at: DateTime<Utc>,
    pub retires_at: Option<DateTime<Utc>>,
    pub removes_at: Option<DateTime<Utc>>,
}

impl LoadedKey {
    pub fn from_model(
        model: &signing_key::Model,
        master: &MasterKey,
    ) -> Result<LoadedKey, KeyError> {
        let alg = model
            .alg
            .parse::<Algorithm>()
            .map_err(|_| KeyError("unknown algorithm"))?;
        let jwk: Jwk =
            serde_json::from_str(&model.public_jwk).map_err(|_| KeyError("bad stored JWK"))?;
        let signer = if model.private_key_sealed.is_empty() {
            None
        } else {
            let pkcs8 = master
                .open(&model.kid, &model.private_key_sealed)
                .map_err(|_| KeyError("the private key cannot be opened: wrong master key?"))?;
            let (signer, parsed) = keys::parse(alg, &pkcs8)?;
            if parsed.kid != model.kid {
                return Err(KeyError("the private key does not match its kid"));
            }
            Some(signer)
        };
        let header = serde_json::json!({"alg": alg.as_str(), "typ": TOKEN_TYPE, "kid": model.kid});
        Ok(LoadedKey {
            kid: model.kid.clone(),
            alg,
            decoding: keys::decoding_key(&jwk)?,
            jwk,
            signer,
            header_b64: B64.encode(header.to_string()),
            created_at: model.created_at,
            activates_at: model.activates_at,
            retires_at: model.retires_at,
            removes_at: model.removes_at,
        })
    }

    pub fn state(&self, now: DateTime<Utc>) -> KeyState {
        KeyState::at(self.activates_at, self.retires_at, self.removes_at, now)
    }

    fn published(&self, now: DateTime<Utc>) -> bool {
        self.created_at <= now && self.state(now) != KeyState::Removed
    }

    /// A compact JWS over `claims_json`.
    pub fn sign(&self, claims_json: &[u8]) -> Result<String, KeyError> {
        let signer = self
            .signer
            .as_ref()
            .ok_or(KeyError("this key can no longer sign"))?;
        let mut token =
            String::with_capacity(self.header_b64.len() + claims_json.len() * 4 / 3 + 100);
        token.push_str(&self.header_b64);
        token.push('.');
        B64.encode_string(claims_json, &mut token);
        let signature = signer.sign(token.as_bytes())?;
        token.push('.');
        B64.encode_string(signature, &mut token);
        Ok(token)
    }

    /// A compact JWS over `claims_json` whose header names another `typ` (e.g.
    /// `statuslist+jwt`), so it can never pass for an access token.
    pub fn sign_typed(&self, typ: &str, claims_json: &[u8]) -> Result<String, KeyError> {
        let signer = self
            .signer
            .as_ref()
            .ok_or(KeyError("this key can no longer sign"))?;
        let header = serde_json::json!({"typ": typ, "alg": self.alg.as_str(), "kid": self.kid});
        let mut token = B64.encode(header.to_string());
        token.reserve(claims_json.len() * 4 / 3 + 100);
        token.push('.');
        B64.encode_string(claims_json, &mut token);
        let signature = signer.sign(token.as_bytes())?;
        token.push('.');
        B64.encode_string(signature, &mut token);
        Ok(token)
    }

    fn same_row(&self, model: &signing_key::Model) -> bool {
        self.kid == model.kid
            && self.retires_at == model.retires_at
            && self.removes_at == model.removes_at
            && self.signer.is_some() != model.private_key_sealed.is_empty()
    }
}

/// An immutable set of keys; replaced whole on reload.
#[derive(Default)]
pub struct KeyRing {
    keys: Vec<Arc<LoadedKey>>,
}

impl KeyRing {
    /// The key that signs now: the most recently activated key that is active.
    pub fn signer(&self, now: DateTime<Utc>) -> Option<&Arc<LoadedKey>> {
        self.keys
            .iter()
            .filter(|k| k.state(now) == KeyState::Active && k.signer.is_some())
            .max_by_key(|k| k.activates_at)
    }

    /// A published key by kid: the only keys a token may be verified with.
    pub fn verifier(&self, kid: &str, now: DateTime<Utc>) -> Option<&Arc<LoadedKey>> {
        self.keys.iter().find(|k| k.kid == kid && k.published(now))
    }

    pub fn jwks(&self, now: DateTime<Utc>) -> Vec<Jwk> {
        self.keys
            .iter()
            .filter(|k| k.published(now))
            .map(|k| k.jwk.clone())
            .collect()
    }

    pub fn all(&self) -> &[Arc<LoadedKey>] {
        &self.keys
    }
}

/// The current key ring, swapped atomically when keys change.
#[derive(Default)]
pub struct Keys {
    ring: RwLock<Arc<KeyRing>>,
}

impl Keys {
    pub fn current(&self) -> Arc<KeyRing> {
        match self.ring.read() {
            Ok(r) => r.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Replace the ring with these rows, reusing already-parsed keys that did not change.
    pub fn load(&self, rows: &[signing_key::Model], master: &MasterKey) -> Result<(), KeyError> {
        let old = self.current();
        let mut keys = Vec::with_capacity(rows.len());
        for row in rows {
            match old.keys.iter().find(|k| k.same_row(row)) {
                Some(existing) => keys.push(existing.clone()),
                None => keys.push(Arc::new(LoadedKey::from_model(row, master)?)),
            }
        }
        keys.sort_by_key(|k| k.activates_at);
        let ring = Arc::new(KeyRing { keys });
        match self.ring.write() {
            Ok(mut r) => *r = ring,
            Err(p) => *p.into_inner() = ring,
        }
        Ok(())
    }
}

//! Token verification for authorize: our keys only, one algorithm per key, explicit `typ`,
//! issuer, audience, time with leeway. The account's current state is checked by the caller.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use jsonwebtoken::{decode, decode_header, errors::ErrorKind, Validation};
use moka::sync::Cache;
use serde::Serialize;

use super::{keyring::KeyRing, Claims, TOKEN_TYPE};
use crate::{config::TokenSettings, crypto::sha256};

/// Why a token does not allow E2EE (the contract's `reason` values).
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
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Reason {
    Ok,
    InvalidToken,
    Expired,
    WrongAudience,
    Revoked,
    NotEntitled,
    DeviceMismatch,
    AccountSuspended,
}

impl Reason {
    pub const ALL: [Reason; 8] = [
        Reason::Ok,
        Reason::InvalidToken,
        Reason::Expired,
        Reason::WrongAudience,
        Reason::Revoked,
        Reason::NotEntitled,
        Reason::DeviceMismatch,
        Reason::AccountSuspended,
    ];

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Check signature, header and registered claims; the time is ours, not the system's.
pub fn verify(
    ring: &KeyRing,
    token: &str,
    settings: &TokenSettings,
    now: DateTime<Utc>,
) -> Result<Claims, Reason> {
    let (_, claims) = check_signed(ring, token, settings, now)?;
    check_times(&claims, settings, now)?;
    Ok(claims)
}

/// Whether a token is ours to revoke: our issuer, signed by a key we still publish. No time
/// check: a token that this instance's clock thinks is not valid yet (`iat`/`nbf` beyond the
/// leeway) may already be valid on an instance whose clock runs ahead, so its revocation must
/// be recorded all the same.
pub fn verify_for_revocation(
    ring: &KeyRing,
    token: &str,
    settings: &TokenSettings,
    now: DateTime<Utc>,
) -> Result<Claims, Reason> {
    check_signed(ring, token, settings, now).map(|(_, claims)| claims)
}

/// Everything about a token that cannot change with time: header, our key, signature,
/// issuer, audience. Returns the kid that verified it.
fn check_signed(
    ring: &KeyRing,
    token: &str,
    settings: &TokenSettings,
    now: DateTime<Utc>,
) -> Result<(String, Claims), Reason> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Reason::InvalidToken);
    }
    let header = decode_header(token).map_err(|_| Reason::InvalidToken)?;
    // Keys come from our own JWKS only; a token naming another source is not ours.
    if header.typ.as_deref() != Some(TOKEN_TYPE)
        || header.jku.is_some()
        || header.jwk.is_some()
        || header.x5u.is_some()
        || header.x5c.is_some()
        || header.crit.is_some()
    {
        return Err(Reason::InvalidToken);
    }
    let kid = header.kid.as_deref().ok_or(Reason::InvalidToken)?;
    let key = ring.verifier(kid, now).ok_or(Reason::InvalidToken)?;
    if header.alg != key.alg.to_jwt() {
        return Err(Reason::InvalidToken);
    }
    let mut validation = Validation::new(header.alg);
    validation.algorithms = vec![header.alg];
    validation.set_issuer(&[settings.issuer.as_str()]);
    validation.set_audience(&settings.audiences);
    validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    let data = decode::<Claims>(token, &key.decoding, &validation).map_err(|e| match e.kind() {
        ErrorKind::InvalidAudience => Reason::WrongAudience,
        _ => Reason::InvalidToken,
    })?;
    Ok((key.kid.clone(), data.claims))
}

/// `exp`, `nbf` and `iat` against now, with the configured leeway.
fn check_times(
    claims: &Claims,
    settings: &TokenSettings,
    now: DateTime<Utc>,
) -> Result<(), Reason> {
    let leeway = settings.leeway_seconds as i64;
    let now = now.timestamp();
    if claims.exp + leeway < now {
        return Err(Reason::Expired);
    }
    if claims.nbf - leeway > now || claims.iat - leeway > now {
        return Err(Reason::InvalidToken);
    }
    Ok(())
}

const MAX_TOKEN_BYTES: usize = 8192;

/// A verified token: the kid of the key that verified it, and its claims.
pub type Verified = (String, Claims);

/// Tokens this instance has verified, by SHA-256 of the token text: a meeting server that asks
/// again about the same token (another meeting, a reconnect, a periodic re-check) skips the
/// signature check. Only what cannot change is remembered; time, the key's presence in the
/// JWKS, revocation and the account are checked on every call. Bounded; when full, TinyLFU
/// keeps the tokens asked about most.
pub struct VerifiedTokens {
    cache: Cache<[u8; 32], Arc<Verified>>,
}

impl VerifiedTokens {
    pub fn new(capacity: u64) -> Self {
        VerifiedTokens {
            cache: Cache::new(capacity),
        }
    }

    /// Like [`verify`], answering from memory when this exact token verified before.
    pub fn verify(
        &self,
        ring: &KeyRing,
        token: &str,
        settings: &TokenSettings,
        now: DateTime<Utc>,
    ) -> Result<Arc<Verified>, Reason> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Reason::InvalidToken);
        }
        let digest = sha256(token.as_bytes());
        let entry = match self.cache.get(&digest) {
            // The key may have left the JWKS since (removed after rotation).
            Some(entry) if ring.verifier(&entry.0, now).is_some() => entry,
            Some(_) => return Err(Reason::InvalidToken),
            None => {
                let entry = Arc::new(check_signed(ring, token, settings, now)?);
                self.cache.insert(digest, entry.clone());
                entry
            }
        };
        check_times(&entry.1, settings, now)?;
        Ok(entry)
    }

    #[cfg(test)]
    fn len(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::{
        config::{Algorithm, Settings},
        crypto::{random_bytes, MasterKey},
        tokens::{keyring::Keys, keys, TokenEvidence},
    };

    fn ring_with_key(now: DateTime<Utc>) -> (Keys, MasterKey, entities::signing_key::Model) {
        let master = MasterKey::new(random_bytes::<32>());
        let generated = keys::generate(Algorithm::EdDSA).unwrap();
        let model = entities::signing_key::Model {
            kid: generated.jwk.kid.clone(),
            alg: "EdDSA".into(),
            public_jwk: serde_json::to_string(&generated.jwk).unwrap(),
            private_key_sealed: master.seal(&generated.jwk.kid, &generated.pkcs8),
            created_at: now,
            activates_at: now,
            retires_at: None,
            removes_at: None,
        };
        let keys = Keys::default();
        keys.load(std::slice::from_ref(&model), &master).unwrap();
        (keys, master, model)
    }

    #[test]
    fn remembered_tokens_still_expire_and_lose_removed_keys() {
        let settings = Settings::defaults().tokens;
        let now = Utc::now();
        let (keys, master, mut model) = ring_with_key(now);
        let ring = keys.current();
        let claims = Claims {
            iss: settings.issuer.clone(),
            sub: "acc_1".into(),
            aud: "meeting".into(),
            iat: now.timestamp(),
            nbf: now.timestamp(),
            exp: now.timestamp() + 60,
            jti: "j".into(),
            ent: vec!["e2ee".into()],
            evidence: vec![TokenEvidence::Phone],
            cnf: None,
            status: None,
        };
        let token = ring
            .signer(now)
            .unwrap()
            .sign(&serde_json::to_vec(&claims).unwrap())
            .unwrap();
        let cache = VerifiedTokens::new(10);

        for _ in 0..2 {
            let verified = cache.verify(&ring, &token, &settings, now).unwrap();
            assert_eq!(verified.1, claims);
        }
        assert_eq!(cache.len(), 1);
        // Time is checked on every call, remembered or not.
        let later = now + Duration::seconds(60 + 31);
        assert_eq!(
            cache.verify(&ring, &token, &settings, later).unwrap_err(),
            Reason::Expired
        );
        // A tampered copy is a different token: verified from scratch, and refused.
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(
            cache.verify(&ring, &tampered, &settings, now).unwrap_err(),
            Reason::InvalidToken
        );
        // Once its key has left the JWKS, a remembered token is refused.
        model.retires_at = Some(now);
        model.removes_at = Some(now + Duration::seconds(1));
        keys.load(&[model], &master).unwrap();
        let ring = keys.current();
        let after_removal = now + Duration::seconds(2);
        assert_eq!(
            cache
                .verify(&ring, &token, &settings, after_removal)
                .unwrap_err(),
            Reason::InvalidToken
        );
        // Bounded.
        let (keys, _, _) = ring_with_key(now);
        let ring = keys.current();
        let small = VerifiedTokens::new(1);
        for jti in ["a", "b"] {
            let claims = Claims {
                jti: jti.into(),
                ..claims.clone()
            };
            let token = ring
                .signer(now)
                .unwrap()
                .sign(&serde_json::to_vec(&claims).unwrap())
                .unwrap();
            small.verify(&ring, &token, &settings, now).unwrap();
            assert_eq!(small.len(), 1);
        }
    }
}

//! Token verification for authorize: our keys only, one algorithm per key, explicit `typ`,
//! issuer, audience, time with leeway. The account's current state is checked by the caller.

use chrono::{DateTime, Utc};
use jsonwebtoken::{decode, decode_header, errors::ErrorKind, Validation};
use serde::Serialize;

use super::{keyring::KeyRing, Claims, TOKEN_TYPE};
use crate::config::TokenSettings;

/// Why a token does not allow E2EE (the contract's `reason` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
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
        match self {
            Reason::Ok => "ok",
            Reason::InvalidToken => "invalid_token",
            Reason::Expired => "expired",
            Reason::WrongAudience => "wrong_audience",
            Reason::Revoked => "revoked",
            Reason::NotEntitled => "not_entitled",
            Reason::DeviceMismatch => "device_mismatch",
            Reason::AccountSuspended => "account_suspended",
        }
    }
}

/// Check signature, header and registered claims; the time is ours, not the system's.
pub fn verify(
    ring: &KeyRing,
    token: &str,
    settings: &TokenSettings,
    now: DateTime<Utc>,
) -> Result<Claims, Reason> {
    if token.len() > 8192 {
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
    let claims = data.claims;
    let leeway = settings.leeway_seconds as i64;
    let now = now.timestamp();
    if claims.exp + leeway < now {
        return Err(Reason::Expired);
    }
    if claims.nbf - leeway > now || claims.iat - leeway > now {
        return Err(Reason::InvalidToken);
    }
    Ok(claims)
}

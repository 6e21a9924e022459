//! The authorize decision: may this participant receive E2EE keys? First the token's own
//! checks (signature and claims, revocation, device binding: `device_jkt` and the DPoP proof),
//! then the account as it is now, limited to what the token claims.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{
    actions::required_actions,
    dpop::{Dpop, DpopError, Endpoint, Proof},
    keyring::KeyRing,
    live::{AccountSnapshot, RevocationSet},
    valid_jkt,
    verify::{Reason, Verified, VerifiedTokens},
    Claims, ENTITLEMENT,
};
use crate::{
    config::TokenSettings,
    crypto::ct_eq,
    domain::policy::Policy,
    error::{ApiError, ErrorCode},
};

/// What a meeting server presents.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    pub token: &'a str,
    /// The thumbprint of the asking device's key (well-formed: checked by the caller).
    pub device_jkt: Option<&'a str>,
    /// The device's DPoP proof (well-formed: parsed by the caller).
    pub dpop: Option<&'a Proof>,
    /// Where it was presented: the URL a proof must name.
    pub endpoint: Endpoint,
}

/// A `device_jkt` as presented: `invalid_device_jkt` unless it is a SHA-256 thumbprint.
pub fn parse_device_jkt(device_jkt: Option<&str>) -> Result<Option<&str>, ApiError> {
    match device_jkt {
        Some(jkt) if !valid_jkt(jkt) => Err(ApiError::bad_request(
            ErrorCode::InvalidDeviceJkt,
            "device_jkt must be an RFC 7638 SHA-256 thumbprint (43 base64url characters)",
        )),
        other => Ok(other),
    }
}

/// A `dpop` as presented: `invalid_dpop_proof` (400) unless it is a well-formed DPoP proof.
/// Whether it proves anything is [`check_token`]'s to decide.
pub fn parse_dpop(dpop: Option<&str>) -> Result<Option<Proof>, ApiError> {
    dpop.map(Proof::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidDpopProof, e.to_string()))
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub allow: bool,
    pub reason: Reason,
    pub account_id: Option<String>,
    /// The entitlements the account holds now (when allowed).
    pub entitlements: Option<Vec<String>>,
    /// When the token expires (when allowed).
    pub expires_at: Option<DateTime<Utc>>,
    /// What the person can do about a refusal (`tokens::actions`); empty when allowed, when
    /// the token itself is the problem, and when the account is suspended.
    pub required_actions: Vec<&'static str>,
    /// Why, where the reason alone does not say (the device checks).
    pub detail: Option<&'static str>,
    /// A refusal for the DPoP proof: whether to retry with the nonce in `DPoP-Nonce`.
    pub dpop_error: Option<DpopError>,
}

impl Authorization {
    /// A refusal as the exchanges answer it: 403 with `code` = the reason, and
    /// `required_actions`, what the person can do about it.
    pub fn refusal(self) -> ApiError {
        let code = match self.reason {
            Reason::InvalidToken => ErrorCode::InvalidToken,
            Reason::Expired => ErrorCode::Expired,
            Reason::WrongAudience => ErrorCode::WrongAudience,
            Reason::Revoked => ErrorCode::Revoked,
            Reason::NotEntitled => ErrorCode::NotEntitled,
            Reason::DeviceMismatch => ErrorCode::DeviceMismatch,
            Reason::AccountSuspended => ErrorCode::AccountSuspended,
            // Not a refusal; never asked for one.
            Reason::Ok => ErrorCode::Forbidden,
        };
        let reason = self.reason.as_str();
        let detail = match self.detail {
            Some(detail) => format!("authorize refuses this token: {reason}: {detail}"),
            None => format!("authorize refuses this token: {reason}"),
        };
        let mut err = ApiError::forbidden(code, detail)
            .with("reason", reason)
            .with("required_actions", self.required_actions);
        if let Some(dpop_error) = self.dpop_error {
            err = err.with("dpop_error", dpop_error.as_str());
        }
        err
    }

    fn deny(reason: Reason, account_id: Option<String>) -> Self {
        Authorization {
            allow: false,
            reason,
            account_id,
            entitlements: None,
            expires_at: None,
            required_actions: Vec::new(),
            detail: None,
            dpop_error: None,
        }
    }

    /// A refusal for the device binding: `device_mismatch`, saying why.
    fn device(account_id: &str, detail: &'static str, dpop_error: Option<DpopError>) -> Self {
        tracing::info!(account_id, detail, "device binding refused");
        Authorization {
            detail: Some(detail),
            dpop_error,
            ..Authorization::deny(Reason::DeviceMismatch, Some(account_id.to_owned()))
        }
    }
}

/// The token's own checks. `Err` is the denial; `Ok` the verified token, whose account
/// [`check_account`] decides on next.
pub fn check_token(
    verified_tokens: &VerifiedTokens,
    ring: &KeyRing,
    revocations: &RevocationSet,
    settings: &TokenSettings,
    dpop: &Dpop,
    presented: Presented<'_>,
    now: DateTime<Utc>,
) -> Result<Arc<Verified>, Authorization> {
    let verified = verified_tokens
        .verify(ring, presented.token, settings, now)
        .map_err(|reason| Authorization::deny(reason, None))?;
    let claims = &verified.1;
    let deny = |reason| Authorization::deny(reason, Some(claims.sub.clone()));
    if revocations.revokes(&claims.jti, &claims.sub, claims.iat) {
        return Err(deny(Reason::Revoked));
    }
    check_device(settings, dpop, claims, presented, now)?;
    Ok(verified)
}

/// The device binding. An unbound token passes (unless `tokens.require_device_binding`);
/// `device_jkt` and `dpop` are then not looked at. A bound token needs the device to be named:
/// a `device_jkt` equal to `cnf.jkt`, or a DPoP proof made with that key (or both, and both
/// must agree); with `tokens.require_dpop` the proof is required.
fn check_device(
    settings: &TokenSettings,
    dpop: &Dpop,
    claims: &Claims,
    presented: Presented<'_>,
    now: DateTime<Utc>,
) -> Result<(), Authorization> {
    let refuse = |detail, dpop_error| Authorization::device(&claims.sub, detail, dpop_error);
    let Some(cnf) = &claims.cnf else {
        if settings.require_device_binding {
            return Err(refuse(
                "the token is not bound to a device key, and this service requires device binding",
                None,
            ));
        }
        return Ok(());
    };
    if let Some(jkt) = presented.device_jkt {
        if !ct_eq(jkt.as_bytes(), cnf.jkt.as_bytes()) {
            return Err(refuse(
                "device_jkt is not the key the token is bound to",
                None,
            ));
        }
    }
    match presented.dpop {
        Some(proof) => dpop
            .check(proof, &cnf.jkt, presented.token, presented.endpoint, now)
            .map_err(|refused| refuse(refused.detail, Some(refused.error))),
        None if settings.require_dpop => Err(refuse(
            "the token is bound to a device key: a DPoP proof (dpop) of that key is required",
            Some(DpopError::InvalidDpopProof),
        )),
        None if presented.device_jkt.is_none() => Err(refuse(
            "the token is bound to a device key: give device_jkt or a DPoP proof (dpop)",
            None,
        )),
        None => Ok(()),
    }
}

/// The account's checks for a token that passed its own: it exists and is active, and the
/// policy grants it now an entitlement the token claims.
pub fn check_account(
    policy: &Policy,
    claims: &Claims,
    account: Option<&AccountSnapshot>,
    now: DateTime<Utc>,
) -> Authorization {
    let deny = |reason| Authorization::deny(reason, Some(claims.sub.clone()));
    let Some(account) = account else {
        return deny(Reason::NotEntitled);
    };
    if !account.active {
        return deny(Reason::AccountSuspended);
    }
    let decisions = policy.evaluate(true, &account.facts, now);
    let granted: Vec<String> = Policy::granted(&decisions)
        .filter(|e| claims.ent.iter().any(|c| c == e))
        .map(str::to_owned)
        .collect();
    if !granted.iter().any(|e| e == ENTITLEMENT) {
        let mut denied = deny(Reason::NotEntitled);
        denied.required_actions = required_actions(policy, account, now);
        return denied;
    }
    Authorization {
        allow: true,
        reason: Reason::Ok,
        account_id: Some(claims.sub.clone()),
        entitlements: Some(granted),
        expires_at: DateTime::from_timestamp(claims.exp, 0),
        required_actions: Vec::new(),
        detail: None,
        dpop_error: None,
    }
}

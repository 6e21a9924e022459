//! The authorize decision: may this participant receive E2EE keys? First the token's own
//! checks (signature and claims, revocation, device binding), then the account as it is now,
//! limited to what the token claims.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{
    actions::required_actions,
    keyring::KeyRing,
    live::{AccountSnapshot, RevocationSet},
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
    /// The thumbprint of the asking device's key.
    pub device_jkt: Option<&'a str>,
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
        ApiError::forbidden(code, format!("authorize refuses this token: {reason}"))
            .with("reason", reason)
            .with("required_actions", self.required_actions)
    }

    fn deny(reason: Reason, account_id: Option<String>) -> Self {
        Authorization {
            allow: false,
            reason,
            account_id,
            entitlements: None,
            expires_at: None,
            required_actions: Vec::new(),
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
    if let Some(cnf) = &claims.cnf {
        let presented = presented.device_jkt.unwrap_or("");
        if !ct_eq(presented.as_bytes(), cnf.jkt.as_bytes()) {
            return Err(deny(Reason::DeviceMismatch));
        }
    }
    Ok(verified)
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
    }
}

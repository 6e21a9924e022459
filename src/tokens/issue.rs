//! Issuance: what a token request may ask for, whether the account is entitled now, and the
//! signed token.

use crate::error::ErrorCode;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine as _};
use chrono::{DateTime, Utc};

use super::{
    actions::required_actions, keyring::KeyRing, live::AccountSnapshot, token_evidence, valid_jkt,
    Claims, Confirmation, TokenStatus, ENTITLEMENT,
};
use crate::{
    config::TokenSettings,
    crypto::random_bytes,
    domain::{
        account::AccountId,
        policy::{Decision, Policy},
    },
    error::ApiError,
};

/// A token request, checked against the settings.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub audience: String,
    pub ttl_seconds: u64,
    /// The device key thumbprint the token is bound to.
    pub device_jkt: Option<String>,
}

impl TokenRequest {
    /// `invalid_audience`, `invalid_ttl`, `invalid_device_jkt` or `device_binding_required`
    /// (no `device_jkt` while `tokens.require_device_binding` is on), in that order.
    pub fn parse(
        settings: &TokenSettings,
        audience: Option<String>,
        ttl_seconds: Option<u64>,
        device_jkt: Option<String>,
    ) -> Result<Self, ApiError> {
        let audience = match audience {
            None => settings.audiences[0].clone(),
            Some(a) if settings.audiences.contains(&a) => a,
            Some(_) => {
                return Err(ApiError::bad_request(
                    ErrorCode::InvalidAudience,
                    format!("audience must be one of: {}", settings.audiences.join(", ")),
                ))
            }
        };
        let ttl_seconds = ttl_seconds.unwrap_or(settings.default_ttl_seconds);
        if ttl_seconds == 0 || ttl_seconds > settings.max_ttl_seconds {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidTtl,
                format!(
                    "ttl_seconds must be between 1 and {}",
                    settings.max_ttl_seconds
                ),
            ));
        }
        if device_jkt.as_deref().is_some_and(|jkt| !valid_jkt(jkt)) {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidDeviceJkt,
                "device_jkt must be an RFC 7638 SHA-256 thumbprint (43 base64url characters)",
            ));
        }
        if device_jkt.is_none() && settings.require_device_binding {
            return Err(ApiError::bad_request(
                ErrorCode::DeviceBindingRequired,
                "this service issues only device-bound tokens: give device_jkt, the RFC 7638 thumbprint of the device's public key",
            ));
        }
        Ok(TokenRequest {
            audience,
            ttl_seconds,
            device_jkt,
        })
    }
}

/// A signed token.
#[derive(Debug)]
pub struct Issued {
    pub token: String,
    pub kid: String,
    pub expires_at: DateTime<Utc>,
}

/// Issue a token for an account as it is now: `account_suspended` (with no `required_actions`)
/// for a suspended account, `not_entitled` (with what is `missing` and the `required_actions`
/// that would supply it) unless the policy grants the E2EE entitlement, `no_signing_key` while
/// no key is active.
pub fn issue(
    settings: &TokenSettings,
    policy: &Policy,
    ring: &KeyRing,
    account_id: &AccountId,
    account: &AccountSnapshot,
    request: TokenRequest,
    now: DateTime<Utc>,
) -> Result<Issued, ApiError> {
    if !account.active {
        // Not `not_entitled`: no evidence would help while the account is suspended.
        return Err(ApiError::forbidden(
            ErrorCode::AccountSuspended,
            "the account is suspended; it gets no tokens until it is reactivated",
        )
        .with("required_actions", Vec::<&str>::new()));
    }
    let decisions = policy.evaluate(account.active, &account.facts, now);
    let decision = entitled(policy, decisions.get(ENTITLEMENT), account, now)?;
    let key = ring.signer(now).ok_or_else(|| {
        ApiError::unavailable(
            ErrorCode::NoSigningKey,
            "no signing key is active; retry shortly",
        )
    })?;
    let iat = now.timestamp();
    let claims = Claims {
        iss: settings.issuer.clone(),
        sub: account_id.as_str().to_owned(),
        aud: request.audience,
        iat,
        nbf: iat,
        exp: iat + request.ttl_seconds as i64,
        jti: B64.encode(random_bytes::<16>()),
        ent: Policy::granted(&decisions).map(str::to_owned).collect(),
        evidence: if settings.disclose_evidence {
            token_evidence(&decision.satisfied_by)
        } else {
            Vec::new()
        },
        cnf: request.device_jkt.map(|jkt| Confirmation { jkt }),
        status: account
            .status
            .as_ref()
            .map(|at| TokenStatus::new(at, &settings.issuer)),
    };
    let payload = serde_json::to_vec(&claims).map_err(ApiError::internal)?;
    let token = key.sign(&payload).map_err(ApiError::internal)?;
    tracing::debug!(account_id = %claims.sub, jti = %claims.jti, kid = %key.kid, "token issued");
    Ok(Issued {
        token,
        kid: key.kid.clone(),
        expires_at: DateTime::from_timestamp(claims.exp, 0).unwrap_or(now),
    })
}

/// The E2EE decision, if it grants the entitlement; otherwise `not_entitled` with what is
/// missing and what the person can do about it.
fn entitled<'a>(
    policy: &Policy,
    decision: Option<&'a Decision>,
    account: &AccountSnapshot,
    now: DateTime<Utc>,
) -> Result<&'a Decision, ApiError> {
    let decision =
        decision.ok_or_else(|| ApiError::internal("the policy defines no e2ee entitlement"))?;
    if !decision.granted {
        return Err(
            ApiError::forbidden(ErrorCode::NotEntitled, decision.reason.clone())
                .with("entitlement", ENTITLEMENT)
                .with(
                    "missing",
                    serde_json::to_value(&decision.missing).unwrap_or_default(),
                )
                .with("policy", policy.name.clone())
                .with("required_actions", required_actions(policy, account, now)),
        );
    }
    Ok(decision)
}

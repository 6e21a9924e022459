//! E2EE entitlement tokens: keys and the JWKS, signing, and the checks behind authorize.

pub mod keyring;
pub mod keys;
pub mod live;
pub mod verify;

use serde::{Deserialize, Serialize};

use crate::domain::evidence::EvidenceKind;

/// The JWS `typ` of our tokens; verification insists on it.
pub const TOKEN_TYPE: &str = "e2ee-ent+jwt";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// RFC 7638 thumbprint of the device key the token is bound to.
    pub jkt: String,
}

/// Token claims. Never an email, a phone number or a name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The account id.
    pub sub: String,
    pub aud: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    /// Entitlements granted, e.g. `["e2ee"]`.
    pub ent: Vec<String>,
    /// The evidence kinds that satisfied the policy.
    pub evidence: Vec<EvidenceKind>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cnf: Option<Confirmation>,
}

/// A device key thumbprint: base64url of a SHA-256 digest, 43 characters.
pub fn valid_jkt(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

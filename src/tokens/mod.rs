//! E2EE entitlement tokens: keys and the JWKS, issuance, the checks behind authorize, and
//! the actions a refusal offers.

pub mod actions;
pub mod authorize;
pub mod dpop;
pub mod issue;
pub mod keyring;
pub mod keys;
pub mod live;
pub mod verify;

use serde::{Deserialize, Serialize};

use crate::domain::evidence::EvidenceKind;

/// The entitlement a token carries and authorize checks.
pub const ENTITLEMENT: &str = "e2ee";

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
    /// What kinds of evidence satisfied the policy; an approved exception is `exception`,
    /// never its category. Absent with `tokens.disclose_evidence = false`.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub evidence: Vec<TokenEvidence>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cnf: Option<Confirmation>,
    /// Where verifiers read the account's status offline (draft-ietf-oauth-status-list).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub status: Option<TokenStatus>,
}

/// The `status` claim: `{"status_list": {"idx", "uri"}}`; all of an account's tokens share it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenStatus {
    pub status_list: StatusListReference,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusListReference {
    pub idx: u32,
    pub uri: String,
}

impl TokenStatus {
    pub fn new(at: &crate::status_list::StatusRef, issuer: &str) -> Self {
        TokenStatus {
            status_list: StatusListReference {
                idx: at.idx,
                uri: crate::status_list::list_uri(issuer, at.list_id),
            },
        }
    }
}

/// Evidence as a token names it. Whether an exception was granted to a nonprofit or to a person
/// at risk stays with Vouch: every meeting server that checks a token (and anyone it forwards
/// it to) would otherwise learn who is registered as a dissident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenEvidence {
    Email,
    Phone,
    Payment,
    /// Tokens issued before this rule named the category; they still verify until they expire.
    #[serde(alias = "nonprofit", alias = "dissident")]
    Exception,
}

impl From<EvidenceKind> for TokenEvidence {
    fn from(kind: EvidenceKind) -> Self {
        match kind {
            EvidenceKind::Email => TokenEvidence::Email,
            EvidenceKind::Phone => TokenEvidence::Phone,
            EvidenceKind::Payment => TokenEvidence::Payment,
            EvidenceKind::Nonprofit | EvidenceKind::Dissident => TokenEvidence::Exception,
        }
    }
}

/// The `evidence` claim for the kinds that satisfied the policy: each named once, in order.
pub fn token_evidence(satisfied_by: &[EvidenceKind]) -> Vec<TokenEvidence> {
    let mut out: Vec<TokenEvidence> = Vec::with_capacity(satisfied_by.len());
    for kind in satisfied_by {
        let named = TokenEvidence::from(*kind);
        if !out.contains(&named) {
            out.push(named);
        }
    }
    out
}

/// A device key thumbprint: base64url of a SHA-256 digest, 43 characters.
pub fn valid_jkt(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod evidence_tests {
    use super::*;

    #[test]
    fn exceptions_are_named_once_and_never_by_category() {
        let named = token_evidence(&[
            EvidenceKind::Phone,
            EvidenceKind::Dissident,
            EvidenceKind::Nonprofit,
        ]);
        assert_eq!(named, [TokenEvidence::Phone, TokenEvidence::Exception]);
        assert_eq!(
            serde_json::to_string(&named).unwrap(),
            r#"["phone","exception"]"#
        );
        // Tokens issued before the rule still read.
        let old: Vec<TokenEvidence> = serde_json::from_str(r#"["dissident","nonprofit"]"#).unwrap();
        assert_eq!(old, [TokenEvidence::Exception, TokenEvidence::Exception]);
    }
}

//! Proof of possession for device-bound tokens (RFC 9449 DPoP proofs): reading a proof, checking
//! it against the token's `cnf.jkt`, the endpoint, the time, Vouch's nonces and the proofs seen
//! before, and issuing those nonces (stateless: an HMAC over their issue time, so every instance
//! sharing the master key accepts every other's).

use std::{collections::HashMap, sync::Mutex};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine as _};
use chrono::{DateTime, Utc};
use jsonwebtoken::{
    decode,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, ThumbprintHash},
    Algorithm, DecodingKey, Validation,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{
    config::TokenSettings,
    crypto::{ct_eq, sha256, MasterKey},
};

/// The JWS `typ` of a DPoP proof.
pub const PROOF_TYPE: &str = "dpop+jwt";
/// The response header that carries a fresh nonce.
pub const NONCE_HEADER: &str = "DPoP-Nonce";
/// The only method a proof may name: every endpoint that takes one is a POST.
const METHOD: &str = "POST";
/// Ample for the largest key it takes (RSA 4096: a proof of about 2.3 KB), and small enough
/// that any request carrying one stays far below the JSON body limit.
const MAX_PROOF_BYTES: usize = 4096;
const MAX_JTI_BYTES: usize = 256;
/// Proofs remembered at most at once per instance; beyond it, proofs are refused (fail closed)
/// until the oldest age out of the window.
const MAX_SEEN: usize = 200_000;
/// Members of a JWK that only a private key has.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
const NONCE_TAG_BYTES: usize = 16;

/// The RFC 9449 error a refusal for the proof carries, so a meeting server knows whether to
/// retry with the nonce it was just given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DpopError {
    /// The proof lacks a nonce, or its nonce is not one Vouch issued or has expired: make a new
    /// proof with the nonce in the `DPoP-Nonce` response header.
    UseDpopNonce,
    /// The proof is missing (where one is required) or does not prove possession of the key
    /// the token is bound to, for this request, now.
    InvalidDpopProof,
}

impl DpopError {
    pub fn as_str(self) -> &'static str {
        match self {
            DpopError::UseDpopNonce => "use_dpop_nonce",
            DpopError::InvalidDpopProof => "invalid_dpop_proof",
        }
    }
}

/// Why a proof was refused: the RFC 9449 error and a sentence for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub error: DpopError,
    pub detail: &'static str,
}

impl Refused {
    fn invalid(detail: &'static str) -> Self {
        Refused {
            error: DpopError::InvalidDpopProof,
            detail,
        }
    }
}

/// A proof that cannot be a DPoP proof at all (a 400): why, without echoing any of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("dpop is not a DPoP proof: {0}")]
pub struct Malformed(pub &'static str);

#[derive(Debug, Clone, Deserialize)]
struct ProofClaims {
    htm: String,
    htu: String,
    iat: i64,
    jti: String,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    ath: Option<String>,
}

/// A well-formed DPoP proof, not yet checked: `typ` `dpop+jwt`, an asymmetric `alg` its public
/// `jwk` fits, and the claims `htm`, `htu`, `iat`, `jti` present.
#[derive(Clone)]
pub struct Proof {
    raw: String,
    alg: Algorithm,
    key: DecodingKey,
    /// RFC 7638 SHA-256 thumbprint of the proof's `jwk`.
    jkt: String,
    claims: ProofClaims,
}

/// The proof itself is a credential for a minute: never printed.
impl std::fmt::Debug for Proof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proof")
            .field("alg", &self.alg)
            .field("jkt", &self.jkt)
            .finish_non_exhaustive()
    }
}

impl Proof {
    pub fn parse(raw: &str) -> Result<Proof, Malformed> {
        if raw.len() > MAX_PROOF_BYTES {
            return Err(Malformed("longer than 4096 bytes"));
        }
        let mut parts = raw.split('.');
        let (Some(header), Some(claims), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Malformed("not a compact JWS (three dot-separated parts)"));
        };
        if signature.is_empty() || B64.decode(signature).is_err() {
            return Err(Malformed("the signature is not base64url"));
        }
        let header: Map<String, Value> = decode_part(header)
            .ok_or(Malformed("the header is not base64url-encoded JSON object"))?;
        let typ = header.get("typ").and_then(Value::as_str);
        if !typ.is_some_and(|t| t.eq_ignore_ascii_case(PROOF_TYPE)) {
            return Err(Malformed("the header's typ must be dpop+jwt"));
        }
        if header.contains_key("crit") {
            return Err(Malformed("the header names critical extensions"));
        }
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(supported_alg)
            .ok_or(Malformed(
                "alg must be one of ES256, ES384, EdDSA, RS256, RS384, RS512, PS256, PS384, PS512",
            ))?;
        let jwk = header
            .get("jwk")
            .and_then(Value::as_object)
            .ok_or(Malformed("the header carries no jwk"))?;
        if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
            return Err(Malformed("the jwk carries private key material"));
        }
        let key: Jwk = serde_json::from_value(Value::Object(jwk.clone()))
            .map_err(|_| Malformed("the jwk is not a JSON Web Key"))?;
        if !fits(alg, &key.algorithm) {
            return Err(Malformed(
                "the jwk is not a public key for the header's alg",
            ));
        }
        let decoding = DecodingKey::from_jwk(&key)
            .map_err(|_| Malformed("the jwk is not a usable public key"))?;
        let jkt = key
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|_| Malformed("the jwk has no RFC 7638 thumbprint"))?;
        let claims: ProofClaims = decode_part::<Map<String, Value>>(claims)
            .and_then(|m| serde_json::from_value(Value::Object(m)).ok())
            .ok_or(Malformed(
                "the claims must be a JSON object with htm, htu (strings), iat (integer) and jti (string)",
            ))?;
        if claims.jti.is_empty() || claims.jti.len() > MAX_JTI_BYTES {
            return Err(Malformed("jti must be 1 to 256 bytes"));
        }
        Ok(Proof {
            raw: raw.to_owned(),
            alg,
            key: decoding,
            jkt,
            claims,
        })
    }

    /// The thumbprint of the key that made the proof.
    pub fn jkt(&self) -> &str {
        &self.jkt
    }
}

fn decode_part<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    let bytes = B64.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn supported_alg(alg: &str) -> Option<Algorithm> {
    Some(match alg {
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        _ => return None,
    })
}

/// Whether a key of this type and curve can make signatures of this algorithm.
fn fits(alg: Algorithm, key: &AlgorithmParameters) -> bool {
    match key {
        AlgorithmParameters::EllipticCurve(ec) => matches!(
            (alg, &ec.curve),
            (Algorithm::ES256, EllipticCurve::P256) | (Algorithm::ES384, EllipticCurve::P384)
        ),
        AlgorithmParameters::OctetKeyPair(okp) => {
            alg == Algorithm::EdDSA && okp.curve == EllipticCurve::Ed25519
        }
        AlgorithmParameters::RSA(_) => matches!(
            alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        ),
        _ => false,
    }
}

/// The `ath` claim for an access token: base64url SHA-256 of its text.
pub fn access_token_hash(token: &str) -> String {
    B64.encode(sha256(token.as_bytes()))
}

/// A URL as `htu` compares it (RFC 9449 §4.3): without query and fragment, and, when it parses,
/// in its normal form (scheme and host in lower case, default port dropped).
pub fn normalize_htu(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            parsed.set_query(None);
            parsed.set_fragment(None);
            parsed.to_string()
        }
        Err(_) => url.split(['?', '#']).next().unwrap_or_default().to_owned(),
    }
}

/// The endpoints that take a proof, each with the `htu` a proof for it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Authorize,
    LiveKit,
    Jitsi,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Authorize => "/v1/e2ee/authorize",
            Endpoint::LiveKit => "/v1/exchange/livekit",
            Endpoint::Jitsi => "/v1/exchange/jitsi",
        }
    }
}

/// A nonce and when it stops being accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nonce {
    pub value: String,
    pub expires_at: DateTime<Utc>,
}

/// Proof checking for one instance: the nonce key, the proofs seen within the window, the
/// settings.
pub struct Dpop {
    nonce_key: MasterKey,
    seen: Mutex<Seen>,
    /// How far `iat` may be from now, either way, leeway included.
    window: i64,
    nonce_ttl: i64,
    leeway: i64,
    issuer: String,
}

#[derive(Default)]
struct Seen {
    /// SHA-256 of (thumbprint, jti) → until when the proof would still be accepted.
    until: HashMap<[u8; 32], i64>,
    next_purge: i64,
}

impl Dpop {
    pub fn new(settings: &TokenSettings, master_key: &MasterKey) -> Self {
        Dpop {
            nonce_key: master_key.derive("vouch dpop nonce v1"),
            seen: Mutex::new(Seen::default()),
            window: (settings.dpop_max_age_seconds + settings.leeway_seconds) as i64,
            nonce_ttl: settings.dpop_nonce_ttl_seconds as i64,
            leeway: settings.leeway_seconds as i64,
            issuer: settings.issuer.trim_end_matches('/').to_owned(),
        }
    }

    /// The `htu` a proof for `endpoint` must name.
    pub fn htu(&self, endpoint: Endpoint) -> String {
        format!("{}{}", self.issuer, endpoint.path())
    }

    /// A fresh nonce: base64url(issue time, 8 bytes big-endian ‖ HMAC-SHA256 over it, first 16
    /// bytes), valid for `tokens.dpop_nonce_ttl_seconds` on every instance.
    pub fn nonce(&self, now: DateTime<Utc>) -> Nonce {
        let issued = now.timestamp();
        let mut bytes = issued.to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.nonce_tag(issued));
        Nonce {
            value: B64.encode(bytes),
            expires_at: DateTime::from_timestamp(issued + self.nonce_ttl, 0).unwrap_or(now),
        }
    }

    fn nonce_tag(&self, issued: i64) -> [u8; NONCE_TAG_BYTES] {
        let mac = self.nonce_key.hmac(&issued.to_be_bytes());
        let mut tag = [0u8; NONCE_TAG_BYTES];
        tag.copy_from_slice(&mac[..NONCE_TAG_BYTES]);
        tag
    }

    /// Whether Vouch issued this nonce and it has not expired.
    fn nonce_valid(&self, nonce: &str, now: DateTime<Utc>) -> bool {
        let Ok(bytes) = B64.decode(nonce) else {
            return false;
        };
        let Ok(raw) = <[u8; 8 + NONCE_TAG_BYTES]>::try_from(bytes.as_slice()) else {
            return false;
        };
        let (time, tag) = raw.split_at(8);
        let issued = i64::from_be_bytes(time.try_into().unwrap_or_default());
        let now = now.timestamp();
        ct_eq(tag, &self.nonce_tag(issued))
            && issued <= now + self.leeway
            && now <= issued.saturating_add(self.nonce_ttl)
    }

    /// Check a proof presented with `token`, which is bound to `jkt`, at `endpoint`: the key,
    /// the signature, the request, the token hash, the time, the nonce, then that this proof
    /// was not used before (only a proof that passed everything else is remembered).
    pub fn check(
        &self,
        proof: &Proof,
        jkt: &str,
        token: &str,
        endpoint: Endpoint,
        now: DateTime<Utc>,
    ) -> Result<(), Refused> {
        if !ct_eq(proof.jkt.as_bytes(), jkt.as_bytes()) {
            return Err(Refused::invalid(
                "the DPoP proof is made with another key than the one the token is bound to",
            ));
        }
        let mut validation = Validation::new(proof.alg);
        validation.algorithms = vec![proof.alg];
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        decode::<Value>(&proof.raw, &proof.key, &validation)
            .map_err(|_| Refused::invalid("the DPoP proof's signature does not verify"))?;
        let claims = &proof.claims;
        if claims.htm != METHOD {
            return Err(Refused::invalid("the DPoP proof's htm must be POST"));
        }
        if normalize_htu(&claims.htu) != normalize_htu(&self.htu(endpoint)) {
            return Err(Refused::invalid(
                "the DPoP proof's htu is not the URL of this endpoint",
            ));
        }
        let ath = access_token_hash(token);
        match &claims.ath {
            None => {
                return Err(Refused::invalid(
                    "the DPoP proof has no ath (the hash of the token it is presented with)",
                ))
            }
            Some(a) if !ct_eq(a.as_bytes(), ath.as_bytes()) => {
                return Err(Refused::invalid(
                    "the DPoP proof's ath is not the hash of this token",
                ))
            }
            Some(_) => {}
        }
        let now_s = now.timestamp();
        if claims.iat.abs_diff(now_s) > self.window.unsigned_abs() {
            return Err(Refused::invalid(
                "the DPoP proof's iat is too far from now (a stale or future proof)",
            ));
        }
        match &claims.nonce {
            Some(n) if self.nonce_valid(n, now) => {}
            Some(_) => {
                return Err(Refused {
                    error: DpopError::UseDpopNonce,
                    detail: "the DPoP proof's nonce is not one Vouch issued, or it has expired; use the one in the DPoP-Nonce header",
                })
            }
            None => {
                return Err(Refused {
                    error: DpopError::UseDpopNonce,
                    detail: "the DPoP proof has no nonce; use the one in the DPoP-Nonce header",
                })
            }
        }
        let mut id = proof.jkt.as_bytes().to_vec();
        id.push(0);
        id.extend_from_slice(claims.jti.as_bytes());
        self.first_use(sha256(&id), claims.iat + self.window, now_s)
    }

    /// Remember a proof until it could no longer pass the `iat` check; refuse it if it was
    /// seen before.
    fn first_use(&self, id: [u8; 32], until: i64, now: i64) -> Result<(), Refused> {
        let mut seen = self
            .seen
            .lock()
            .map_err(|_| Refused::invalid("the DPoP replay cache is unavailable"))?;
        if now >= seen.next_purge || seen.until.len() >= MAX_SEEN {
            seen.until.retain(|_, until| *until >= now);
            seen.next_purge = now + self.window;
        }
        if seen.until.get(&id).is_some_and(|u| *u >= now) {
            return Err(Refused::invalid(
                "this DPoP proof (its jti) was used before",
            ));
        }
        if seen.until.len() >= MAX_SEEN {
            tracing::warn!("DPoP replay cache full; refusing proofs until older ones age out");
            return Err(Refused::invalid(
                "too many DPoP proofs at once; retry with a new proof shortly",
            ));
        }
        seen.until.insert(id, until);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    /// The worked example in the README: an Ed25519 device key (RFC 8037 Appendix A.2's public
    /// key) and the `device_jkt` a meeting server sends for it.
    #[test]
    fn the_readme_example_thumbprint() {
        let jwk: Jwk = serde_json::from_str(
            r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
        )
        .unwrap();
        assert_eq!(
            jwk.thumbprint(ThumbprintHash::SHA256).unwrap(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
        // RFC 8037 A.3 gives the same thumbprint for this key.
        // The P-256 example (RFC 7517 Appendix A.1's public key).
        let jwk: Jwk = serde_json::from_str(
            r#"{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","use":"enc","kid":"1"}"#,
        )
        .unwrap();
        assert_eq!(
            jwk.thumbprint(ThumbprintHash::SHA256).unwrap(),
            "cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s"
        );
    }

    fn dpop() -> Dpop {
        Dpop::new(&Settings::defaults().tokens, &MasterKey::new([3u8; 32]))
    }

    #[test]
    fn nonces_are_accepted_by_any_instance_with_the_key_until_they_expire() {
        let a = dpop();
        let now = Utc::now();
        let nonce = a.nonce(now);
        assert_eq!(nonce.expires_at.timestamp(), now.timestamp() + 300);
        let b = dpop();
        assert!(b.nonce_valid(&nonce.value, now));
        assert!(b.nonce_valid(&nonce.value, now + chrono::Duration::seconds(300)));
        assert!(!b.nonce_valid(&nonce.value, now + chrono::Duration::seconds(301)));
        // Issued too far in the future (a forged time cannot get a valid tag anyway).
        assert!(!b.nonce_valid(&nonce.value, now - chrono::Duration::seconds(31)));
        let other = Dpop::new(&Settings::defaults().tokens, &MasterKey::new([4u8; 32]));
        assert!(!other.nonce_valid(&nonce.value, now));
        // Another issue time under the same tag.
        let mut bytes = B64.decode(&nonce.value).unwrap();
        bytes[7] ^= 1;
        assert!(!b.nonce_valid(&B64.encode(&bytes), now));
        for junk in ["", "nonce", "!!!!", &"A".repeat(32)] {
            assert!(!b.nonce_valid(junk, now), "{junk}");
        }
    }

    #[test]
    fn a_proof_is_used_once_within_its_window_and_forgotten_after() {
        let d = dpop();
        let id = [9u8; 32];
        assert!(d.first_use(id, 100, 10).is_ok());
        assert!(d.first_use(id, 100, 50).is_err());
        assert!(d.first_use([8u8; 32], 100, 50).is_ok());
        // Past its window the entry is purged (the iat check refuses such a proof anyway).
        assert!(d.first_use(id, 300, 200).is_ok());
        assert_eq!(d.seen.lock().unwrap().until.len(), 1);
    }

    #[test]
    fn htu_compares_without_query_and_fragment_in_normal_form() {
        assert_eq!(
            normalize_htu("HTTPS://Vouch.Example:443/v1/e2ee/authorize?x=1#f"),
            "https://vouch.example/v1/e2ee/authorize"
        );
        assert_eq!(normalize_htu("not a url?q"), "not a url");
        assert_ne!(
            normalize_htu("https://vouch.example/v1/e2ee/authorize/"),
            normalize_htu("https://vouch.example/v1/e2ee/authorize")
        );
    }

    #[test]
    fn malformed_proofs_say_why() {
        let enc = |v: Value| B64.encode(v.to_string());
        let jwk = serde_json::json!({"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        let claims = enc(serde_json::json!({"htm":"POST","htu":"x","iat":1,"jti":"j"}));
        let proof = |header: Value, claims: &str| format!("{}.{claims}.c2ln", enc(header));
        let ok = proof(
            serde_json::json!({"typ":"dpop+jwt","alg":"EdDSA","jwk":jwk}),
            &claims,
        );
        let parsed = Proof::parse(&ok).unwrap();
        assert_eq!(parsed.jkt(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
        let mut private = jwk.clone();
        private["d"] = Value::from("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A");
        let cases = [
            ("a.b".to_owned(), "compact"),
            (
                proof(
                    serde_json::json!({"typ":"JWT","alg":"EdDSA","jwk":jwk}),
                    &claims,
                ),
                "typ",
            ),
            (
                proof(
                    serde_json::json!({"typ":"dpop+jwt","alg":"HS256","jwk":jwk}),
                    &claims,
                ),
                "alg",
            ),
            (
                proof(
                    serde_json::json!({"typ":"dpop+jwt","alg":"ES256","jwk":jwk}),
                    &claims,
                ),
                "for the header's alg",
            ),
            (
                proof(serde_json::json!({"typ":"dpop+jwt","alg":"EdDSA"}), &claims),
                "no jwk",
            ),
            (
                proof(
                    serde_json::json!({"typ":"dpop+jwt","alg":"EdDSA","jwk":private}),
                    &claims,
                ),
                "private",
            ),
            (
                proof(
                    serde_json::json!({"typ":"dpop+jwt","alg":"EdDSA","jwk":jwk}),
                    &enc(serde_json::json!({"htm":"POST","htu":"x","jti":"j"})),
                ),
                "iat",
            ),
            (
                proof(
                    serde_json::json!({"typ":"dpop+jwt","alg":"EdDSA","jwk":jwk}),
                    &enc(serde_json::json!({"htm":"POST","htu":"x","iat":1,"jti":""})),
                ),
                "jti",
            ),
        ];
        for (raw, why) in cases {
            let err = Proof::parse(&raw).unwrap_err();
            assert!(err.0.contains(why), "{why}: {err}");
        }
    }
}

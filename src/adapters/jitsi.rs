//! Jitsi Meet: the token a Vouch token is exchanged for (RS256, Prosody's token auth with
//! `context.features.e2ee`) and the public keys Prosody's `asap_key_server` fetches by the
//! SHA-256 of a token's `kid`. The keys are a ring of their own (`services::jitsi_keys`).
//!
//! Prosody's side (the `VirtualHost` of the Jitsi Meet domain, token authentication):
//! ```lua
//! authentication = "token"
//! app_id = "vouch"                                         -- = jitsi.app_id
//! asap_key_server = "https://vouch.example.org/v1/jitsi/asap"
//! asap_accepted_issuers = { "vouch" }                      -- = jitsi.app_id
//! asap_accepted_audiences = { "jitsi" }
//! allow_empty_token = false
//! ```
//! with `jitsi.domain` set to that `VirtualHost`. The meeting's web front end asks its backend
//! (role `meeting`) to exchange the participant's Vouch token and passes the result as `?jwt=`.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use aws_lc_rs::{encoding::AsDer, rsa::PublicKeyComponents};
use base64::{
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64},
    Engine as _,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    crypto::sha256_hex,
    error::{ApiError, ErrorCode},
    tokens::{
        keyring::{KeyRing, Keys, LoadedKey},
        keys::{Jwk, KeyError},
    },
};

/// The `aud` Prosody's token auth expects.
pub const AUDIENCE: &str = "jitsi";
/// Longest room and display name accepted, in characters.
const MAX_ROOM: usize = 256;
const MAX_NAME: usize = 256;
/// A request for an unknown key reloads the ring from the database at most this often.
const MISS_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// `[jitsi]`: unset `app_id` or `domain` leaves the exchange answering 503 `not_configured`.
#[derive(Debug, Clone, Deserialize)]
pub struct JitsiSettings {
    /// The token's `iss`: Prosody's `app_id`.
    #[serde(default)]
    pub app_id: Option<String>,
    /// The token's `sub`: the Jitsi Meet domain (Prosody's `VirtualHost`).
    #[serde(default)]
    pub domain: Option<String>,
    /// Upper bound on a Jitsi token's life (it never outlives the Vouch token either).
    #[serde(default = "default_ttl")]
    pub token_ttl_seconds: u64,
}

fn default_ttl() -> u64 {
    600
}

impl Default for JitsiSettings {
    fn default() -> Self {
        JitsiSettings {
            app_id: None,
            domain: None,
            token_ttl_seconds: default_ttl(),
        }
    }
}

impl JitsiSettings {
    /// `(app_id, domain)` when both are set.
    pub fn configured(&self) -> Option<(&str, &str)> {
        let app_id = self.app_id.as_deref().filter(|s| !s.trim().is_empty())?;
        let domain = self.domain.as_deref().filter(|s| !s.trim().is_empty())?;
        Some((app_id, domain))
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.token_ttl_seconds == 0 {
            return Err("token_ttl_seconds must be at least 1".into());
        }
        Ok(())
    }
}

/// The Jitsi key ring as this instance holds it.
#[derive(Default)]
pub struct JitsiRing {
    pub keys: Keys,
    last_miss_reload: Mutex<Option<Instant>>,
}

impl JitsiRing {
    /// Whether a request for an unknown key may reload the ring now (at most once a second, so
    /// random names cannot turn into a query each).
    pub fn may_reload_on_miss(&self) -> bool {
        let mut last = match self.last_miss_reload.lock() {
            Ok(l) => l,
            Err(p) => p.into_inner(),
        };
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < MISS_RELOAD_INTERVAL) {
            return false;
        }
        *last = Some(now);
        true
    }
}

/// Jitsi Meet token claims (Prosody `mod_auth_token`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JitsiClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub room: String,
    pub nbf: i64,
    pub exp: i64,
    pub context: Context,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    pub user: User,
    pub features: Features,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The account id.
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Features {
    pub e2ee: bool,
}

/// A signed Jitsi token.
#[derive(Debug)]
pub struct Exchanged {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// A room name as a meeting server sends it: one room (no `*` wildcard), no control characters.
pub fn parse_room(room: &str) -> Result<&str, ApiError> {
    let ok = !room.trim().is_empty()
        && room != "*"
        && room.chars().count() <= MAX_ROOM
        && !room.chars().any(char::is_control);
    if !ok {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidRoom,
            format!(
                "room must name one room: 1 to {MAX_ROOM} characters, not `*`, no control characters"
            ),
        ));
    }
    Ok(room)
}

/// A display name: up to 256 characters, no control characters.
pub fn parse_name(name: Option<&str>) -> Result<Option<&str>, ApiError> {
    match name {
        Some(n) if n.chars().count() > MAX_NAME || n.chars().any(char::is_control) => {
            Err(ApiError::bad_request(
                ErrorCode::InvalidName,
                format!("name must be at most {MAX_NAME} characters, no control characters"),
            ))
        }
        other => Ok(other),
    }
}

/// Sign a Jitsi token for an account admitted by a Vouch token that expires at `vouch_exp`:
/// `nbf` now, `exp` no later than the Vouch token's and `token_ttl_seconds` from now.
pub fn exchange(
    settings: &JitsiSettings,
    ring: &KeyRing,
    account_id: &str,
    vouch_exp: i64,
    room: &str,
    name: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Exchanged, ApiError> {
    let (app_id, domain) = settings.configured().ok_or_else(not_configured)?;
    let key = ring.signer(now).ok_or_else(|| {
        ApiError::unavailable(
            ErrorCode::NoSigningKey,
            "no Jitsi key is active; retry shortly",
        )
    })?;
    let nbf = now.timestamp();
    let exp = vouch_exp.min(nbf.saturating_add(settings.token_ttl_seconds as i64));
    if exp <= nbf {
        return Err(ApiError::forbidden(
            ErrorCode::Expired,
            "the token has expired",
        ));
    }
    let claims = JitsiClaims {
        iss: app_id.to_owned(),
        aud: AUDIENCE.to_owned(),
        sub: domain.to_owned(),
        room: room.to_owned(),
        nbf,
        exp,
        context: Context {
            user: User {
                id: account_id.to_owned(),
                name: name.map(str::to_owned),
            },
            features: Features { e2ee: true },
        },
    };
    let payload = serde_json::to_vec(&claims).map_err(ApiError::internal)?;
    let token = key
        .sign_typed("JWT", &payload)
        .map_err(ApiError::internal)?;
    tracing::debug!(account_id, kid = %key.kid, "jitsi token issued");
    Ok(Exchanged {
        token,
        expires_at: DateTime::from_timestamp(exp, 0).unwrap_or(now),
    })
}

pub fn not_configured() -> ApiError {
    ApiError::unavailable(
        ErrorCode::NotConfigured,
        "the Jitsi exchange is not configured (jitsi.app_id and jitsi.domain)",
    )
}

/// The file name Prosody asks for: the lowercase hex SHA-256 of the kid.
pub fn kid_hash(kid: &str) -> String {
    sha256_hex(kid.as_bytes())
}

/// The served key whose kid hashes to `hash`.
pub fn find_by_hash(ring: &KeyRing, hash: &str, now: DateTime<Utc>) -> Option<Arc<LoadedKey>> {
    let hash = hash.to_ascii_lowercase();
    ring.all()
        .iter()
        .find(|k| kid_hash(&k.kid) == hash)
        .and_then(|k| ring.verifier(&k.kid, now))
        .cloned()
}

/// A public RSA key as PEM SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`).
pub fn public_pem(jwk: &Jwk) -> Result<String, KeyError> {
    let part = |o: &Option<String>| {
        o.as_deref()
            .and_then(|v| B64.decode(v).ok())
            .ok_or(KeyError("incomplete RSA JWK"))
    };
    let components = PublicKeyComponents {
        n: part(&jwk.n)?,
        e: part(&jwk.e)?,
    };
    let der = AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(&components)
        .map_err(|_| KeyError("RSA public key encoding failed"))?;
    let body = STANDARD.encode(der.as_ref());
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_and_names_are_checked() {
        assert!(parse_room("standup").is_ok());
        assert!(parse_room("Team Room ü").is_ok());
        for bad in ["", "  ", "*", "a\nb", &"x".repeat(257)] {
            assert_eq!(
                parse_room(bad).unwrap_err().code,
                ErrorCode::InvalidRoom,
                "{bad:?}"
            );
        }
        assert_eq!(parse_name(None).unwrap(), None);
        assert_eq!(parse_name(Some("Ada")).unwrap(), Some("Ada"));
        assert_eq!(
            parse_name(Some("a\u{7}")).unwrap_err().code,
            ErrorCode::InvalidName
        );
    }

    #[test]
    fn the_pem_is_the_keys_subject_public_key_info() {
        let generated = crate::tokens::keys::generate(crate::config::Algorithm::RS256).unwrap();
        let pem = public_pem(&generated.jwk).unwrap();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
        assert!(pem.lines().all(|l| l.len() <= 64));
        let der = STANDARD
            .decode(
                pem.lines()
                    .filter(|l| !l.starts_with("-----"))
                    .collect::<String>(),
            )
            .unwrap();
        // SEQUENCE { SEQUENCE { OID rsaEncryption, NULL }, BIT STRING { ... } }
        let rsa_encryption = [
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
        ];
        assert!(der
            .windows(rsa_encryption.len())
            .any(|w| w == rsa_encryption));
        assert_eq!(kid_hash("abc").len(), 64);
    }
}

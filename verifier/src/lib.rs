//! Verify Vouch E2EE entitlement tokens (`e2ee-ent+jwt`) offline in a meeting server: keys from
//! Vouch's JWKS only, the token's own checks (`typ`, `alg`, `iss`, `aud`, time with leeway,
//! `cnf.jkt`), then the account's current state from the Token Status List the token names.
//! The decision carries the same reasons as Vouch's `POST /v1/e2ee/authorize`.
//!
//! ```no_run
//! # async fn run(token: &str, device_jkt: Option<&str>) -> Result<(), vouch_verifier::Error> {
//! let verifier = vouch_verifier::Verifier::new(
//!     vouch_verifier::Options::new("https://vouch.example.org", "meeting")
//!         .status_list_key("MEETING_API_KEY"),
//! );
//! let decision = verifier.verify(token, device_jkt).await?;
//! if !decision.allow {
//!     println!("refused: {}", decision.reason);
//! }
//! # Ok(()) }
//! ```

mod http;
mod jwks;
mod status;
pub mod webhooks;

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{decode, decode_header, errors::ErrorKind, Algorithm, Validation};
use serde::{Deserialize, Serialize};

/// The JWS `typ` of Vouch's entitlement tokens.
pub const TOKEN_TYPE: &str = "e2ee-ent+jwt";
/// The entitlement a token must carry.
pub const ENTITLEMENT: &str = "e2ee";
/// Larger tokens are refused unread (Vouch's own limit).
const MAX_TOKEN_BYTES: usize = 8192;

/// Why a token does or does not allow E2EE: the reasons of Vouch's authorize.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Ok,
    /// Malformed, not Vouch's (unknown key, bad signature, wrong `typ`/`alg`/`iss`), not yet
    /// valid, or naming its key's source itself (`jku`, `jwk`, `x5u`, `x5c`).
    InvalidToken,
    Expired,
    WrongAudience,
    /// Revoked by [`Verifier::revoke`] (from a `token.revoked` event) or
    /// [`Verifier::revoke_account`] (from a `tokens.revoked` event).
    Revoked,
    /// The status list says the account is not entitled (lapsed, revoked, erased), or the
    /// token does not carry the `e2ee` entitlement.
    NotEntitled,
    /// The token is bound to a device key (`cnf.jkt`) other than the one presented.
    DeviceMismatch,
    /// The status list says the account is suspended.
    AccountSuspended,
}

impl Reason {
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

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `cnf`: the device key a token is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// RFC 7638 SHA-256 thumbprint of the device key.
    pub jkt: String,
}

/// `status.status_list`: where the account's status lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusListReference {
    pub idx: u32,
    pub uri: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenStatus {
    pub status_list: StatusListReference,
}

/// The claims of a verified token. Never an email, phone number or name.
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
    /// Entitlements, e.g. `["e2ee"]`.
    #[serde(default)]
    pub ent: Vec<String>,
    /// What satisfied the policy (`email`, `phone`, `payment`, `exception`), when disclosed.
    #[serde(default)]
    pub evidence: Vec<String>,
    #[serde(default)]
    pub cnf: Option<Confirmation>,
    #[serde(default)]
    pub status: Option<TokenStatus>,
}

/// The decision on a presented token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allow: bool,
    pub reason: Reason,
    /// The account id, once the token's signature checked out.
    pub account_id: Option<String>,
    /// The verified claims (also on most refusals, for logging the `jti`).
    pub claims: Option<Claims>,
    /// When the token expires (when allowed): admit no longer than this.
    pub expires_at: Option<SystemTime>,
}

impl Decision {
    fn deny(reason: Reason, claims: Option<Claims>) -> Decision {
        Decision {
            allow: false,
            reason,
            account_id: claims.as_ref().map(|c| c.sub.clone()),
            claims,
            expires_at: None,
        }
    }
}

/// Why no decision could be made: Vouch's JWKS or the status list could not be fetched or
/// did not verify. Meeting servers should refuse (fail closed) and retry later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The JWKS could not be fetched or read, and no recent copy is cached.
    Jwks(String),
    /// The token's status list could not be fetched, verified or read, and no unexpired copy
    /// is cached.
    StatusList(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Jwks(e) => write!(f, "Vouch JWKS unavailable: {e}"),
            Error::StatusList(e) => write!(f, "Vouch status list unavailable: {e}"),
        }
    }
}

impl std::error::Error for Error {}

/// How a [`Verifier`] checks tokens. [`Options::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct Options {
    issuer: String,
    audiences: Vec<String>,
    leeway: Duration,
    status_list_key: Option<String>,
    jwks_refetch_interval: Duration,
    max_jwks_age: Duration,
    max_status_list_age: Option<Duration>,
    require_status_list: bool,
    timeout: Duration,
    client: Option<reqwest::Client>,
}

impl Options {
    /// Tokens of `issuer` (Vouch's `tokens.issuer`, which is also where its JWKS is served)
    /// for `audience` (one of Vouch's `tokens.audiences`).
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Options {
        Options {
            issuer: issuer.into(),
            audiences: vec![audience.into()],
            leeway: Duration::from_secs(30),
            status_list_key: None,
            jwks_refetch_interval: Duration::from_secs(5),
            max_jwks_age: Duration::from_secs(3600),
            max_status_list_age: None,
            require_status_list: true,
            timeout: Duration::from_secs(5),
            client: None,
        }
    }

    /// The issuer without a trailing `/`: where Vouch's URLs start (as Vouch builds them).
    fn base_url(&self) -> &str {
        self.issuer.trim_end_matches('/')
    }

    /// Accept another audience too.
    pub fn audience(mut self, audience: impl Into<String>) -> Options {
        self.audiences.push(audience.into());
        self
    }

    /// Clock skew tolerated on `exp`, `nbf` and `iat` (default 30 s, as Vouch's).
    pub fn leeway(mut self, leeway: Duration) -> Options {
        self.leeway = leeway;
        self
    }

    /// The API key (role `meeting`) sent as a bearer token when fetching status lists; not
    /// needed when Vouch serves them publicly (`status_lists.public`).
    pub fn status_list_key(mut self, key: impl Into<String>) -> Options {
        self.status_list_key = Some(key.into());
        self
    }

    /// The least time between two JWKS fetches caused by a token with an unknown `kid`
    /// (default 5 s): a flood of made-up kids cannot make the verifier hammer Vouch.
    pub fn jwks_refetch_interval(mut self, interval: Duration) -> Options {
        self.jwks_refetch_interval = interval;
        self
    }

    /// The longest the JWKS is cached, whatever its `Cache-Control` says (default 1 h).
    pub fn max_jwks_age(mut self, age: Duration) -> Options {
        self.max_jwks_age = age;
        self
    }

    /// Cache status lists at most this long, even when their `ttl` allows longer (default:
    /// the list's `ttl`).
    pub fn max_status_list_age(mut self, age: Duration) -> Options {
        self.max_status_list_age = Some(age);
        self
    }

    /// Whether a token without a `status` claim is refused (`invalid_token`; default true:
    /// every Vouch token carries one).
    pub fn require_status_list(mut self, require: bool) -> Options {
        self.require_status_list = require;
        self
    }

    /// Timeout of each request to Vouch (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Options {
        self.timeout = timeout;
        self
    }

    /// Use this HTTP client (its own TLS roots, proxy, ...) instead of a default one.
    pub fn http_client(mut self, client: reqwest::Client) -> Options {
        self.client = Some(client);
        self
    }
}

/// Verifies tokens; cheap to clone (clones share their caches). Keep one per process.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    options: Options,
    http: http::Fetcher,
    keys: jwks::KeyCache,
    lists: status::ListCache,
    /// Tokens revoked by `token.revoked` events: jti → its `exp` (unix seconds).
    revoked: Mutex<HashMap<String, i64>>,
    /// Accounts whose tokens issued before a time are revoked (`tokens.revoked` events):
    /// account id → `revoked_before` (unix seconds).
    revoked_accounts: Mutex<HashMap<String, i64>>,
}

/// The longest a Vouch token lives (1 h at most), past which an account-wide revocation
/// revokes nothing more.
const MAX_TOKEN_LIFE: i64 = 3600;

impl Verifier {
    pub fn new(options: Options) -> Verifier {
        let client = options.client.clone().unwrap_or_default();
        let http = http::Fetcher::new(client, options.timeout);
        let keys = jwks::KeyCache::new(
            format!("{}/.well-known/jwks.json", options.base_url()),
            options.jwks_refetch_interval,
            options.max_jwks_age,
        );
        let lists = status::ListCache::new(options.max_status_list_age);
        Verifier {
            inner: Arc::new(Inner {
                options,
                http,
                keys,
                lists,
                revoked: Mutex::new(HashMap::new()),
                revoked_accounts: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Decide on `token` presented by a device whose key has the RFC 7638 thumbprint
    /// `device_jkt` (see [`thumbprint`]), now.
    pub async fn verify(&self, token: &str, device_jkt: Option<&str>) -> Result<Decision, Error> {
        self.verify_at(token, device_jkt, SystemTime::now()).await
    }

    /// [`Verifier::verify`] as of `now` (for tests and replays).
    pub async fn verify_at(
        &self,
        token: &str,
        device_jkt: Option<&str>,
        now: SystemTime,
    ) -> Result<Decision, Error> {
        let now = unix(now);
        let claims = match self.check_signed(token).await? {
            Ok(claims) => claims,
            Err(reason) => return Ok(Decision::deny(reason, None)),
        };
        let deny = |reason, claims| Ok(Decision::deny(reason, Some(claims)));
        let leeway = self.inner.options.leeway.as_secs() as i64;
        if claims.exp + leeway < now {
            return deny(Reason::Expired, claims);
        }
        if claims.nbf - leeway > now || claims.iat - leeway > now {
            return deny(Reason::InvalidToken, claims);
        }
        if self.is_revoked(&claims.jti) || self.is_revoked_by_account(&claims.sub, claims.iat) {
            return deny(Reason::Revoked, claims);
        }
        if let Some(cnf) = &claims.cnf {
            let presented = device_jkt.unwrap_or("");
            if !ct_eq(presented.as_bytes(), cnf.jkt.as_bytes()) {
                return deny(Reason::DeviceMismatch, claims);
            }
        }
        if !claims.ent.iter().any(|e| e == ENTITLEMENT) {
            return deny(Reason::NotEntitled, claims);
        }
        match &claims.status {
            Some(status) => {
                let reference = &status.status_list;
                if !self.is_ours(&reference.uri) {
                    return deny(Reason::InvalidToken, claims);
                }
                let value = self.inner.lists.status(self, reference, now).await?;
                match value {
                    0 => {}
                    2 => return deny(Reason::AccountSuspended, claims),
                    // 1 and anything undefined (or an index beyond the list): fail closed.
                    _ => return deny(Reason::NotEntitled, claims),
                }
            }
            None if self.inner.options.require_status_list => {
                return deny(Reason::InvalidToken, claims)
            }
            None => {}
        }
        Ok(Decision {
            allow: true,
            reason: Reason::Ok,
            account_id: Some(claims.sub.clone()),
            expires_at: u64::try_from(claims.exp)
                .ok()
                .map(|s| UNIX_EPOCH + Duration::from_secs(s)),
            claims: Some(claims),
        })
    }

    /// Refuse the token with this `jti` from now on, until `expires_at` (unix seconds): what a
    /// meeting server does on a `token.revoked` event (`data.jti`, `data.expires_at`).
    pub fn revoke(&self, jti: &str, expires_at: i64) {
        let now = unix(SystemTime::now());
        let mut revoked = lock(&self.inner.revoked);
        // Forget the revocations of tokens that expired anyway.
        let leeway = self.inner.options.leeway.as_secs() as i64;
        revoked.retain(|_, exp| *exp + leeway >= now);
        revoked.insert(jti.to_owned(), expires_at);
    }

    /// Refuse every token of `account_id` issued (`iat`) before `revoked_before` (unix seconds):
    /// what a meeting server does on a `tokens.revoked` event (`data.account_id`,
    /// `data.revoked_before`). Tokens issued from then on are not affected.
    pub fn revoke_account(&self, account_id: &str, revoked_before: i64) {
        let now = unix(SystemTime::now());
        let leeway = self.inner.options.leeway.as_secs() as i64;
        let mut revoked = lock(&self.inner.revoked_accounts);
        revoked.retain(|_, before| *before + MAX_TOKEN_LIFE + leeway >= now);
        let entry = revoked
            .entry(account_id.to_owned())
            .or_insert(revoked_before);
        *entry = (*entry).max(revoked_before);
    }

    /// Read status lists from Vouch again instead of from the cache: what a meeting server
    /// does on an `entitlement.*` or `account.*` event, so the account's next join is decided
    /// on the list as it is now rather than on a copy up to its `ttl` old. (Lists fetched in
    /// the next 1.5 s count as stale too: Vouch's lists show a change within 1 s.)
    pub fn refresh_status_lists(&self) {
        self.inner.lists.refresh();
    }

    fn is_revoked(&self, jti: &str) -> bool {
        lock(&self.inner.revoked).contains_key(jti)
    }

    fn is_revoked_by_account(&self, account_id: &str, iat: i64) -> bool {
        lock(&self.inner.revoked_accounts)
            .get(account_id)
            .is_some_and(|before| iat < *before)
    }

    /// Header, our key, signature, issuer and audience: `Ok(Err(reason))` is a refusal.
    async fn check_signed(&self, token: &str) -> Result<Result<Claims, Reason>, Error> {
        if token.len() > MAX_TOKEN_BYTES {
            return Ok(Err(Reason::InvalidToken));
        }
        let Ok(header) = decode_header(token) else {
            return Ok(Err(Reason::InvalidToken));
        };
        // Keys come from Vouch's JWKS only; a token naming another source is not Vouch's.
        if header.typ.as_deref() != Some(TOKEN_TYPE)
            || header.jku.is_some()
            || header.jwk.is_some()
            || header.x5u.is_some()
            || header.x5c.is_some()
            || header.crit.is_some()
            || !SUPPORTED.contains(&header.alg)
        {
            return Ok(Err(Reason::InvalidToken));
        }
        let Some(kid) = header.kid.as_deref() else {
            return Ok(Err(Reason::InvalidToken));
        };
        let Some(key) = self.inner.keys.get(&self.inner.http, kid).await? else {
            return Ok(Err(Reason::InvalidToken));
        };
        // One algorithm per key: a token may not pick another one for it.
        if header.alg != key.alg {
            return Ok(Err(Reason::InvalidToken));
        }
        let options = &self.inner.options;
        let mut validation = Validation::new(key.alg);
        validation.algorithms = vec![key.alg];
        validation.set_issuer(&[options.issuer.as_str()]);
        validation.set_audience(&options.audiences);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        Ok(decode::<Claims>(token, &key.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidAudience => Reason::WrongAudience,
                _ => Reason::InvalidToken,
            }))
    }

    /// Status lists are fetched from the issuer only, whatever a token says.
    fn is_ours(&self, uri: &str) -> bool {
        let prefix = format!("{}/", self.inner.options.base_url());
        uri.starts_with(&prefix) && !uri.contains('#') && !uri.contains('@')
    }
}

/// The algorithms Vouch signs with.
const SUPPORTED: [Algorithm; 3] = [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256];

/// The RFC 7638 SHA-256 thumbprint of a device's public key given as a JWK (JSON), as a token's
/// `cnf.jkt` names it; `None` for a key that is not a valid public JWK.
pub fn thumbprint(jwk_json: &str) -> Option<String> {
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_str(jwk_json).ok()?;
    jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
        .ok()
}

fn unix(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// Compare without revealing where the first difference is.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A poisoned lock only means another thread panicked mid-update of a cache; its data is
/// still a valid cache state.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprints_as_rfc_8037_says() {
        let jwk =
            r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
        assert_eq!(
            thumbprint(jwk).as_deref(),
            Some("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k")
        );
        assert_eq!(thumbprint("{}"), None);
    }

    #[test]
    fn reasons_are_authorize_reasons() {
        assert_eq!(Reason::AccountSuspended.to_string(), "account_suspended");
        assert_eq!(
            serde_json::to_string(&Reason::DeviceMismatch).unwrap(),
            r#""device_mismatch""#
        );
    }
}

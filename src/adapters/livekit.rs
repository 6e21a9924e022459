//! LiveKit: access tokens for entitled participants, and `RemoveParticipant` when the right ends.
//!
//! The exchange turns a Vouch token into a LiveKit access token (HS256 with the API secret) for
//! one room, with the minimal grants MatrixRTC (MSC4195) asks for and an `exp` never later than
//! the Vouch token's, and remembers the admission. LiveKit checks a token only when a participant
//! connects, so when the account stops being entitled or the Vouch token is revoked the services
//! layer queues a removal (`services::livekit`), and the worker here sends it from any instance:
//! `POST {url}/twirp/livekit.RoomService/RemoveParticipant` with a short-lived admin token,
//! retried with backoff; a Twirp `not_found` answer means there is nobody left to remove.

use std::{
    collections::BTreeMap,
    sync::{Arc, Weak},
    time::Duration,
};

use actix_web::web;
use chrono::{DateTime, Utc};
use entities::livekit_removal;
use jsonwebtoken::{encode, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use super::{check_presented, refused, validate_request};
use crate::{
    crypto::random_bytes,
    db::WriteTxn,
    domain::ids::new_id,
    error::{ApiError, ErrorCode},
    services::livekit::{self as store, Outcome, ADMISSION_PREFIX},
    state::AppState,
    tokens::{
        authorize::{parse_dpop, Presented},
        dpop::Endpoint,
        verify::Reason,
    },
};

/// The `attributes` every issued token carries.
pub const E2EE_ATTRIBUTE: &str = "vouch.e2ee";
/// How long the admin token of one `RemoveParticipant` call lives.
const ADMIN_TOKEN_SECONDS: i64 = 60;
/// Per request: connect, send, read the answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the worker looks for due removals (a queued removal also wakes it).
const POLL: Duration = Duration::from_millis(500);
/// A queued removal wakes the worker before its transaction commits; give the commit a moment.
const COMMIT_GRACE: Duration = Duration::from_millis(30);
/// How long settled removals are kept (the maintenance round prunes them, and expired
/// admissions).
const RETENTION_HOURS: i64 = 24;
/// Removals claimed per round.
const BATCH: u64 = 32;
/// The waits before attempts 2..=10: quick at first (a participant must be gone within
/// seconds), then backing off for a LiveKit that is down.
const SCHEDULE_SECONDS: [i64; 9] = [1, 2, 5, 15, 60, 300, 900, 1800, 3600];
/// Answers are read up to this much.
const MAX_RESPONSE_BYTES: usize = 16 * 1024;

/// `[livekit]`: unset key and secret leave the exchange answering 503 `not_configured`.
#[derive(Debug, Clone, Deserialize)]
pub struct LiveKitSettings {
    #[serde(default)]
    pub api_key: Option<String>,
    /// Signs access tokens; never logged.
    #[serde(default)]
    pub api_secret: Option<SecretString>,
    /// The LiveKit server's HTTP(S) base URL, for `RemoveParticipant`.
    #[serde(default)]
    pub url: Option<String>,
    /// The longest an access token lives (it never outlives the Vouch token either).
    #[serde(default = "default_ttl")]
    pub token_ttl_seconds: u64,
}

fn default_ttl() -> u64 {
    600
}

impl Default for LiveKitSettings {
    fn default() -> Self {
        LiveKitSettings {
            api_key: None,
            api_secret: None,
            url: None,
            token_ttl_seconds: default_ttl(),
        }
    }
}

/// What a configured LiveKit needs: the key, the secret and the server's URL.
pub struct Configured<'a> {
    pub api_key: &'a str,
    pub api_secret: &'a str,
    pub url: &'a str,
}

impl LiveKitSettings {
    /// Check the values an operator may set: key, secret and URL together or none of them.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=86_400).contains(&self.token_ttl_seconds) {
            return Err("token_ttl_seconds must be between 1 and 86400".into());
        }
        let set = [
            self.api_key.as_deref().is_some_and(|k| !k.is_empty()),
            self.api_secret
                .as_ref()
                .is_some_and(|s| !s.expose_secret().is_empty()),
            self.url.as_deref().is_some_and(|u| !u.is_empty()),
        ];
        if set.iter().any(|s| *s) && !set.iter().all(|s| *s) {
            return Err("api_key, api_secret and url must be set together".into());
        }
        if let Some(url) = self.url.as_deref().filter(|u| !u.is_empty()) {
            let ok = reqwest::Url::parse(url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
            if !ok {
                return Err("url must be an http(s) URL".into());
            }
        }
        Ok(())
    }

    /// The key, secret and URL, if all are set.
    pub fn configured(&self) -> Option<Configured<'_>> {
        Some(Configured {
            api_key: self.api_key.as_deref().filter(|k| !k.is_empty())?,
            api_secret: self
                .api_secret
                .as_ref()
                .map(|s| s.expose_secret())
                .filter(|s| !s.is_empty())?,
            url: self.url.as_deref().filter(|u| !u.is_empty())?,
        })
    }
}

/// LiveKit's `video` grant, as its SDKs spell it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoGrant {
    pub room: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room_join: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_publish: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_subscribe: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_publish_data: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room_create: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room_admin: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hidden: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_update_own_metadata: Option<bool>,
}

impl VideoGrant {
    /// A participant's grant: join, publish, subscribe and send data in `room`; nothing more.
    pub fn participant(room: &str) -> Self {
        VideoGrant {
            room: room.to_owned(),
            room_join: Some(true),
            can_publish: Some(true),
            can_subscribe: Some(true),
            can_publish_data: Some(true),
            room_create: Some(false),
            room_admin: Some(false),
            hidden: Some(false),
            can_update_own_metadata: Some(false),
        }
    }

    /// What `RemoveParticipant` needs: admin of `room`.
    pub fn admin(room: &str) -> Self {
        VideoGrant {
            room: room.to_owned(),
            room_admin: Some(true),
            ..VideoGrant::default()
        }
    }
}

/// The claims of a LiveKit access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The API key.
    pub iss: String,
    /// The participant's identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub nbf: i64,
    pub exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    pub video: VideoGrant,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub attributes: BTreeMap<String, String>,
}

fn sign(secret: &str, claims: &AccessClaims) -> Result<String, ApiError> {
    encode(
        &Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(ApiError::internal)
}

/// A LiveKit access token that was issued.
pub struct Issued {
    pub token: String,
    pub identity: String,
    pub expires_at: DateTime<Utc>,
}

/// What a participant asks for.
pub struct Exchange<'a> {
    pub token: &'a str,
    pub room: &'a str,
    pub device_jkt: Option<&'a str>,
    /// The device's DPoP proof, for `{tokens.issuer}/v1/exchange/livekit`.
    pub dpop: Option<&'a str>,
    pub name: Option<&'a str>,
}

/// Exchange a Vouch token for a LiveKit access token and remember the admission: 503
/// `not_configured`, 400 for bad input, 403 `<reason>` where authorize would refuse.
pub async fn exchange(state: &AppState, request: Exchange<'_>) -> Result<Issued, ApiError> {
    let settings = &state.settings.livekit;
    let Some(livekit) = settings.configured() else {
        return Err(ApiError::unavailable(
            ErrorCode::NotConfigured,
            "LiveKit is not configured on this service",
        ));
    };
    validate_request(request.room, request.name, request.device_jkt)?;
    let proof = parse_dpop(request.dpop)?;
    let now = state.now();
    let presented = Presented {
        token: request.token,
        device_jkt: request.device_jkt,
        dpop: proof.as_ref(),
        endpoint: Endpoint::LiveKit,
    };
    let verified = check_presented(state, presented, now).await?;
    let claims = &verified.1;
    let ttl = i64::try_from(settings.token_ttl_seconds).unwrap_or(600);
    let nbf = now.timestamp();
    let exp = claims.exp.min(nbf + ttl);
    if exp <= nbf {
        return Err(refused(Reason::Expired));
    }
    let expires_at = DateTime::from_timestamp(exp, 0).ok_or_else(|| refused(Reason::Expired))?;
    let identity = claims.sub.clone();
    let admission = new_id(ADMISSION_PREFIX);
    let access = AccessClaims {
        iss: livekit.api_key.to_owned(),
        sub: Some(identity.clone()),
        name: request.name.map(str::to_owned),
        nbf,
        exp,
        jti: Some(admission.clone()),
        video: VideoGrant::participant(request.room),
        attributes: BTreeMap::from([(E2EE_ATTRIBUTE.to_owned(), "true".to_owned())]),
    };
    let token = sign(livekit.api_secret, &access)?;
    // Remember the admission in a write transaction, which runs after any revocation or loss
    // that committed before it (and so is refused here) and before any that commits after it
    // (and so finds the admission to remove).
    let txn: WriteTxn = state.db.begin_write().await?;
    if let Some(reason) = store::refusal(&*txn, &identity, &claims.jti, claims.iat).await? {
        return Err(refused(reason));
    }
    store::admit(
        &*txn,
        &admission,
        &identity,
        request.room,
        &identity,
        &claims.jti,
        expires_at,
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(Issued {
        token,
        identity,
        expires_at,
    })
}

/// The bearer token of one `RemoveParticipant` call: admin of that room, for a minute.
pub fn admin_token(
    livekit: &Configured<'_>,
    room: &str,
    now: DateTime<Utc>,
) -> Result<String, ApiError> {
    let nbf = now.timestamp();
    let claims = AccessClaims {
        iss: livekit.api_key.to_owned(),
        sub: None,
        name: None,
        nbf,
        exp: nbf + ADMIN_TOKEN_SECONDS,
        jti: None,
        video: VideoGrant::admin(room),
        attributes: BTreeMap::new(),
    };
    sign(livekit.api_secret, &claims)
}

/// The removal worker's HTTP client (one per instance).
pub struct LiveKit {
    client: reqwest::Client,
}

impl LiveKit {
    pub fn new() -> Result<LiveKit, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(REQUEST_TIMEOUT)
            .build()?;
        Ok(LiveKit { client })
    }
}

/// When to try again after `attempts` failed attempts, or `None` once they are used up; up to
/// 10 % jitter.
pub fn next_attempt(attempts: i32, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let idx = usize::try_from(attempts.checked_sub(1)?).ok()?;
    let millis = SCHEDULE_SECONDS.get(idx)? * 1000;
    let jitter = i64::from(u16::from_be_bytes(random_bytes::<2>())) * (millis / 10) / 65_535;
    Some(now + chrono::Duration::milliseconds(millis + jitter))
}

/// Start the removal worker when LiveKit is configured; it ends when the state is dropped.
pub fn spawn(state: web::Data<AppState>) {
    if state.settings.livekit.configured().is_none() {
        return;
    }
    let weak: Weak<AppState> = Arc::downgrade(&state.into_inner());
    tokio::spawn(async move {
        loop {
            let Some(state) = weak.upgrade() else { break };
            let more = match run_round(&state).await {
                Ok(more) => more,
                Err(e) => {
                    tracing::warn!(error = %e, "LiveKit removal round failed");
                    false
                }
            };
            drop(state);
            if !more {
                tokio::select! {
                    _ = store::queued().notified() => tokio::time::sleep(COMMIT_GRACE).await,
                    _ = tokio::time::sleep(POLL) => {}
                }
            }
        }
    });
}

/// Forget expired admissions and removals settled more than a day ago (in the maintenance
/// round's transaction).
pub async fn prune(
    conn: &impl sea_orm::ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let cutoff = now - chrono::Duration::hours(RETENTION_HOURS);
    if store::has_prunable(conn, now, cutoff).await? {
        let pruned = store::prune(conn, now, cutoff).await?;
        tracing::debug!(pruned, "LiveKit admissions and removals pruned");
    }
    Ok(())
}

/// Claim due removals and send each in its own task; `true` if the batch was full.
pub async fn run_round(state: &Arc<AppState>) -> Result<bool, ApiError> {
    let now = state.now();
    if !store::has_due(state.db.conn(), now).await? {
        return Ok(false);
    }
    let lease = chrono::Duration::seconds(REQUEST_TIMEOUT.as_secs() as i64 * 3);
    let txn = state.db.begin_write().await?;
    let claimed = store::claim(&*txn, now, now + lease, BATCH).await?;
    txn.commit().await?;
    let full = claimed.len() as u64 == BATCH;
    for removal in claimed {
        let state = state.clone();
        tokio::spawn(async move {
            let id = removal.id.clone();
            if let Err(e) = deliver(&state, removal).await {
                tracing::warn!(removal_id = %id, error = %e, "recording a LiveKit removal failed");
            }
        });
    }
    Ok(full)
}

/// What LiveKit did with one request.
enum Sent {
    Removed(u16),
    NotFound,
    Status(u16),
    Error(&'static str),
}

#[derive(Deserialize)]
struct TwirpError {
    code: String,
}

async fn send(state: &AppState, removal: &livekit_removal::Model) -> Sent {
    let Some(livekit) = state.settings.livekit.configured() else {
        return Sent::Error("not configured");
    };
    let Ok(token) = admin_token(&livekit, &removal.room, state.now()) else {
        return Sent::Error("admin token");
    };
    let url = format!(
        "{}/twirp/livekit.RoomService/RemoveParticipant",
        livekit.url.trim_end_matches('/')
    );
    let body = serde_json::json!({"room": removal.room, "identity": removal.identity});
    let request = crate::telemetry::traces::inject(state.livekit.client.post(url))
        .bearer_auth(token)
        .json(&body);
    let mut response = match request.send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return Sent::Error("timeout"),
        Err(e) if e.is_connect() => return Sent::Error("connection failed"),
        Err(_) => return Sent::Error("request failed"),
    };
    let status = response.status().as_u16();
    let mut read = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        read.extend_from_slice(&chunk);
        if read.len() >= MAX_RESPONSE_BYTES {
            break;
        }
    }
    if (200..300).contains(&status) {
        return Sent::Removed(status);
    }
    let twirp_code = serde_json::from_slice::<TwirpError>(&read).map(|e| e.code);
    if status == 404 && twirp_code.is_ok_and(|c| c == "not_found") {
        return Sent::NotFound;
    }
    Sent::Status(status)
}

async fn deliver(state: &AppState, removal: livekit_removal::Model) -> Result<(), ApiError> {
    let span = if crate::telemetry::traces::enabled() {
        tracing::info_span!(
            "livekit.remove_participant",
            otel.name = "LiveKit RemoveParticipant",
            otel.kind = "client",
            removal_id = %removal.id,
            attempts = removal.attempts,
        )
    } else {
        tracing::Span::none()
    };
    let sent = send(state, &removal).instrument(span).await;
    let now = state.now();
    let retry_or_fail =
        |status_code: Option<i32>, error: &'static str| match next_attempt(removal.attempts, now) {
            Some(at) => Outcome::Retry {
                at,
                status_code,
                error,
            },
            None => Outcome::Failed { status_code, error },
        };
    let outcome = match sent {
        Sent::Removed(code) => Outcome::Done {
            status_code: i32::from(code),
        },
        Sent::NotFound => Outcome::Done { status_code: 404 },
        Sent::Status(code) => retry_or_fail(Some(i32::from(code)), "error answer"),
        Sent::Error(reason) => retry_or_fail(None, reason),
    };
    match &outcome {
        Outcome::Done { status_code } => {
            tracing::info!(removal_id = %removal.id, status_code, "LiveKit participant removed");
        }
        Outcome::Retry {
            at,
            status_code,
            error,
        } => {
            tracing::info!(removal_id = %removal.id, ?status_code, %error, retry_at = %at, "LiveKit removal failed; will retry");
        }
        Outcome::Failed { status_code, error } => {
            tracing::warn!(removal_id = %removal.id, ?status_code, %error, "LiveKit removal given up");
        }
    }
    let txn = state.db.begin_write().await?;
    let recorded = store::record(&*txn, &removal, outcome, now).await?;
    txn.commit().await?;
    if !recorded {
        tracing::warn!(removal_id = %removal.id, "LiveKit removal outcome not recorded: the claim had lapsed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_are_spelled_as_livekit_reads_them() {
        let grant = serde_json::to_value(VideoGrant::participant("standup")).unwrap();
        assert_eq!(
            grant,
            serde_json::json!({
                "room": "standup", "roomJoin": true, "canPublish": true, "canSubscribe": true,
                "canPublishData": true, "roomCreate": false, "roomAdmin": false, "hidden": false,
                "canUpdateOwnMetadata": false
            })
        );
        let admin = serde_json::to_value(VideoGrant::admin("standup")).unwrap();
        assert_eq!(
            admin,
            serde_json::json!({"room": "standup", "roomAdmin": true})
        );
    }

    #[test]
    fn key_secret_and_url_go_together() {
        let mut s = LiveKitSettings::default();
        assert!(s.validate().is_ok());
        assert!(s.configured().is_none());
        s.api_key = Some("key".into());
        assert!(s.validate().is_err());
        s.api_secret = Some(SecretString::from("secret"));
        s.url = Some("ftp://livekit".into());
        assert!(s.validate().is_err());
        s.url = Some("http://127.0.0.1:7880".into());
        assert!(s.validate().is_ok());
        assert!(s.configured().is_some());
        s.token_ttl_seconds = 0;
        assert!(s.validate().is_err());
    }

    #[test]
    fn retries_start_quick_then_back_off() {
        let now = Utc::now();
        let first = (next_attempt(1, now).unwrap() - now).num_milliseconds();
        assert!((1000..=1100).contains(&first), "{first}");
        assert!(next_attempt(SCHEDULE_SECONDS.len() as i32 + 1, now).is_none());
    }
}

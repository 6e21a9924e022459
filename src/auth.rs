//! Bearer API keys: the `Caller` extractor authenticates, handlers then `require` roles.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::RwLock,
    time::{Duration, Instant},
};

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};

use crate::{
    crypto::sha256,
    domain::role::Role,
    error::ApiError,
    services::{clients, clients::KEY_PREFIX},
    state::AppState,
};

/// The authenticated API client behind a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub client_id: String,
    /// Recorded as the actor in the audit log.
    pub name: String,
    pub role: Role,
    /// The person behind the key; four-eyes review counts principals, not keys.
    pub principal: String,
    /// Who created the key (recorded with each approval it gives).
    pub created_by: String,
}

impl Caller {
    /// Admins may do everything; everyone else needs one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if self.role == Role::Admin || roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "forbidden",
                format!("the {} role may not do this", self.role.as_str()),
            ))
        }
    }

    pub fn is(&self, role: Role) -> bool {
        self.role == role
    }
}

/// Recently authenticated keys, by SHA-256, so hot paths skip the database. Entries live
/// `auth.cache_seconds`; a revocation on this instance clears the cache at once.
pub struct AuthCache {
    ttl: Duration,
    entries: RwLock<HashMap<[u8; 32], (Caller, Instant)>>,
}

const MAX_CACHED: usize = 10_000;

impl AuthCache {
    pub fn new(ttl: Duration) -> Self {
        AuthCache {
            ttl,
            entries: RwLock::new(HashMap::new()),
        }
    }

    fn get(&self, digest: &[u8; 32]) -> Option<Caller> {
        let map = self.entries.read().ok()?;
        let (caller, at) = map.get(digest)?;
        (at.elapsed() < self.ttl).then(|| caller.clone())
    }

    fn put(&self, digest: [u8; 32], caller: Caller) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut map) = self.entries.write() {
            if map.len() >= MAX_CACHED {
                map.retain(|_, (_, at)| at.elapsed() < self.ttl);
                if map.len() >= MAX_CACHED {
                    map.clear();
                }
            }
            map.insert(digest, (caller, Instant::now()));
        }
    }

    pub fn clear(&self) {
        if let Ok(mut map) = self.entries.write() {
            map.clear();
        }
    }
}

fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    let missing = || {
        ApiError::unauthorized(
            "missing_credentials",
            "send an API key as `Authorization: Bearer <key>`",
        )
    };
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(missing)?
        .to_str()
        .map_err(|_| missing())?;
    let (scheme, key) = value.split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(missing());
    }
    Ok(key.trim().to_owned())
}

fn invalid() -> ApiError {
    ApiError::unauthorized(
        "invalid_credentials",
        "the API key is not valid or was revoked",
    )
}

async fn authenticate(state: web::Data<AppState>, key: String) -> Result<Caller, ApiError> {
    if !key.starts_with(KEY_PREFIX) || key.len() > 128 {
        return Err(invalid());
    }
    let digest = sha256(key.as_bytes());
    if let Some(caller) = state.auth_cache.get(&digest) {
        return Ok(caller);
    }
    let client = clients::authenticate(state.db.conn(), &key)
        .await?
        .ok_or_else(invalid)?;
    let role = Role::parse(&client.role)
        .ok_or_else(|| ApiError::internal("stored client has an unknown role"))?;
    let caller = Caller {
        client_id: client.id,
        name: client.name,
        role,
        principal: client.principal,
        created_by: client.created_by,
    };
    state.auth_cache.put(digest, caller.clone());
    Ok(caller)
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let key = bearer(req);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let key = key?;
            let state = state.ok_or_else(|| ApiError::internal("application state missing"))?;
            authenticate(state, key).await
        })
    }
}

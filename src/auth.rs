//! Bearer API keys: the `Caller` extractor authenticates through the [`Authenticator`] (its
//! own app data: the database and a cache of recently seen keys), handlers then `require` roles.

use crate::error::ErrorCode;
use std::{future::Future, pin::Pin, time::Duration};

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};
use moka::sync::Cache;

use crate::{
    crypto::sha256,
    db::Db,
    domain::role::Role,
    error::ApiError,
    services::{clients, clients::KEY_PREFIX},
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
                ErrorCode::Forbidden,
                format!("the {} role may not do this", self.role.as_str()),
            ))
        }
    }

    pub fn is(&self, role: Role) -> bool {
        self.role == role
    }
}

/// Authenticates API keys, remembering recently authenticated ones by SHA-256 so hot paths
/// skip the database. Entries live `auth.cache_seconds`; a revocation on this instance forgets
/// them all at once (`forget_all`). Bounded; when full, TinyLFU keeps the busiest keys.
pub struct Authenticator {
    db: Db,
    cache: Option<Cache<[u8; 32], Caller>>,
}

const MAX_CACHED: u64 = 10_000;

impl Authenticator {
    pub fn new(db: Db, ttl: Duration) -> Self {
        let cache = (!ttl.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(MAX_CACHED)
                .time_to_live(ttl)
                .build()
        });
        Authenticator { db, cache }
    }

    /// Forget every cached key (one was revoked).
    pub fn forget_all(&self) {
        if let Some(cache) = &self.cache {
            cache.invalidate_all();
        }
    }

    async fn authenticate(&self, key: String) -> Result<Caller, ApiError> {
        if !key.starts_with(KEY_PREFIX) || key.len() > 128 {
            return Err(invalid());
        }
        let digest = sha256(key.as_bytes());
        if let Some(caller) = self.cache.as_ref().and_then(|c| c.get(&digest)) {
            return Ok(caller);
        }
        let client = clients::authenticate(self.db.conn(), &key)
            .await?
            .ok_or_else(invalid)?;
        let role: Role = crate::services::stored("client role", &client.role)?;
        let caller = Caller {
            client_id: client.id,
            name: client.name,
            role,
            principal: client.principal,
            created_by: client.created_by,
        };
        if let Some(cache) = &self.cache {
            cache.insert(digest, caller.clone());
        }
        Ok(caller)
    }
}

fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    let missing = || {
        ApiError::unauthorized(
            ErrorCode::MissingCredentials,
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
        ErrorCode::InvalidCredentials,
        "the API key is not valid or was revoked",
    )
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let key = bearer(req);
        let auth = req.app_data::<web::Data<Authenticator>>().cloned();
        Box::pin(async move {
            let key = key?;
            let auth = auth.ok_or_else(|| ApiError::internal("authenticator missing"))?;
            auth.authenticate(key).await
        })
    }
}

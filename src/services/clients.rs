//! API clients: creation (the key is shown once), listing, revocation, authentication.

use crate::error::ErrorCode;
use crate::services::audit::{AuditAction, AuditTarget};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use chrono::{DateTime, Utc};
use entities::api_client;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::json;

use crate::error::is_unique_violation;

use super::audit::{self, Entry};
use crate::{
    crypto::{ct_eq, random_bytes, sha256, sha256_hex},
    domain::{ids::new_id, role::Role},
    error::ApiError,
};

pub const KEY_PREFIX: &str = "vk_";

/// A fresh API key: `vk_` + 32 random bytes, base64url.
pub fn generate_key() -> String {
    format!(
        "{KEY_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<32>())
    )
}

pub fn hash_key(key: &str) -> String {
    sha256_hex(key.as_bytes())
}

pub fn validate_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            ErrorCode::InvalidName,
            "name must be 1–64 characters of letters, digits, '-', '_', '.', '@'",
        ))
    }
}

/// A principal names the person (or system) behind a key, with the same syntax as a name.
pub fn validate_principal(principal: &str) -> Result<(), ApiError> {
    validate_name(principal).map_err(|_| {
        ApiError::bad_request(
            ErrorCode::InvalidPrincipal,
            "principal must be 1–64 characters of letters, digits, '-', '_', '.', '@'",
        )
    })
}

/// Create a client bound to `principal` (the client's own name when `None`); returns it with
/// the plaintext key, which is never stored.
pub async fn create(
    conn: &impl ConnectionTrait,
    actor: &str,
    name: &str,
    principal: Option<&str>,
    role: Role,
    now: DateTime<Utc>,
) -> Result<(api_client::Model, String), ApiError> {
    validate_name(name)?;
    let principal = principal.unwrap_or(name);
    validate_principal(principal)?;
    let key = generate_key();
    let model = api_client::Model {
        id: new_id("cli"),
        name: name.to_owned(),
        role: role.as_str().to_owned(),
        principal: principal.to_owned(),
        key_hash: hash_key(&key),
        key_prefix: key[..KEY_PREFIX.len() + 6].to_owned(),
        created_at: now,
        created_by: actor.to_owned(),
        revoked_at: None,
    };
    match api_client::Entity::insert(model.clone().into_active_model().reset_all())
        .exec_without_returning(conn)
        .await
    {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::conflict(
                ErrorCode::ClientExists,
                "a client with this name already exists",
            ))
        }
        Err(e) => return Err(e.into()),
    }
    audit::append(
        conn,
        now,
        Entry {
            actor,
            action: AuditAction::ClientCreated,
            target_type: AuditTarget::Client,
            target_id: &model.id,
            details: json!({"name": model.name, "role": model.role, "principal": model.principal}),
        },
    )
    .await?;
    Ok((model, key))
}

pub async fn get(
    conn: &impl ConnectionTrait,
    id: &str,
) -> Result<Option<api_client::Model>, DbErr> {
    api_client::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await
}

pub async fn list(
    conn: &impl ConnectionTrait,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<api_client::Model>, DbErr> {
    let mut q = api_client::Entity::find().order_by_asc(api_client::Column::Id);
    if let Some(after) = after {
        q = q.filter(api_client::Column::Id.gt(after));
    }
    q.limit(limit).all(conn).await
}

/// Revoke a client's key. Revoking twice is harmless; the first revocation time is kept.
pub async fn revoke(
    conn: &impl ConnectionTrait,
    actor: &str,
    id: &str,
    now: DateTime<Utc>,
) -> Result<api_client::Model, ApiError> {
    let client = get(conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found(ErrorCode::ClientNotFound, "no client with this id"))?;
    if client.revoked_at.is_some() {
        return Ok(client);
    }
    let mut active = client.into_active_model();
    active.revoked_at = Set(Some(now));
    let client = active.update(conn).await?;
    audit::append(
        conn,
        now,
        Entry {
            actor,
            action: AuditAction::ClientRevoked,
            target_type: AuditTarget::Client,
            target_id: &client.id,
            details: json!({"name": client.name, "role": client.role}),
        },
    )
    .await?;
    Ok(client)
}

/// The active client holding `key`, if any.
pub async fn authenticate(
    conn: &impl ConnectionTrait,
    key: &str,
) -> Result<Option<api_client::Model>, DbErr> {
    let digest = sha256(key.as_bytes());
    let hash = crate::crypto::hex(&digest);
    let found = api_client::Entity::find()
        .filter(api_client::Column::KeyHash.eq(hash.as_str()))
        .filter(api_client::Column::RevokedAt.is_null())
        .one(conn)
        .await?;
    // The lookup is by hash; compare again in constant time so no code path branches on a
    // partial match of secret material.
    Ok(found.filter(|c| ct_eq(c.key_hash.as_bytes(), hash.as_bytes())))
}

pub async fn active_admins(conn: &impl ConnectionTrait) -> Result<u64, DbErr> {
    api_client::Entity::find()
        .filter(api_client::Column::Role.eq(Role::Admin.as_str()))
        .filter(api_client::Column::RevokedAt.is_null())
        .count(conn)
        .await
}

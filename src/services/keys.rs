//! Signing keys in the database: the first key, rotation, erasure of removed keys, and
//! reloading the in-memory keyring from them.
//! Rotation publishes the new key at once and lets it sign only one JWKS max-age later; the
//! old key stops signing at that moment and stays published until its last token expires.

use crate::error::ErrorCode;
use crate::services::audit::{AuditAction, AuditTarget};
use chrono::{DateTime, Duration, Utc};
use entities::signing_key;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder,
};
use serde_json::json;

use super::audit::{self, Entry};
use crate::{
    config::{Algorithm, TokenSettings},
    crypto::MasterKey,
    db::lock::{advisory_lock, Scope},
    error::ApiError,
    tokens::{keyring::Keys, keys},
};

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error(transparent)]
    Key(#[from] keys::KeyError),
}

/// Reload the signing keys into `ring` from the database (other instances may have rotated).
pub async fn reload(
    conn: &impl ConnectionTrait,
    ring: &Keys,
    master: &MasterKey,
) -> Result<(), ReloadError> {
    let rows = all(conn).await?;
    ring.load(&rows, master)?;
    Ok(())
}

pub async fn all(conn: &impl ConnectionTrait) -> Result<Vec<signing_key::Model>, DbErr> {
    signing_key::Entity::find()
        .order_by_asc(signing_key::Column::ActivatesAt)
        .all(conn)
        .await
}

/// Serialise key changes between instances sharing PostgreSQL (the lock policy: `db`).
async fn lock(conn: &impl ConnectionTrait) -> Result<(), DbErr> {
    advisory_lock(conn, Scope::SigningKeys, "").await
}

fn is_active(k: &signing_key::Model, now: DateTime<Utc>) -> bool {
    k.activates_at <= now
        && k.retires_at.is_none_or(|r| r > now)
        && !k.private_key_sealed.is_empty()
}

fn is_pending(k: &signing_key::Model, now: DateTime<Utc>) -> bool {
    k.activates_at > now && k.retires_at.is_none()
}

async fn insert_new(
    conn: &impl ConnectionTrait,
    master: &MasterKey,
    alg: Algorithm,
    now: DateTime<Utc>,
    activates_at: DateTime<Utc>,
) -> Result<signing_key::Model, ApiError> {
    let generated = keys::generate(alg).map_err(ApiError::internal)?;
    let kid = generated.jwk.kid.clone();
    let model = signing_key::Model {
        private_key_sealed: master.seal(&kid, &generated.pkcs8),
        public_jwk: serde_json::to_string(&generated.jwk).map_err(ApiError::internal)?,
        kid,
        alg: alg.as_str().to_owned(),
        created_at: now,
        activates_at,
        retires_at: None,
        removes_at: None,
    };
    signing_key::Entity::insert(model.clone().into_active_model().reset_all())
        .exec_without_returning(conn)
        .await?;
    Ok(model)
}

/// At start: make sure a key of the configured algorithm signs now or is on its way.
pub async fn ensure(
    conn: &impl ConnectionTrait,
    master: &MasterKey,
    settings: &TokenSettings,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    lock(conn).await?;
    let keys = all(conn).await?;
    let active = keys
        .iter()
        .filter(|k| is_active(k, now))
        .max_by_key(|k| k.activates_at);
    let alg = settings.algorithm.as_str();
    match active {
        None => {
            // Nothing signs (a new deployment): no verifier can have cached our JWKS yet.
            let key = insert_new(conn, master, settings.algorithm, now, now).await?;
            audit_key(
                conn,
                "system",
                AuditAction::KeyCreated,
                &key,
                now,
                json!({}),
            )
            .await?;
        }
        Some(active)
            if active.alg != alg && !keys.iter().any(|k| is_pending(k, now) && k.alg == alg) =>
        {
            rotate_locked(conn, master, "system", settings, now).await?;
        }
        Some(_) => {}
    }
    Ok(())
}

/// Schedule a new key (published now, signing after one JWKS max-age) and retire the current.
pub async fn rotate(
    conn: &impl ConnectionTrait,
    master: &MasterKey,
    actor: &str,
    settings: &TokenSettings,
    now: DateTime<Utc>,
) -> Result<signing_key::Model, ApiError> {
    lock(conn).await?;
    rotate_locked(conn, master, actor, settings, now).await
}

async fn rotate_locked(
    conn: &impl ConnectionTrait,
    master: &MasterKey,
    actor: &str,
    settings: &TokenSettings,
    now: DateTime<Utc>,
) -> Result<signing_key::Model, ApiError> {
    let keys = all(conn).await?;
    if let Some(pending) = keys.iter().find(|k| is_pending(k, now)) {
        return Err(ApiError::conflict(
            ErrorCode::RotationPending,
            format!(
                "key {} is already published and starts signing at {}",
                pending.kid,
                pending.activates_at.to_rfc3339()
            ),
        ));
    }
    let activates_at = now + Duration::seconds(settings.jwks_max_age_seconds as i64);
    // Tokens the old key signs until then live at most max_ttl (+ leeway at the verifier).
    let removes_at = activates_at
        + Duration::seconds((settings.max_ttl_seconds + settings.leeway_seconds) as i64);
    let new = insert_new(conn, master, settings.algorithm, now, activates_at).await?;
    let mut retiring = Vec::new();
    for old in keys.into_iter().filter(|k| k.retires_at.is_none()) {
        retiring.push(old.kid.clone());
        let mut active = old.into_active_model();
        active.retires_at = Set(Some(activates_at));
        active.removes_at = Set(Some(removes_at));
        active.update(conn).await?;
    }
    // The Jitsi ring turns with the token keys; its tokens never outlive the Vouch token
    // exchanged for them, so the same removal time holds.
    super::jitsi_keys::rotate_alongside(conn, master, actor, now, activates_at, removes_at).await?;
    audit_key(
        conn,
        actor,
        AuditAction::KeyRotated,
        &new,
        now,
        json!({"retiring": retiring}),
    )
    .await?;
    Ok(new)
}

/// Rotate when the signing key is older than the rotation period (0 = never).
pub async fn rotate_if_due(
    conn: &impl ConnectionTrait,
    master: &MasterKey,
    settings: &TokenSettings,
    now: DateTime<Utc>,
) -> Result<Option<signing_key::Model>, ApiError> {
    if settings.rotation_period_days == 0 {
        return Ok(None);
    }
    lock(conn).await?;
    let keys = all(conn).await?;
    if keys.iter().any(|k| is_pending(k, now)) {
        return Ok(None);
    }
    let period = Duration::days(settings.rotation_period_days as i64);
    let due = keys
        .iter()
        .filter(|k| is_active(k, now))
        .max_by_key(|k| k.activates_at)
        .is_some_and(|k| k.activates_at + period <= now);
    if !due {
        return Ok(None);
    }
    rotate_locked(conn, master, "system", settings, now)
        .await
        .map(Some)
}

/// The key that signs now (the newest active one), if any.
pub async fn current(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<Option<signing_key::Model>, DbErr> {
    Ok(all(conn)
        .await?
        .into_iter()
        .filter(|k| is_active(k, now))
        .max_by_key(|k| k.activates_at))
}

/// When the maintenance loop will schedule the next rotation: a rotation period after the
/// newest key (the active one, or its successor while that waits to activate) started signing,
/// as [`rotate_if_due`] decides. `None` when rotation is off.
pub async fn rotation_due_at(
    conn: &impl ConnectionTrait,
    settings: &TokenSettings,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, DbErr> {
    if settings.rotation_period_days == 0 {
        return Ok(None);
    }
    let period = Duration::days(settings.rotation_period_days as i64);
    Ok(all(conn)
        .await?
        .iter()
        .filter(|k| is_active(k, now) || is_pending(k, now))
        .map(|k| k.activates_at)
        .max()
        .map(|at| at + period))
}

/// Erase the private half of keys (token and Jitsi keys) past their removal time; the row keeps
/// the kid, so it is never used again.
pub async fn erase_removed(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<u64, ApiError> {
    let removed = signing_key::Entity::find()
        .filter(signing_key::Column::RemovesAt.lte(now))
        .filter(signing_key::Column::PrivateKeySealed.ne(""))
        .all(conn)
        .await?;
    let mut count = removed.len() as u64;
    count += super::jitsi_keys::erase_removed(conn, now).await?;
    for key in removed {
        let mut active = key.clone().into_active_model();
        active.private_key_sealed = Set(String::new());
        active.update(conn).await?;
        audit_key(
            conn,
            "system",
            AuditAction::KeyRemoved,
            &key,
            now,
            json!({}),
        )
        .await?;
    }
    Ok(count)
}

async fn audit_key(
    conn: &impl ConnectionTrait,
    actor: &str,
    action: AuditAction,
    key: &signing_key::Model,
    now: DateTime<Utc>,
    mut details: serde_json::Value,
) -> Result<(), DbErr> {
    details["alg"] = json!(key.alg);
    details["activates_at"] = json!(key.activates_at);
    audit::append(
        conn,
        now,
        Entry {
            actor,
            action,
            target_type: AuditTarget::SigningKey,
            target_id: &key.kid,
            details,
        },
    )
    .await?;
    Ok(())
}

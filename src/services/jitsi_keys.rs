//! Jitsi Meet signing keys in the database: an RSA key ring of its own (Prosody verifies RS256
//! against a PEM it fetches by kid, while the E2EE tokens keep their own algorithm), sealed
//! under the master key like the token keys.
//!
//! Schedule: the Jitsi ring rotates *with* the token keys, in the same transaction and with the
//! same timestamps (`services::keys` calls [`rotate_alongside`] from every rotation: admin,
//! CLI and the automatic one). The new Jitsi key is served at once and signs from the moment the
//! new token key does; the old one stops signing then and is served until the last Vouch token
//! it may have signed for has expired, which also bounds every Jitsi token it signed.

use chrono::{DateTime, Utc};
use entities::{jitsi_key, signing_key};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder,
};
use serde_json::json;

use super::{
    audit::{self, AuditAction, AuditTarget, Entry},
    keys::ReloadError,
};
use crate::{
    config::Algorithm,
    crypto::MasterKey,
    db::lock::{advisory_lock, Scope},
    error::ApiError,
    tokens::{keyring::Keys, keys},
};

pub async fn all(conn: &impl ConnectionTrait) -> Result<Vec<jitsi_key::Model>, DbErr> {
    jitsi_key::Entity::find()
        .order_by_asc(jitsi_key::Column::ActivatesAt)
        .all(conn)
        .await
}

/// A Jitsi key row in the shape the key ring loads (the columns are the same).
fn as_ring_row(k: jitsi_key::Model) -> signing_key::Model {
    signing_key::Model {
        kid: k.kid,
        alg: k.alg,
        public_jwk: k.public_jwk,
        private_key_sealed: k.private_key_sealed,
        created_at: k.created_at,
        activates_at: k.activates_at,
        retires_at: k.retires_at,
        removes_at: k.removes_at,
    }
}

/// Reload the Jitsi keys into `ring` (other instances may have created or rotated them).
pub async fn reload(
    conn: &impl ConnectionTrait,
    ring: &Keys,
    master: &MasterKey,
) -> Result<(), ReloadError> {
    let rows: Vec<signing_key::Model> = all(conn).await?.into_iter().map(as_ring_row).collect();
    ring.load(&rows, master)?;
    Ok(())
}

async fn insert_new(
    conn: &impl ConnectionTrait,
    master: &MasterKey,
    now: DateTime<Utc>,
    activates_at: DateTime<Utc>,
) -> Result<jitsi_key::Model, ApiError> {
    let generated = keys::generate(Algorithm::RS256).map_err(ApiError::internal)?;
    let kid = generated.jwk.kid.clone();
    let model = jitsi_key::Model {
        private_key_sealed: master.seal(&kid, &generated.pkcs8),
        public_jwk: serde_json::to_string(&generated.jwk).map_err(ApiError::internal)?,
        kid,
        alg: Algorithm::RS256.as_str().to_owned(),
        created_at: now,
        activates_at,
        retires_at: None,
        removes_at: None,
    };
    jitsi_key::Entity::insert(model.clone().into_active_model().reset_all())
        .exec_without_returning(conn)
        .await?;
    Ok(model)
}

/// At start, when Jitsi is configured: make sure a Jitsi key signs now or is on its way.
/// Without one (Jitsi newly configured) a key is made that signs at once: Prosody fetches a
/// key by kid when it first sees it, so there is no cached set to publish ahead of.
pub async fn ensure(
    conn: &impl ConnectionTrait,
    master: &MasterKey,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    advisory_lock(conn, Scope::SigningKeys, "").await?;
    let usable = all(conn)
        .await?
        .iter()
        .any(|k| k.retires_at.is_none_or(|r| r > now) && !k.private_key_sealed.is_empty());
    if !usable {
        let key = insert_new(conn, master, now, now).await?;
        audit_key(
            conn,
            "system",
            AuditAction::JitsiKeyCreated,
            &key,
            now,
            json!({}),
        )
        .await?;
    }
    Ok(())
}

/// Called by every token key rotation, under its lock: schedule a new Jitsi key on the same
/// timestamps and retire the current ones. Nothing happens while no Jitsi key exists (Jitsi was
/// never configured).
pub(super) async fn rotate_alongside(
    conn: &impl ConnectionTrait,
    master: &MasterKey,
    actor: &str,
    now: DateTime<Utc>,
    activates_at: DateTime<Utc>,
    removes_at: DateTime<Utc>,
) -> Result<Option<jitsi_key::Model>, ApiError> {
    let current: Vec<jitsi_key::Model> = all(conn)
        .await?
        .into_iter()
        .filter(|k| k.retires_at.is_none())
        .collect();
    if current.is_empty() {
        return Ok(None);
    }
    let new = insert_new(conn, master, now, activates_at).await?;
    let mut retiring = Vec::new();
    for old in current {
        retiring.push(old.kid.clone());
        let mut active = old.into_active_model();
        active.retires_at = Set(Some(activates_at));
        active.removes_at = Set(Some(removes_at));
        active.update(conn).await?;
    }
    audit_key(
        conn,
        actor,
        AuditAction::JitsiKeyRotated,
        &new,
        now,
        json!({"retiring": retiring}),
    )
    .await?;
    Ok(Some(new))
}

/// Erase the private half of Jitsi keys past their removal time.
pub(super) async fn erase_removed(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<u64, ApiError> {
    let removed = jitsi_key::Entity::find()
        .filter(jitsi_key::Column::RemovesAt.lte(now))
        .filter(jitsi_key::Column::PrivateKeySealed.ne(""))
        .all(conn)
        .await?;
    let count = removed.len() as u64;
    for key in removed {
        let mut active = key.clone().into_active_model();
        active.private_key_sealed = Set(String::new());
        active.update(conn).await?;
        audit_key(
            conn,
            "system",
            AuditAction::JitsiKeyRemoved,
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
    key: &jitsi_key::Model,
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
            target_type: AuditTarget::JitsiKey,
            target_id: &key.kid,
            details,
        },
    )
    .await?;
    Ok(())
}

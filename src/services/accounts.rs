//! Accounts: creation, lookup, and status and profile changes (erasure is `services::erasure`).
//!
//! The email is personal data nothing reads yet: it is stored only sealed (AES-256-GCM under a
//! key derived from the master key, bound to the account id), so a copy of the database does
//! not yield it, and it goes with the row on erasure.

use crate::error::ErrorCode;
use crate::services::audit::{AuditAction, AuditTarget};
use chrono::{DateTime, Utc};
use entities::account;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::json;

use crate::error::is_unique_violation;

use super::audit::{self, Entry};
use crate::{
    crypto::MasterKey,
    domain::{
        account::{AccountStatus, Email, ExternalId},
        ids::{looks_like, new_id},
    },
    error::ApiError,
};

pub const ID_PREFIX: &str = "acc";
const SEALING_PURPOSE: &str = "vouch accounts v1";

/// The key account emails are sealed under: derived from the master key, never the key itself.
pub fn sealing_key(master: &MasterKey) -> MasterKey {
    master.derive(SEALING_PURPOSE)
}

/// A sealed email is bound to its account and field.
fn email_aad(account_id: &str) -> String {
    format!("{account_id}/email")
}

/// Open an account's sealed email.
pub fn open_email(master: &MasterKey, row: &account::Model) -> Option<String> {
    let sealed = row.email_sealed.as_deref()?;
    let plain = sealing_key(master).open(&email_aad(&row.id), sealed).ok()?;
    String::from_utf8(plain).ok()
}

/// Seal the plaintext emails older versions stored, and clear them; run at start-up (the
/// migration that added `email_sealed` has no master key). Idempotent; audited when it sealed
/// any.
pub async fn seal_plaintext_emails(
    conn: &impl ConnectionTrait,
    master: &MasterKey,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let key = sealing_key(master);
    let mut sealed = 0u64;
    loop {
        let rows = account::Entity::find()
            .filter(account::Column::Email.is_not_null())
            .order_by_asc(account::Column::Id)
            .limit(500)
            .all(conn)
            .await?;
        if rows.is_empty() {
            break;
        }
        for row in rows {
            let email = row.email.clone().unwrap_or_default();
            let sealed_email = key.seal(&email_aad(&row.id), email.as_bytes());
            let mut active = row.into_active_model();
            active.email_sealed = Set(Some(sealed_email));
            active.email = Set(None);
            active.update(conn).await?;
            sealed += 1;
        }
    }
    if sealed > 0 {
        audit::append(
            conn,
            now,
            Entry {
                actor: "system",
                action: AuditAction::AccountEmailsSealed,
                target_type: AuditTarget::Account,
                target_id: "*",
                details: json!({ "accounts": sealed }),
            },
        )
        .await?;
        tracing::warn!(
            accounts = sealed,
            "sealed plaintext account emails left by an older version"
        );
    }
    Ok(sealed)
}

pub struct NewAccount {
    pub external_id: ExternalId,
    pub email: Option<Email>,
    pub display_name: Option<String>,
}

#[derive(Default)]
pub struct AccountPatch {
    pub status: Option<AccountStatus>,
    /// `Some(None)` clears the name.
    pub display_name: Option<Option<String>>,
}

fn not_found() -> ApiError {
    ApiError::not_found(ErrorCode::AccountNotFound, "no account with this id")
}

pub async fn create(
    conn: &impl ConnectionTrait,
    master: &MasterKey,
    actor: &str,
    new: NewAccount,
    now: DateTime<Utc>,
) -> Result<account::Model, ApiError> {
    let id = new_id(ID_PREFIX);
    let email_sealed = new
        .email
        .map(|e| sealing_key(master).seal(&email_aad(&id), e.as_str().as_bytes()));
    let model = account::Model {
        id,
        external_id: new.external_id.into_inner(),
        email: None,
        email_sealed,
        display_name: new.display_name,
        status: AccountStatus::Active.as_str().to_owned(),
        email_verified: false,
        phone_verified: false,
        created_at: now,
        updated_at: now,
        sms_sent_total: 0,
    };
    let exists = || {
        ApiError::conflict(
            ErrorCode::AccountExists,
            "an account with this external_id already exists",
        )
    };
    // The existing account's id, so the caller can carry on with it. Write transactions run
    // one at a time, so this read sees any account a concurrent request created.
    if let Some(existing) = find_by_external_id(conn, &model.external_id).await? {
        return Err(exists().with("id", existing.id));
    }
    match account::Entity::insert(model.clone().into_active_model().reset_all())
        .exec_without_returning(conn)
        .await
    {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => return Err(exists()),
        Err(e) => return Err(e.into()),
    }
    super::status_lists::allocate(conn, &model.id).await?;
    audit::append(
        conn,
        now,
        Entry {
            actor,
            action: AuditAction::AccountCreated,
            target_type: AuditTarget::Account,
            target_id: &model.id,
            details: json!({}),
        },
    )
    .await?;
    Ok(model)
}

pub async fn get(conn: &impl ConnectionTrait, id: &str) -> Result<Option<account::Model>, DbErr> {
    if !looks_like(ID_PREFIX, id) {
        return Ok(None);
    }
    account::Entity::find_by_id(id.to_owned()).one(conn).await
}

pub async fn require(conn: &impl ConnectionTrait, id: &str) -> Result<account::Model, ApiError> {
    get(conn, id).await?.ok_or_else(not_found)
}

pub async fn find_by_external_id(
    conn: &impl ConnectionTrait,
    external_id: &str,
) -> Result<Option<account::Model>, DbErr> {
    account::Entity::find()
        .filter(account::Column::ExternalId.eq(external_id))
        .one(conn)
        .await
}

pub async fn list(
    conn: &impl ConnectionTrait,
    external_id: Option<&str>,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<account::Model>, DbErr> {
    let mut q = account::Entity::find().order_by_asc(account::Column::Id);
    if let Some(x) = external_id {
        q = q.filter(account::Column::ExternalId.eq(x));
    }
    if let Some(after) = after {
        q = q.filter(account::Column::Id.gt(after));
    }
    q.limit(limit).all(conn).await
}

pub async fn update(
    conn: &impl ConnectionTrait,
    actor: &str,
    id: &str,
    patch: AccountPatch,
    now: DateTime<Utc>,
) -> Result<account::Model, ApiError> {
    let current = require(conn, id).await?;
    let old_status = current.status.clone();
    let mut active = current.into_active_model();
    let mut changed = Vec::new();
    if let Some(status) = patch.status {
        if status.as_str() != old_status {
            active.status = Set(status.as_str().to_owned());
            changed.push(match status {
                AccountStatus::Suspended => AuditAction::AccountSuspended,
                AccountStatus::Active => AuditAction::AccountReactivated,
            });
        }
    }
    if let Some(name) = patch.display_name {
        active.display_name = Set(name);
        changed.push(AuditAction::AccountUpdated);
    }
    if changed.is_empty() {
        return require(conn, id).await;
    }
    active.updated_at = Set(now);
    let updated = active.update(conn).await?;
    if updated.status != old_status {
        // Every instance forgets its cached snapshot of the account (`tokens::live`).
        super::status_lists::touch(conn, id).await?;
    }
    for action in changed {
        let details = match action {
            AuditAction::AccountUpdated => json!({"fields": ["display_name"]}),
            _ => json!({"from": old_status, "to": updated.status}),
        };
        audit::append(
            conn,
            now,
            Entry {
                actor,
                action,
                target_type: AuditTarget::Account,
                target_id: &updated.id,
                details,
            },
        )
        .await?;
    }
    Ok(updated)
}

#[cfg(test)]
mod tests {
    //! Sealing at rest, checked on the rows themselves (the API never returns the email, so
    //! the HTTP tests can only see that no plaintext is stored).
    use migration::{Migrator, MigratorTrait};
    use sea_orm::Database;

    use super::*;

    fn row(id: &str, email: Option<&str>, email_sealed: Option<String>) -> account::Model {
        let now = Utc::now();
        account::Model {
            id: id.to_owned(),
            external_id: format!("ext-{id}"),
            email: email.map(str::to_owned),
            email_sealed,
            display_name: None,
            status: "active".to_owned(),
            email_verified: false,
            phone_verified: false,
            created_at: now,
            updated_at: now,
            sms_sent_total: 0,
        }
    }

    #[test]
    fn a_sealed_email_opens_only_for_its_account_under_the_master_key() {
        let master = MasterKey::new([7u8; 32]);
        let sealed = sealing_key(&master).seal(&email_aad("acc_a"), b"ann@example.org");
        assert!(!sealed.contains("ann@example.org"));
        let a = row("acc_a", None, Some(sealed.clone()));
        assert_eq!(open_email(&master, &a).as_deref(), Some("ann@example.org"));
        // Moved to another account, or under another master key, it does not open.
        assert_eq!(open_email(&master, &row("acc_b", None, Some(sealed))), None);
        assert_eq!(open_email(&MasterKey::new([8u8; 32]), &a), None);
        assert_eq!(open_email(&master, &row("acc_c", None, None)), None);
    }

    #[tokio::test]
    async fn plaintext_emails_of_older_versions_are_sealed_once() {
        let dir = std::env::temp_dir().join("vouch-unit");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("{}.db", uuid::Uuid::new_v4().simple()));
        let db = Database::connect(format!("sqlite://{}?mode=rwc", file.display()))
            .await
            .unwrap();
        Migrator::up(&db, None).await.unwrap();
        let master = MasterKey::new([7u8; 32]);
        row("acc_legacy", Some("legacy@example.org"), None)
            .into_active_model()
            .reset_all()
            .insert(&db)
            .await
            .unwrap();

        assert_eq!(
            seal_plaintext_emails(&db, &master, Utc::now())
                .await
                .unwrap(),
            1
        );
        let stored = account::Entity::find_by_id("acc_legacy")
            .one(&db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.email, None);
        assert_eq!(
            open_email(&master, &stored).as_deref(),
            Some("legacy@example.org")
        );
        assert_eq!(
            seal_plaintext_emails(&db, &master, Utc::now())
                .await
                .unwrap(),
            0,
            "idempotent"
        );
        db.close().await.unwrap();
        let _ = std::fs::remove_file(&file);
    }
}

//! Erasure of an account: its personal data, evidence and exception requests (with their sealed
//! statements) go; the audit trail keeps only the id and how many rows went. At the top of the
//! service layers, as it reaches into each of them.

use crate::services::audit::{AuditAction, AuditTarget};
use chrono::{DateTime, Utc};
use entities::{account, evidence};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::json;

use super::{
    accounts,
    audit::{self, Entry},
    decisions, exceptions,
};
use crate::error::ApiError;

/// Erase an account; call inside the write transaction that commits its audit entry.
pub async fn erase_account(
    conn: &impl ConnectionTrait,
    actor: &str,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let account = accounts::require(conn, id).await?;
    decisions::erased(conn, now, &account.id, &account.external_id).await?;
    let exceptions = exceptions::erase_account(conn, &account.id).await?;
    let evidence = evidence::Entity::delete_many()
        .filter(evidence::Column::AccountId.eq(account.id.as_str()))
        .exec(conn)
        .await?;
    account::Entity::delete_by_id(account.id.clone())
        .exec(conn)
        .await?;
    // Every instance forgets its cached snapshot of the account (`tokens::live`); the entry
    // itself outlives the account.
    super::status_lists::touch(conn, &account.id).await?;
    audit::append(
        conn,
        now,
        Entry {
            actor,
            action: AuditAction::AccountDeleted,
            target_type: AuditTarget::Account,
            target_id: &account.id,
            details: json!({
                "evidence_erased": evidence.rows_affected,
                "exceptions_erased": exceptions,
            }),
        },
    )
    .await?;
    Ok(())
}

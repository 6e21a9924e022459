//! A reviewer's hold on a request's sealed text: while held, retention does not purge it (a
//! dispute, an investigation). Holding and releasing are audited; the reason is sealed.

use chrono::{DateTime, Utc};
use entities::exception_request as request;
use sea_orm::{sea_query::Expr, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::json;

use super::{approvals_of, require, sealing::seal, Actor, Outcome};
use crate::{
    crypto::MasterKey,
    domain::exception::Reason,
    error::{ApiError, ErrorCode},
    services::audit::{self, AuditAction, AuditTarget, Entry},
};

/// Hold the request's sealed text (`Some(reason)`) or release it (`None`). A purged request
/// has nothing left to hold.
pub async fn set_hold(
    conn: &impl ConnectionTrait,
    key: &MasterKey,
    actor: Actor<'_>,
    id: &str,
    hold: Option<&Reason>,
    now: DateTime<Utc>,
) -> Result<Outcome, ApiError> {
    let before = require(conn, id).await?;
    if before.purged_at.is_some() {
        return Err(ApiError::conflict(
            ErrorCode::ExceptionPurged,
            "this request's sealed text was already purged; there is nothing left to keep",
        ));
    }
    use request::Column as C;
    let update = request::Entity::update_many()
        .filter(C::Id.eq(before.id.as_str()))
        .filter(C::PurgedAt.is_null())
        .col_expr(C::UpdatedAt, Expr::value(now));
    let (update, action) = match hold {
        Some(reason) => (
            update
                .col_expr(C::RetentionHoldBy, Expr::value(actor.name))
                .col_expr(C::RetentionHoldAt, Expr::value(now))
                .col_expr(
                    C::RetentionHoldReasonSealed,
                    Expr::value(seal(key, &before.id, "retention_reason", reason.as_str())),
                ),
            AuditAction::ExceptionRetentionHeld,
        ),
        None => (
            update
                .col_expr(C::RetentionHoldBy, Expr::value(Option::<String>::None))
                .col_expr(
                    C::RetentionHoldAt,
                    Expr::value(Option::<DateTime<Utc>>::None),
                )
                .col_expr(
                    C::RetentionHoldReasonSealed,
                    Expr::value(Option::<String>::None),
                ),
            AuditAction::ExceptionRetentionReleased,
        ),
    };
    update.exec(conn).await?;
    audit::append(
        conn,
        now,
        Entry {
            actor: actor.name,
            action,
            target_type: AuditTarget::Exception,
            target_id: &before.id,
            details: json!({
                "account_id": before.account_id,
                "held_before_by": before.retention_hold_by,
                "held_before_at": before.retention_hold_at,
            }),
        },
    )
    .await?;
    let exception = require(conn, id).await?;
    let approvals = approvals_of(conn, &exception.id).await?;
    Ok(Outcome {
        exception,
        approvals,
        changed_account: None,
    })
}

//! The one place that notices an account's E2EE decision changed, whatever caused it.
//!
//! Every cause — a verification approved, a Stripe event, an exception decided, revoked or
//! expired, a suspension or reactivation, an erasure, a policy change at start-up, evidence that
//! lapsed by time alone — calls [`reconcile`] (or [`erased`]) inside the transaction that made
//! the change. It evaluates the policy exactly as authorize does, compares the result with the
//! decision stored for the account (its status-list value: 0 entitled, 1 not entitled,
//! 2 suspended), and when they differ stores the new value and emits the events, in the same
//! transaction: an event can neither be lost nor be sent for a change that was rolled back, and
//! the status lists of every instance follow within a second. A loss of the entitlement (or an
//! erasure) also queues the removal of the account from every LiveKit room it was admitted to.

use chrono::{DateTime, Utc};
use entities::{evidence as evidence_row, instance_state, status_list_entry};
use sea_orm::{
    sea_query::{Expr, ExprTrait, OnConflict, Query},
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::{accounts, evidence, livekit, status_lists};
use crate::{
    crypto::sha256_hex,
    crypto::MasterKey,
    domain::{account::AccountStatus, policy::Policy},
    events::{self, Event, RevokedReason},
    status_list::StatusValue,
    tokens::{token_evidence, TokenEvidence, ENTITLEMENT},
};

/// What made the caller look again; it names the reason an `entitlement.revoked` event gives,
/// and whether the account's own status events (`account.suspended`, `account.reactivated`)
/// are news.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Evidence was recorded or changed (a verification, a billing event, an exception
    /// decision): a loss is `lapsed`.
    Evidence,
    /// Evidence lapsed by time alone (found by the maintenance loop).
    Lapsed,
    /// A reviewer revoked the exception behind the decision.
    ExceptionRevoked,
    /// An admin changed the account's status.
    Status,
    /// The configured policy is not the one the stored decision was computed with.
    Policy,
}

impl Cause {
    fn revoked_reason(self) -> RevokedReason {
        match self {
            Cause::ExceptionRevoked => RevokedReason::ExceptionRevoked,
            Cause::Policy => RevokedReason::Policy,
            Cause::Evidence | Cause::Lapsed | Cause::Status => RevokedReason::Lapsed,
        }
    }
}

/// A decision that changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub account_id: String,
    pub from: StatusValue,
    pub to: StatusValue,
}

/// The decision as it stands, and what grants it.
struct Current {
    value: StatusValue,
    external_id: String,
    /// What satisfies the policy, as tokens name it (`phone`, `payment+email`, `exception`).
    granted_by: String,
}

/// Evaluate the account's decision now and, if it is not the stored one, store it and emit the
/// events. Call inside the write transaction that made the change. An account that does not
/// exist (any more) has nothing to reconcile: erasure goes through [`erased`].
/// `master` opens the category of exception evidence for the policy.
pub async fn reconcile(
    conn: &impl ConnectionTrait,
    policy: &Policy,
    master: &MasterKey,
    now: DateTime<Utc>,
    account_id: &str,
    cause: Cause,
) -> Result<Option<Change>, DbErr> {
    let Some(current) = current(conn, policy, master, now, account_id).await? else {
        return Ok(None);
    };
    let from = stored(conn, account_id).await?;
    if from == current.value {
        return Ok(None);
    }
    status_lists::set(conn, account_id, current.value).await?;
    for event in transition_events(account_id, &current, from, cause) {
        events::emit(conn, now, &event).await?;
    }
    if from == StatusValue::Entitled {
        // Whoever LiveKit let in on the strength of this right is removed.
        livekit::remove_account(conn, account_id, now).await?;
    }
    Ok(Some(Change {
        account_id: account_id.to_owned(),
        from,
        to: current.value,
    }))
}

/// [`reconcile`] for each account, in order; the decisions that changed.
pub async fn reconcile_all(
    conn: &impl ConnectionTrait,
    policy: &Policy,
    master: &MasterKey,
    now: DateTime<Utc>,
    account_ids: &[String],
    cause: Cause,
) -> Result<Vec<Change>, DbErr> {
    let mut changes = Vec::new();
    for account_id in account_ids {
        if let Some(change) = reconcile(conn, policy, master, now, account_id, cause).await? {
            changes.push(change);
        }
    }
    Ok(changes)
}

/// The account is being erased (call before its row goes, in the same transaction): its index
/// reads "not entitled" from now on and is never handed to anyone else; `account.erased` is
/// sent, and `entitlement.revoked` (`erased`) if it was entitled.
pub async fn erased(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    account_id: &str,
    external_id: &str,
) -> Result<(), DbErr> {
    let from = stored(conn, account_id).await?;
    status_lists::set(conn, account_id, StatusValue::NotEntitled).await?;
    livekit::remove_account(conn, account_id, now).await?;
    if from == StatusValue::Entitled {
        let event = Event::EntitlementRevoked {
            account_id: account_id.to_owned(),
            external_id: external_id.to_owned(),
            reason: RevokedReason::Erased,
        };
        events::emit(conn, now, &event).await?;
    }
    let event = Event::AccountErased {
        account_id: account_id.to_owned(),
    };
    events::emit(conn, now, &event).await
}

/// The events that tell meeting servers about a change from `from` to `current.value`: the
/// account's own status first (not for a policy change, which changes no status), then its
/// entitlement.
fn transition_events(
    account_id: &str,
    current: &Current,
    from: StatusValue,
    cause: Cause,
) -> Vec<Event> {
    use StatusValue::*;
    let to = current.value;
    let mut out = Vec::new();
    if cause != Cause::Policy {
        if to == Suspended {
            out.push(Event::AccountSuspended {
                account_id: account_id.to_owned(),
            });
        } else if from == Suspended {
            out.push(Event::AccountReactivated {
                account_id: account_id.to_owned(),
            });
        }
    }
    if from == Entitled {
        let reason = if to == Suspended {
            RevokedReason::Suspended
        } else {
            cause.revoked_reason()
        };
        out.push(Event::EntitlementRevoked {
            account_id: account_id.to_owned(),
            external_id: current.external_id.clone(),
            reason,
        });
    } else if to == Entitled {
        out.push(Event::EntitlementGranted {
            account_id: account_id.to_owned(),
            external_id: current.external_id.clone(),
            reason: current.granted_by.clone(),
        });
    }
    out
}

/// The stored decision; an account without one was never entitled.
async fn stored(conn: &impl ConnectionTrait, account_id: &str) -> Result<StatusValue, DbErr> {
    Ok(status_lists::value(conn, account_id)
        .await?
        .unwrap_or(StatusValue::NotEntitled))
}

/// The decision as authorize would make it now.
async fn current(
    conn: &impl ConnectionTrait,
    policy: &Policy,
    master: &MasterKey,
    now: DateTime<Utc>,
    account_id: &str,
) -> Result<Option<Current>, DbErr> {
    let Some(account) = accounts::get(conn, account_id).await? else {
        return Ok(None);
    };
    if super::stored::<AccountStatus>("account status", &account.status)? != AccountStatus::Active {
        return Ok(Some(Current {
            value: StatusValue::Suspended,
            external_id: account.external_id,
            granted_by: String::new(),
        }));
    }
    let rows = evidence::list_all(conn, account_id).await?;
    let facts = evidence::facts(&rows, master)?;
    let decisions = policy.evaluate(true, &facts, now);
    let (value, granted_by) = match decisions.get(ENTITLEMENT) {
        Some(d) if d.granted => (
            StatusValue::Entitled,
            named(&token_evidence(&d.satisfied_by)),
        ),
        _ => (StatusValue::NotEntitled, String::new()),
    };
    Ok(Some(Current {
        value,
        external_id: account.external_id,
        granted_by,
    }))
}

/// `phone`, `email+phone`, `exception`: never an exception's category.
fn named(evidence: &[TokenEvidence]) -> String {
    evidence
        .iter()
        .map(|e| match e {
            TokenEvidence::Email => "email",
            TokenEvidence::Phone => "phone",
            TokenEvidence::Payment => "payment",
            TokenEvidence::Exception => "exception",
        })
        .collect::<Vec<_>>()
        .join("+")
}

/// Entitled accounts with evidence whose `expires_at` fell in `(after, until]` (`after` `None`:
/// any time up to `until`), by id after `after_account`, at most `limit`: the maintenance loop reconciles them with
/// [`Cause::Lapsed`], so a right that ends by time alone is withdrawn (and announced) within
/// one maintenance round.
pub async fn lapse_candidates(
    conn: &impl ConnectionTrait,
    after: Option<DateTime<Utc>>,
    until: DateTime<Utc>,
    after_account: &str,
    limit: u64,
) -> Result<Vec<String>, DbErr> {
    // Correlated on the entry's primary key: a lookup per expired row, not a scan of every
    // account's entry each round.
    let entitled = Query::select()
        .expr(Expr::value(1))
        .from(status_list_entry::Entity)
        .and_where(
            Expr::col((
                status_list_entry::Entity,
                status_list_entry::Column::AccountId,
            ))
            .equals((evidence_row::Entity, evidence_row::Column::AccountId)),
        )
        .and_where(ExprTrait::eq(
            Expr::col((status_list_entry::Entity, status_list_entry::Column::Value)),
            StatusValue::Entitled.as_u8() as i16,
        ))
        .to_owned();
    let mut q = evidence_row::Entity::find()
        .select_only()
        .column(evidence_row::Column::AccountId)
        .distinct()
        .filter(evidence_row::Column::ExpiresAt.lte(until))
        .filter(evidence_row::Column::AccountId.gt(after_account))
        .filter(Expr::exists(entitled))
        .order_by_asc(evidence_row::Column::AccountId)
        .limit(limit);
    if let Some(after) = after {
        q = q.filter(evidence_row::Column::ExpiresAt.gt(after));
    }
    q.into_tuple().all(conn).await
}

const POLICY_FINGERPRINT: &str = "policy_fingerprint";

/// A fingerprint of the policy's rules (its name and every alternative).
pub fn policy_fingerprint(policy: &Policy) -> String {
    sha256_hex(format!("{policy:?}").as_bytes())
}

/// The fingerprint of the policy the stored decisions were computed with, if any.
pub async fn stored_fingerprint(conn: &impl ConnectionTrait) -> Result<Option<String>, DbErr> {
    Ok(
        instance_state::Entity::find_by_id(POLICY_FINGERPRINT.to_owned())
            .one(conn)
            .await?
            .map(|row| row.value),
    )
}

/// Record that every stored decision now follows the policy with `fingerprint`.
pub async fn store_fingerprint(
    conn: &impl ConnectionTrait,
    fingerprint: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    instance_state::Entity::insert(instance_state::ActiveModel {
        name: Set(POLICY_FINGERPRINT.to_owned()),
        value: Set(fingerprint.to_owned()),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(instance_state::Column::Name)
            .update_columns([
                instance_state::Column::Value,
                instance_state::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// Account ids after `after`, in order, at most `limit`: the start-up pass walks every
/// account with it when the policy changed.
pub async fn account_page(
    conn: &impl ConnectionTrait,
    after: &str,
    limit: u64,
) -> Result<Vec<String>, DbErr> {
    entities::account::Entity::find()
        .select_only()
        .column(entities::account::Column::Id)
        .filter(entities::account::Column::Id.gt(after))
        .order_by_asc(entities::account::Column::Id)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current(value: StatusValue) -> Current {
        Current {
            value,
            external_id: "user-1".into(),
            granted_by: "phone".into(),
        }
    }

    fn types(events: &[Event]) -> Vec<&'static str> {
        events.iter().map(Event::event_type).collect()
    }

    #[test]
    fn a_suspension_of_an_entitled_account_says_suspended_then_revoked_for_suspension() {
        let events = transition_events(
            "acc_1",
            &current(StatusValue::Suspended),
            StatusValue::Entitled,
            Cause::Status,
        );
        assert_eq!(types(&events), ["account.suspended", "entitlement.revoked"]);
        assert_eq!(events[1].data()["reason"], "suspended");
    }

    #[test]
    fn a_reactivation_restores_the_entitlement_with_what_grants_it() {
        let events = transition_events(
            "acc_1",
            &current(StatusValue::Entitled),
            StatusValue::Suspended,
            Cause::Status,
        );
        assert_eq!(
            types(&events),
            ["account.reactivated", "entitlement.granted"]
        );
        assert_eq!(events[1].data()["reason"], "phone");
        assert_eq!(events[1].data()["external_id"], "user-1");
    }

    #[test]
    fn a_loss_names_its_cause() {
        for (cause, reason) in [
            (Cause::Evidence, "lapsed"),
            (Cause::Lapsed, "lapsed"),
            (Cause::ExceptionRevoked, "exception_revoked"),
            (Cause::Policy, "policy"),
        ] {
            let events = transition_events(
                "acc_1",
                &current(StatusValue::NotEntitled),
                StatusValue::Entitled,
                cause,
            );
            assert_eq!(types(&events), ["entitlement.revoked"]);
            assert_eq!(events[0].data()["reason"], reason);
        }
    }

    #[test]
    fn a_policy_pass_never_announces_a_status_change() {
        let events = transition_events(
            "acc_1",
            &current(StatusValue::Suspended),
            StatusValue::NotEntitled,
            Cause::Policy,
        );
        assert!(events.is_empty());
    }

    #[test]
    fn exceptions_are_named_without_their_category() {
        assert_eq!(
            named(&[TokenEvidence::Email, TokenEvidence::Exception]),
            "email+exception"
        );
    }
}

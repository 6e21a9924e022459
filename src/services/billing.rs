//! Billing: verified Stripe events become payment evidence, and customers are linked to
//! accounts. Every event is stored once (its id is the primary key); the subscription's state
//! is then recomputed from all of its stored events, so arrival order never matters, and written
//! as `payment` evidence (source `stripe:<subscription>`) on the account it belongs to.
//!
//! On PostgreSQL, transactional advisory locks (customer first, then subscription; the audit
//! chain's lock always last) serialise work on one subscription across instances, so two
//! events recomputing the same subscription, or an event racing the link of its customer,
//! cannot both miss each other.

use crate::error::ErrorCode;
use crate::services::audit::{AuditAction, AuditTarget};
use chrono::{DateTime, Duration, Utc};
use entities::{billing_customer, evidence as evidence_row, stripe_event};
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    IntoActiveModel, QueryFilter, QuerySelect,
};
use serde_json::json;

use crate::error::is_unique_violation;

use super::{
    accounts,
    audit::{self, Entry},
    evidence::{self, EvidenceChange},
};
use crate::{
    domain::{
        account::AccountId,
        billing::{self, Change, CustomerId, PaymentEvidence, Step, SubscriptionState},
        evidence::{EvidenceKind, EvidenceStatus},
        stripe::Event,
    },
    error::ApiError,
};

/// The actor recorded in the audit log for changes made by billing events.
pub const ACTOR: &str = "stripe";

/// What became of a delivered event.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString, strum::Display,
)]
#[strum(serialize_all = "lowercase")]
pub enum Outcome {
    /// Stored and applied to an account's payment evidence.
    Applied,
    /// Stored; no account is linked yet. Applied when the link appears.
    Pending,
    /// Stored; not an event billing acts on.
    Ignored,
    /// Seen before: nothing done.
    Duplicate,
    /// Stored, but older than an event the subscription's state already reflects, and it
    /// changed nothing (an out-of-order delivery: a newer state is never overridden).
    Stale,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug)]
pub struct Receipt {
    pub outcome: Outcome,
    /// Accounts whose evidence changed (their cached state must be forgotten after commit).
    pub changed_accounts: Vec<String>,
}

pub fn source(subscription_id: &str) -> String {
    format!("stripe:{subscription_id}")
}

/// A transaction-scoped lock on PostgreSQL (the lock policy: `db`).
async fn lock(conn: &impl ConnectionTrait, scope: &'static str, id: &str) -> Result<(), DbErr> {
    crate::db::lock::advisory_lock(conn, crate::db::lock::Scope::Billing(scope), id).await
}

/// Store a verified event and apply it. Call inside one write transaction; on `Duplicate` the
/// transaction must be dropped, not committed (on PostgreSQL it may be aborted).
pub async fn receive(
    conn: &impl ConnectionTrait,
    event: &Event,
    past_due_grace: Duration,
    now: DateTime<Utc>,
) -> Result<Receipt, ApiError> {
    if let Some(subject) = &event.subject {
        if let Some(customer) = &subject.customer_id {
            lock(conn, "customer", customer).await?;
        }
        lock(conn, "subscription", &subject.subscription_id).await?;
    }
    let receipt = |outcome, changed_accounts| Receipt {
        outcome,
        changed_accounts,
    };
    if !store_event(conn, event, now).await? {
        return Ok(receipt(Outcome::Duplicate, Vec::new()));
    }
    let Some(subject) = &event.subject else {
        return Ok(receipt(Outcome::Ignored, Vec::new()));
    };
    let applied = apply_subscription(conn, &subject.subscription_id, past_due_grace, now).await?;
    let outcome = match &applied.account_id {
        None => Outcome::Pending,
        Some(_) if stale(&applied, &event.id) => Outcome::Stale,
        Some(_) => Outcome::Applied,
    };
    Ok(receipt(outcome, applied.changed_accounts))
}

/// Store the event once; `false` if it was stored before (or by a concurrent delivery).
async fn store_event(
    conn: &impl ConnectionTrait,
    event: &Event,
    now: DateTime<Utc>,
) -> Result<bool, ApiError> {
    if stripe_event::Entity::find_by_id(event.id.clone())
        .one(conn)
        .await?
        .is_some()
    {
        return Ok(false);
    }
    let subject = event.subject.as_ref();
    let (status, period_end) = match subject.map(|s| &s.change) {
        Some(Change::Snapshot {
            status,
            current_period_end,
        }) => (Some(status.as_str().to_owned()), *current_period_end),
        _ => (None, None),
    };
    let row = stripe_event::Model {
        id: event.id.clone(),
        event_type: event.event_type.clone(),
        created: event.created,
        livemode: event.livemode,
        subscription_id: subject.map(|s| s.subscription_id.clone()),
        customer_id: subject.and_then(|s| s.customer_id.clone()),
        account_ref: subject.and_then(|s| s.account_ref.clone()),
        effect: subject.map(|s| s.change.effect().to_owned()),
        subscription_status: status,
        current_period_end: period_end,
        outcome: if subject.is_some() {
            Outcome::Pending
        } else {
            Outcome::Ignored
        }
        .as_str()
        .to_owned(),
        received_at: now,
        applied_at: None,
    };
    match stripe_event::Entity::insert(row.into_active_model().reset_all())
        .exec_without_returning(conn)
        .await
    {
        Ok(_) => Ok(true),
        // Delivered twice at once (another instance): the first insert decides.
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

struct Applied {
    account_id: Option<String>,
    changed_accounts: Vec<String>,
    /// The newest event the subscription's state reflects (`None`: no state yet).
    newest_event: Option<String>,
}

/// Whether the event `event_id`, just applied, came too late to matter: the state already
/// reflects a newer event, and no account's evidence changed.
fn stale(applied: &Applied, event_id: &str) -> bool {
    applied.changed_accounts.is_empty()
        && applied
            .newest_event
            .as_deref()
            .is_some_and(|newest| newest != event_id)
}

/// The account a subscription belongs to: the newest `metadata.vouch_account_id` naming an
/// existing account, else the account its customer is linked to.
async fn resolve_account(
    conn: &impl ConnectionTrait,
    rows: &[stripe_event::Model],
) -> Result<Option<String>, DbErr> {
    let mut newest_first: Vec<&stripe_event::Model> = rows.iter().collect();
    newest_first.sort_by(|a, b| (b.created, &b.id).cmp(&(a.created, &a.id)));
    let mut tried = Vec::new();
    for reference in newest_first.iter().filter_map(|r| r.account_ref.as_ref()) {
        if tried.contains(&reference) {
            continue;
        }
        tried.push(reference);
        if accounts::get(conn, reference).await?.is_some() {
            return Ok(Some(reference.clone()));
        }
    }
    let mut tried = Vec::new();
    for customer in newest_first.iter().filter_map(|r| r.customer_id.as_ref()) {
        if tried.contains(&customer) {
            continue;
        }
        tried.push(customer);
        if let Some(link) = billing_customer::Entity::find_by_id(customer.clone())
            .one(conn)
            .await?
        {
            return Ok(Some(link.account_id));
        }
    }
    Ok(None)
}

/// Recompute one subscription from all its stored events and bring the payment evidence in
/// line: on the account it belongs to, and withdrawn from any account it no longer belongs to.
/// Writes (and audits) only what changed.
async fn apply_subscription(
    conn: &impl ConnectionTrait,
    subscription_id: &str,
    past_due_grace: Duration,
    now: DateTime<Utc>,
) -> Result<Applied, ApiError> {
    let rows = stripe_event::Entity::find()
        .filter(stripe_event::Column::SubscriptionId.eq(subscription_id))
        .all(conn)
        .await?;
    let state = fold_events(&rows);
    let account_id = resolve_account(conn, &rows).await?;
    let source = source(subscription_id);
    let existing = evidence_row::Entity::find()
        .filter(evidence_row::Column::Kind.eq(EvidenceKind::Payment.as_str()))
        .filter(evidence_row::Column::Source.eq(source.as_str()))
        .all(conn)
        .await?;
    let mut changed_accounts =
        withdraw_elsewhere(conn, &existing, account_id.as_deref(), &source, now).await?;
    if let (Some(account_id), Some(state)) = (&account_id, &state) {
        let desired = state.evidence(past_due_grace);
        let current = existing.iter().find(|r| &r.account_id == account_id);
        if differs(current, &desired) {
            let change = EvidenceChange {
                kind: EvidenceKind::Payment,
                source: source.clone(),
                status: desired.status,
                verified_at: desired.verified_at,
                expires_at: desired.expires_at,
            };
            record_payment(conn, account_id, subscription_id, state, change, now).await?;
            changed_accounts.push(account_id.clone());
        }
    }
    if account_id.is_some() {
        mark_applied(conn, subscription_id, now).await?;
    }
    changed_accounts.sort();
    changed_accounts.dedup();
    Ok(Applied {
        account_id,
        changed_accounts,
        newest_event: state.map(|s| s.event_id),
    })
}

/// The subscription's state from its stored events, in any order of arrival.
fn fold_events(rows: &[stripe_event::Model]) -> Option<SubscriptionState> {
    let steps = rows
        .iter()
        .filter_map(|r| {
            Some(Step {
                event_id: r.id.clone(),
                created: r.created,
                change: Change::from_stored(
                    r.effect.as_deref()?,
                    r.subscription_status.as_deref(),
                    r.current_period_end,
                )?,
            })
        })
        .collect();
    billing::fold(steps)
}

/// Lapse the subscription's active payment evidence on every account other than `owner`.
/// Returns those accounts.
async fn withdraw_elsewhere(
    conn: &impl ConnectionTrait,
    existing: &[evidence_row::Model],
    owner: Option<&str>,
    source: &str,
    now: DateTime<Utc>,
) -> Result<Vec<String>, ApiError> {
    let mut changed = Vec::new();
    for row in existing {
        if Some(row.account_id.as_str()) != owner && row.status == EvidenceStatus::Active.as_str() {
            let change = EvidenceChange {
                kind: EvidenceKind::Payment,
                source: source.to_owned(),
                status: EvidenceStatus::Lapsed,
                verified_at: row.verified_at,
                expires_at: None,
            };
            evidence::record(conn, ACTOR, &row.account_id, change, now).await?;
            changed.push(row.account_id.clone());
        }
    }
    Ok(changed)
}

/// Whether the owner's evidence must change to read as `desired`.
fn differs(current: Option<&evidence_row::Model>, desired: &PaymentEvidence) -> bool {
    match current {
        // A subscription that never paid leaves no trace on the account.
        None => desired.status != EvidenceStatus::Lapsed,
        Some(r) => {
            r.status != desired.status.as_str()
                || r.verified_at != desired.verified_at
                || r.expires_at != desired.expires_at
        }
    }
}

/// Write the owner's payment evidence, and say which subscription state it came from.
async fn record_payment(
    conn: &impl ConnectionTrait,
    account_id: &str,
    subscription_id: &str,
    state: &SubscriptionState,
    change: EvidenceChange,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    evidence::record(conn, ACTOR, account_id, change, now).await?;
    audit::append(
        conn,
        now,
        Entry {
            actor: ACTOR,
            action: AuditAction::BillingSubscriptionApplied,
            target_type: AuditTarget::Account,
            target_id: account_id,
            details: json!({
                "subscription": subscription_id,
                "stripe_status": state.status.as_str(),
                "event_id": state.event_id,
                "past_due_since": state.past_due_since,
            }),
        },
    )
    .await?;
    Ok(())
}

/// Every event of the subscription not yet applied is applied now.
async fn mark_applied(
    conn: &impl ConnectionTrait,
    subscription_id: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    stripe_event::Entity::update_many()
        .col_expr(
            stripe_event::Column::Outcome,
            Expr::value(Outcome::Applied.as_str()),
        )
        .col_expr(stripe_event::Column::AppliedAt, Expr::value(now))
        .filter(stripe_event::Column::SubscriptionId.eq(subscription_id))
        .filter(stripe_event::Column::AppliedAt.is_null())
        .exec(conn)
        .await?;
    Ok(())
}

/// The account's link to its customer.
pub async fn link_of(
    conn: &impl ConnectionTrait,
    account_id: &str,
) -> Result<Option<billing_customer::Model>, DbErr> {
    billing_customer::Entity::find()
        .filter(billing_customer::Column::AccountId.eq(account_id))
        .one(conn)
        .await
}

#[derive(Debug)]
pub struct Linked {
    pub link: billing_customer::Model,
    /// Whether the link is new (or replaced another).
    pub created: bool,
    /// Subscriptions of the customer (and of a replaced one) that were re-applied.
    pub subscriptions: Vec<String>,
    pub changed_accounts: Vec<String>,
}

fn linked_elsewhere() -> ApiError {
    ApiError::conflict(
        ErrorCode::CustomerLinked,
        "this customer is linked to another account",
    )
}

/// Link an account to its customer (replacing an earlier customer) and apply, in the same
/// transaction, every stored event of the customer's subscriptions that waited for it.
pub async fn link_customer(
    conn: &impl ConnectionTrait,
    actor: &str,
    account_id: &AccountId,
    customer_id: &CustomerId,
    past_due_grace: Duration,
    now: DateTime<Utc>,
) -> Result<Linked, ApiError> {
    let customer_id = customer_id.as_str();
    let account = accounts::require(conn, account_id.as_str()).await?;
    let before = link_of(conn, &account.id).await?;
    if let Some(link) = before.as_ref().filter(|l| l.customer_id == customer_id) {
        return Ok(Linked {
            link: link.clone(),
            created: false,
            subscriptions: Vec::new(),
            changed_accounts: Vec::new(),
        });
    }
    let customers = lock_customers(conn, &account.id, customer_id, before.as_ref()).await?;
    let subscriptions = lock_subscriptions(conn, &customers).await?;
    let link = replace_link(conn, &account.id, customer_id, before.as_ref(), now).await?;
    audit::append(
        conn,
        now,
        Entry {
            actor,
            action: AuditAction::BillingCustomerLinked,
            target_type: AuditTarget::Account,
            target_id: &account.id,
            details: json!({
                "customer_id": customer_id,
                "replaced_customer_id": before.map(|l| l.customer_id),
                "subscriptions": subscriptions,
            }),
        },
    )
    .await?;
    let mut changed_accounts = Vec::new();
    for subscription in &subscriptions {
        let applied = apply_subscription(conn, subscription, past_due_grace, now).await?;
        changed_accounts.extend(applied.changed_accounts);
    }
    changed_accounts.sort();
    changed_accounts.dedup();
    Ok(Linked {
        link,
        created: true,
        subscriptions,
        changed_accounts,
    })
}

/// Lock the new customer and the one it replaces (in order), then check that neither changed
/// hands meanwhile. Returns both customers.
async fn lock_customers(
    conn: &impl ConnectionTrait,
    account_id: &str,
    customer_id: &str,
    before: Option<&billing_customer::Model>,
) -> Result<Vec<String>, ApiError> {
    let mut customers = vec![customer_id.to_owned()];
    if let Some(old) = before {
        customers.push(old.customer_id.clone());
    }
    customers.sort();
    for customer in &customers {
        lock(conn, "customer", customer).await?;
    }
    let replaced = link_of(conn, account_id).await?;
    if replaced.as_ref().map(|l| &l.customer_id) != before.map(|l| &l.customer_id) {
        return Err(ApiError::conflict(
            ErrorCode::BillingLinkChanged,
            "the account's billing link changed meanwhile; retry",
        ));
    }
    if let Some(other) = billing_customer::Entity::find_by_id(customer_id.to_owned())
        .one(conn)
        .await?
    {
        if other.account_id != account_id {
            return Err(linked_elsewhere());
        }
    }
    Ok(customers)
}

/// Lock (in order) and return the subscriptions with stored events of these customers.
async fn lock_subscriptions(
    conn: &impl ConnectionTrait,
    customers: &[String],
) -> Result<Vec<String>, DbErr> {
    let mut subscriptions: Vec<String> = stripe_event::Entity::find()
        .select_only()
        .column(stripe_event::Column::SubscriptionId)
        .distinct()
        .filter(stripe_event::Column::CustomerId.is_in(customers.iter().map(String::as_str)))
        .filter(stripe_event::Column::SubscriptionId.is_not_null())
        .into_tuple::<Option<String>>()
        .all(conn)
        .await?
        .into_iter()
        .flatten()
        .collect();
    subscriptions.sort();
    subscriptions.dedup();
    for subscription in &subscriptions {
        lock(conn, "subscription", subscription).await?;
    }
    Ok(subscriptions)
}

/// Store the account's link to `customer_id`, dropping the one it replaces.
async fn replace_link(
    conn: &impl ConnectionTrait,
    account_id: &str,
    customer_id: &str,
    replaced: Option<&billing_customer::Model>,
    now: DateTime<Utc>,
) -> Result<billing_customer::Model, ApiError> {
    if let Some(old) = replaced {
        billing_customer::Entity::delete_by_id(old.customer_id.clone())
            .exec(conn)
            .await?;
    }
    let link = billing_customer::Model {
        customer_id: customer_id.to_owned(),
        account_id: account_id.to_owned(),
        linked_at: now,
    };
    match billing_customer::Entity::insert(link.clone().into_active_model().reset_all())
        .exec_without_returning(conn)
        .await
    {
        Ok(_) => Ok(link),
        Err(e) if is_unique_violation(&e) => Err(linked_elsewhere()),
        Err(e) => Err(e.into()),
    }
}

//! A verified Stripe webhook event, kept by id so a redelivery has no effect. Only the fields
//! billing needs are stored (never the raw payload, which carries customers' names, emails and
//! addresses); they are enough to recompute a subscription's state in any arrival order.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "stripe_event")]
pub struct Model {
    /// Stripe's event id (`evt_...`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// e.g. `customer.subscription.updated`.
    pub event_type: String,
    /// The event's own `created` time (Stripe's clock), which orders events.
    pub created: DateTimeUtc,
    pub livemode: bool,
    /// The subscription the event concerns; `None` for events billing ignores.
    pub subscription_id: Option<String>,
    pub customer_id: Option<String>,
    /// `metadata.vouch_account_id` of the subscription, checkout session or invoice.
    pub account_ref: Option<String>,
    /// What the event says about the subscription: `snapshot`, `invoice_paid`,
    /// `invoice_payment_failed`, `first_invoice_payment_failed`, `checkout_paid`,
    /// `checkout_unpaid`.
    pub effect: Option<String>,
    /// The subscription's status in a `snapshot`.
    pub subscription_status: Option<String>,
    pub current_period_end: Option<DateTimeUtc>,
    /// `applied`, `pending` (no account linked yet) or `ignored`.
    pub outcome: String,
    pub received_at: DateTimeUtc,
    pub applied_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

//! A subscription's state from its billing events, whatever order they arrived in, and the
//! payment evidence that state implies. Pure: the caller loads the events and records evidence.
//!
//! Events are folded in a total order (Stripe's `created`, then what the event is, then the
//! subscription object's own fields, then the event id), so the same set of events always gives
//! the same state: an older event arriving late changes nothing it should not.

use chrono::{DateTime, Duration, Utc};

use super::evidence::EvidenceStatus;

/// A Stripe customer id as an account is linked to it: `cus_` and letters, digits or `_`, at
/// most 255 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerId(String);

impl CustomerId {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let valid = s.len() > 4
            && s.len() <= 255
            && s.starts_with("cus_")
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if valid {
            Ok(CustomerId(s.to_owned()))
        } else {
            Err("customer_id must be a Stripe customer id (`cus_` followed by letters and digits)")
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Stripe's subscription statuses.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString, strum::Display,
)]
#[strum(serialize_all = "snake_case")]
pub enum SubscriptionStatus {
    Incomplete,
    IncompleteExpired,
    Trialing,
    Active,
    PastDue,
    Unpaid,
    Paused,
    Canceled,
    /// A status this version does not know; treated as not paid (fail closed).
    Unknown,
}

impl SubscriptionStatus {
    /// Stripe's status string; one this version does not know is `Unknown` (fail closed).
    pub fn parse(s: &str) -> Self {
        s.parse().unwrap_or(SubscriptionStatus::Unknown)
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Stripe never moves a subscription out of these.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired
        )
    }

    /// Paid up: payment evidence is active without a deadline.
    pub fn is_paid(self) -> bool {
        matches!(
            self,
            SubscriptionStatus::Active | SubscriptionStatus::Trialing
        )
    }

    /// For two snapshots with the same `created` and period: the one later in a subscription's
    /// life wins (e.g. `incomplete` then `active` during checkout, `active` then `past_due` at
    /// a renewal whose charge failed).
    fn lifecycle_rank(self) -> u8 {
        use SubscriptionStatus::*;
        match self {
            Unknown => 0,
            Incomplete => 1,
            Trialing => 2,
            Active => 3,
            PastDue => 4,
            Unpaid => 5,
            Paused => 6,
            IncompleteExpired => 7,
            Canceled => 8,
        }
    }
}

/// What one event says about a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The subscription object itself (`customer.subscription.*`): authoritative.
    Snapshot {
        status: SubscriptionStatus,
        current_period_end: Option<DateTime<Utc>>,
    },
    /// `invoice.paid`.
    InvoicePaid,
    /// `invoice.payment_failed`; `first_invoice` when it was the subscription's first invoice
    /// (the subscription is then `incomplete`, not `past_due`).
    InvoicePaymentFailed { first_invoice: bool },
    /// `checkout.session.completed` for a subscription; `paid` unless payment is still pending.
    CheckoutCompleted { paid: bool },
}

impl Change {
    /// The name stored with the event.
    pub fn effect(&self) -> &'static str {
        match self {
            Change::Snapshot { .. } => "snapshot",
            Change::InvoicePaid => "invoice_paid",
            Change::InvoicePaymentFailed {
                first_invoice: false,
            } => "invoice_payment_failed",
            Change::InvoicePaymentFailed {
                first_invoice: true,
            } => "first_invoice_payment_failed",
            Change::CheckoutCompleted { paid: true } => "checkout_paid",
            Change::CheckoutCompleted { paid: false } => "checkout_unpaid",
        }
    }

    /// Back from what was stored; `None` for an effect this version does not know.
    pub fn from_stored(
        effect: &str,
        status: Option<&str>,
        current_period_end: Option<DateTime<Utc>>,
    ) -> Option<Change> {
        Some(match effect {
            "snapshot" => Change::Snapshot {
                status: SubscriptionStatus::parse(status?),
                current_period_end,
            },
            "invoice_paid" => Change::InvoicePaid,
            "invoice_payment_failed" => Change::InvoicePaymentFailed {
                first_invoice: false,
            },
            "first_invoice_payment_failed" => Change::InvoicePaymentFailed {
                first_invoice: true,
            },
            "checkout_paid" => Change::CheckoutCompleted { paid: true },
            "checkout_unpaid" => Change::CheckoutCompleted { paid: false },
            _ => return None,
        })
    }

    /// Within one second: the checkout completes around the subscription's creation, invoices
    /// are settled next, and the subscription object, which reflects all of it, comes last.
    fn kind_rank(&self) -> u8 {
        match self {
            Change::CheckoutCompleted { .. } => 0,
            Change::InvoicePaymentFailed { .. } => 1,
            Change::InvoicePaid => 2,
            Change::Snapshot { .. } => 3,
        }
    }

    fn next(&self, prev: Option<SubscriptionStatus>) -> Option<SubscriptionStatus> {
        use SubscriptionStatus::*;
        if prev.is_some_and(SubscriptionStatus::is_terminal) {
            // Not even a late invoice (e.g. a final proration paid) revives a canceled one.
            return prev;
        }
        match self {
            Change::Snapshot { status, .. } => Some(*status),
            Change::InvoicePaid => match prev {
                Some(Trialing | Paused) => prev,
                _ => Some(Active),
            },
            Change::InvoicePaymentFailed { first_invoice } => match prev {
                None => Some(if *first_invoice { Incomplete } else { PastDue }),
                Some(Active | Trialing) => Some(PastDue),
                other => other,
            },
            Change::CheckoutCompleted { paid: true } => match prev {
                None | Some(Incomplete) => Some(Active),
                other => other,
            },
            Change::CheckoutCompleted { paid: false } => prev,
        }
    }
}

/// One stored event about a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub event_id: String,
    pub created: DateTime<Utc>,
    pub change: Change,
}

impl Step {
    #[allow(clippy::type_complexity)]
    fn order_key(&self) -> (DateTime<Utc>, u8, bool, Option<DateTime<Utc>>, u8, &str) {
        let (terminal, period_end, rank) = match &self.change {
            Change::Snapshot {
                status,
                current_period_end,
            } => (
                status.is_terminal(),
                *current_period_end,
                status.lifecycle_rank(),
            ),
            _ => (false, None, 0),
        };
        (
            self.created,
            self.change.kind_rank(),
            terminal,
            period_end,
            rank,
            &self.event_id,
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState {
    pub status: SubscriptionStatus,
    /// The newest event that contributed to this state.
    pub event_id: String,
    /// When the current status began (Stripe's time).
    pub status_since: DateTime<Utc>,
    /// When the subscription last went `past_due` (the grace period runs from here).
    pub past_due_since: Option<DateTime<Utc>>,
    /// The newest event that showed it paid up (`active` or `trialing`).
    pub paid_at: Option<DateTime<Utc>>,
}

/// The payment evidence a subscription state implies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentEvidence {
    pub status: EvidenceStatus,
    pub verified_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl SubscriptionState {
    /// Paid up → active; `past_due` → active until the grace period after it went past due
    /// ends (evaluation lapses it by time, no job needed); anything else → lapsed.
    pub fn evidence(&self, past_due_grace: Duration) -> PaymentEvidence {
        let verified_at = self.paid_at.unwrap_or(self.status_since);
        match self.status {
            s if s.is_paid() => PaymentEvidence {
                status: EvidenceStatus::Active,
                verified_at,
                expires_at: None,
            },
            SubscriptionStatus::PastDue => PaymentEvidence {
                status: EvidenceStatus::Active,
                verified_at,
                expires_at: Some(self.past_due_since.unwrap_or(self.status_since) + past_due_grace),
            },
            _ => PaymentEvidence {
                status: EvidenceStatus::Lapsed,
                verified_at,
                expires_at: None,
            },
        }
    }
}

/// The state the events lead to, in whatever order they are given; `None` if they say nothing
/// about the status yet (e.g. only a checkout still awaiting payment).
pub fn fold(mut steps: Vec<Step>) -> Option<SubscriptionState> {
    steps.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
    let mut state: Option<SubscriptionState> = None;
    for step in steps {
        let prev = state.as_ref().map(|s| s.status);
        let Some(status) = step.change.next(prev) else {
            continue;
        };
        let s = state.get_or_insert_with(|| SubscriptionState {
            status,
            event_id: step.event_id.clone(),
            status_since: step.created,
            past_due_since: None,
            paid_at: None,
        });
        if prev != Some(status) {
            s.status = status;
            s.status_since = step.created;
            s.past_due_since = (status == SubscriptionStatus::PastDue).then_some(step.created);
        }
        s.event_id = step.event_id;
        if status.is_paid() {
            s.paid_at = Some(step.created);
        }
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use SubscriptionStatus::*;

    #[test]
    fn customer_ids() {
        assert_eq!(
            CustomerId::parse("cus_NffrFeUfNV2Hib").unwrap().as_str(),
            "cus_NffrFeUfNV2Hib"
        );
        for bad in ["cus_", "cus", "sub_123", "cus_a-b", "cus_ä"] {
            assert!(CustomerId::parse(bad).is_err(), "{bad}");
        }
        assert!(CustomerId::parse(&format!("cus_{}", "a".repeat(251))).is_ok());
        assert!(CustomerId::parse(&format!("cus_{}", "a".repeat(252))).is_err());
    }

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    fn snap(id: &str, created: i64, status: SubscriptionStatus, period_end: i64) -> Step {
        Step {
            event_id: id.into(),
            created: at(created),
            change: Change::Snapshot {
                status,
                current_period_end: Some(at(period_end)),
            },
        }
    }

    fn step(id: &str, created: i64, change: Change) -> Step {
        Step {
            event_id: id.into(),
            created: at(created),
            change,
        }
    }

    /// Every permutation of `steps` folds to the same state.
    fn all_orders(steps: &[Step]) -> SubscriptionState {
        fn permute(items: &mut Vec<Step>, k: usize, out: &mut Vec<Option<SubscriptionState>>) {
            if k == items.len() {
                out.push(fold(items.clone()));
                return;
            }
            for i in k..items.len() {
                items.swap(k, i);
                permute(items, k + 1, out);
                items.swap(k, i);
            }
        }
        let mut results = Vec::new();
        permute(&mut steps.to_vec(), 0, &mut results);
        let first = results[0].clone();
        assert!(results.iter().all(|r| *r == first), "{results:?}");
        first.expect("a state")
    }

    #[test]
    fn the_newest_event_wins_in_any_order() {
        let steps = [
            snap("evt_a", 0, Incomplete, 100),
            snap("evt_b", 10, Active, 100),
            snap("evt_c", 20, Canceled, 100),
        ];
        let s = all_orders(&steps);
        assert_eq!(s.status, Canceled);
        assert_eq!(s.event_id, "evt_c");
        assert_eq!(s.paid_at, Some(at(10)));
        assert_eq!(s.evidence(Duration::days(7)).status, EvidenceStatus::Lapsed);

        let s = all_orders(&[
            snap("evt_a", 0, Active, 100),
            snap("evt_b", 5, PastDue, 100),
        ]);
        assert_eq!(s.status, PastDue);
        assert_eq!(s.past_due_since, Some(at(5)));
    }

    #[test]
    fn ties_in_the_same_second_are_broken_by_the_subscription_itself() {
        // created and updated in one second during checkout: active wins.
        let s = all_orders(&[
            snap("evt_z", 0, Incomplete, 100),
            snap("evt_a", 0, Active, 100),
        ]);
        assert_eq!(s.status, Active);
        // a renewal moves the period forward: the newer period wins over the older one.
        let s = all_orders(&[
            snap("evt_z", 0, PastDue, 200),
            snap("evt_a", 0, Unpaid, 100),
        ]);
        assert_eq!(s.status, PastDue);
        // cancellation is final, whatever else happened in that second.
        let s = all_orders(&[
            snap("evt_a", 0, Active, 200),
            snap("evt_b", 0, Canceled, 100),
        ]);
        assert_eq!(s.status, Canceled);
        // the subscription object outranks an invoice of the same second.
        let s = all_orders(&[
            step("evt_a", 0, Change::InvoicePaid),
            snap("evt_b", 0, PastDue, 100),
        ]);
        assert_eq!(s.status, PastDue);
    }

    #[test]
    fn invoices_move_the_status_but_never_revive_a_canceled_subscription() {
        let s = all_orders(&[
            snap("evt_a", 0, Active, 100),
            step(
                "evt_b",
                10,
                Change::InvoicePaymentFailed {
                    first_invoice: false,
                },
            ),
        ]);
        assert_eq!((s.status, s.past_due_since), (PastDue, Some(at(10))));

        // A second failed retry does not restart the grace period.
        let s = all_orders(&[
            snap("evt_a", 0, Active, 100),
            step(
                "evt_b",
                10,
                Change::InvoicePaymentFailed {
                    first_invoice: false,
                },
            ),
            snap("evt_c", 11, PastDue, 100),
            step(
                "evt_d",
                50,
                Change::InvoicePaymentFailed {
                    first_invoice: false,
                },
            ),
        ]);
        assert_eq!((s.status, s.past_due_since), (PastDue, Some(at(10))));

        let s = all_orders(&[
            snap("evt_a", 0, PastDue, 100),
            step("evt_b", 10, Change::InvoicePaid),
        ]);
        assert_eq!((s.status, s.past_due_since), (Active, None));
        assert_eq!(s.paid_at, Some(at(10)));

        let s = all_orders(&[
            snap("evt_a", 0, Canceled, 100),
            step("evt_b", 10, Change::InvoicePaid),
            step("evt_c", 20, Change::CheckoutCompleted { paid: true }),
        ]);
        assert_eq!(s.status, Canceled);

        let s = all_orders(&[step(
            "evt_a",
            0,
            Change::InvoicePaymentFailed {
                first_invoice: true,
            },
        )]);
        assert_eq!(s.status, Incomplete);
        assert!(fold(vec![step(
            "evt_a",
            0,
            Change::CheckoutCompleted { paid: false }
        )])
        .is_none());
        let s = all_orders(&[step("evt_a", 0, Change::CheckoutCompleted { paid: true })]);
        assert_eq!(s.status, Active);
    }

    #[test]
    fn evidence_follows_the_contract() {
        let grace = Duration::days(7);
        let s = fold(vec![snap("evt_a", 0, Trialing, 100)]).unwrap();
        assert_eq!(
            s.evidence(grace),
            PaymentEvidence {
                status: EvidenceStatus::Active,
                verified_at: at(0),
                expires_at: None
            }
        );
        let s = fold(vec![
            snap("evt_a", 0, Active, 100),
            snap("evt_b", 30, PastDue, 100),
        ])
        .unwrap();
        assert_eq!(
            s.evidence(grace),
            PaymentEvidence {
                status: EvidenceStatus::Active,
                verified_at: at(0),
                expires_at: Some(at(30) + grace)
            }
        );
        for status in [
            Canceled,
            Unpaid,
            IncompleteExpired,
            Paused,
            Incomplete,
            Unknown,
        ] {
            let s = fold(vec![snap("evt_a", 0, status, 100)]).unwrap();
            assert_eq!(
                s.evidence(grace).status,
                EvidenceStatus::Lapsed,
                "{status:?}"
            );
        }
    }

    #[test]
    fn stored_changes_round_trip() {
        let changes = [
            Change::Snapshot {
                status: PastDue,
                current_period_end: Some(at(5)),
            },
            Change::InvoicePaid,
            Change::InvoicePaymentFailed {
                first_invoice: false,
            },
            Change::InvoicePaymentFailed {
                first_invoice: true,
            },
            Change::CheckoutCompleted { paid: true },
            Change::CheckoutCompleted { paid: false },
        ];
        for c in changes {
            let (status, end) = match &c {
                Change::Snapshot {
                    status,
                    current_period_end,
                } => (Some(status.as_str()), *current_period_end),
                _ => (None, None),
            };
            assert_eq!(Change::from_stored(c.effect(), status, end), Some(c));
        }
        assert_eq!(Change::from_stored("refund", None, None), None);
        assert_eq!(SubscriptionStatus::parse("brand_new"), Unknown);
    }
}

//! What a refused person can do instead: the `required_actions` every refusal carries (token
//! issuance 403, authorize `allow: false`, the exchanges' 403), derived from the policy's
//! alternatives for E2EE that the account does not meet yet.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::{live::AccountSnapshot, ENTITLEMENT};
use crate::domain::{evidence::EvidenceKind, policy::Policy};

/// One thing a person can do, in order of effort (the order `required_actions` lists them in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// Only as the missing part of a combination (e.g. phone + email): an email alone never
    /// grants E2EE, so it is never offered on its own account.
    VerifyEmail,
    VerifyPhone,
    Subscribe,
    /// A nonprofit or dissident exception (one action for both categories).
    RequestException,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::VerifyEmail => "verify_email",
            Action::VerifyPhone => "verify_phone",
            Action::Subscribe => "subscribe",
            Action::RequestException => "request_exception",
        }
    }

    fn for_kind(kind: EvidenceKind) -> Action {
        match kind {
            EvidenceKind::Email => Action::VerifyEmail,
            EvidenceKind::Phone => Action::VerifyPhone,
            EvidenceKind::Payment => Action::Subscribe,
            EvidenceKind::Nonprofit | EvidenceKind::Dissident => Action::RequestException,
        }
    }
}

/// The values `required_actions` can hold, for the API description.
pub const ALL: [&str; 4] = [
    "verify_email",
    "verify_phone",
    "subscribe",
    "request_exception",
];

/// What the account could do to be granted E2EE: for each policy alternative it does not meet,
/// the actions that would supply the evidence still missing from it (lapsed or revoked evidence
/// is supplied again the same way), deduplicated and ordered by effort. Empty when the account
/// is suspended (nothing it can do helps until it is reactivated) or already entitled.
/// `verify_email` only ever appears for a combination that needs it; an alternative of email
/// alone cannot exist for E2EE (the policy refuses it).
pub fn required_actions(
    policy: &Policy,
    account: &AccountSnapshot,
    now: DateTime<Utc>,
) -> Vec<&'static str> {
    if !account.active {
        return Vec::new();
    }
    let Some(rule) = policy.rules.iter().find(|r| r.entitlement == ENTITLEMENT) else {
        return Vec::new();
    };
    let active: BTreeSet<EvidenceKind> = account
        .facts
        .iter()
        .filter(|f| f.is_active(now))
        .map(|f| f.kind)
        .collect();
    if rule.alternatives.iter().any(|alt| alt.is_subset(&active)) {
        return Vec::new();
    }
    let mut actions = BTreeSet::new();
    for alternative in &rule.alternatives {
        let missing: BTreeSet<EvidenceKind> = alternative.difference(&active).copied().collect();
        if missing == BTreeSet::from([EvidenceKind::Email]) && alternative.len() == 1 {
            continue;
        }
        actions.extend(missing.into_iter().map(Action::for_kind));
    }
    actions.into_iter().map(Action::as_str).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::{evidence::EvidenceStatus, policy::Fact};

    fn account(active: bool, kinds: &[(EvidenceKind, EvidenceStatus)]) -> AccountSnapshot {
        AccountSnapshot {
            active,
            facts: kinds
                .iter()
                .map(|(kind, status)| Fact {
                    kind: *kind,
                    status: *status,
                    expires_at: None,
                })
                .collect(),
            status: None,
        }
    }

    #[test]
    fn presets_offer_one_action_per_alternative() {
        use EvidenceKind::*;
        use EvidenceStatus::*;
        let now = Utc::now();
        let verified = Policy::preset("verified").unwrap();
        let paid = Policy::preset("paid-only").unwrap();
        let email_only = account(true, &[(Email, Active)]);
        assert_eq!(
            required_actions(&verified, &email_only, now),
            ["verify_phone", "subscribe", "request_exception"]
        );
        assert_eq!(
            required_actions(&paid, &email_only, now),
            ["subscribe", "request_exception"]
        );
        // Lapsed evidence is supplied again the same way.
        let lapsed = account(true, &[(Payment, Lapsed), (Phone, Revoked)]);
        assert_eq!(
            required_actions(&paid, &lapsed, now),
            ["subscribe", "request_exception"]
        );
        // Entitled, or suspended: nothing to do.
        assert!(required_actions(&verified, &account(true, &[(Phone, Active)]), now).is_empty());
        assert!(required_actions(&verified, &account(false, &[(Email, Active)]), now).is_empty());
    }

    #[test]
    fn email_is_offered_only_inside_a_combination() {
        use EvidenceKind::*;
        use EvidenceStatus::*;
        let now = Utc::now();
        let mut ents = BTreeMap::new();
        ents.insert(
            "e2ee".to_owned(),
            vec![
                vec!["payment".to_owned()],
                vec!["phone".to_owned(), "email".to_owned()],
            ],
        );
        let policy = Policy::custom("strict", &ents).unwrap();
        assert_eq!(
            required_actions(&policy, &account(true, &[(Phone, Active)]), now),
            ["verify_email", "subscribe"]
        );
        assert_eq!(
            required_actions(&policy, &account(true, &[]), now),
            ["verify_email", "verify_phone", "subscribe"]
        );
        assert_eq!(
            required_actions(&policy, &account(true, &[(Email, Active)]), now),
            ["verify_phone", "subscribe"]
        );
    }
}

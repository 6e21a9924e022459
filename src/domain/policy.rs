//! The entitlement policy: which combinations of active evidence grant which entitlement.
//! Pure code: evaluation takes the account's state, its evidence and the time.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::evidence::{EvidenceKind, EvidenceStatus};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("unknown preset `{0}`")]
    UnknownPreset(String),
    #[error("entitlement `{0}` has no alternatives")]
    NoAlternatives(String),
    #[error("entitlement `{0}` has an empty alternative, which would grant it to everyone")]
    EmptyAlternative(String),
    #[error("unknown evidence kind `{0}`")]
    UnknownKind(String),
    #[error("e2ee can never be granted on email alone")]
    EmailAloneForE2ee,
}

/// One entitlement: granted when every kind of at least one alternative is active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub entitlement: String,
    pub alternatives: Vec<BTreeSet<EvidenceKind>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `<name>/<version>`, reported with every decision.
    pub name: String,
    pub rules: Vec<Rule>,
}

/// What the policy knows of one piece of evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    pub kind: EvidenceKind,
    pub status: EvidenceStatus,
    pub expires_at: Option<DateTime<Utc>>,
}

/// An account as the policy sees it: whether it is active, and its evidence.
#[derive(Debug, Clone)]
pub struct AccountSnapshot {
    pub active: bool,
    pub facts: Vec<Fact>,
    /// Where the account's status lives in the Token Status Lists (every account created
    /// since they exist has a place; its tokens carry it).
    pub status: Option<crate::status_list::StatusRef>,
}

impl Fact {
    /// Evidence past its `expires_at` counts as lapsed, whatever its stored status.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.status == EvidenceStatus::Active && self.expires_at.is_none_or(|e| e > now)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Decision {
    pub granted: bool,
    /// The evidence kinds that satisfied the policy (empty when not granted).
    pub satisfied_by: Vec<EvidenceKind>,
    /// For each alternative not satisfied, the kinds it still needs.
    pub missing: Vec<Vec<EvidenceKind>>,
    /// A human-readable explanation.
    pub reason: String,
}

fn single_kinds(kinds: &[EvidenceKind]) -> Vec<BTreeSet<EvidenceKind>> {
    kinds.iter().map(|k| BTreeSet::from([*k])).collect()
}

impl Policy {
    pub fn preset(name: &str) -> Result<Policy, PolicyError> {
        use EvidenceKind::*;
        let alternatives = match name {
            "verified" => single_kinds(&[Payment, Phone, Nonprofit, Dissident]),
            "paid-only" => single_kinds(&[Payment, Nonprofit, Dissident]),
            other => return Err(PolicyError::UnknownPreset(other.to_owned())),
        };
        Ok(Policy {
            name: format!("{name}/v1"),
            rules: vec![Rule {
                entitlement: "e2ee".to_owned(),
                alternatives,
            }],
        })
    }

    pub fn custom(
        name: &str,
        entitlements: &BTreeMap<String, Vec<Vec<String>>>,
    ) -> Result<Policy, PolicyError> {
        let mut rules = Vec::new();
        for (entitlement, alternatives) in entitlements {
            if alternatives.is_empty() {
                return Err(PolicyError::NoAlternatives(entitlement.clone()));
            }
            let mut parsed = Vec::new();
            for alternative in alternatives {
                if alternative.is_empty() {
                    return Err(PolicyError::EmptyAlternative(entitlement.clone()));
                }
                let kinds = alternative
                    .iter()
                    .map(|k| {
                        k.parse::<EvidenceKind>()
                            .map_err(|_| PolicyError::UnknownKind(k.clone()))
                    })
                    .collect::<Result<BTreeSet<_>, _>>()?;
                if entitlement == "e2ee" && kinds == BTreeSet::from([EvidenceKind::Email]) {
                    return Err(PolicyError::EmailAloneForE2ee);
                }
                parsed.push(kinds);
            }
            rules.push(Rule {
                entitlement: entitlement.clone(),
                alternatives: parsed,
            });
        }
        Ok(Policy {
            name: format!("{name}/custom"),
            rules,
        })
    }

    /// Decide every entitlement for an account.
    pub fn evaluate(
        &self,
        account_active: bool,
        facts: &[Fact],
        now: DateTime<Utc>,
    ) -> BTreeMap<String, Decision> {
        let active: BTreeSet<EvidenceKind> = facts
            .iter()
            .filter(|f| f.is_active(now))
            .map(|f| f.kind)
            .collect();
        self.rules
            .iter()
            .map(|rule| {
                (
                    rule.entitlement.clone(),
                    decide(rule, account_active, &active, facts, now),
                )
            })
            .collect()
    }

    /// The entitlements granted, by name (for token claims).
    pub fn granted(decisions: &BTreeMap<String, Decision>) -> impl Iterator<Item = &str> {
        decisions
            .iter()
            .filter(|(_, d)| d.granted)
            .map(|(name, _)| name.as_str())
    }
}

fn kinds_text(kinds: &BTreeSet<EvidenceKind>) -> String {
    kinds
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(" + ")
}

fn decide(
    rule: &Rule,
    account_active: bool,
    active: &BTreeSet<EvidenceKind>,
    facts: &[Fact],
    now: DateTime<Utc>,
) -> Decision {
    let satisfied = rule.alternatives.iter().find(|alt| alt.is_subset(active));
    let missing: Vec<Vec<EvidenceKind>> = rule
        .alternatives
        .iter()
        .filter(|alt| !alt.is_subset(active))
        .map(|alt| alt.difference(active).copied().collect())
        .collect();
    if !account_active {
        return Decision {
            granted: false,
            satisfied_by: vec![],
            missing,
            reason: format!(
                "{} is withdrawn: the account is suspended",
                rule.entitlement
            ),
        };
    }
    match satisfied {
        Some(alt) => Decision {
            granted: true,
            satisfied_by: alt.iter().copied().collect(),
            missing: vec![],
            reason: format!(
                "{} granted by active {} evidence",
                rule.entitlement,
                kinds_text(alt)
            ),
        },
        None => Decision {
            granted: false,
            satisfied_by: vec![],
            missing,
            reason: refusal(rule, active, facts, now),
        },
    }
}

/// Why an active account is not granted the entitlement: what it needs, what lapsed, and that
/// an email alone does not count where it does not.
fn refusal(
    rule: &Rule,
    active: &BTreeSet<EvidenceKind>,
    facts: &[Fact],
    now: DateTime<Utc>,
) -> String {
    let needed = rule
        .alternatives
        .iter()
        .map(kinds_text)
        .collect::<Vec<_>>()
        .join(", or ");
    let mut reason = format!("{} needs active {needed} evidence", rule.entitlement);
    let relevant: BTreeSet<EvidenceKind> = rule.alternatives.iter().flatten().copied().collect();
    let lapsed: BTreeSet<&str> = facts
        .iter()
        .filter(|f| relevant.contains(&f.kind) && !f.is_active(now))
        .map(|f| f.kind.as_str())
        .collect();
    if !lapsed.is_empty() {
        reason.push_str(&format!(
            "; {} evidence is no longer active",
            lapsed.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    if active.contains(&EvidenceKind::Email) && !relevant.contains(&EvidenceKind::Email) {
        reason.push_str("; a verified email alone is not enough");
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use EvidenceKind::*;
    use EvidenceStatus::*;

    fn fact(
        kind: EvidenceKind,
        status: EvidenceStatus,
        expires_in: Option<i64>,
        now: DateTime<Utc>,
    ) -> Fact {
        Fact {
            kind,
            status,
            expires_at: expires_in.map(|s| now + Duration::seconds(s)),
        }
    }

    #[test]
    fn presets_decide_e2ee_as_the_contract_says() {
        let now = Utc::now();
        // (preset, account active, evidence, granted, satisfied_by)
        type Row = (
            &'static str,
            bool,
            Vec<(EvidenceKind, EvidenceStatus, Option<i64>)>,
            bool,
            Vec<EvidenceKind>,
        );
        let table: Vec<Row> = vec![
            ("verified", true, vec![], false, vec![]),
            ("verified", true, vec![(Email, Active, None)], false, vec![]),
            (
                "verified",
                true,
                vec![(Phone, Active, None)],
                true,
                vec![Phone],
            ),
            (
                "verified",
                true,
                vec![(Payment, Active, None)],
                true,
                vec![Payment],
            ),
            (
                "verified",
                true,
                vec![(Nonprofit, Active, Some(60))],
                true,
                vec![Nonprofit],
            ),
            (
                "verified",
                true,
                vec![(Dissident, Active, None)],
                true,
                vec![Dissident],
            ),
            ("verified", true, vec![(Phone, Lapsed, None)], false, vec![]),
            (
                "verified",
                true,
                vec![(Phone, Revoked, None)],
                false,
                vec![],
            ),
            (
                "verified",
                true,
                vec![(Nonprofit, Active, Some(-1))],
                false,
                vec![],
            ),
            (
                "verified",
                false,
                vec![(Payment, Active, None)],
                false,
                vec![],
            ),
            (
                "verified",
                true,
                vec![
                    (Email, Active, None),
                    (Payment, Lapsed, None),
                    (Phone, Active, None),
                ],
                true,
                vec![Phone],
            ),
            (
                "paid-only",
                true,
                vec![(Phone, Active, None)],
                false,
                vec![],
            ),
            (
                "paid-only",
                true,
                vec![(Payment, Active, None)],
                true,
                vec![Payment],
            ),
            (
                "paid-only",
                true,
                vec![(Dissident, Active, Some(10))],
                true,
                vec![Dissident],
            ),
            (
                "paid-only",
                false,
                vec![(Dissident, Active, None)],
                false,
                vec![],
            ),
        ];
        for (i, (preset, active, evidence, granted, satisfied_by)) in table.into_iter().enumerate()
        {
            let policy = Policy::preset(preset).unwrap();
            let facts: Vec<Fact> = evidence
                .into_iter()
                .map(|(k, s, e)| fact(k, s, e, now))
                .collect();
            let d = &policy.evaluate(active, &facts, now)["e2ee"];
            assert_eq!(d.granted, granted, "row {i}: {d:?}");
            assert_eq!(d.satisfied_by, satisfied_by, "row {i}");
            if granted {
                assert!(d.missing.is_empty(), "row {i}");
            } else {
                assert!(!d.missing.is_empty(), "row {i}");
            }
        }
    }

    #[test]
    fn explanations_name_what_is_missing() {
        let now = Utc::now();
        let policy = Policy::preset("verified").unwrap();
        let d = &policy.evaluate(true, &[fact(Email, Active, None, now)], now)["e2ee"];
        assert_eq!(
            d.missing,
            vec![vec![Payment], vec![Phone], vec![Nonprofit], vec![Dissident]]
        );
        assert!(
            d.reason.contains("email alone is not enough"),
            "{}",
            d.reason
        );

        let d = &policy.evaluate(true, &[fact(Payment, Lapsed, None, now)], now)["e2ee"];
        assert!(
            d.reason.contains("payment evidence is no longer active"),
            "{}",
            d.reason
        );

        let d = &policy.evaluate(false, &[fact(Payment, Active, None, now)], now)["e2ee"];
        assert!(d.reason.contains("suspended"), "{}", d.reason);
        assert_eq!(policy.name, "verified/v1");
    }

    #[test]
    fn custom_policies_combine_kinds_and_are_checked() {
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
        assert_eq!(policy.name, "strict/custom");
        let d = &policy.evaluate(true, &[fact(Phone, Active, None, now)], now)["e2ee"];
        assert!(!d.granted);
        assert_eq!(d.missing, vec![vec![Payment], vec![Email]]);
        let d = &policy.evaluate(
            true,
            &[
                fact(Phone, Active, None, now),
                fact(Email, Active, None, now),
            ],
            now,
        )["e2ee"];
        assert!(d.granted);
        assert_eq!(d.satisfied_by, vec![Email, Phone]);

        let bad = |alts: Vec<Vec<&str>>| {
            let mut m = BTreeMap::new();
            m.insert(
                "e2ee".to_owned(),
                alts.into_iter()
                    .map(|a| a.into_iter().map(String::from).collect())
                    .collect(),
            );
            Policy::custom("x", &m).unwrap_err()
        };
        assert_eq!(bad(vec![]), PolicyError::NoAlternatives("e2ee".into()));
        assert_eq!(
            bad(vec![vec![]]),
            PolicyError::EmptyAlternative("e2ee".into())
        );
        assert_eq!(
            bad(vec![vec!["sms"]]),
            PolicyError::UnknownKind("sms".into())
        );
        assert_eq!(bad(vec![vec!["email"]]), PolicyError::EmailAloneForE2ee);
        assert_eq!(
            Policy::preset("gold").unwrap_err(),
            PolicyError::UnknownPreset("gold".into())
        );
    }
}

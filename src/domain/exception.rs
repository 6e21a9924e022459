//! Nonprofit and dissident exceptions: categories, statuses, and the rules for what a request
//! and a decision may carry. Pure code.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::evidence::EvidenceKind;

pub const MAX_STATEMENT_CHARS: usize = 10_000;
pub const MAX_LINE_CHARS: usize = 200;
pub const MAX_REASON_CHARS: usize = 2_000;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Category {
    /// Staff of a nonprofit organisation.
    Nonprofit,
    /// A person at risk for their political activity, journalism or dissent.
    Dissident,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The evidence an approval creates.
    pub fn evidence_kind(self) -> EvidenceKind {
        match self {
            Category::Nonprofit => EvidenceKind::Nonprofit,
            Category::Dissident => EvidenceKind::Dissident,
        }
    }
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum ExceptionStatus {
    /// Waiting for (more) approvals.
    Pending,
    /// Approved: its evidence is active until `expires_at`.
    Approved,
    /// Denied; final for this request.
    Denied,
    /// Approved, then revoked: its evidence was revoked at once.
    Revoked,
    /// Approved, and past `expires_at`: its evidence has lapsed.
    Expired,
}

impl ExceptionStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// What a reader sees: an approval past its end is expired, whether or not that has been
    /// recorded yet (expiry needs no background job to take effect).
    pub fn effective(
        self,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> ExceptionStatus {
        match self {
            ExceptionStatus::Approved if expires_at.is_some_and(|e| e <= now) => {
                ExceptionStatus::Expired
            }
            s => s,
        }
    }
}

/// The applicant's statement: not blank, at most 10,000 characters, no control characters
/// other than line breaks and tabs. Kept exactly as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement(String);

impl Statement {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if s.trim().is_empty() {
            return Err("statement must not be empty");
        }
        if s.chars().count() > MAX_STATEMENT_CHARS {
            return Err("statement must be at most 10000 characters");
        }
        if has_control_besides_breaks(s) {
            return Err("statement must not contain control characters");
        }
        Ok(Statement(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Control characters other than line breaks and tabs (which free text may hold).
fn has_control_besides_breaks(s: &str) -> bool {
    s.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
}

/// An optional one-line field (`organization`, `reference`): trimmed, blank means none, at
/// most 200 characters, no control characters.
pub fn parse_line(field: &'static str, s: &str) -> Result<Option<String>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if s.chars().count() > MAX_LINE_CHARS {
        return Err(format!(
            "{field} must be at most {MAX_LINE_CHARS} characters"
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(format!("{field} must not contain control characters"));
    }
    Ok(Some(s.to_owned()))
}

/// A reviewer's reason: required, not blank, at most 2,000 characters; trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let s = s.trim();
        if s.is_empty() {
            return Err("reason must not be empty");
        }
        if s.chars().count() > MAX_REASON_CHARS {
            return Err("reason must be at most 2000 characters");
        }
        if has_control_besides_breaks(s) {
            return Err("reason must not contain control characters");
        }
        Ok(Reason(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A validity end asked for in a decision must lie in the future, within `max` of now.
pub fn check_requested_end(
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
    max: Duration,
) -> Result<(), String> {
    if expires_at <= now {
        return Err("expires_at must be in the future".to_owned());
    }
    if expires_at > now + max {
        return Err(format!(
            "expires_at must be at most {} days from now",
            max.num_days()
        ));
    }
    Ok(())
}

/// When an approved exception ends: each approver agreed to the end they asked for, or to the
/// default validity from now; the exception lasts only as long as all of them agreed.
pub fn validity_end(
    requested: impl IntoIterator<Item = Option<DateTime<Utc>>>,
    now: DateTime<Utc>,
    default: Duration,
) -> DateTime<Utc> {
    let fallback = now + default;
    requested
        .into_iter()
        .map(|r| r.unwrap_or(fallback))
        .min()
        .unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn an_approval_past_its_end_reads_as_expired() {
        let now = t("2026-01-01T00:00:00Z");
        let end = Some(t("2026-06-01T00:00:00Z"));
        use ExceptionStatus::*;
        assert_eq!(Approved.effective(end, now), Approved);
        assert_eq!(Approved.effective(end, t("2026-06-01T00:00:00Z")), Expired);
        assert_eq!(Revoked.effective(end, t("2027-01-01T00:00:00Z")), Revoked);
        assert_eq!(Pending.effective(None, now), Pending);
        for s in [Pending, Approved, Denied, Revoked, Expired] {
            assert_eq!(s.as_str().parse::<ExceptionStatus>().ok(), Some(s));
        }
        assert_eq!(
            "dissident".parse::<Category>().ok(),
            Some(Category::Dissident)
        );
        assert_eq!("Dissident".parse::<Category>().ok(), None);
        assert_eq!(Category::Nonprofit.evidence_kind(), EvidenceKind::Nonprofit);
    }

    #[test]
    fn statements_and_fields_are_bounded() {
        assert!(Statement::parse("").is_err());
        assert!(Statement::parse(" \n ").is_err());
        assert!(Statement::parse(&"é".repeat(10_000)).is_ok());
        assert!(Statement::parse(&"é".repeat(10_001)).is_err());
        assert_eq!(Statement::parse(" a\nb\t").unwrap().as_str(), " a\nb\t");
        assert!(Statement::parse("a\u{0}b").is_err());

        assert_eq!(parse_line("organization", "  ").unwrap(), None);
        assert_eq!(
            parse_line("organization", " Amnesty ").unwrap(),
            Some("Amnesty".to_owned())
        );
        assert!(parse_line("reference", &"x".repeat(201)).is_err());
        assert!(parse_line("reference", "a\nb").is_err());

        assert!(Reason::parse("   ").is_err());
        assert_eq!(Reason::parse(" checked ").unwrap().as_str(), "checked");
        assert!(Reason::parse(&"x".repeat(2001)).is_err());
        assert!(Reason::parse("a\u{7}b").is_err());
    }

    #[test]
    fn validity_is_the_shortest_any_approver_agreed_to() {
        let now = t("2026-01-01T00:00:00Z");
        let year = Duration::days(365);
        assert_eq!(validity_end([None], now, year), now + year);
        assert_eq!(validity_end([], now, year), now + year);
        let soon = t("2026-03-01T00:00:00Z");
        let later = t("2028-01-01T00:00:00Z");
        assert_eq!(validity_end([Some(later), None], now, year), now + year);
        assert_eq!(validity_end([None, Some(soon)], now, year), soon);
        assert_eq!(validity_end([Some(later)], now, year), later);

        let max = Duration::days(1095);
        assert!(check_requested_end(soon, now, max).is_ok());
        assert!(check_requested_end(now, now, max).is_err());
        assert!(check_requested_end(t("2025-01-01T00:00:00Z"), now, max).is_err());
        assert!(check_requested_end(t("2030-01-01T00:00:00Z"), now, max).is_err());
    }
}

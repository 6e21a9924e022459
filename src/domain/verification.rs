//! Verification channels, statuses and one-time codes.

use serde::{Deserialize, Serialize};

use crate::crypto::random_bytes;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum VerificationStatus {
    /// Waiting for the right code.
    Pending,
    Approved,
    Expired,
    MaxAttemptsReached,
    /// Replaced by a newer code for the same destination, or closed by a limit.
    Canceled,
}

impl VerificationStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A six-digit one-time code. Its `Debug` hides the digits.
#[derive(Clone, PartialEq, Eq)]
pub struct Code(String);

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Code(******)")
    }
}

pub const CODE_DIGITS: usize = 6;

impl Code {
    /// Six uniformly random digits from the system CSPRNG (rejection sampling, no modulo bias).
    pub fn generate() -> Code {
        // The largest multiple of 10^6 that fits in a u32.
        const LIMIT: u32 = u32::MAX - (u32::MAX % 1_000_000);
        loop {
            let n = u32::from_be_bytes(random_bytes::<4>());
            if n < LIMIT {
                return Code(format!("{:06}", n % 1_000_000));
            }
        }
    }

    /// A code as submitted: exactly six ASCII digits.
    pub fn parse(s: &str) -> Option<Code> {
        (s.len() == CODE_DIGITS && s.bytes().all(|b| b.is_ascii_digit())).then(|| Code(s.into()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_vary() {
        let codes: std::collections::HashSet<String> = (0..200)
            .map(|_| Code::generate().expose().to_owned())
            .collect();
        assert!(codes
            .iter()
            .all(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit())));
        assert!(codes.len() > 190, "{} distinct of 200", codes.len());
        assert!(!format!("{:?}", Code::generate())
            .chars()
            .any(|c| c.is_ascii_digit()));
    }

    #[test]
    fn submitted_codes_are_checked_for_shape() {
        assert!(Code::parse("012345").is_some());
        for bad in ["", "12345", "1234567", "12345a", " 123456", "１２３４５６"] {
            assert!(Code::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            VerificationStatus::Pending,
            VerificationStatus::Approved,
            VerificationStatus::Expired,
            VerificationStatus::MaxAttemptsReached,
            VerificationStatus::Canceled,
        ] {
            assert_eq!(s.as_str().parse::<VerificationStatus>().ok(), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!("sms".parse::<Channel>().ok(), Some(Channel::Sms));
        assert_eq!("fax".parse::<Channel>().ok(), None);
    }
}

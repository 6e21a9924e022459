//! Phone numbers: parsed with libphonenumber's metadata (the `phonenumber` crate), normalised to
//! E.164, and masked for display.

use phonenumber::{country, Mode};

/// A valid phone number in E.164 form (`+14155552671`).
#[derive(Clone, PartialEq, Eq)]
pub struct PhoneNumber {
    e164: String,
    /// The country calling code, e.g. `1`.
    calling_code: u16,
    /// ISO 3166-1 alpha-2 region, when the metadata knows it (`US`).
    region: Option<String>,
}

/// Never print the number itself, even in debug output.
impl std::fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("`to` must be a phone number in international E.164 form: + and the country code")]
    Invalid,
    #[error("phone numbers from this country are not accepted")]
    CountryNotAllowed,
}

/// Whether `region` is an ISO 3166-1 alpha-2 code the phone metadata knows.
pub fn known_region(region: &str) -> bool {
    region.len() == 2 && region.parse::<country::Id>().is_ok()
}

impl PhoneNumber {
    /// Parse `input`. Without a `+` it is read as a national number of `default_region`
    /// (when configured) or rejected. `allowed_regions`, when not empty, lists the ISO regions
    /// accepted.
    pub fn parse(
        input: &str,
        default_region: Option<&str>,
        allowed_regions: &[String],
    ) -> Result<PhoneNumber, PhoneError> {
        let input = input.trim();
        // Digits and the usual separators only: no vanity letters, no extensions, no URIs.
        if input.is_empty()
            || input.len() > 32
            || !input
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '.' | '(' | ')'))
            || input.chars().filter(|&c| c == '+').count() > 1
            || (input.contains('+') && !input.starts_with('+'))
        {
            return Err(PhoneError::Invalid);
        }
        let hint = if input.starts_with('+') {
            None
        } else {
            Some(
                default_region
                    .and_then(|r| r.parse::<country::Id>().ok())
                    .ok_or(PhoneError::Invalid)?,
            )
        };
        let parsed = phonenumber::parse(hint, input).map_err(|_| PhoneError::Invalid)?;
        if parsed.extension().is_some() || !phonenumber::is_valid(&parsed) {
            return Err(PhoneError::Invalid);
        }
        // The metadata misses the region of some valid numbers (Italian landlines, whose
        // leading zero it drops before matching); those belong to the main region of their
        // calling code. Non-geographic codes (+800, +870, ...) stay without a region.
        let region = parsed
            .country()
            .id()
            .or_else(|| {
                phonenumber::metadata::DATABASE
                    .by_code(&parsed.code().value())
                    .and_then(|regions| regions.into_iter().next())
                    .and_then(|m| m.id().parse::<country::Id>().ok())
            })
            .map(|id| id.as_ref().to_ascii_uppercase());
        if !allowed_regions.is_empty()
            && !region.as_deref().is_some_and(|r| {
                allowed_regions
                    .iter()
                    .any(|allowed| allowed.eq_ignore_ascii_case(r))
            })
        {
            return Err(PhoneError::CountryNotAllowed);
        }
        let e164 = parsed.format().mode(Mode::E164).to_string();
        if !e164.starts_with('+') || !e164[1..].bytes().all(|b| b.is_ascii_digit()) {
            return Err(PhoneError::Invalid);
        }
        Ok(PhoneNumber {
            e164,
            calling_code: parsed.code().value(),
            region,
        })
    }

    pub fn e164(&self) -> &str {
        &self.e164
    }

    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// `+1******4567`: the calling code and the last four digits.
    pub fn masked(&self) -> String {
        let code = self.calling_code.to_string();
        let national = self.e164.get(1 + code.len()..).unwrap_or("");
        let keep = national.len().min(4);
        let hidden = national.len() - keep;
        format!(
            "+{code}{}{}",
            "*".repeat(hidden.max(1)),
            &national[national.len() - keep..]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<PhoneNumber, PhoneError> {
        PhoneNumber::parse(s, None, &[])
    }

    #[test]
    fn numbers_are_normalised_to_e164() {
        for input in [
            "+14155552671",
            "+1 415 555 2671",
            "+1 (415) 555-2671",
            "+1.415.555.2671",
        ] {
            assert_eq!(parse(input).unwrap().e164(), "+14155552671", "{input}");
        }
        let de = parse("+49 30 123456").unwrap();
        assert_eq!(de.e164(), "+4930123456");
        assert_eq!(de.region(), Some("DE"));
        assert_eq!(
            PhoneNumber::parse("030 123456", Some("DE"), &[])
                .unwrap()
                .e164(),
            "+4930123456"
        );
        assert_eq!(
            PhoneNumber::parse("(415) 555-2671", Some("US"), &[])
                .unwrap()
                .e164(),
            "+14155552671"
        );
    }

    #[test]
    fn bad_numbers_are_rejected() {
        for input in [
            "",
            "4155552671",
            "+1",
            "+1 415 555",
            "+1 415 555 26711111",
            "+999 123456789",
            "1-800-FLOWERS",
            "+1 415 555 2671 ext. 12",
            "tel:+14155552671",
            "+1+4155552671",
            "1+4155552671",
            "+1 415\n555 2671",
            &"9".repeat(40),
        ] {
            assert_eq!(parse(input), Err(PhoneError::Invalid), "{input:?}");
        }
        // A national number needs a configured default region.
        assert_eq!(parse("030 123456"), Err(PhoneError::Invalid));
    }

    #[test]
    fn allowed_regions_restrict_countries() {
        let allowed = vec!["de".to_owned(), "AT".to_owned()];
        assert!(PhoneNumber::parse("+49 30 123456", None, &allowed).is_ok());
        assert_eq!(
            PhoneNumber::parse("+14155552671", None, &allowed),
            Err(PhoneError::CountryNotAllowed)
        );
    }

    #[test]
    fn masking_keeps_calling_code_and_last_four() {
        let n = parse("+14155554567").unwrap();
        assert_eq!(n.masked(), "+1******4567");
        assert!(!format!("{n:?}").contains("555"));
        assert_eq!(parse("+4930123456").unwrap().masked(), "+49****3456");
    }

    #[test]
    fn every_geographic_number_has_its_region() {
        for (number, region) in [
            ("+39 06 1234 5678", Some("IT")),
            ("+39 347 123 4567", Some("IT")),
            ("+1 416 555 0100", Some("CA")),
            ("+1 876 555 0100", Some("JM")),
            ("+7 7172 123456", Some("KZ")),
            ("+870 773 111 632", None),
            ("+800 1234 5678", None),
        ] {
            assert_eq!(parse(number).unwrap().region(), region, "{number}");
        }
    }

    #[test]
    fn regions_are_recognised() {
        assert!(known_region("US"));
        assert!(known_region("DE"));
        assert!(!known_region("XX"));
        assert!(!known_region("USA"));
    }
}

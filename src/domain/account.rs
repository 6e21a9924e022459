//! Validated account fields.

use super::ids::looks_like;

/// The platform's own user id: 1–255 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalId(String);

impl ExternalId {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if s.trim().is_empty() {
            return Err("external_id must not be empty");
        }
        if s.chars().count() > 255 {
            return Err("external_id must be at most 255 characters");
        }
        if s.chars().any(char::is_control) {
            return Err("external_id must not contain control characters");
        }
        Ok(ExternalId(s.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// An email address, syntax-checked (RFC 5322 addr-spec) and kept as given, domain lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let s = s.trim();
        if s.len() > 254 {
            return Err("email must be at most 254 characters");
        }
        let parsed: email_address::EmailAddress =
            s.parse().map_err(|_| "email is not a valid address")?;
        if parsed.display_part() != ""
            || !parsed.domain().contains('.') && parsed.domain() != "localhost"
        {
            return Err("email is not a valid address");
        }
        Ok(Email(format!(
            "{}@{}",
            parsed.local_part(),
            parsed.domain().to_ascii_lowercase()
        )))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `j***@example.org`: enough to recognise it, not enough to learn it.
    pub fn masked(&self) -> String {
        mask_email(&self.0)
    }
}

pub fn mask_email(email: &str) -> String {
    // The last `@`: a quoted local part may hold one (`"a@b"@example.org`), a domain never.
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// A display name: at most 200 characters, no control characters; blank means none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(s: &str) -> Result<Option<Self>, &'static str> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(None);
        }
        if s.chars().count() > 200 {
            return Err("display_name must be at most 200 characters");
        }
        if s.chars().any(char::is_control) {
            return Err("display_name must not contain control characters");
        }
        Ok(Some(DisplayName(s.to_owned())))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// An account id as Vouch issues it (`acc_` and 32 hex digits). Anything else names no account,
/// so it is turned away before a query.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(String);

impl AccountId {
    pub const PREFIX: &'static str = "acc";

    /// Anything that is not an id Vouch could have issued names no account.
    pub fn parse(s: &str) -> Result<Self, UnknownAccount> {
        if looks_like(Self::PREFIX, s) {
            Ok(AccountId(s.to_owned()))
        } else {
            Err(UnknownAccount)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// No account has this id (it is not even shaped like one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no account with this id")]
pub struct UnknownAccount;

impl std::fmt::Display for AccountId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for AccountId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum AccountStatus {
    Active,
    Suspended,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_shows_only_the_first_character_even_with_a_quoted_at() {
        // Found by the email_parse fuzz target: the local part was cut at its own `@`.
        let email = Email::parse(r#""a b/@Example"@Ep.ORG"#).unwrap();
        assert_eq!(email.masked(), "\"***@ep.org");
        assert_eq!(mask_email("ann@example.org"), "a***@example.org");
    }

    #[test]
    fn external_ids() {
        assert!(ExternalId::parse("user-42").is_ok());
        assert!(ExternalId::parse("").is_err());
        assert!(ExternalId::parse("   ").is_err());
        assert!(ExternalId::parse(&"x".repeat(255)).is_ok());
        assert!(ExternalId::parse(&"x".repeat(256)).is_err());
        assert!(ExternalId::parse("a\u{0}b").is_err());
    }

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse("Ann@Example.ORG").unwrap().as_str(),
            "Ann@example.org"
        );
        for bad in [
            "",
            "plain",
            "a@",
            "@b.org",
            "a b@c.org",
            "Ann <ann@example.org>",
            "a@nodot",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Email::parse("ann@example.org").unwrap().masked(),
            "a***@example.org"
        );
    }

    #[test]
    fn display_names() {
        assert_eq!(
            DisplayName::parse("  Ann ")
                .unwrap()
                .map(DisplayName::into_inner),
            Some("Ann".into())
        );
        assert_eq!(DisplayName::parse("").unwrap(), None);
        assert!(DisplayName::parse(&"x".repeat(201)).is_err());
    }

    #[test]
    fn account_ids() {
        let id = super::super::ids::new_id(AccountId::PREFIX);
        assert_eq!(AccountId::parse(&id).map(AccountId::into_inner), Ok(id));
        assert_eq!(AccountId::parse("acc_nothex"), Err(UnknownAccount));
        assert!(AccountId::parse("exc_0192f5c8a3b47d2e9c1f0a6b5d4e3c2b").is_err());
        assert!(AccountId::parse("acc_0192f5c8a3b47d2e9c1f0a6b5d4e3c2b").is_ok());
    }
}

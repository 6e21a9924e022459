//! Settings that start fine but are probably not what a deployment wants: warned about at
//! start, not refused (each is right for someone developing on their own machine).

use std::net::SocketAddr;

use super::Settings;

/// `tokens.issuer` as `config/default.toml` ships it.
pub const DEFAULT_ISSUER: &str = "http://localhost:8080";

/// What to warn about for `settings` once the listener is bound to `bound`, one message each.
pub fn startup_warnings(settings: &Settings, bound: SocketAddr) -> Vec<String> {
    let mut warnings = Vec::new();
    if settings.delivery.dev_log_codes {
        warnings.push(
            "delivery.dev_log_codes is on: verification codes are written to the log whenever \
             no email or SMS provider is configured; development only, never in production"
                .to_owned(),
        );
    }
    if settings.email.subject.is_some() {
        warnings.push(
            "email.subject is no longer used: subjects are written in each recipient's language \
             from src/delivery/locales/ and name delivery.service_name; remove email.subject"
                .to_owned(),
        );
    }
    // The default issuer names this very address on the default port; anywhere else, verifiers
    // that check `iss` against the URL they reach Vouch at would refuse every token.
    let default_address = bound.ip().is_loopback() && bound.port() == 8080;
    if settings.tokens.issuer == DEFAULT_ISSUER && !default_address {
        warnings.push(format!(
            "tokens.issuer is left at its default ({DEFAULT_ISSUER}) while listening on {bound}: \
             tokens and status list URIs name {DEFAULT_ISSUER}, so verifiers that check `iss` \
             against this service's real URL refuse them; set tokens.issuer (VOUCH_TOKENS__ISSUER) \
             to the URL meeting servers use"
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_defaults_on_the_default_address_warn_of_nothing() {
        let s = Settings::defaults();
        assert_eq!(s.tokens.issuer, DEFAULT_ISSUER);
        assert!(startup_warnings(&s, addr("127.0.0.1:8080")).is_empty());
        assert!(startup_warnings(&s, addr("[::1]:8080")).is_empty());
    }

    #[test]
    fn dev_log_codes_warns() {
        let mut s = Settings::defaults();
        s.delivery.dev_log_codes = true;
        let w = startup_warnings(&s, addr("127.0.0.1:8080"));
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("delivery.dev_log_codes"), "{w:?}");
    }

    #[test]
    fn a_leftover_email_subject_warns_that_it_is_unused() {
        let mut s = Settings::defaults();
        s.email.subject = Some("Your verification code".into());
        let w = startup_warnings(&s, addr("127.0.0.1:8080"));
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("email.subject is no longer used"), "{w:?}");
    }

    #[test]
    fn the_default_issuer_on_another_address_warns() {
        let mut s = Settings::defaults();
        for bound in ["0.0.0.0:8080", "10.0.0.5:443", "127.0.0.1:9000"] {
            let w = startup_warnings(&s, addr(bound));
            assert_eq!(w.len(), 1, "{bound}");
            assert!(
                w[0].contains("tokens.issuer") && w[0].contains(bound),
                "{w:?}"
            );
        }
        s.tokens.issuer = "https://vouch.example.org".into();
        assert!(startup_warnings(&s, addr("0.0.0.0:8080")).is_empty());
    }
}

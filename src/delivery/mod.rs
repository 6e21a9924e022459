//! Delivering verification codes: the outbox worker, email over SMTP (lettre) and SMS through a
//! Twilio-compatible Messages API (reqwest). Without a provider configured, a log transport
//! writes one masked line per message instead (the code only with `delivery.dev_log_codes`).

pub mod email;
pub mod gsm7;
pub mod locale;
pub mod sms;
pub mod worker;

use std::{sync::Arc, time::Duration};

use fluent_bundle::FluentArgs;
use tokio::sync::Notify;

use self::locale::{Catalog, Locale};

use crate::{
    config::{ConfigError, Settings},
    domain::verification::{Channel, Code},
};

const TEXT_TEMPLATE: &str = include_str!("templates/code.txt");
const HTML_TEMPLATE: &str = include_str!("templates/code.html");

/// One message to send.
pub struct Outgoing<'a> {
    pub channel: Channel,
    /// The raw address or E.164 number: used for sending, never logged.
    pub to: &'a str,
    /// How logs and errors refer to the recipient.
    pub masked: &'a str,
    pub code: &'a Code,
    /// Minutes until the code expires, as told to the recipient.
    pub minutes: i64,
    /// The language to write in.
    pub locale: Locale,
}

/// What became of a message that did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Handed to the provider (SMTP server or SMS API), with the provider's id when it gives
    /// one.
    Delivered(Option<String>),
    /// No provider is configured: a log transport wrote a line instead, and nobody received
    /// anything.
    Logged,
}

/// Why a delivery failed. The reason is short and never holds provider text, which may echo
/// the recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryError {
    /// Worth another try later (provider down, timeout, 5xx, 429).
    Retryable(String),
    /// Will fail again (rejected recipient, bad credentials, 4xx).
    Permanent(String),
}

impl DeliveryError {
    pub fn reason(&self) -> &str {
        match self {
            DeliveryError::Retryable(r) | DeliveryError::Permanent(r) => r,
        }
    }
}

/// A verification email: subject, plain text and HTML, in one language.
pub struct Email {
    pub subject: String,
    pub text: String,
    pub html: String,
    /// What `Content-Language` says.
    pub language: &'static str,
}

/// The wording of verification messages in every language, with the service's name in it.
pub struct Messages {
    catalog: Catalog,
    service: String,
}

impl Messages {
    pub fn new(service: &str) -> Result<Messages, String> {
        Ok(Messages {
            catalog: Catalog::load()?,
            service: service.to_owned(),
        })
    }

    fn args<'a>(&'a self, code: &'a Code, minutes: i64) -> FluentArgs<'a> {
        let mut args = FluentArgs::new();
        args.set("service", self.service.as_str());
        // A string, not a number: leading zeros stay.
        args.set("code", code.expose());
        args.set("minutes", minutes);
        args
    }

    fn text(
        &self,
        locale: Locale,
        id: &str,
        args: &FluentArgs<'_>,
    ) -> Result<String, DeliveryError> {
        self.catalog
            .message(locale, id, args)
            .ok_or_else(|| DeliveryError::Permanent(format!("message text `{id}` missing")))
    }

    pub fn email(&self, locale: Locale, code: &Code, minutes: i64) -> Result<Email, DeliveryError> {
        let args = self.args(code, minutes);
        let part = |id: &str| self.text(locale, id, &args);
        let subject = part("email-subject")?;
        let parts = [
            ("intro", part("email-intro")?),
            ("expiry", part("email-expiry")?),
            ("enter", part("email-enter")?),
            ("ignore", part("email-ignore")?),
            ("never_share", part("email-never-share")?),
            ("code", code.expose().to_owned()),
        ];
        let text = fill(TEXT_TEMPLATE, &parts, |s| s.to_owned());
        let dir = if locale.is_rtl() { "rtl" } else { "ltr" };
        let mut html_parts = parts.to_vec();
        html_parts.extend([
            ("lang", locale.tag().to_owned()),
            ("dir", dir.to_owned()),
            ("subject", subject.clone()),
        ]);
        let html = fill(HTML_TEMPLATE, &html_parts, escape_html);
        Ok(Email {
            subject,
            text,
            html,
            language: locale.tag(),
        })
    }

    pub fn sms(&self, locale: Locale, code: &Code, minutes: i64) -> Result<String, DeliveryError> {
        self.text(locale, "sms-body", &self.args(code, minutes))
    }
}

/// `template` with each `{name}` replaced by its value (through `escape`), in one pass: a
/// value that itself holds `{...}` (a service name, a translation) stays as it is.
fn fill(template: &str, values: &[(&str, String)], escape: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find('}').and_then(|close| {
            let name = &after[..close];
            values
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (escape(v), close))
        });
        match value {
            Some((value, close)) => {
                out.push_str(&value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The line a log transport writes: masked recipient; the code only in development mode, and
/// then the line says which setting put it there, so a reader knows why a code is in the log.
pub fn log_line(channel: Channel, masked: &str, code: Option<&Code>) -> String {
    let setting = match channel {
        Channel::Email => "email.smtp_url",
        Channel::Sms => "sms.twilio_base_url",
    };
    match code {
        Some(code) => format!(
            "{} code for {masked}: {} (not sent: {setting} is unset; the code is logged because \
             delivery.dev_log_codes = true, for development only)",
            channel.as_str(),
            code.expose()
        ),
        None => format!(
            "{} code for {masked} not sent: {setting} is unset (log transport; \
             delivery.dev_log_codes = true would log the code, for development only)",
            channel.as_str()
        ),
    }
}

/// The transports and the worker's wake-up call.
pub struct Delivery {
    email: email::EmailTransport,
    sms: sms::SmsTransport,
    messages: Messages,
    notify: Arc<Notify>,
    timeout: Duration,
}

impl Delivery {
    pub fn from_settings(settings: &Settings) -> Result<Delivery, ConfigError> {
        let timeout = Duration::from_secs(settings.delivery.timeout_seconds);
        Ok(Delivery {
            email: email::EmailTransport::from_settings(settings, timeout)?,
            sms: sms::SmsTransport::from_settings(settings, timeout)?,
            // The texts are compiled in (and tested); this fails only on a broken build.
            messages: Messages::new(&settings.delivery.service_name).map_err(|message| {
                ConfigError::Invalid {
                    key: "delivery.service_name",
                    message,
                }
            })?,
            notify: Arc::new(Notify::new()),
            timeout,
        })
    }

    /// Wake the worker: a message was just queued.
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    pub(crate) fn notifier(&self) -> Arc<Notify> {
        self.notify.clone()
    }

    /// Send one message: delivered to a provider (with its id for it, when it gives one), or
    /// only logged when none is configured.
    pub async fn send(&self, message: &Outgoing<'_>) -> Result<Sent, DeliveryError> {
        // The transports have their own timeouts; this bounds anything they miss.
        let attempt = async {
            match message.channel {
                Channel::Email => self.email.send(message, &self.messages).await,
                Channel::Sms => self.sms.send(message, &self.messages).await,
            }
        };
        match tokio::time::timeout(self.timeout + Duration::from_secs(5), attempt).await {
            Ok(result) => result,
            Err(_) => Err(DeliveryError::Retryable("timeout".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SERVICE_NAME_MAX_CHARS;

    /// Every lifetime a code can be told to have: one minute up to the longest SMS TTL
    /// (`verification.sms_code_ttl_seconds` ≤ 86400), across the plural forms.
    const MINUTES: [i64; 10] = [1, 2, 3, 10, 11, 30, 100, 102, 999, 1440];

    fn code() -> Code {
        Code::parse("042517").unwrap()
    }

    #[test]
    fn every_locale_renders_email_and_sms_with_the_code() {
        let messages = Messages::new("Vouch").unwrap();
        for locale in Locale::all() {
            let tag = locale.tag();
            let email = messages.email(locale, &code(), 30).unwrap();
            assert_eq!(email.language, tag);
            assert!(email.subject.contains("Vouch"), "{tag}: {}", email.subject);
            assert!(
                !email.subject.contains("042517"),
                "{tag}: no code in the subject"
            );
            assert!(email.text.contains("042517"), "{tag}: {}", email.text);
            assert!(
                email.text.contains("30"),
                "{tag}: the lifetime: {}",
                email.text
            );
            assert!(email.html.contains("042517"), "{tag}: {}", email.html);
            assert!(
                email.html.contains(&format!("<html lang=\"{tag}\"")),
                "{tag}: {}",
                email.html
            );
            for text in [&email.subject, &email.text, &email.html] {
                // No placeholder left over, no Fluent isolation marks.
                assert!(
                    !text.contains(['{', '}', '\u{2068}', '\u{2069}']),
                    "{tag}: {text}"
                );
            }
            let sms = messages.sms(locale, &code(), 10).unwrap();
            assert!(
                sms.contains("042517") && sms.contains("Vouch"),
                "{tag}: {sms}"
            );
        }
    }

    #[test]
    fn each_language_writes_its_own_words() {
        let messages = Messages::new("Vouch").unwrap();
        let subject = |tag| {
            messages
                .email(Locale::negotiate(Some(tag)), &code(), 30)
                .unwrap()
                .subject
        };
        assert_eq!(subject("en"), "Your Vouch verification code");
        assert_eq!(subject("de"), "Ihr Bestätigungscode für Vouch");
        assert_eq!(subject("fr"), "Votre code de vérification Vouch");
        assert_eq!(subject("es"), "Tu código de verificación de Vouch");
        assert_eq!(subject("pt-BR"), "Seu código de verificação do Vouch");
        assert_eq!(subject("ja"), "Vouch の認証コード");
        assert_eq!(subject("ar"), "رمز التحقق الخاص بك من Vouch");
        let en = messages.email(Locale::ENGLISH, &code(), 1).unwrap();
        assert!(en.text.contains("It expires in 1 minute."), "{}", en.text);
        let ar = messages
            .email(Locale::negotiate(Some("ar")), &code(), 2)
            .unwrap();
        assert!(ar.text.contains("دقيقتين"), "Arabic dual: {}", ar.text);
    }

    #[test]
    fn sms_say_who_sent_the_code_and_that_nobody_asks_for_it() {
        let messages = Messages::new("Vouch").unwrap();
        let sms = |tag| {
            messages
                .sms(Locale::negotiate(Some(tag)), &code(), 10)
                .unwrap()
        };
        assert_eq!(
            sms("en"),
            "Your Vouch verification code is: 042517. It expires in 10 minutes. Don't share it \
             with anyone; we will never ask you for it."
        );
        assert!(sms("de").contains("wir fragen Sie nie danach"));
        assert!(sms("fr").contains("nous ne vous le demanderons jamais"));
        assert!(sms("es").contains("nunca te la vamos a pedir"));
        assert!(sms("pt-BR").contains("nunca vamos pedi-lo"));
        assert!(sms("ja").contains("当社から聞くことはありません"));
        assert!(sms("ar").contains("لن نطلبه منك"));
    }

    #[test]
    fn sms_stay_one_segment_with_the_longest_service_name() {
        let longest = [
            "Acme Secure Meetings".to_owned(),
            "W".repeat(SERVICE_NAME_MAX_CHARS),
            "ÄÖÜßÆØÅÉÑäöüæøåéèùì"
                .chars()
                .cycle()
                .take(SERVICE_NAME_MAX_CHARS)
                .collect(),
        ];
        for name in &longest {
            assert_eq!(name.chars().count(), SERVICE_NAME_MAX_CHARS);
            let messages = Messages::new(name).unwrap();
            for locale in Locale::all() {
                for minutes in MINUTES {
                    let sms = messages.sms(locale, &code(), minutes).unwrap();
                    match locale.tag() {
                        // Latin scripts: every character in GSM-7, at most 160 septets.
                        "en" | "de" | "fr" | "es" | "pt-BR" => {
                            let septets = gsm7::septets(&sms)
                                .unwrap_or_else(|| panic!("{}: not GSM-7: {sms}", locale.tag()));
                            assert!(
                                septets <= gsm7::SEGMENT_SEPTETS,
                                "{}: {septets} septets: {sms}",
                                locale.tag()
                            );
                        }
                        // UCS-2: at most 70 UTF-16 units.
                        _ => {
                            let units = sms.encode_utf16().count();
                            assert!(
                                units <= gsm7::SEGMENT_UCS2_UNITS,
                                "{}: {units} units: {sms}",
                                locale.tag()
                            );
                        }
                    }
                    assert!(gsm7::fits_one_segment(&sms));
                }
            }
        }
    }

    #[test]
    fn arabic_html_reads_right_to_left_with_the_code_left_to_right() {
        let messages = Messages::new("Vouch").unwrap();
        let ar = messages
            .email(Locale::negotiate(Some("ar-EG")), &code(), 30)
            .unwrap();
        assert!(
            ar.html.contains(r#"<html lang="ar" dir="rtl">"#),
            "{}",
            ar.html
        );
        assert!(ar.html.contains(r#"<p dir="ltr""#) && ar.html.contains("<bdi>042517</bdi>"));
        let de = messages
            .email(Locale::negotiate(Some("de")), &code(), 30)
            .unwrap();
        assert!(
            de.html.contains(r#"<html lang="de" dir="ltr">"#),
            "{}",
            de.html
        );
    }

    #[test]
    fn the_service_name_is_escaped_in_html_and_never_read_as_a_placeholder() {
        let messages = Messages::new("A&B <{code}>").unwrap();
        let email = messages.email(Locale::ENGLISH, &code(), 30).unwrap();
        assert!(
            email.html.contains("A&amp;B &lt;{code}&gt;"),
            "{}",
            email.html
        );
        assert!(!email.html.contains("<{code}>"));
        assert!(email
            .text
            .contains("Your A&B <{code}> verification code is: 042517"));
        assert_eq!(email.subject, "Your A&B <{code}> verification code");
    }

    #[test]
    fn fill_replaces_known_placeholders_once() {
        let values = [("a", "{b}".to_owned()), ("b", "x".to_owned())];
        assert_eq!(
            fill("{a}-{b}-{c}-{", &values, |s| s.to_owned()),
            "{b}-x-{c}-{"
        );
    }

    #[test]
    fn log_lines_show_the_code_only_in_dev_mode() {
        let code = Code::parse("042517").unwrap();
        let line = log_line(Channel::Sms, "+1******2671", None);
        assert!(
            line.contains("+1******2671") && !line.contains("042517"),
            "{line}"
        );
        assert!(line.contains("sms.twilio_base_url is unset"), "{line}");
        let dev = log_line(Channel::Email, "a***@example.org", Some(&code));
        assert!(dev.contains("042517"), "{dev}");
        // Why the code is there, by the setting's name.
        assert!(dev.contains("delivery.dev_log_codes = true"), "{dev}");
        assert!(dev.contains("email.smtp_url is unset"), "{dev}");
    }
}

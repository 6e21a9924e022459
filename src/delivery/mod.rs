//! Delivering verification codes: the outbox worker, email over SMTP (lettre) and SMS through a
//! Twilio-compatible Messages API (reqwest). Without a provider configured, a log transport
//! writes one masked line per message instead (the code only with `delivery.dev_log_codes`).

pub mod email;
pub mod sms;
pub mod worker;

use std::{sync::Arc, time::Duration};

use tokio::sync::Notify;

use crate::{
    config::{ConfigError, Settings},
    domain::verification::{Channel, Code},
};

const TEXT_TEMPLATE: &str = include_str!("templates/code.txt");
const HTML_TEMPLATE: &str = include_str!("templates/code.html");
const SMS_TEMPLATE: &str = include_str!("templates/code.sms.txt");

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

fn render(template: &str, code: &Code, minutes: i64) -> String {
    template
        .replace("{code}", code.expose())
        .replace("{minutes}", &minutes.to_string())
}

pub fn email_bodies(code: &Code, minutes: i64) -> (String, String) {
    (
        render(TEXT_TEMPLATE, code, minutes),
        render(HTML_TEMPLATE, code, minutes),
    )
}

pub fn sms_body(code: &Code, minutes: i64) -> String {
    render(SMS_TEMPLATE.trim_end(), code, minutes)
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
    notify: Arc<Notify>,
    timeout: Duration,
}

impl Delivery {
    pub fn from_settings(settings: &Settings) -> Result<Delivery, ConfigError> {
        let timeout = Duration::from_secs(settings.delivery.timeout_seconds);
        Ok(Delivery {
            email: email::EmailTransport::from_settings(settings, timeout)?,
            sms: sms::SmsTransport::from_settings(settings, timeout)?,
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
                Channel::Email => self.email.send(message).await,
                Channel::Sms => self.sms.send(message).await,
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

    #[test]
    fn templates_carry_the_code_and_its_lifetime() {
        let code = Code::parse("042517").unwrap();
        let (text, html) = email_bodies(&code, 30);
        assert!(
            text.contains("042517") && text.contains("30 minutes"),
            "{text}"
        );
        assert!(html.contains("042517") && html.contains("<html"), "{html}");
        assert!(!text.contains('{') && !html.contains("{code}"));
        let sms = sms_body(&code, 10);
        assert!(
            sms.contains("042517") && sms.contains("10 minutes"),
            "{sms}"
        );
        assert!(sms.len() <= 160, "one SMS segment: {}", sms.len());
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

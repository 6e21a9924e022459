//! Email over SMTP with lettre: `email.smtp_url` in lettre's URL syntax (`smtp://` plain,
//! `?tls=required` STARTTLS, `smtps://` TLS, credentials in the URL). Unset: log transport.

use std::time::Duration;

use lettre::{
    message::{
        header::{Header, HeaderName, HeaderValue},
        Mailbox, MultiPart,
    },
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};
use secrecy::ExposeSecret;

use super::{log_line, DeliveryError, Messages, Outgoing, Sent};
use crate::config::{ConfigError, Settings};

pub enum EmailTransport {
    Smtp {
        transport: Box<AsyncSmtpTransport<Tokio1Executor>>,
        from: Mailbox,
    },
    Log {
        dev_codes: bool,
    },
}

impl EmailTransport {
    pub fn from_settings(settings: &Settings, timeout: Duration) -> Result<Self, ConfigError> {
        let invalid = |key: &'static str, message: String| ConfigError::Invalid { key, message };
        let Some(url) = settings
            .email
            .smtp_url
            .as_ref()
            .map(|u| u.expose_secret())
            .filter(|u| !u.is_empty())
        else {
            return Ok(EmailTransport::Log {
                dev_codes: settings.delivery.dev_log_codes,
            });
        };
        // lettre's errors here do not echo the URL (which may hold a password).
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| invalid("email.smtp_url", format!("not usable: {e}")))?
            .timeout(Some(timeout))
            .build();
        let from = settings
            .email
            .from
            .parse::<Mailbox>()
            .map_err(|e| invalid("email.from", e.to_string()))?;
        Ok(EmailTransport::Smtp {
            transport: Box::new(transport),
            from,
        })
    }

    pub async fn send(
        &self,
        message: &Outgoing<'_>,
        messages: &Messages,
    ) -> Result<Sent, DeliveryError> {
        match self {
            EmailTransport::Log { dev_codes } => {
                tracing::info!(
                    "{}",
                    log_line(
                        message.channel,
                        message.masked,
                        dev_codes.then_some(message.code)
                    )
                );
                Ok(Sent::Logged)
            }
            EmailTransport::Smtp { transport, from } => {
                let to = message
                    .to
                    .parse::<Mailbox>()
                    .map_err(|_| DeliveryError::Permanent("invalid recipient address".into()))?;
                let content = messages.email(message.locale, message.code, message.minutes)?;
                let email = Message::builder()
                    .from(from.clone())
                    .to(to)
                    .subject(content.subject)
                    .header(ContentLanguage(content.language))
                    .multipart(MultiPart::alternative_plain_html(
                        content.text,
                        content.html,
                    ))
                    .map_err(|e| DeliveryError::Permanent(format!("message: {e}")))?;
                transport.send(email).await.map_err(classify)?;
                Ok(Sent::Delivered(None))
            }
        }
    }
}

/// `Content-Language` (RFC 3282): the language the message is written in. Its value is one of
/// the locale tags (ASCII letters, digits and `-`), so it needs no encoding.
#[derive(Debug, Clone, Copy)]
struct ContentLanguage(&'static str);

impl Header for ContentLanguage {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Content-Language")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let tag = s.trim();
        super::locale::Locale::all()
            .find(|l| l.tag().eq_ignore_ascii_case(tag))
            .map(|l| ContentLanguage(l.tag()))
            .ok_or_else(|| "not a language messages are written in".into())
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.to_owned())
    }
}

/// SMTP 5xx and client-side errors will not get better; connection trouble, timeouts and 4xx
/// replies may. Only the reply code is kept: reply text may echo the recipient.
fn classify(err: lettre::transport::smtp::Error) -> DeliveryError {
    let code = err.status().map(|c| format!(" {c}")).unwrap_or_default();
    if err.is_permanent() {
        DeliveryError::Permanent(format!("smtp permanent{code}"))
    } else if err.is_transient() {
        DeliveryError::Retryable(format!("smtp transient{code}"))
    } else if err.is_timeout() {
        DeliveryError::Retryable("smtp timeout".into())
    } else if err.is_tls() {
        DeliveryError::Retryable("smtp tls".into())
    } else if err.is_client() {
        DeliveryError::Permanent("smtp client".into())
    } else {
        DeliveryError::Retryable("smtp connection".into())
    }
}

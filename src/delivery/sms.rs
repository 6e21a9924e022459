//! SMS through a Twilio-compatible Messages API: `POST {base}/2010-04-01/Accounts/{sid}/
//! Messages.json` with form fields `To`, `From`, `Body` and basic auth (sid, token). 4xx is a
//! permanent failure (except 408/429), 5xx and transport errors are retried. Unset base URL:
//! log transport.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::{log_line, DeliveryError, Messages, Outgoing, Sent};
use crate::config::{ConfigError, Settings};

pub enum SmsTransport {
    Twilio {
        client: reqwest::Client,
        url: String,
        account_sid: String,
        auth_token: SecretString,
        from: String,
    },
    Log {
        dev_codes: bool,
    },
}

impl SmsTransport {
    pub fn from_settings(settings: &Settings, timeout: Duration) -> Result<Self, ConfigError> {
        let sms = &settings.sms;
        let Some(base) = sms.twilio_base_url.as_deref().filter(|b| !b.is_empty()) else {
            return Ok(SmsTransport::Log {
                dev_codes: settings.delivery.dev_log_codes,
            });
        };
        let invalid = |key: &'static str, message: &str| ConfigError::Invalid {
            key,
            message: message.to_owned(),
        };
        let account_sid = sms
            .twilio_account_sid
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid("sms.twilio_account_sid", "must be set"))?;
        let auth_token = sms
            .twilio_auth_token
            .clone()
            .ok_or_else(|| invalid("sms.twilio_auth_token", "must be set"))?;
        let from = sms
            .from
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid("sms.from", "must be set"))?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| invalid("sms.twilio_base_url", &format!("HTTP client: {e}")))?;
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            base.trim_end_matches('/'),
            account_sid
        );
        Ok(SmsTransport::Twilio {
            client,
            url,
            account_sid,
            auth_token,
            from,
        })
    }

    pub async fn send(
        &self,
        message: &Outgoing<'_>,
        messages: &Messages,
    ) -> Result<Sent, DeliveryError> {
        match self {
            SmsTransport::Log { dev_codes } => {
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
            SmsTransport::Twilio {
                client,
                url,
                account_sid,
                auth_token,
                from,
            } => {
                let body = messages.sms(message.locale, message.code, message.minutes)?;
                let res = crate::telemetry::traces::inject(client.post(url))
                    .basic_auth(account_sid, Some(auth_token.expose_secret()))
                    .form(&[
                        ("To", message.to),
                        ("From", from.as_str()),
                        ("Body", body.as_str()),
                    ])
                    .send()
                    .await
                    .map_err(|e| {
                        DeliveryError::Retryable(
                            if e.is_timeout() {
                                "sms timeout"
                            } else if e.is_connect() {
                                "sms connection"
                            } else {
                                "sms request"
                            }
                            .into(),
                        )
                    })?;
                let status = res.status();
                // Twilio's error body: {"code": 21211, "message": "...", "status": 400}; only
                // the numeric code is kept (the message echoes the number).
                let body: serde_json::Value = res.json().await.unwrap_or_default();
                if status.is_success() {
                    return Ok(Sent::Delivered(body["sid"].as_str().map(str::to_owned)));
                }
                let reason = match body["code"].as_u64() {
                    Some(code) => format!("sms http {} (provider code {code})", status.as_u16()),
                    None => format!("sms http {}", status.as_u16()),
                };
                let retryable = status.is_server_error()
                    || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                    || status == reqwest::StatusCode::REQUEST_TIMEOUT
                    || !status.is_client_error();
                Err(if retryable {
                    DeliveryError::Retryable(reason)
                } else {
                    DeliveryError::Permanent(reason)
                })
            }
        }
    }
}

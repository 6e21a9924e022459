//! Local stand-ins for the message providers, so delivery is tested over the real protocols:
//! an SMTP server (speaking enough SMTP for lettre) that keeps what it receives, and a
//! Twilio-compatible Messages API that records each request's wire format.

use std::{
    sync::{
        atomic::{AtomicU16, AtomicU8, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::Engine as _;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
};

/// Poll `check` until it returns `Some`, or fail after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// The message as received after DATA (dot-unstuffed).
    pub data: String,
}

impl Mail {
    /// The message as a mail reader sees it: headers decoded (RFC 2047), parts decoded
    /// (quoted-printable, base64).
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(self.data.as_bytes())
            .unwrap_or_else(|| panic!("not a message:\n{}", self.data))
    }

    /// The decoded subject.
    pub fn subject(&self) -> String {
        self.parsed().subject().unwrap_or_default().to_owned()
    }

    /// A header's value as sent.
    pub fn header(&self, name: &str) -> Option<String> {
        self.parsed()
            .header_raw(name.to_owned())
            .map(|v| v.trim().to_owned())
    }

    /// The decoded plain-text part.
    pub fn text(&self) -> String {
        self.parsed()
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_else(|| panic!("no text part:\n{}", self.data))
    }

    /// The decoded HTML part.
    pub fn html(&self) -> String {
        self.parsed()
            .body_html(0)
            .map(|t| t.into_owned())
            .unwrap_or_else(|| panic!("no HTML part:\n{}", self.data))
    }

    /// The six-digit code in the plain-text part, whatever language it is written in.
    pub fn code(&self) -> String {
        six_digits(&self.text()).unwrap_or_else(|| panic!("no code in the message:\n{}", self.data))
    }
}

/// The first run of exactly six ASCII digits in `text`.
pub fn six_digits(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() == 6)
        .map(str::to_owned)
}

const SMTP_ACCEPT: u8 = 0;
const SMTP_DOWN: u8 = 1;
const SMTP_REJECT_RCPT: u8 = 2;

/// An SMTP server on 127.0.0.1 that accepts every message (or, when told, answers `421` as if
/// down, or rejects recipients with `550`).
pub struct SmtpSink {
    pub port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
    mode: Arc<AtomicU8>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let sink = SmtpSink {
            port,
            mails: Arc::default(),
            mode: Arc::new(AtomicU8::new(SMTP_ACCEPT)),
        };
        let (mails, mode) = (sink.mails.clone(), sink.mode.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (mails, mode) = (mails.clone(), mode.load(Ordering::SeqCst));
                tokio::spawn(async move {
                    let _ = smtp_session(stream, mails, mode).await;
                });
            }
        });
        sink
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn set_down(&self, down: bool) {
        let mode = if down { SMTP_DOWN } else { SMTP_ACCEPT };
        self.mode.store(mode, Ordering::SeqCst);
    }

    pub fn reject_recipients(&self) {
        self.mode.store(SMTP_REJECT_RCPT, Ordering::SeqCst);
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    /// Wait for the `n`-th message (1-based) and return it.
    pub async fn nth(&self, n: usize) -> Mail {
        eventually(&format!("mail #{n}"), Duration::from_secs(15), || async {
            self.mails().get(n - 1).cloned()
        })
        .await
    }
}

async fn smtp_session(
    stream: tokio::net::TcpStream,
    mails: Arc<Mutex<Vec<Mail>>>,
    mode: u8,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    if mode == SMTP_DOWN {
        write
            .write_all(b"421 4.3.2 sink.test Service not available\r\n")
            .await?;
        return Ok(());
    }
    write
        .write_all(b"220 sink.test ESMTP test sink\r\n")
        .await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if upper.starts_with("HELO") {
            b"250 sink.test\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            // The path alone, without parameters such as BODY=8BITMIME.
            from = command[10..]
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_owned();
            to.clear();
            b"250 2.1.0 Ok\r\n"
        } else if upper.starts_with("RCPT TO:") {
            if mode == SMTP_REJECT_RCPT {
                b"550 5.1.1 Recipient address rejected: user unknown\r\n"
            } else {
                to.push(
                    command[8..]
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_owned(),
                );
                b"250 2.1.5 Ok\r\n"
            }
        } else if upper == "DATA" {
            write
                .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            mails.lock().unwrap().push(Mail {
                from: from.clone(),
                to: to.clone(),
                data,
            });
            b"250 2.0.0 Ok: queued\r\n"
        } else if upper == "QUIT" {
            write.write_all(b"221 2.0.0 Bye\r\n").await?;
            return Ok(());
        } else if upper == "RSET" || upper == "NOOP" {
            b"250 2.0.0 Ok\r\n"
        } else {
            b"502 5.5.2 Command not recognized\r\n"
        };
        write.write_all(reply).await?;
    }
}

/// One request as the fake Twilio API received it.
#[derive(Debug, Clone)]
pub struct SmsRequest {
    pub method: String,
    pub path: String,
    pub content_type: String,
    /// The decoded `user:password` of the basic `Authorization` header.
    pub basic_auth: Option<String>,
    pub form: Vec<(String, String)>,
    /// The W3C `traceparent` header, when the request carried one.
    pub traceparent: Option<String>,
}

impl SmsRequest {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn code(&self) -> String {
        six_digits(self.field("Body").unwrap_or(""))
            .unwrap_or_else(|| panic!("no code in the SMS: {self:?}"))
    }
}

#[derive(Default)]
struct TwilioState {
    requests: Mutex<Vec<SmsRequest>>,
    /// The status to answer with (201 = accepted).
    status: AtomicU16,
}

pub const TWILIO_SID: &str = "ACtest0123456789";
pub const TWILIO_TOKEN: &str = "test-auth-token";
pub const TWILIO_FROM: &str = "+15005550006";

/// A Twilio-compatible Messages API on 127.0.0.1 that records requests and answers with a
/// configurable status.
pub struct FakeTwilio {
    pub base_url: String,
    state: web::Data<TwilioState>,
}

async fn twilio_messages(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<TwilioState>,
) -> HttpResponse {
    let basic_auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let form: Vec<(String, String)> = form_decode(&body);
    state.requests.lock().unwrap().push(SmsRequest {
        method: req.method().to_string(),
        path: req.path().to_owned(),
        content_type: req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
        basic_auth,
        form,
        traceparent: req
            .headers()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    });
    let status = state.status.load(Ordering::SeqCst);
    let status = actix_web::http::StatusCode::from_u16(status).unwrap();
    if status.is_success() {
        HttpResponse::build(status).json(serde_json::json!({
            "sid": "SM0123456789abcdef0123456789abcdef",
            "status": "queued",
        }))
    } else {
        // Like Twilio, the message echoes the number: Vouch must not store it.
        HttpResponse::build(status).json(serde_json::json!({
            "code": 21211,
            "message": "The 'To' number is not a valid phone number.",
            "status": status.as_u16(),
        }))
    }
}

/// `application/x-www-form-urlencoded` into pairs (`+` is a space, `%XX` a byte).
fn form_decode(body: &[u8]) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 2;
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8(out).unwrap()
    }
    std::str::from_utf8(body)
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

impl FakeTwilio {
    pub async fn start() -> FakeTwilio {
        let state = web::Data::new(TwilioState::default());
        state.status.store(201, Ordering::SeqCst);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let data = state.clone();
        let server = HttpServer::new(move || {
            App::new().app_data(data.clone()).route(
                "/2010-04-01/Accounts/{sid}/Messages.json",
                web::post().to(twilio_messages),
            )
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        FakeTwilio {
            base_url: format!("http://127.0.0.1:{port}"),
            state,
        }
    }

    /// Answer every request with this status from now on.
    pub fn respond_with(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    pub fn requests(&self) -> Vec<SmsRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Wait for the `n`-th request (1-based) and return it.
    pub async fn nth(&self, n: usize) -> SmsRequest {
        eventually(
            &format!("SMS request #{n}"),
            Duration::from_secs(15),
            || async { self.requests().get(n - 1).cloned() },
        )
        .await
    }
}

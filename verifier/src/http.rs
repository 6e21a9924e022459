//! Fetching from Vouch: a timeout on every request, bodies read up to a limit, and the
//! `Cache-Control: max-age` of the answer.

use std::time::Duration;

use reqwest::{header, Client, StatusCode};

pub(crate) struct Fetcher {
    client: Client,
    timeout: Duration,
}

/// A body Vouch answered with.
pub(crate) struct Fetched {
    pub body: Vec<u8>,
    /// `Cache-Control: max-age`, when given (`no-store`/`no-cache` count as 0).
    pub max_age: Option<Duration>,
}

impl Fetcher {
    pub fn new(client: Client, timeout: Duration) -> Fetcher {
        Fetcher { client, timeout }
    }

    /// GET `url` (with `bearer` as the API key), expecting 200 and at most `limit` bytes.
    pub async fn get(
        &self,
        url: &str,
        bearer: Option<&str>,
        limit: usize,
    ) -> Result<Fetched, String> {
        let mut request = self.client.get(url).timeout(self.timeout);
        if let Some(key) = bearer {
            request = request.bearer_auth(key);
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| format!("GET {url}: {}", describe(e)))?;
        if response.status() != StatusCode::OK {
            return Err(format!("GET {url}: status {}", response.status().as_u16()));
        }
        let max_age = response
            .headers()
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age);
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(format!("GET {url}: body larger than {limit} bytes"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("GET {url}: {}", describe(e)))?
        {
            if body.len() + chunk.len() > limit {
                return Err(format!("GET {url}: body larger than {limit} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched { body, max_age })
    }
}

/// reqwest's message names the URL, which the caller already says.
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The `max-age` of a `Cache-Control` value.
pub(crate) fn max_age(value: &str) -> Option<Duration> {
    let mut found = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(Duration::ZERO);
        }
        if let Some(n) = lower.strip_prefix("max-age=") {
            found = n
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_max_age() {
        assert_eq!(
            max_age("public, max-age=300"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(max_age("private,max-age=1"), Some(Duration::from_secs(1)));
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=x"), None);
    }
}

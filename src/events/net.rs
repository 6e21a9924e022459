//! SSRF defences for webhook delivery: which URLs and addresses a receiver may have, checked
//! when an endpoint is created and again on every connection, through a resolver that drops
//! forbidden addresses (so a name that later resolves somewhere else — DNS rebinding — gets
//! nowhere). IP-literal hosts never reach a resolver and are checked directly.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use reqwest::{
    dns::{Addrs, Name, Resolve, Resolving},
    Url,
};

use super::settings::WebhookSettings;

/// How long creating an endpoint waits for its host to resolve.
const CREATE_RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);
const MAX_URL_LEN: usize = 2048;

/// Why a URL was refused: `invalid_url` (not a usable URL) or `url_not_allowed` (a policy).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("{0}")]
    Invalid(&'static str),
    #[error("{0}")]
    NotAllowed(&'static str),
}

/// Whether `ip` is an address the public Internet routes to a receiver: not loopback,
/// private, link-local, unique-local, CGNAT, unspecified, multicast, reserved, documentation
/// or cloud metadata (169.254.169.254, fd00:ec2::254), also when wrapped in an IPv6 mapping.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0 // "this network", 0.0.0.0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || (a == 169 && b == 254) // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && (c == 0 || c == 2)) // IETF protocol, TEST-NET-1
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || a >= 224) // multicast, reserved, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    // NAT64 (64:ff9b::/96) reaches the embedded IPv4 address.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        let o = ip.octets();
        return is_public_v4(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || s[0..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible (deprecated)
        || (s[0] & 0xfe00) == 0xfc00 // unique-local fc00::/7, incl. fd00:ec2::254
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] & 0xff00) == 0xff00 // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0])) // discard-only
}

/// Parse and check an endpoint URL's form: `https://` (or `http://` when allowed), a host, no
/// credentials or fragment. Addresses are checked separately (`check_host`).
pub fn parse_url(raw: &str, settings: &WebhookSettings) -> Result<Url, UrlError> {
    if raw.len() > MAX_URL_LEN {
        return Err(UrlError::Invalid("url must be at most 2048 characters"));
    }
    let url = Url::parse(raw).map_err(|_| UrlError::Invalid("url is not an absolute URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if settings.allow_http => {}
        "http" => {
            return Err(UrlError::NotAllowed(
                "url must be https:// (webhooks.allow_http is off)",
            ))
        }
        _ => return Err(UrlError::Invalid("url must be an https:// URL")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(UrlError::Invalid("url has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Invalid("url must not carry credentials"));
    }
    if url.fragment().is_some() {
        return Err(UrlError::Invalid("url must not have a fragment"));
    }
    Ok(url)
}

/// The host as an IP literal, if it is one.
fn literal_ip(url: &Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

const PRIVATE: &str = "url's host is a loopback, private, link-local or metadata address \
                       (webhooks.allow_private_networks is off)";

/// Check the host's addresses (an IP literal directly, a name by resolving it). A name that
/// does not resolve now is accepted: every connection is checked again.
pub async fn check_host(url: &Url, settings: &WebhookSettings) -> Result<(), UrlError> {
    if settings.allow_private_networks {
        return Ok(());
    }
    if let Some(ip) = literal_ip(url) {
        return if is_public(ip) {
            Ok(())
        } else {
            Err(UrlError::NotAllowed(PRIVATE))
        };
    }
    let Some(host) = url.host_str() else {
        return Err(UrlError::Invalid("url has no host"));
    };
    let port = url.port_or_known_default().unwrap_or(443);
    let lookup = tokio::time::timeout(
        CREATE_RESOLVE_TIMEOUT,
        tokio::net::lookup_host((host.to_owned(), port)),
    )
    .await;
    if let Ok(Ok(addrs)) = lookup {
        if addrs.into_iter().any(|a| !is_public(a.ip())) {
            return Err(UrlError::NotAllowed(PRIVATE));
        }
    }
    Ok(())
}

/// Checked just before each request: an IP literal skips the resolver, so it is checked here.
pub fn check_literal(url: &Url, settings: &WebhookSettings) -> Result<(), UrlError> {
    if settings.allow_private_networks {
        return Ok(());
    }
    match literal_ip(url) {
        Some(ip) if !is_public(ip) => Err(UrlError::NotAllowed(PRIVATE)),
        _ => Ok(()),
    }
}

/// A resolver that hands the HTTP client only the addresses it may connect to.
#[derive(Debug, Clone)]
pub struct FilteringResolver {
    pub allow_private_networks: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("the host resolves only to addresses webhooks may not reach")]
struct Refused;

impl Resolve for FilteringResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow_private_networks;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
                .await?
                .filter(|a| allow || is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(Box::new(Refused) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_not_public() {
        for s in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_public(ip(s)), "{s}");
        }
        for s in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip(s)), "{s}");
        }
    }

    #[tokio::test]
    async fn urls_are_checked_for_scheme_and_host() {
        let strict = WebhookSettings::default();
        let check = |raw: &'static str| {
            let strict = strict.clone();
            async move {
                let url = parse_url(raw, &strict)?;
                check_host(&url, &strict).await
            }
        };
        assert!(matches!(
            check("http://example.com/hook").await,
            Err(UrlError::NotAllowed(_))
        ));
        assert!(matches!(
            check("ftp://example.com/").await,
            Err(UrlError::Invalid(_))
        ));
        assert!(matches!(
            check("not a url").await,
            Err(UrlError::Invalid(_))
        ));
        assert!(matches!(
            check("https://user:pw@example.com/").await,
            Err(UrlError::Invalid(_))
        ));
        for raw in [
            "https://127.0.0.1/hook",
            "https://10.0.0.5/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]:8443/hook",
            "https://[fd00:ec2::254]/",
            "https://localhost/hook",
        ] {
            assert_eq!(
                check(raw).await,
                Err(UrlError::NotAllowed(PRIVATE)),
                "{raw}"
            );
        }
        let open = WebhookSettings {
            allow_http: true,
            allow_private_networks: true,
            ..WebhookSettings::default()
        };
        let url = parse_url("http://127.0.0.1:9/hook", &open).unwrap();
        check_host(&url, &open).await.unwrap();
        check_literal(&url, &open).unwrap();
        assert!(check_literal(&url, &strict).is_err());
    }

    #[tokio::test]
    async fn the_resolver_drops_forbidden_addresses() {
        let strict = FilteringResolver {
            allow_private_networks: false,
        };
        let name: Name = "localhost".parse().unwrap();
        assert!(strict.resolve(name).await.is_err());
        let open = FilteringResolver {
            allow_private_networks: true,
        };
        let name: Name = "localhost".parse().unwrap();
        assert!(open.resolve(name).await.unwrap().next().is_some());
    }
}

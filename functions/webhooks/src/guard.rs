//! Where deliveries may go: `https` to public addresses. The URL is checked when an endpoint
//! is saved, and every address its name resolves to is checked again when a delivery
//! connects, so a name that points at 127.0.0.1, a private network or the cloud metadata
//! service is refused when it matters, not only when it was saved.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use url::{Host, Url};

/// How long one delivery may take, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// Longest target URL, as given and once normalized (what is stored and shown).
pub const MAX_URL_CHARS: usize = 2000;

/// Parses a delivery target. `allow_local` (local development, tests) also admits plain
/// `http` to loopback addresses.
pub fn parse_target(text: &str, allow_local: bool) -> Result<Url, String> {
    let too_long = || format!("must be at most {MAX_URL_CHARS} characters");
    if text.chars().count() > MAX_URL_CHARS {
        return Err(too_long());
    }
    let url = Url::parse(text.trim())
        .map_err(|_| "must be an absolute URL, like https://example.com/hooks/space".to_owned())?;
    if url.as_str().chars().count() > MAX_URL_CHARS {
        return Err(too_long());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password; authenticate with the signature".into());
    }
    let literal = |ip: IpAddr| {
        if reachable(ip, allow_local) {
            Ok(ip.is_loopback())
        } else {
            Err(format!("{ip} is not a public address"))
        }
    };
    let loopback = match url.host() {
        None => return Err("must name a host".into()),
        Some(Host::Domain(name)) => {
            let name = name.to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        Some(Host::Ipv4(ip)) => literal(IpAddr::V4(ip))?,
        Some(Host::Ipv6(ip)) => literal(IpAddr::V6(ip))?,
    };
    match url.scheme() {
        "https" if !loopback || allow_local => Ok(url),
        "http" if loopback && allow_local => Ok(url),
        "https" | "http" if loopback => Err("must not point at this machine (localhost)".into()),
        _ => Err("must be an https URL".into()),
    }
}

/// Whether deliveries may connect to `ip`.
fn reachable(ip: IpAddr, allow_local: bool) -> bool {
    is_public(ip) || (allow_local && ip.is_loopback())
}

/// Whether `ip` is an address on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => {
            let [a, b, ..] = ip.octets();
            !(ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
                || ip.is_documentation()
                || ip.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(ip) => match embedded_ipv4(ip) {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                let segments = ip.segments();
                let [first, second, ..] = segments;
                !(ip.is_loopback()
                    || ip.is_unspecified()
                    || ip.is_multicast()
                    || ip.is_unique_local()
                    || ip.is_unicast_link_local()
                    // Documentation, Teredo (an IPv4 address in disguise), local-use NAT64,
                    // discard-only, the deprecated site-local range, IPv4-compatible.
                    || (first == 0x2001 && (second == 0x0db8 || second == 0))
                    || (first == 0x0064 && second == 0xff9b)
                    || (first == 0x0100 && segments[1..4] == [0, 0, 0])
                    || (first & 0xffc0) == 0xfec0
                    || segments[..6] == [0; 6])
            }
        },
    }
}

/// The IPv4 address an IPv6 address stands for, where it says one: IPv4-mapped
/// (`::ffff:a.b.c.d`), well-known NAT64 (`64:ff9b::/96`) and 6to4 (`2002::/16`). A
/// network that routes these reaches the IPv4 address, so it is what must be public.
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let segments = ip.segments();
    let octets = ip.octets();
    let last = Ipv4Addr::new(octets[12], octets[13], octets[14], octets[15]);
    match segments {
        [0x0064, 0xff9b, 0, 0, 0, 0, _, _] => Some(last),
        [0x2002, ..] => Some(Ipv4Addr::new(octets[2], octets[3], octets[4], octets[5])),
        _ => None,
    }
}

/// Resolves names and keeps only addresses deliveries may reach.
#[derive(Debug, Clone, Copy)]
struct PublicOnly {
    allow_local: bool,
}

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_local = self.allow_local;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|address| reachable(address.ip(), allow_local))
                .collect();
            if allowed.is_empty() {
                let refused: Box<dyn std::error::Error + Send + Sync> =
                    format!("{host} resolves to no public address ({found:?}): refused").into();
                return Err(refused);
            }
            let addresses: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addresses)
        })
    }
}

/// The client deliveries go out through: no redirects (a 3xx is a failure), the timeout,
/// and the resolver above.
pub fn client(allow_local: bool) -> Result<reqwest::Client, String> {
    static STRICT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    static LOCAL: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    let cell = if allow_local { &LOCAL } else { &STRICT };
    cell.get_or_init(|| {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .user_agent("Space-API-Webhooks/1")
            .dns_resolver(Arc::new(PublicOnly { allow_local }))
            .build()
            .map_err(|error| error.to_string())
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_https_targets_are_accepted() {
        assert!(parse_target("https://example.com/hook", false).is_ok());
        // A public IPv4 address behind NAT64 or 6to4 is public.
        assert!(parse_target("https://[64:ff9b::808:808]/", false).is_ok());
        assert!(parse_target("https://[2002:808:808::]/", false).is_ok());
        assert!(parse_target("https://[2606:4700::1111]/", false).is_ok());
        for refused in [
            "http://example.com/hook",
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "https://127.0.0.1/hook",
            "https://10.1.2.3/",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://localhost/",
            "https://100.64.0.1/",
            // IPv6 forms of private IPv4 addresses: NAT64, 6to4, IPv4-compatible, Teredo.
            "https://[64:ff9b::a9fe:a9fe]/",
            "https://[64:ff9b:1::a00:1]/",
            "https://[2002:a00:1::]/",
            "https://[::10.0.0.1]/",
            "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
            "https://[fec0::1]/",
            "not a url",
        ] {
            assert!(parse_target(refused, false).is_err(), "{refused}");
        }
        assert!(parse_target("http://127.0.0.1:8080/hook", true).is_ok());
        assert!(parse_target("http://localhost:8080/hook", true).is_ok());
        assert!(parse_target("http://example.com/hook", true).is_err());
        assert!(parse_target("https://10.1.2.3/", true).is_err());
        // Normalizing can lengthen a URL (percent-encoding): the stored form fits the limit too.
        let spaces = format!("https://example.com/{}x", " ".repeat(MAX_URL_CHARS - 30));
        assert!(spaces.len() <= MAX_URL_CHARS && parse_target(&spaces, false).is_err());
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused_when_sending() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // Saved as a name, it passes the URL check; the connection is what refuses it.
        let url = format!("https://localhost:{port}/hook");
        let sent = client(false).unwrap().post(&url).body("{}").send().await;
        let error = sent.expect_err("refused");
        let chain = format!("{error:?}");
        assert!(chain.contains("no public address"), "{chain}");
        let local = client(true).unwrap().post(format!("http://localhost:{port}/")).send();
        // Allowed locally: it connects (the listener never answers, so only the connect matters).
        let accepted = tokio::time::timeout(Duration::from_millis(300), async {
            let _ = listener.accept().await;
        });
        let (_, connected) = tokio::join!(
            async {
                let _ = tokio::time::timeout(Duration::from_millis(500), local).await;
            },
            accepted
        );
        assert!(connected.is_ok(), "the local client connected");
    }
}

//! Requests to addresses a customer gave (webhooks): https only, never to loopback,
//! private, link-local, unique-local or metadata addresses, no redirects, short
//! timeouts. The host name is resolved here and every address checked; the connection
//! is then pinned to the checked addresses, so a name that resolves differently a
//! moment later (DNS rebinding) cannot steer the request inside the network.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use url::Url;

/// Which destinations may be reached.
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    /// `host:port` pairs exempt from the https and public-address rules. For tests
    /// against receivers on 127.0.0.1 only: off (empty) by default, never set in
    /// production.
    pub allow_hosts: Vec<String>,
}

/// Why a destination is refused. The message is for the customer who gave the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// A destination that passed the checks: the URL and the addresses to connect to.
#[derive(Debug, Clone)]
pub struct Destination {
    /// The URL.
    pub url: Url,
    host: String,
    addrs: Vec<SocketAddr>,
}

impl OutboundPolicy {
    fn exempt(&self, host: &str, port: u16) -> bool {
        let pair = format!("{host}:{port}");
        self.allow_hosts
            .iter()
            .any(|a| a.eq_ignore_ascii_case(&pair))
    }

    /// Checks what can be checked without the network: the URL's form, its scheme, and
    /// a literal address. Errors say what is wrong with the URL.
    pub fn check_url(&self, text: &str) -> Result<Url, Refused> {
        let url = Url::parse(text).map_err(|e| Refused(format!("not a URL: {e}")))?;
        let host = url
            .host_str()
            .ok_or_else(|| Refused("the URL has no host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let port = url.port_or_known_default().unwrap_or(443);
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refused(
                "credentials in the URL are not allowed; the request is signed instead".into(),
            ));
        }
        if self.exempt(&host, port) {
            return Ok(url);
        }
        if url.scheme() != "https" {
            return Err(Refused(format!(
                "must be an https URL, not {}",
                url.scheme()
            )));
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            if !is_public(ip) {
                return Err(Refused(format!(
                    "{ip} is not a public address (loopback, private, link-local, unique-local and metadata addresses are refused)"
                )));
            }
        }
        Ok(url)
    }

    /// Checks the URL, resolves its host and checks every address it resolves to.
    pub async fn resolve(&self, text: &str) -> Result<Destination, Refused> {
        let url = self.check_url(text)?;
        let host = url
            .host_str()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| Refused(format!("{host} does not resolve: {e}")))?
            .collect();
        if addrs.is_empty() {
            return Err(Refused(format!("{host} resolves to no address")));
        }
        if !self.exempt(&host.to_ascii_lowercase(), port) {
            if let Some(private) = addrs.iter().find(|a| !is_public(a.ip())) {
                return Err(Refused(format!(
                    "{host} resolves to {}, which is not a public address",
                    private.ip()
                )));
            }
        }
        Ok(Destination { url, host, addrs })
    }
}

/// An answer, or why there was none.
#[derive(Debug)]
pub enum Posted {
    /// The receiver answered with this status.
    Status(u16),
    /// No answer in time, or the connection failed.
    NoAnswer(String),
}

/// POSTs `body` to a checked destination with `headers`, connecting only to the
/// addresses that were checked, following no redirect.
pub async fn post(
    destination: &Destination,
    headers: &[(&str, String)],
    body: Vec<u8>,
    timeout: Duration,
) -> Posted {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5).min(timeout))
        .timeout(timeout)
        .user_agent("labelport-webhooks/1")
        .resolve_to_addrs(&destination.host, &destination.addrs)
        .build();
    let client = match client {
        Ok(client) => client,
        Err(e) => return Posted::NoAnswer(format!("no HTTP client: {e}")),
    };
    let mut request = client.post(destination.url.clone()).body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    match request.send().await {
        Ok(response) => Posted::Status(response.status().as_u16()),
        Err(e) if e.is_timeout() => Posted::NoAnswer(format!("no answer within {timeout:?}")),
        Err(e) if e.is_connect() => Posted::NoAnswer("could not connect".into()),
        Err(_) => Posted::NoAnswer("the request failed".into()),
    }
}

/// Whether an address is on the public internet: not loopback, private, link-local
/// (which holds the cloud metadata service, 169.254.169.254), shared, unique-local,
/// multicast, documentation, or an IPv4 address in IPv6 clothing that is one of these.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits.
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                let v4 =
                    Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
                return is_public_v4(v4);
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7 (AWS metadata fd00:ec2::254)
                || (s[0] & 0xffc0) == 0xfe80 // link local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site local, deprecated
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || v6 == Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1)
                || s[0..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible ::a.b.c.d
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (carrier NAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass() {
        for private in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2001:db8::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn urls_are_checked_before_any_request() {
        let policy = OutboundPolicy::default();
        for (url, why) in [
            ("http://169.254.169.254/latest/meta-data/", "https"),
            ("https://169.254.169.254/", "not a public address"),
            ("https://10.0.0.1/hook", "not a public address"),
            ("https://[::1]/hook", "not a public address"),
            ("https://user:pw@example.com/", "credentials"),
            ("ftp://example.com/", "https"),
            ("not a url", "not a URL"),
        ] {
            let refused = policy.check_url(url).unwrap_err();
            assert!(refused.0.contains(why), "{url}: {refused}");
        }
        assert!(policy
            .check_url("https://hooks.example.com/labelport")
            .is_ok());
    }

    #[tokio::test]
    async fn a_name_is_refused_for_the_addresses_it_resolves_to() {
        let policy = OutboundPolicy::default();
        // The name looks harmless; the address it resolves to is loopback.
        assert!(policy.check_url("https://localhost:8443/hook").is_ok());
        let refused = policy
            .resolve("https://localhost:8443/hook")
            .await
            .unwrap_err();
        assert!(refused.0.contains("not a public"), "{refused}");
    }

    #[test]
    fn the_test_allow_list_exempts_exactly_its_host_and_port() {
        let policy = OutboundPolicy {
            allow_hosts: vec!["127.0.0.1:8099".into()],
        };
        assert!(policy.check_url("http://127.0.0.1:8099/hook").is_ok());
        assert!(policy.check_url("http://127.0.0.1:8100/hook").is_err());
        assert!(policy.check_url("http://127.0.0.2:8099/hook").is_err());
    }
}

//! Requests to addresses a customer gave (webhooks): https on port 443 only, never to
//! loopback, private, link-local, unique-local or metadata addresses, nor to an IPv6
//! range that tunnels or translates to IPv4 (6to4, Teredo, NAT64), no redirects, short
//! timeouts. The host name is resolved here and every address checked; the connection
//! is then pinned to the checked addresses, so a name that resolves differently a
//! moment later (DNS rebinding) cannot steer the request inside the network.
//!
//! The policy holds the [`WebhookClient`] and is the only way to reach it: a client is
//! handed a [`Destination`] that passed the checks, and the policy, not the client,
//! bounds how long an answer may take.

use crate::ports::{NoAnswer, WebhookClient, WebhookPost};
use async_trait::async_trait;
use bytes::Bytes;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// The only port a webhook may go to: https's. Other ports of a public host are often
/// admin consoles or internal services exposed by mistake.
pub const WEBHOOK_PORT: u16 = 443;

/// The longest a receiver may take to answer, connection included.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest a receiver may take to accept the connection: a host that does not is
/// reported as unreachable, not as slow.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Which destinations may be reached, and the client that reaches them.
#[derive(Clone)]
pub struct OutboundPolicy {
    /// `host:port` pairs exempt from the https, port and public-address rules. For tests
    /// against receivers on 127.0.0.1 only: off (empty) by default, never set in
    /// production.
    pub allow_hosts: Vec<String>,
    /// Private: nothing reaches a customer's address but through [`OutboundPolicy::post`].
    client: Arc<dyn WebhookClient>,
}

impl Default for OutboundPolicy {
    fn default() -> Self {
        OutboundPolicy::new(Vec::new())
    }
}

impl std::fmt::Debug for OutboundPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundPolicy")
            .field("allow_hosts", &self.allow_hosts)
            .finish_non_exhaustive()
    }
}

/// Why a destination is refused. The message is for the customer who gave the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// A destination that passed the checks: the URL and the addresses to connect to. Only
/// [`OutboundPolicy::resolve`] makes one.
#[derive(Debug, Clone)]
pub struct Destination {
    /// The URL.
    pub url: Url,
    addrs: Vec<SocketAddr>,
}

impl OutboundPolicy {
    /// The rules, with `allow_hosts` exempt from them (tests only), reaching receivers
    /// through [`ReqwestClient`].
    pub fn new(allow_hosts: Vec<String>) -> Self {
        OutboundPolicy {
            allow_hosts,
            client: Arc::new(ReqwestClient),
        }
    }

    /// The same rules, reaching receivers through `client` (a test's fake).
    pub fn with_client(mut self, client: Arc<dyn WebhookClient>) -> Self {
        self.client = client;
        self
    }

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
        let (host, port) =
            host_and_port(&url).ok_or_else(|| Refused("the URL has no host".into()))?;
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
        if port != WEBHOOK_PORT {
            return Err(Refused(format!(
                "port {port} is not allowed: webhooks go to port {WEBHOOK_PORT} only (leave the port out)"
            )));
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            if let Some((range, what)) = refused_range(ip) {
                return Err(Refused(format!(
                    "{ip} is not a public address: it is in {range} ({what})"
                )));
            }
        }
        Ok(url)
    }

    /// Checks the URL, resolves its host and checks every address it resolves to.
    pub async fn resolve(&self, text: &str) -> Result<Destination, Refused> {
        let url = self.check_url(text)?;
        let (host, port) = host_and_port(&url).unwrap_or_default();
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| Refused(format!("{host} does not resolve: {e}")))?
            .collect();
        if addrs.is_empty() {
            return Err(Refused(format!("{host} resolves to no address")));
        }
        if !self.exempt(&host, port) {
            refuse_non_public(&host, &addrs)?;
        }
        Ok(Destination { url, addrs })
    }
}

/// The URL's host, lower case and without an IPv6 literal's brackets, and its port.
fn host_and_port(url: &Url) -> Option<(String, u16)> {
    let host = url
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    Some((host, url.port_or_known_default().unwrap_or(WEBHOOK_PORT)))
}

/// Refuses `host` if any address it resolved to is not public: one inside address is
/// enough for a name to be an attempt at reaching inside.
fn refuse_non_public(host: &str, addrs: &[SocketAddr]) -> Result<(), Refused> {
    for addr in addrs {
        if let Some((range, what)) = refused_range(addr.ip()) {
            return Err(Refused(format!(
                "{host} resolves to {}, which is not a public address: it is in {range} ({what})",
                addr.ip()
            )));
        }
    }
    Ok(())
}

/// An answer, or why there was none.
#[derive(Debug)]
pub enum Posted {
    /// The receiver answered with this status.
    Status(u16),
    /// No answer in time, or the connection failed.
    NoAnswer(String),
}

impl OutboundPolicy {
    /// POSTs `body` to a checked destination with `headers`, connecting only to the
    /// addresses that were checked, following no redirect, giving up after
    /// [`ANSWER_TIMEOUT`] whatever the client would do.
    pub async fn post(
        &self,
        destination: &Destination,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Posted {
        let post = WebhookPost {
            url: &destination.url,
            addrs: &destination.addrs,
            headers,
            body,
            connect_timeout: CONNECT_TIMEOUT,
        };
        let timed_out = || Posted::NoAnswer(format!("no answer within {ANSWER_TIMEOUT:?}"));
        match tokio::time::timeout(ANSWER_TIMEOUT, self.client.post(post)).await {
            Ok(Ok(status)) => Posted::Status(status),
            Ok(Err(NoAnswer::TimedOut)) | Err(_) => timed_out(),
            Ok(Err(no_answer)) => Posted::NoAnswer(no_answer.to_string()),
        }
    }
}

/// The [`WebhookClient`] on reqwest (rustls), one client per POST: its resolver is
/// pinned to the destination's checked addresses.
pub struct ReqwestClient;

#[async_trait]
impl WebhookClient for ReqwestClient {
    async fn post(&self, post: WebhookPost<'_>) -> Result<u16, NoAnswer> {
        // The override is keyed by the name reqwest would look up: the URL's host. (An
        // address literal is connected to as is, without a lookup.)
        let host = post.url.host_str().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(post.connect_timeout)
            .user_agent("labelport-webhooks/1")
            .resolve_to_addrs(host, post.addrs)
            .build()
            .map_err(|e| NoAnswer::NoClient(e.into()))?;
        let mut request = client.post(post.url.clone()).body(post.body);
        for (name, value) in post.headers {
            request = request.header(*name, value);
        }
        match request.send().await {
            Ok(response) => Ok(response.status().as_u16()),
            Err(e) if e.is_timeout() => Err(NoAnswer::TimedOut),
            Err(e) if e.is_connect() => Err(NoAnswer::Connect(e.into())),
            Err(e) => Err(NoAnswer::Failed(e.into())),
        }
    }
}

/// Whether an address is on the public internet (see [`refused_range`]).
pub fn is_public(ip: IpAddr) -> bool {
    refused_range(ip).is_none()
}

/// The refused range `ip` is in and what that range is, or `None` for a public address.
/// An IPv4-mapped address (`::ffff:a.b.c.d`) is judged as the IPv4 address it is;
/// every other IPv6 form that carries an IPv4 address (6to4, Teredo, NAT64,
/// IPv4-translated, IPv4-compatible) is refused whole, since a relay or translator
/// between here and there would take the request to an IPv4 address this check
/// never saw.
pub fn refused_range(ip: IpAddr) -> Option<(IpNet, &'static str)> {
    match ip {
        IpAddr::V4(v4) => REFUSED_V4
            .iter()
            .find(|(range, _)| range.contains(&v4))
            .map(|&(range, what)| (range.into(), what)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => refused_range(IpAddr::V4(v4)),
            None => REFUSED_V6
                .iter()
                .find(|(range, _)| range.contains(&v6))
                .map(|&(range, what)| (range.into(), what)),
        },
    }
}

/// The IPv4 range of `octets`/`prefix`, checked at compile time.
const fn v4(octets: [u8; 4], prefix: u8) -> Ipv4Net {
    let [a, b, c, d] = octets;
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), prefix)
}

/// The IPv6 range of `segments`/`prefix`, checked at compile time.
const fn v6(segments: [u16; 8], prefix: u8) -> Ipv6Net {
    let [a, b, c, d, e, f, g, h] = segments;
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), prefix)
}

/// IPv4 ranges a webhook may not reach (IANA's special-purpose registry, the ranges
/// not globally reachable).
const REFUSED_V4: &[(Ipv4Net, &str)] = &[
    (v4([0, 0, 0, 0], 8), "\"this network\""),
    (v4([10, 0, 0, 0], 8), "private"),
    (v4([100, 64, 0, 0], 10), "shared address space, carrier NAT"),
    (v4([127, 0, 0, 0], 8), "loopback"),
    (
        v4([169, 254, 0, 0], 16),
        "link-local, where the cloud metadata service is",
    ),
    (v4([172, 16, 0, 0], 12), "private"),
    (v4([192, 0, 0, 0], 24), "IETF protocol assignments"),
    (v4([192, 0, 2, 0], 24), "documentation"),
    (v4([192, 88, 99, 0], 24), "6to4 relay anycast"),
    (v4([192, 168, 0, 0], 16), "private"),
    (v4([198, 18, 0, 0], 15), "benchmarking"),
    (v4([198, 51, 100, 0], 24), "documentation"),
    (v4([203, 0, 113, 0], 24), "documentation"),
    (v4([224, 0, 0, 0], 4), "multicast"),
    (v4([240, 0, 0, 0], 4), "reserved, and broadcast"),
];

/// IPv6 ranges a webhook may not reach. The first match names the range, so the
/// narrower ranges come before the ranges that hold them.
const REFUSED_V6: &[(Ipv6Net, &str)] = &[
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), "unspecified"),
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), "loopback"),
    (v6([0, 0, 0, 0, 0xffff, 0, 0, 0], 96), "IPv4-translated"),
    (
        v6([0, 0, 0, 0, 0, 0, 0, 0], 96),
        "IPv4-compatible, deprecated",
    ),
    (
        v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96),
        "NAT64, well-known prefix",
    ),
    (
        v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
        "NAT64, local-use prefix",
    ),
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), "discard-only"),
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), "documentation"),
    (
        v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32),
        "Teredo, which tunnels to IPv4",
    ),
    (
        v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16),
        "6to4, which tunnels to IPv4",
    ),
    (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), "documentation"),
    (
        v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
        "unique-local, where the AWS metadata service's fd00:ec2::254 is",
    ),
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), "link-local"),
    (
        v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
        "site-local, deprecated",
    ),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "multicast"),
];

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The refused range `ip` is in, as text (`2002::/16`), or `None` if it is public.
    fn range_of(ip: &str) -> Option<String> {
        refused_range(ip.parse().unwrap()).map(|(range, _)| range.to_string())
    }

    #[test]
    fn only_public_addresses_pass() {
        for (address, range) in [
            ("127.0.0.1", "127.0.0.0/8"),
            ("10.0.0.1", "10.0.0.0/8"),
            ("172.16.5.4", "172.16.0.0/12"),
            ("192.168.1.1", "192.168.0.0/16"),
            ("169.254.169.254", "169.254.0.0/16"),
            ("100.64.0.1", "100.64.0.0/10"),
            ("0.0.0.0", "0.0.0.0/8"),
            ("255.255.255.255", "240.0.0.0/4"),
            ("::1", "::1/128"),
            ("::", "::/128"),
            ("fd00:ec2::254", "fc00::/7"),
            ("fe80::1", "fe80::/10"),
            ("2001:db8::1", "2001:db8::/32"),
            // IPv4-mapped: judged as the IPv4 address it is.
            ("::ffff:127.0.0.1", "127.0.0.0/8"),
            ("::ffff:169.254.169.254", "169.254.0.0/16"),
            // IPv4-compatible, deprecated: refused whatever it holds.
            ("::8.8.8.8", "::/96"),
        ] {
            assert_eq!(range_of(address).as_deref(), Some(range), "{address}");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn ipv6_ranges_that_reach_ipv4_are_refused_whatever_ipv4_address_they_hold() {
        // Each range twice: holding a private IPv4 address (192.168.1.1, 10.0.0.1,
        // 169.254.169.254) and holding a public one (8.8.8.8): a relay or translator
        // on the way would take the request to an address this check never saw.
        for (addresses, range) in [
            (["2002:c0a8:101::1", "2002:808:808::1"], "2002::/16"), // 6to4
            (
                // Teredo: server, flags, port, then the client's IPv4 address inverted.
                [
                    "2001:0:4136:e378:8000:63bf:f5ff:fefe",
                    "2001:0:4136:e378:8000:63bf:f7f7:f7f7",
                ],
                "2001::/32",
            ),
            (["64:ff9b::a00:1", "64:ff9b::808:808"], "64:ff9b::/96"), // NAT64
            (
                ["64:ff9b:1::a9fe:a9fe", "64:ff9b:1::808:808"],
                "64:ff9b:1::/48",
            ), // local NAT64
            (["::ffff:0:a00:1", "::ffff:0:808:808"], "::ffff:0:0:0/96"), // IPv4-translated
        ] {
            for address in addresses {
                assert_eq!(range_of(address).as_deref(), Some(range), "{address}");
            }
        }
        // Just outside each range: public.
        for public in ["2003::1", "2001:1::1", "64:ff9b:2::1", "64:ff9a::1"] {
            assert_eq!(range_of(public), None, "{public}");
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
            (
                "https://[2002:a9fe:a9fe::1]/hook",
                "not a public address: it is in 2002::/16 (6to4",
            ),
            (
                "https://[64:ff9b:1::a00:1]/hook",
                "it is in 64:ff9b:1::/48 (NAT64, local-use prefix)",
            ),
            ("https://[::ffff:0:7f00:1]/hook", "IPv4-translated"),
            ("https://[2001:0:4136:e378::1]/hook", "Teredo"),
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

    #[test]
    fn only_port_443_is_allowed() {
        let policy = OutboundPolicy::default();
        for port in [8443, 80, 22, 6379, 1] {
            let url = format!("https://hooks.example.com:{port}/labelport");
            let refused = policy.check_url(&url).unwrap_err();
            assert_eq!(
                refused.0,
                format!(
                    "port {port} is not allowed: webhooks go to port 443 only (leave the port out)"
                )
            );
        }
        // 443 written out is the same URL as 443 left out.
        for url in [
            "https://hooks.example.com:443/labelport",
            "https://hooks.example.com/labelport",
        ] {
            assert_eq!(
                policy.check_url(url).unwrap().port_or_known_default(),
                Some(443)
            );
        }
    }

    #[tokio::test]
    async fn a_name_is_refused_for_the_addresses_it_resolves_to() {
        let policy = OutboundPolicy::default();
        // The name looks harmless; the address it resolves to is loopback.
        assert!(policy.check_url("https://localhost/hook").is_ok());
        let refused = policy.resolve("https://localhost/hook").await.unwrap_err();
        assert!(refused.0.contains("not a public"), "{refused}");
        // The port is checked before the name is resolved.
        let refused = policy
            .resolve("https://localhost:8443/hook")
            .await
            .unwrap_err();
        assert!(refused.0.starts_with("port 8443"), "{refused}");
    }

    #[test]
    fn one_inside_address_among_the_resolved_ones_refuses_the_name() {
        let public: SocketAddr = "[2606:4700::1111]:443".parse().unwrap();
        assert!(refuse_non_public("hooks.example.com", &[public]).is_ok());
        for inside in [
            "[2002:c0a8:101::1]:443",
            "[2001:0:4136:e378:8000:63bf:3fff:fdd2]:443",
            "[64:ff9b::a9fe:a9fe]:443",
            "[64:ff9b:1::a00:1]:443",
            "[::ffff:0:a00:1]:443",
            "[::ffff:10.0.0.1]:443",
            "169.254.169.254:443",
        ] {
            let addrs = [public, inside.parse().unwrap()];
            let refused = refuse_non_public("hooks.example.com", &addrs).unwrap_err();
            assert!(
                refused.0.starts_with(&format!(
                    "hooks.example.com resolves to {}, which is not a public address: it is in ",
                    addrs[1].ip()
                )),
                "{refused}"
            );
        }
    }

    #[test]
    fn the_test_allow_list_exempts_exactly_its_host_and_port() {
        let policy = OutboundPolicy::new(vec!["127.0.0.1:18080".into()]);
        // The e2e tests' receivers: plain http, a port other than 443, loopback.
        assert!(policy.check_url("http://127.0.0.1:18080/hook").is_ok());
        assert!(policy.check_url("https://127.0.0.1:18080/hook").is_ok());
        assert!(policy.check_url("http://127.0.0.1:18081/hook").is_err());
        assert!(policy.check_url("http://127.0.0.2:18080/hook").is_err());
    }

    /// A client that fails every POST with what `fail` makes.
    struct Failing(fn() -> NoAnswer);

    #[async_trait]
    impl WebhookClient for Failing {
        async fn post(&self, _: WebhookPost<'_>) -> Result<u16, NoAnswer> {
            Err((self.0)())
        }
    }

    #[tokio::test]
    async fn what_a_client_reports_is_recorded_in_the_words_the_job_has_always_used() {
        for (fail, said) in [
            (
                (|| NoAnswer::NoClient("no TLS".into())) as fn() -> NoAnswer,
                "no HTTP client: no TLS",
            ),
            (|| NoAnswer::TimedOut, "no answer within 10s"),
            (|| NoAnswer::Connect("refused".into()), "could not connect"),
            (|| NoAnswer::Failed("reset".into()), "the request failed"),
        ] {
            let policy = OutboundPolicy::new(vec!["127.0.0.1:18080".into()])
                .with_client(Arc::new(Failing(fail)));
            let destination = policy.resolve("http://127.0.0.1:18080/hook").await.unwrap();
            match policy.post(&destination, &[], Bytes::new()).await {
                Posted::NoAnswer(why) => assert_eq!(why, said),
                Posted::Status(status) => panic!("{status}"),
            }
        }
    }

    #[tokio::test]
    async fn the_test_allow_list_exempts_the_resolved_addresses_too() {
        let policy = OutboundPolicy::new(vec!["127.0.0.1:18080".into()]);
        let destination = policy.resolve("http://127.0.0.1:18080/hook").await.unwrap();
        assert_eq!(destination.addrs, ["127.0.0.1:18080".parse().unwrap()]);
    }
}

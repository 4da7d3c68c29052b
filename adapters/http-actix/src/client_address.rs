//! Who the client is: the TCP peer, or, when the peer is a trusted proxy
//! (`TRUSTED_PROXIES`), the address it reports in `X-Forwarded-For`:
//! [`client_address`] says how.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use actix_web::dev::Payload;
use actix_web::http::header::HeaderName;
use actix_web::{FromRequest, HttpRequest, web};
use portcullis_application::{TrustedProxies, UserService};

/// `X-Forwarded-For`.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The address used when the connection has none (a Unix socket, or a
/// request built in a test without a peer): `0.0.0.0`.
pub const NO_PEER_ADDRESS: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// The client's address of `req`: the TCP peer, or what the trusted
/// proxies in front of it report in `X-Forwarded-For`. IPv4-mapped IPv6
/// addresses are given as IPv4.
///
/// The rule: take every `X-Forwarded-For` header, in order, as one
/// comma-separated list (each proxy appends the address it received the
/// request from, so the right-most entry is the nearest hop). Starting
/// from the peer, walk the list from the right while the hop is trusted;
/// the first address that is not trusted is the client. Entries further
/// left were written by the client itself or by hops nobody vouches for,
/// so a client cannot spoof its way to another address by sending its own
/// header. If every listed address is trusted, the left-most one is the
/// client.
///
/// A malformed entry (not an IP address; `unknown`, a host name, an
/// empty entry between commas, a header that is not text) stops the walk:
/// the client is then the nearest address to its right, i.e. the last
/// trusted hop (or the peer itself), never the garbage and never anything
/// left of it. An entry may carry a port (`203.0.113.9:51234`,
/// `[2001:db8::1]:443`), which is dropped.
///
/// ```
/// use actix_web::test::TestRequest;
/// use portcullis_http_actix::{TrustedProxies, client_address};
///
/// let proxies: TrustedProxies = "10.0.0.0/8".parse().unwrap();
/// let req = TestRequest::default()
///     .peer_addr("10.0.0.2:40000".parse().unwrap())
///     .insert_header(("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.1"))
///     .to_http_request();
/// assert_eq!(client_address(&req, &proxies), "203.0.113.9".parse::<std::net::IpAddr>().unwrap());
/// // From a peer that is not trusted, the header is ignored.
/// assert_eq!(
///     client_address(&req, &TrustedProxies::none()),
///     "10.0.0.2".parse::<std::net::IpAddr>().unwrap()
/// );
/// ```
pub fn client_address(req: &HttpRequest, proxies: &TrustedProxies) -> IpAddr {
    let peer = req.peer_addr().map_or(NO_PEER_ADDRESS, |a| a.ip());
    if !proxies.contains(peer) {
        // The common case, and the header is not even looked at.
        return peer.to_canonical();
    }
    let entries = req.headers().get_all(X_FORWARDED_FOR).flat_map(|value| {
        // A header that is not text is one malformed entry.
        let entries: Vec<Option<&str>> = match value.to_str() {
            Ok(text) => text.split(',').map(Some).collect(),
            Err(_) => vec![None],
        };
        entries
    });
    resolve(peer, entries.collect::<Vec<_>>(), proxies)
}

/// The rule of [`client_address`] over the peer and the `X-Forwarded-For`
/// entries, left to right (`None`: an entry that is not text).
fn resolve(peer: IpAddr, entries: Vec<Option<&str>>, proxies: &TrustedProxies) -> IpAddr {
    let mut nearest = peer.to_canonical();
    if !proxies.contains(nearest) {
        return nearest;
    }
    for entry in entries.into_iter().rev() {
        let Some(hop) = entry.and_then(parse_entry) else {
            // Garbage: trust nothing at or beyond it.
            return nearest;
        };
        nearest = hop;
        if !proxies.contains(hop) {
            return hop;
        }
    }
    // Every hop trusted (or no header): the left-most one, else the peer.
    nearest
}

/// One `X-Forwarded-For` entry: an IP address, optionally with a port.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|a| a.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// The client's address, as an extractor: see [`client_address`]. The
/// trusted proxies are those of the [`UserService`] mounted in the app
/// (none if there is none).
///
/// ```
/// use actix_web::HttpResponse;
/// use portcullis_http_actix::ClientAddress;
///
/// async fn hello(ClientAddress(client): ClientAddress) -> HttpResponse {
///     HttpResponse::Ok().body(format!("hello, {client}"))
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddress(pub IpAddr);

impl ClientAddress {
    /// The client address of `req`, with the trusted proxies of the
    /// [`UserService`] registered as app data, if any.
    pub fn of(req: &HttpRequest) -> Self {
        let none = TrustedProxies::none();
        let proxies = req
            .app_data::<web::Data<UserService>>()
            .map_or(&none, |service| service.trusted_proxies());
        Self(client_address(req, proxies))
    }
}

impl FromRequest for ClientAddress {
    type Error = Infallible;
    type Future = Ready<Result<Self, Infallible>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Self::of(req)))
    }
}

impl std::fmt::Display for ClientAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(list: &str) -> TrustedProxies {
        list.parse().unwrap()
    }

    /// The client of a request from `peer` with these `X-Forwarded-For`
    /// headers.
    fn client(peer: &str, headers: &[&str], trusted: &str) -> IpAddr {
        let mut req = TestRequest::default().peer_addr(SocketAddr::new(ip(peer), 40000));
        for value in headers {
            req = req.append_header(("X-Forwarded-For", *value));
        }
        client_address(&req.to_http_request(), &proxies(trusted))
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_the_header() {
        assert_eq!(
            client("198.51.100.7", &["203.0.113.9"], ""),
            ip("198.51.100.7")
        );
        assert_eq!(client("198.51.100.7", &[], ""), ip("198.51.100.7"));
    }

    #[test]
    fn from_an_untrusted_peer_the_header_is_ignored() {
        assert_eq!(
            client("198.51.100.7", &["203.0.113.9"], "10.0.0.0/8"),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn behind_a_trusted_proxy_the_right_most_untrusted_entry_is_the_client() {
        assert_eq!(
            client("10.0.0.1", &["203.0.113.9"], "10.0.0.1"),
            ip("203.0.113.9")
        );
        // Proxies in a chain, all trusted through a CIDR.
        assert_eq!(
            client(
                "10.0.0.1",
                &["203.0.113.9, 10.1.0.1, 10.2.0.1"],
                "10.0.0.0/8"
            ),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn spoofed_left_most_entries_are_not_believed() {
        // The client sent "X-Forwarded-For: 1.2.3.4, 5.6.7.8"; the proxy
        // appended the real address.
        assert_eq!(
            client("10.0.0.1", &["1.2.3.4, 5.6.7.8, 203.0.113.9"], "10.0.0.1"),
            ip("203.0.113.9")
        );
        // A spoofed entry that names a trusted proxy does not help either.
        assert_eq!(
            client("10.0.0.1", &["10.0.0.5, 203.0.113.9"], "10.0.0.0/8"),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn several_headers_are_one_list_in_order() {
        assert_eq!(
            client(
                "10.0.0.1",
                &["1.2.3.4", "203.0.113.9, 10.0.0.2"],
                "10.0.0.0/8"
            ),
            ip("203.0.113.9")
        );
        assert_eq!(
            client(
                "10.0.0.1",
                &["203.0.113.9, 10.0.0.3", "10.0.0.2"],
                "10.0.0.0/8"
            ),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn when_every_entry_is_trusted_the_left_most_is_the_client() {
        assert_eq!(
            client("10.0.0.1", &["10.0.0.9, 10.0.0.8"], "10.0.0.0/8"),
            ip("10.0.0.9")
        );
        // No header at all from a trusted peer: the peer.
        assert_eq!(client("10.0.0.1", &[], "10.0.0.0/8"), ip("10.0.0.1"));
    }

    #[test]
    fn ipv6_addresses_and_cidrs() {
        assert_eq!(
            client("fd00::1", &["2001:db8::7, fd00::2"], "fd00::/8"),
            ip("2001:db8::7")
        );
        assert_eq!(
            client("fd00::1", &["2001:db8::7"], "fd00::1"),
            ip("2001:db8::7")
        );
        assert_eq!(
            client("2001:db8::1", &["203.0.113.9"], "fd00::/8"),
            ip("2001:db8::1")
        );
        // A dual-stack socket's IPv4-mapped peer is its IPv4 address.
        assert_eq!(
            client("::ffff:10.0.0.1", &["203.0.113.9"], "10.0.0.1"),
            ip("203.0.113.9")
        );
        assert_eq!(client("::ffff:198.51.100.7", &[], ""), ip("198.51.100.7"));
        assert_eq!(
            client("10.0.0.1", &["::ffff:203.0.113.9"], "10.0.0.1"),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn entries_with_ports_are_their_addresses() {
        assert_eq!(
            client("10.0.0.1", &["203.0.113.9:51234"], "10.0.0.1"),
            ip("203.0.113.9")
        );
        assert_eq!(
            client("10.0.0.1", &["[2001:db8::7]:443"], "10.0.0.1"),
            ip("2001:db8::7")
        );
    }

    #[test]
    fn a_malformed_entry_stops_at_the_nearest_address_to_its_right() {
        // Right next to the peer: the peer.
        for garbage in [
            "unknown",
            "example.com",
            "",
            "  ",
            "1.2.3",
            "203.0.113.9/24",
        ] {
            assert_eq!(
                client(
                    "10.0.0.1",
                    &[&format!("203.0.113.9, {garbage}")],
                    "10.0.0.0/8"
                ),
                ip("10.0.0.1"),
                "{garbage:?}"
            );
        }
        // Behind a trusted hop: that hop, not the address left of the garbage.
        assert_eq!(
            client("10.0.0.1", &["203.0.113.9, bogus, 10.0.0.2"], "10.0.0.0/8"),
            ip("10.0.0.2")
        );
        // Garbage left of the client does not matter.
        assert_eq!(
            client("10.0.0.1", &["bogus, 203.0.113.9"], "10.0.0.0/8"),
            ip("203.0.113.9")
        );
        // An empty header is one empty entry.
        assert_eq!(
            client("10.0.0.1", &["203.0.113.9", ""], "10.0.0.0/8"),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn a_header_that_is_not_text_is_malformed() {
        let req = TestRequest::default()
            .peer_addr("10.0.0.1:40000".parse().unwrap())
            .append_header(("X-Forwarded-For", "203.0.113.9"))
            .append_header((
                "X-Forwarded-For",
                actix_web::http::header::HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
            ))
            .to_http_request();
        assert_eq!(client_address(&req, &proxies("10.0.0.0/8")), ip("10.0.0.1"));
    }

    #[test]
    fn no_peer_is_the_unspecified_address() {
        let req = TestRequest::default()
            .insert_header(("X-Forwarded-For", "203.0.113.9"))
            .to_http_request();
        assert_eq!(
            client_address(&req, &proxies("10.0.0.0/8")),
            NO_PEER_ADDRESS
        );
    }

    #[actix_web::test]
    async fn the_extractor_uses_the_services_trusted_proxies_or_none() {
        let req = TestRequest::default()
            .peer_addr("10.0.0.1:40000".parse().unwrap())
            .insert_header(("X-Forwarded-For", "203.0.113.9"))
            .to_http_request();
        let ClientAddress(without_service) = ClientAddress::extract(&req).await.unwrap();
        assert_eq!(without_service, ip("10.0.0.1"));
    }
}

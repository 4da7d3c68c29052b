//! Which peers may name the client (`TRUSTED_PROXIES`): the reverse proxies
//! and load balancers in front of Portcullis. The HTTP adapter reads
//! `X-Forwarded-For` only from them; everyone else is the client.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// The networks whose peers are trusted to report the client's address:
/// single addresses (`10.0.0.7`, `::1`) and CIDRs (`10.0.0.0/8`,
/// `fd00::/8`). None by default: then the TCP peer is the client.
///
/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.7`, what a dual-stack socket
/// reports for an IPv4 peer) count as their IPv4 address.
///
/// ```
/// use portcullis_application::TrustedProxies;
///
/// let proxies: TrustedProxies = "10.0.0.0/8, 192.168.1.7, fd00::/8".parse().unwrap();
/// assert!(proxies.contains("10.1.2.3".parse().unwrap()));
/// assert!(proxies.contains("::ffff:192.168.1.7".parse().unwrap()));
/// assert!(!proxies.contains("203.0.113.9".parse().unwrap()));
/// assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
/// assert!("".parse::<TrustedProxies>().unwrap().is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
}

impl TrustedProxies {
    /// No trusted proxy: the TCP peer is always the client.
    pub fn none() -> Self {
        Self::default()
    }

    /// These networks (a single address is its `/32` or `/128`).
    pub fn new(networks: impl IntoIterator<Item = IpNet>) -> Self {
        Self {
            networks: networks.into_iter().map(|n| n.trunc()).collect(),
        }
    }

    /// Whether `address` is in one of the networks.
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.networks.iter().any(|n| n.contains(&address))
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    /// The networks, as given (host bits cleared).
    pub fn networks(&self) -> &[IpNet] {
        &self.networks
    }
}

/// Why a `TRUSTED_PROXIES` list cannot be read: the entry at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{entry:?} is neither an IP address nor a CIDR (e.g. 10.0.0.0/8 or fd00::/8)")]
pub struct InvalidTrustedProxy {
    /// The entry, as written.
    pub entry: String,
}

impl FromStr for TrustedProxies {
    type Err = InvalidTrustedProxy;

    /// A comma-separated list of IP addresses and CIDRs; blanks around the
    /// entries and empty entries are ignored, so `""` trusts nobody.
    fn from_str(list: &str) -> Result<Self, Self::Err> {
        let mut networks = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let network = match entry.parse::<IpNet>() {
                Ok(network) => network,
                Err(_) => entry
                    .parse::<IpAddr>()
                    .map(|a| IpNet::from(a.to_canonical()))
                    .map_err(|_| InvalidTrustedProxy {
                        entry: entry.to_owned(),
                    })?,
            };
            networks.push(network);
        }
        Ok(Self::new(networks))
    }
}

impl fmt::Display for TrustedProxies {
    /// The list as `TRUSTED_PROXIES` would spell it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, network) in self.networks.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{network}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_and_cidrs_of_both_families_are_read() {
        let proxies: TrustedProxies = " 10.0.0.0/8 ,192.168.1.7,, 2001:db8::/32, ::1 "
            .parse()
            .unwrap();
        assert_eq!(
            proxies.to_string(),
            "10.0.0.0/8,192.168.1.7/32,2001:db8::/32,::1/128"
        );
        for inside in [
            "10.255.0.1",
            "192.168.1.7",
            "2001:db8:1::5",
            "::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(proxies.contains(ip(inside)), "{inside}");
        }
        for outside in ["11.0.0.1", "192.168.1.8", "2001:db9::1", "::2", "127.0.0.1"] {
            assert!(!proxies.contains(ip(outside)), "{outside}");
        }
    }

    #[test]
    fn host_bits_of_a_cidr_are_cleared() {
        let proxies: TrustedProxies = "10.1.2.3/16".parse().unwrap();
        assert_eq!(proxies.to_string(), "10.1.0.0/16");
        assert!(proxies.contains(ip("10.1.200.1")));
    }

    #[test]
    fn a_bad_entry_is_named() {
        for bad in [
            "10.0.0.0/33",
            "10.0.0",
            "example.com",
            "10.0.0.1/8/8",
            "::1/129",
        ] {
            let e = format!("127.0.0.1, {bad}")
                .parse::<TrustedProxies>()
                .unwrap_err();
            assert_eq!(e.entry, bad);
        }
    }

    #[test]
    fn nothing_is_trusted_by_default() {
        assert!(TrustedProxies::none().is_empty());
        assert!(!TrustedProxies::none().contains(ip("127.0.0.1")));
        assert!(" , ".parse::<TrustedProxies>().unwrap().is_empty());
    }
}

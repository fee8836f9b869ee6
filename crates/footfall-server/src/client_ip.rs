//! The client's address: the peer, or the forwarding header when the peer is a trusted
//! proxy. A forwarding header from anyone else is ignored, since any client can write one.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

/// The networks whose `X-Forwarded-For` is believed.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
}

/// The most forwarding hops examined; a longer chain is cut (no unbounded work per request).
const MAX_HOPS: usize = 16;

impl TrustedProxies {
    /// Proxies in `networks`.
    pub fn new(networks: Vec<IpNet>) -> Self {
        TrustedProxies { networks }
    }

    /// Parses a comma-separated list of addresses and CIDR networks.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut networks = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let network = match item.parse::<IpNet>() {
                Ok(network) => network,
                Err(_) => item
                    .parse::<IpAddr>()
                    .map(IpNet::from)
                    .map_err(|_| format!("not an address or network: {item:?}"))?,
            };
            networks.push(network);
        }
        Ok(TrustedProxies { networks })
    }

    /// True when `address` is one of the trusted proxies.
    pub fn trusts(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.networks.iter().any(|n| n.contains(&address))
    }

    /// The client address for a request from `peer` with `headers`: walking
    /// `X-Forwarded-For` from the right, the first address that is not a trusted proxy.
    pub fn client_ip(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = canonical(peer.ip());
        if !self.trusts(client) {
            return client;
        }
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in hops.iter().rev().take(MAX_HOPS) {
            let Ok(address) = hop.parse::<IpAddr>() else {
                // A malformed entry ends the trusted chain: what is left of it is unknown.
                break;
            };
            client = canonical(address);
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// IPv4-mapped IPv6 addresses as IPv4, so one client has one form.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in xff {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn forwarding_is_believed_only_from_trusted_peers() {
        let proxies = TrustedProxies::parse("10.0.0.0/8, 192.0.2.1").unwrap();
        let cases = [
            ("203.0.113.9:1000", vec!["198.51.100.1"], "203.0.113.9"),
            ("10.1.2.3:1000", vec!["198.51.100.1"], "198.51.100.1"),
            (
                "10.1.2.3:1000",
                vec!["1.2.3.4, 198.51.100.1, 10.9.9.9"],
                "198.51.100.1",
            ),
            (
                "10.1.2.3:1000",
                vec!["1.2.3.4", "198.51.100.1"],
                "198.51.100.1",
            ),
            ("192.0.2.1:1000", vec![], "192.0.2.1"),
            (
                "10.1.2.3:1000",
                vec!["garbage, 198.51.100.1"],
                "198.51.100.1",
            ),
            ("10.1.2.3:1000", vec!["198.51.100.1, garbage"], "10.1.2.3"),
            (
                "[::ffff:10.1.2.3]:1000",
                vec!["198.51.100.7"],
                "198.51.100.7",
            ),
            ("[2001:db8::1]:1000", vec!["198.51.100.7"], "2001:db8::1"),
        ];
        for (peer, xff, expected) in cases {
            let got = proxies.client_ip(peer.parse().unwrap(), &headers(&xff));
            assert_eq!(got.to_string(), expected, "{peer} {xff:?}");
        }
    }

    #[test]
    fn bad_lists_are_rejected() {
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy.local").is_err());
        assert!(TrustedProxies::parse("").unwrap().networks.is_empty());
    }
}

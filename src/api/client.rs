//! Who a request comes from, for the per-client limit on engagement writes:
//! the peer, or, behind proxies the operator trusts, the address they say
//! they saw.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use actix_web::HttpRequest;
use ipnet::IpNet;

/// The client `req` comes from. When the peer is a trusted proxy, that is
/// the last address of `X-Forwarded-For` that is not itself one: each
/// proxy appends the address it saw, so the addresses after the first
/// untrusted one are the proxies' own, and the ones before it are whatever
/// the client wrote. An address the header does not give as one ends the
/// walk, at the last one it did.
pub fn address(req: &HttpRequest, trusted: &[IpNet]) -> IpAddr {
    // A dual-stack listener (`[::]`) sees IPv4 peers as `::ffff:10.0.0.2`,
    // which no IPv4 network contains: each address is compared as itself.
    let peer = req
        .peer_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |addr| addr.ip())
        .to_canonical();
    let is_trusted = |address: &IpAddr| trusted.iter().any(|net| net.contains(address));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(hop) = parse_hop(hop) else { break };
        client = hop;
        if !is_trusted(&hop) {
            break;
        }
    }
    client
}

/// What the per-client limit counts as one client: an IPv4 address, or the
/// /64 network of an IPv6 one (the least a provider gives one subscriber,
/// who may then use any of its 2^64 addresses).
pub fn limit_key(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(_) => client,
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !(u128::MAX >> 64);
            IpAddr::V6(std::net::Ipv6Addr::from(network))
        }
    }
}

/// An address as proxies write it: bare, or with a port (`[::1]:443`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
        .map(|address| address.to_canonical())
}

/// Parses `FRONTPAGE_TRUSTED_PROXIES`: addresses (`10.0.0.7`) and networks
/// (`10.0.0.0/8`), comma-separated.
pub fn parse_trusted(value: &str) -> Result<Vec<IpNet>, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{item:?} is not an IP address or network (like 10.0.0.0/8)"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn client(peer: &str, forwarded: &[&str], trusted: &str) -> String {
        let mut req = TestRequest::get().peer_addr(peer.parse().unwrap());
        for value in forwarded {
            req = req.append_header(("x-forwarded-for", *value));
        }
        address(&req.to_http_request(), &parse_trusted(trusted).unwrap()).to_string()
    }

    #[test]
    fn the_client_is_the_peer_unless_the_peer_is_a_trusted_proxy() {
        // No proxy trusted: the header is the client's own word.
        assert_eq!(
            client("203.0.113.9:5000", &["198.51.100.1"], ""),
            "203.0.113.9"
        );
        // A trusted proxy says whom it saw.
        assert_eq!(
            client("10.0.0.2:5000", &["198.51.100.1"], "10.0.0.0/8"),
            "198.51.100.1"
        );
        // What the client wrote before that is not believed, and proxies
        // behind proxies are skipped, in one header or several.
        assert_eq!(
            client(
                "10.0.0.2:5000",
                &["6.6.6.6, 198.51.100.1", "10.0.0.9"],
                "10.0.0.0/8"
            ),
            "198.51.100.1"
        );
        assert_eq!(
            client("[::1]:5000", &["[2001:db8::5]:443"], "::1"),
            "2001:db8::5"
        );
        // An IPv4 proxy seen through a dual-stack listener, and a mapped hop.
        assert_eq!(
            client(
                "[::ffff:10.0.0.2]:5000",
                &["::ffff:198.51.100.1"],
                "10.0.0.0/8"
            ),
            "198.51.100.1"
        );
        // Without a header, or with garbage in it, the proxy itself.
        assert_eq!(client("10.0.0.2:5000", &[], "10.0.0.2"), "10.0.0.2");
        assert_eq!(
            client("10.0.0.2:5000", &["unknown"], "10.0.0.2"),
            "10.0.0.2"
        );
    }

    #[test]
    fn an_ipv6_client_is_limited_by_its_64_network() {
        let key = |address: &str| limit_key(address.parse().unwrap()).to_string();
        assert_eq!(key("2001:db8::1"), key("2001:db8::10"));
        assert_eq!(key("2001:db8:0:0:ffff::1"), "2001:db8::");
        assert_ne!(key("2001:db8:0:1::1"), key("2001:db8::1"));
        assert_eq!(key("203.0.113.7"), "203.0.113.7");
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        assert_eq!(
            parse_trusted(" 10.0.0.7, 192.168.0.0/16 ,").unwrap().len(),
            2
        );
        assert!(parse_trusted("10.0.0.0/33").is_err());
        assert!(parse_trusted("proxy.local").is_err());
    }
}

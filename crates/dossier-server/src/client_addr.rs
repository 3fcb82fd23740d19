//! The client's address: the connection's peer, or, when the peer is a trusted proxy
//! (`--trusted-proxy`), the address that proxy says it served. Only a trusted proxy's
//! `X-Forwarded-For` is read: anyone else could write any address there and spread its
//! failed sign-ins over made-up ones.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
pub use ipnet::IpNet;

/// Reads a `--trusted-proxy` entry: an address (`10.0.0.5`, `::1`) or a CIDR block
/// (`10.0.0.0/8`).
///
/// # Errors
/// Says what was expected.
pub fn parse_trusted_proxy(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    s.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("{s:?} is neither an address nor a CIDR block (10.0.0.0/8, ::1)"))
}

fn trusted(ip: IpAddr, proxies: &[IpNet]) -> bool {
    proxies.iter().any(|p| p.contains(&ip))
}

/// One `X-Forwarded-For` entry: an address, also as `[v6]:port` or `v4:port`.
fn hop(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    s.parse::<IpAddr>()
        .or_else(|_| s.parse::<SocketAddr>().map(|a| a.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// Returns the client's address. When the peer is a trusted proxy, the `X-Forwarded-For`
/// hops are read from the right (each proxy appends the address it was reached from): the
/// first that is not itself a trusted proxy is the client. A hop that does not read as an
/// address stops the walk at the proxy that wrote it, since nothing left of it can be
/// trusted.
#[must_use]
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, proxies: &[IpNet]) -> IpAddr {
    let mut client = peer.to_canonical();
    if !trusted(client, proxies) {
        return client;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for h in hops.iter().rev() {
        let Some(ip) = hop(h) else {
            return client;
        };
        client = ip;
        if !trusted(ip, proxies) {
            return ip;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_a_trusted_proxy_names_the_client() {
        let proxies = [
            parse_trusted_proxy("10.0.0.0/8").unwrap(),
            parse_trusted_proxy("::1").unwrap(),
        ];
        let h = headers(&["203.0.113.7, 198.51.100.1", "10.1.1.1"]);
        // From an untrusted peer the header is ignored.
        assert_eq!(client_ip(ip("192.0.2.1"), &h, &proxies), ip("192.0.2.1"));
        // From a trusted one: the right-most hop that is not a trusted proxy.
        assert_eq!(client_ip(ip("10.9.9.9"), &h, &proxies), ip("198.51.100.1"));
        assert_eq!(client_ip(ip("::1"), &h, &proxies), ip("198.51.100.1"));
        // Without the header, or when every hop is a proxy.
        assert_eq!(
            client_ip(ip("10.9.9.9"), &headers(&[]), &proxies),
            ip("10.9.9.9")
        );
        let all = headers(&["10.2.2.2, 10.3.3.3"]);
        assert_eq!(client_ip(ip("10.9.9.9"), &all, &proxies), ip("10.2.2.2"));
        // A hop that is not an address stops at the proxy that wrote it.
        let junk = headers(&["203.0.113.7, nonsense, 10.3.3.3"]);
        assert_eq!(client_ip(ip("10.9.9.9"), &junk, &proxies), ip("10.3.3.3"));
        // Ports and mapped peers.
        let ported = headers(&["[2001:db8::1]:443"]);
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.1"), &ported, &proxies),
            ip("2001:db8::1")
        );
        // No proxy configured: nobody's header is read.
        assert_eq!(client_ip(ip("10.9.9.9"), &h, &[]), ip("10.9.9.9"));
    }

    #[test]
    fn trusted_proxies_read_as_addresses_or_blocks() {
        assert_eq!(
            parse_trusted_proxy(" 10.0.0.5 ").unwrap().to_string(),
            "10.0.0.5/32"
        );
        assert_eq!(
            parse_trusted_proxy("10.1.2.3/8").unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            parse_trusted_proxy("fd00::/8").unwrap().to_string(),
            "fd00::/8"
        );
        let err = parse_trusted_proxy("proxy.local").unwrap_err();
        assert!(err.contains("proxy.local"), "{err}");
    }
}

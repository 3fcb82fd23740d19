//! Refusal of internal addresses: a DNS resolver that drops them at every connection, so that
//! a host validated when the connector was saved cannot later be re-pointed (DNS rebinding) at
//! the metadata service or the LAN; and the check of an address literal, which never goes
//! through a resolver.

use std::net::SocketAddr;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Resolves with the system resolver and keeps only public addresses.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = all
                .iter()
                .copied()
                .filter(|a| !dossier_domain::net::is_internal(a.ip()))
                .collect();
            if public.is_empty() {
                return Err(format!(
                    "{host} resolves to an internal address; start the server with \
                     --allow-private-tenants to permit this"
                )
                .into());
            }
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

/// Refuses a URL whose host is an internal address literal.
pub(crate) fn refuse_internal_literal(url: &Url) -> Result<(), String> {
    let ip: Option<std::net::IpAddr> = match url.host() {
        Some(Host::Ipv4(ip)) => Some(ip.into()),
        Some(Host::Ipv6(ip)) => Some(ip.into()),
        _ => None,
    };
    match ip {
        Some(ip) if dossier_domain::net::is_internal(ip) => {
            Err(format!("{url} points to an internal address ({ip})"))
        }
        _ => Ok(()),
    }
}

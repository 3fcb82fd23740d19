//! Connect-time refusal of internal addresses: a DNS resolver that drops them, so that an API
//! host checked when the connector was saved cannot later be re-pointed (DNS rebinding) at the
//! metadata service or the LAN. The same rule as the SentinelOne client's; it belongs in a
//! shared crate (see the crate's report).

use std::net::SocketAddr;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

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

//! The address guard of a tenant URL: a host that does not resolve to an internal address
//! unless the deployment allows private tenants (a user-supplied URL must not reach the
//! metadata service or the LAN). Its form (`https://` only, no userinfo, query or fragment) is
//! checked by the source that reads it ([`dossier_source::parse_tenant_url`]).

use std::net::IpAddr;

use url::Url;

use crate::error::ApiError;

fn bad(reason: &str) -> ApiError {
    ApiError::BadRequest(format!("tenant_url: {reason}"))
}

/// Parses and normalises a tenant URL to its origin (`https://host[:port]`); the rule is the
/// sources' ([`dossier_source::parse_tenant_url`]).
///
/// # Errors
/// A bad request naming what is wrong.
#[cfg(test)]
fn normalise(input: &str) -> Result<Url, ApiError> {
    dossier_source::parse_tenant_url(input, "tenant_url").map_err(ApiError::BadRequest)
}

pub use dossier_domain::net::is_internal;
use dossier_domain::net::{reach, Reach};

/// Resolves the URL's host and refuses every address the guard refuses
/// ([`dossier_domain::net`]): anything not globally reachable unless `allow_private`, and
/// link-local and metadata addresses whatever it says.
///
/// # Errors
/// A bad request when the host does not resolve or resolves to an internal address.
pub async fn check_host(url: &Url, allow_private: bool) -> Result<(), ApiError> {
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| bad(&format!("the host {host} does not resolve")))?
            .map(|a| a.ip())
            .collect(),
    };
    if addrs.is_empty() {
        return Err(bad(&format!("the host {host} does not resolve")));
    }
    if let Some(ip) = addrs.iter().find(|ip| reach(**ip) == Reach::LinkLocal) {
        return Err(bad(&format!(
            "the host resolves to a link-local or cloud metadata address ({ip}), which is refused even with --allow-private-tenants"
        )));
    }
    if !allow_private {
        if let Some(ip) = addrs.iter().find(|ip| is_internal(**ip)) {
            return Err(bad(&format!(
                "the host resolves to an internal address ({ip}); start the server with --allow-private-tenants to permit this"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn normalises_to_the_origin() {
        assert_eq!(
            normalise("https://Acme.SentinelOne.net/").unwrap().as_str(),
            "https://acme.sentinelone.net/"
        );
        assert_eq!(
            normalise(" https://a.example:8443/web/api ")
                .unwrap()
                .as_str(),
            "https://a.example:8443/"
        );
        for bad in [
            "",
            "http://a.example",
            "https://u:p@a.example",
            "https://a.example/?x=1",
            "https://a.example/#f",
            "ftp://x",
            "not a url",
        ] {
            assert!(normalise(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn refuses_loopback_unless_allowed() {
        let url = normalise("https://127.0.0.1:9").unwrap();
        assert!(check_host(&url, false).await.is_err());
        assert!(check_host(&url, true).await.is_ok());
    }

    /// Only address literals: no name is resolved and nothing is connected to.
    #[tokio::test]
    async fn link_local_and_metadata_are_refused_even_when_private_tenants_are_allowed() {
        for host in [
            "169.254.169.254",
            "[fd00:ec2::254]",
            "[fe80::1]",
            "[::ffff:169.254.169.254]",
            "[64:ff9b::a9fe:a9fe]",
        ] {
            let url = normalise(&format!("https://{host}")).unwrap();
            let err = check_host(&url, true).await.unwrap_err().to_string();
            assert!(
                err.contains("even with --allow-private-tenants"),
                "{host}: {err}"
            );
        }
    }
}

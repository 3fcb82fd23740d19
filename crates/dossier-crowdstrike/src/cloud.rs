//! The Falcon clouds and their API hosts (PRODUCERS.md §2.3, from `FalconPy`'s `_base_url.py`
//! [C3]).

use url::Url;

/// A Falcon cloud a customer's CID lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cloud {
    Us1,
    Us2,
    Eu1,
    UsGov1,
}

impl Cloud {
    /// Every cloud a connector may name, in the order the form lists them.
    pub const ALL: [Cloud; 4] = [Cloud::Us1, Cloud::Us2, Cloud::Eu1, Cloud::UsGov1];

    /// Returns the name used in the connector's `cloud` field and in `X-Cs-Region`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Cloud::Us1 => "us-1",
            Cloud::Us2 => "us-2",
            Cloud::Eu1 => "eu-1",
            Cloud::UsGov1 => "us-gov-1",
        }
    }

    /// Returns the API host of the cloud.
    #[must_use]
    pub fn host(self) -> &'static str {
        match self {
            Cloud::Us1 => "api.crowdstrike.com",
            Cloud::Us2 => "api.us-2.crowdstrike.com",
            Cloud::Eu1 => "api.eu-1.crowdstrike.com",
            Cloud::UsGov1 => "api.laggar.gcw.crowdstrike.com",
        }
    }

    /// Returns the API base URL of the cloud (`https://api.crowdstrike.com`).
    #[must_use]
    pub fn base_url(self) -> &'static str {
        match self {
            Cloud::Us1 => "https://api.crowdstrike.com",
            Cloud::Us2 => "https://api.us-2.crowdstrike.com",
            Cloud::Eu1 => "https://api.eu-1.crowdstrike.com",
            Cloud::UsGov1 => "https://api.laggar.gcw.crowdstrike.com",
        }
    }

    /// Parses a cloud name (`us-1`, any letter case, `_` or `-`).
    #[must_use]
    pub fn parse(name: &str) -> Option<Cloud> {
        let name = name.trim().replace('_', "-");
        Cloud::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(&name))
    }

    /// Returns the cloud whose API host a base URL names, if it names one.
    #[must_use]
    pub fn of_base_url(url: &Url) -> Option<Cloud> {
        let host = url.host_str()?;
        Cloud::ALL
            .into_iter()
            .find(|c| c.host().eq_ignore_ascii_case(host))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn clouds_round_trip_through_their_names_and_hosts() {
        for c in Cloud::ALL {
            assert_eq!(Cloud::parse(c.as_str()), Some(c));
            let url = Url::parse(c.base_url()).unwrap();
            assert_eq!(Cloud::of_base_url(&url), Some(c));
            assert_eq!(url.host_str(), Some(c.host()));
        }
        assert_eq!(Cloud::parse(" US_2 "), Some(Cloud::Us2));
        assert_eq!(Cloud::parse("us-gov-2"), None);
        assert_eq!(
            Cloud::of_base_url(&Url::parse("https://127.0.0.1:9").unwrap()),
            None
        );
    }
}

//! Emulator configuration: the tenant's seed and size, its cloud, and the API clients it
//! accepts.

/// Configuration of an emulated Falcon tenant.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seed of the deterministic generator (hosts, files, alerts).
    pub seed: u64,
    /// Number of simulated hosts (sensors).
    pub hosts: usize,
    /// The customer id (32 hex) the alerts carry.
    pub cid: String,
    /// Accepted API clients.
    pub clients: Vec<ClientSpec>,
    /// The cloud the tenant lives in, sent as `X-Cs-Region` with every token (PRODUCERS.md
    /// §2.3): `us-1`, `us-2`, `eu-1`, `us-gov-1`.
    pub region: String,
    /// Token lifetime in seconds; the real API's is 1799.
    pub token_ttl_secs: u64,
    /// If `Some(n)`: more than `n` API requests in a minute get a 429 with
    /// `X-Ratelimit-Retryafter` (the real limit is 6,000 a minute per CID, §2.5).
    pub rate_limit_per_minute: Option<u32>,
    /// `(sha256, file name)` pairs that about 5 % of the generated alerts use, so that one
    /// file can be put on devices under two producers.
    pub shared_files: Vec<(String, String)>,
    /// Host names that about 5 % of the generated alerts use, so that one host name can be
    /// seen under two producers.
    pub shared_hosts: Vec<String>,
}

impl SimConfig {
    /// Returns a us-1 tenant with one API client holding Alerts: Read and Write, 1799 s tokens,
    /// no rate limit and nothing shared.
    pub fn new(seed: u64, hosts: usize, client_id: &str, client_secret: &str) -> Self {
        Self {
            seed,
            hosts,
            cid: crate::generate::hex_of(seed ^ 0x00c1_d00c_1d00, 32),
            clients: vec![ClientSpec::new(client_id, client_secret)],
            region: "us-1".to_owned(),
            token_ttl_secs: 1799,
            rate_limit_per_minute: None,
            shared_files: Vec::new(),
            shared_hosts: Vec::new(),
        }
    }
}

/// One API client (OAuth 2.0 client credentials) the tenant accepts.
#[derive(Clone)]
pub struct ClientSpec {
    pub client_id: String,
    pub client_secret: String,
    /// The Alerts: Read scope; without it the alert endpoints answer 403.
    pub alerts_read: bool,
    /// The Alerts: Write scope; without it `PATCH /alerts/entities/alerts/v3` answers 403.
    pub alerts_write: bool,
    /// MSSP child CIDs a token may be asked for with `member_cid`.
    pub member_cids: Vec<String>,
}

impl ClientSpec {
    /// Returns a client with Alerts: Read and Write and no child CIDs.
    pub fn new(client_id: &str, client_secret: &str) -> Self {
        Self {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            alerts_read: true,
            alerts_write: true,
            member_cids: Vec::new(),
        }
    }
}

// The secret stays out of logs and panic messages.
impl std::fmt::Debug for ClientSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSpec")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<hidden>")
            .field("alerts_read", &self.alerts_read)
            .field("alerts_write", &self.alerts_write)
            .field("member_cids", &self.member_cids)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_secret() {
        let config = SimConfig::new(1, 1, "id", "s3cr3t-secret");
        assert!(!format!("{config:?}").contains("s3cr3t"));
        assert_eq!(config.cid.len(), 32);
    }
}

//! Emulator configuration: the tenant's seed and size, and the API tokens it accepts.

use chrono::{DateTime, Duration, Utc};

/// Configuration of an emulated SentinelOne tenant.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seed of the deterministic generator (agents, file catalogue, threats).
    pub seed: u64,
    /// Number of simulated agents (devices).
    pub agents: usize,
    /// Accepted API tokens.
    pub tokens: Vec<TokenSpec>,
    /// If `Some(n)`: more than `n` requests per second per token on `GET /threats` get a 429
    /// (token bucket, burst `5 * n`, like the console's "10 req/s, burst 50"). `None`: unlimited.
    pub rate_limit: Option<u32>,
    /// Gzip bodies when the client sends `Accept-Encoding: gzip` (the real tenant always does).
    pub gzip: bool,
}

impl SimConfig {
    /// Returns a configuration with one full-scope token that expires in 365 days, no rate limit
    /// and no gzip.
    pub fn new(seed: u64, agents: usize, token: &str) -> Self {
        Self {
            seed,
            agents,
            tokens: vec![TokenSpec::new(token)],
            rate_limit: None,
            gzip: false,
        }
    }
}

/// One API token the emulated tenant accepts.
#[derive(Clone)]
pub struct TokenSpec {
    /// The token text, as sent after `ApiToken `.
    pub token: String,
    /// When the token stops working (401 `4010010` afterwards). `None`: never.
    pub expires_at: Option<DateTime<Utc>>,
    /// `false` makes `GET /threats` answer 403 `4030010` (role without threat-view permission).
    pub can_view_threats: bool,
    /// Site scope: only threats whose `agentRealtimeInfo.siteId` is listed are visible.
    /// `None`: the whole account.
    pub site_ids: Option<Vec<String>>,
}

impl TokenSpec {
    /// Returns a full-scope token with threat-view permission that expires in 365 days.
    pub fn new(token: &str) -> Self {
        Self {
            token: token.to_owned(),
            expires_at: Some(Utc::now() + Duration::days(365)),
            can_view_threats: true,
            site_ids: None,
        }
    }
}

// Tokens are secrets: keep them out of logs and panic messages.
impl std::fmt::Debug for TokenSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSpec")
            .field("token", &"<hidden>")
            .field("expires_at", &self.expires_at)
            .field("can_view_threats", &self.can_view_threats)
            .field("site_ids", &self.site_ids)
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_token() {
        let spec = TokenSpec::new("s3cr3t-token");
        assert!(!format!("{spec:?}").contains("s3cr3t"));
        assert!(!format!("{:?}", SimConfig::new(1, 1, "s3cr3t-token")).contains("s3cr3t"));
    }
}

//! Emulator configuration: the tenant, its size and seed, the app registrations it knows.

use std::time::Duration;

/// The Graph application permission that reads alerts.
pub const READ_ROLE: &str = "SecurityAlert.Read.All";
/// The Graph application permission that reads and updates alerts.
pub const WRITE_ROLE: &str = "SecurityAlert.ReadWrite.All";

/// Configuration of an emulated tenant.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seed of the deterministic generator.
    pub seed: u64,
    /// Number of onboarded devices.
    pub devices: usize,
    /// The Directory (tenant) ID the token endpoint answers for.
    pub tenant_id: String,
    /// App registrations the token endpoint knows.
    pub apps: Vec<AppSpec>,
    /// `expires_in` of issued tokens (Entra: about an hour).
    pub token_lifetime: Duration,
    /// If `Some(n)`: more than `n` Graph requests in one second get 429 with `Retry-After: 1`.
    pub rate_limit: Option<u32>,
    /// `(sha256, file name)` of files that about 5 % of file alerts carry, so that one file
    /// shows on devices under two producers.
    pub shared_files: Vec<(String, String)>,
    /// Device names that about 5 % of alerts happen on, so that one host shows under two
    /// producers.
    pub shared_hosts: Vec<String>,
}

impl SimConfig {
    /// Returns a tenant with a fixed tenant id and one app ([`AppSpec::demo`]) granted both
    /// alert permissions, tokens for an hour, no rate limit, nothing shared.
    pub fn new(seed: u64, devices: usize) -> Self {
        Self {
            seed,
            devices,
            tenant_id: "3adb963c-8e61-48e8-a06d-6dbb0dacea39".to_owned(),
            apps: vec![AppSpec::demo()],
            token_lifetime: Duration::from_secs(3599),
            rate_limit: None,
            shared_files: Vec::new(),
            shared_hosts: Vec::new(),
        }
    }
}

/// One app registration: its client id, secret and granted (consented) permissions.
#[derive(Clone)]
pub struct AppSpec {
    pub client_id: String,
    /// The secret's Value.
    pub secret: String,
    /// The secret's expiry has passed: the token endpoint answers `AADSTS7000222`.
    pub secret_expired: bool,
    /// Consented application permissions ([`READ_ROLE`], [`WRITE_ROLE`]); empty is an app
    /// whose permissions were never granted, which still gets tokens.
    pub roles: Vec<String>,
}

impl AppSpec {
    /// The client id and secret `SimConfig::new` configures.
    pub const DEMO_CLIENT_ID: &'static str = "734ef928-d74c-4555-8d1b-d942fa0a1a41";
    const DEMO_SECRET: &'static str = "demo~secret-value-of-the-emulated-app";

    /// Returns an app with a valid secret and the given roles.
    pub fn new(client_id: &str, secret: &str, roles: &[&str]) -> Self {
        Self {
            client_id: client_id.to_owned(),
            secret: secret.to_owned(),
            secret_expired: false,
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        }
    }

    /// Returns the demo app, granted both alert permissions.
    pub fn demo() -> Self {
        Self::new(
            Self::DEMO_CLIENT_ID,
            Self::DEMO_SECRET,
            &[READ_ROLE, WRITE_ROLE],
        )
    }

    /// Returns the demo app's secret.
    pub fn demo_secret() -> &'static str {
        Self::DEMO_SECRET
    }
}

// The secret stays out of logs and panic messages.
impl std::fmt::Debug for AppSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppSpec")
            .field("client_id", &self.client_id)
            .field("secret", &"<hidden>")
            .field("secret_expired", &self.secret_expired)
            .field("roles", &self.roles)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_secret() {
        let config = SimConfig::new(1, 1);
        assert!(!format!("{config:?}").contains(AppSpec::demo_secret()));
    }
}

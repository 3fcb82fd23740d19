//! Errors of the emulator's Rust API (HTTP errors are envelopes, see `envelope`).

/// What can go wrong when driving the emulator from Rust.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A threat given to `Tenant::put_threat` cannot be stored.
    #[error("invalid threat: {0}")]
    InvalidThreat(String),
    /// The listen address cannot be bound or the server cannot run.
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
    /// The certificates cannot be generated.
    #[error("certificate generation failed: {0}")]
    Certificate(#[from] rcgen::Error),
    /// The TLS configuration is rejected.
    #[error("tls configuration failed: {0}")]
    Tls(#[from] rustls::Error),
}

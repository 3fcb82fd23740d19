//! Errors of the emulator's Rust API (HTTP errors are envelopes, see `envelope`).

/// What can go wrong when driving the emulator from Rust.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A threat given to `Tenant::put_threat` cannot be stored.
    #[error("invalid threat: {0}")]
    InvalidThreat(String),
    /// The server cannot start: the address, the certificates or the TLS configuration.
    #[error(transparent)]
    Server(#[from] dossier_simkit::SimkitError),
}

//! Errors of the emulator's Rust API (HTTP errors are envelopes, see `envelope`).

/// What can go wrong when driving the emulator from Rust.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// An alert given to `Tenant::put_alert` cannot be stored.
    #[error("invalid alert: {0}")]
    InvalidAlert(String),
    /// The server cannot start: the address, the certificates or the TLS configuration.
    #[error(transparent)]
    Server(#[from] dossier_simkit::SimkitError),
}

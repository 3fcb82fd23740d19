//! What can go wrong driving the emulator from Rust.

/// An emulator error.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The HTTPS server could not start.
    #[error(transparent)]
    Server(#[from] dossier_simkit::SimkitError),
    /// An alert handed to [`crate::Tenant::put_alert`] is not usable.
    #[error("invalid alert: {0}")]
    InvalidAlert(String),
}

//! Story refresh (not yet ported).

//! Synthetic stories (not yet ported).

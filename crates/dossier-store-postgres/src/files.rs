//! File identities (not yet ported).

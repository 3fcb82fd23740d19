//! Integration tests of dossier-defender, one binary (STYLE.md): the samples, a fuzz of the
//! mapper, and the client against the emulated tenant (dossier-mdesim).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod props;
mod samples;
mod tenant;

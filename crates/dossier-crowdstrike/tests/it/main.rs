//! Integration tests of dossier-crowdstrike, one binary (STYLE.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod config;
mod emulator;
mod errors;
mod props;
mod samples;

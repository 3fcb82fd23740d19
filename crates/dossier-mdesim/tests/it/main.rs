//! Integration tests of the emulator over HTTPS, one binary (STYLE.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;

#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Integration tests: the emulator served over real HTTPS, driven with reqwest.

mod auth;
mod faults;
mod generator;
mod helpers;
mod paging;
mod perf;
mod shape;
mod tls;
mod validation;
mod writes;

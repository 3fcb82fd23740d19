//! Integration tests of dossier-sentinelone, one binary (STYLE.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod client;
mod client_calls;
mod corpus;
mod guard;
mod poll;
mod props;
mod samples;
mod server;
mod throughput;
mod tls;

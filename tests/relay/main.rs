//! End-to-end tests of the relay: real sockets on 127.0.0.1, real time with short timeouts,
//! fault upstreams standing in for providers.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail the test"
)]

mod admission;
mod auth;
mod cloud;
mod command;
mod failover;
mod input;
mod models;
mod observe;
mod operations;
mod slow_reader;
mod streaming;

mod harness;

pub(crate) use harness::*;

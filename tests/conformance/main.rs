//! Fault conformance (issue 4): the relay on real sockets against fault upstreams that
//! misbehave in every way the issue lists, one test per scenario. Each asserts the outcome and
//! its time bound, and records its row of the table in `docs/conformance.md` when
//! `RELAYRACE_CONFORMANCE_REPORT` names a file (`scripts/conformance.sh` does that).
//!
//! Every relay here gives its providers short timeouts (see [`fixture::TIMEOUTS`]) so the
//! suite runs in CI; the timeouts scale, the behaviour does not.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail the test"
)]

#[path = "../relay/harness.rs"]
#[expect(
    dead_code,
    reason = "shared with the relay tests; not every helper is used here"
)]
mod harness;

mod fixture;
mod report;

mod accounting;
mod after_commit;
mod bad_input;
mod before_commit;
mod client_errors;
mod exhaustion;
mod load;
mod recovery;
mod upstream_trust;

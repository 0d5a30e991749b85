//! A misbehaving Anthropic Messages API upstream, for demos and manual failover tests: a
//! `relayrace_fault::FaultUpstream` (a dev-dependency, which examples may use) on a fixed
//! address. Run it from the workspace root:
//!
//! ```text
//! cargo run --example fault_upstream -- --listen 127.0.0.1:9100 --scenario "status=529"
//! ```
//!
//! Prints its URL on stdout, then serves until Ctrl-C, logging one line per attempt to stderr.
//! A request whose `model` is `fault:<scenario>` (e.g. `fault:stall_after=3`) picks its own
//! scenario; see `relayrace_fault::Scenario` for the keys.

use std::net::SocketAddr;

use clap::Parser;
use relayrace_fault::{FaultUpstream, Scenario};

/// A scriptable, misbehaving Anthropic Messages API upstream.
#[derive(Parser)]
struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:9100")]
    listen: SocketAddr,
    /// The default scenario, e.g. `ok`, `status=529,retry_after=2`, `words=20,stall_after=5`,
    /// `fail_first=2,status=500`, `down_for_ms=30000`.
    #[arg(long, default_value = "ok")]
    scenario: Scenario,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let upstream = FaultUpstream::start_on(args.listen, args.scenario).await?;
    announce(&upstream);
    tokio::select! {
        () = log_attempts(&upstream) => Ok(()),
        stopped = tokio::signal::ctrl_c() => stopped,
    }
}

#[expect(
    clippy::print_stdout,
    reason = "the URL goes to stdout so scripts can read it"
)]
fn announce(upstream: &FaultUpstream) {
    println!("{}", upstream.url());
    eprintln!(
        "fault upstream listening, default scenario `{}`; Ctrl-C stops",
        upstream.scenario()
    );
}

/// Logs every attempt as it arrives; never returns.
async fn log_attempts(upstream: &FaultUpstream) {
    let mut logged = 0;
    loop {
        upstream.wait_for_attempts(logged + 1).await;
        let attempts = upstream.attempts();
        for (number, attempt) in attempts.iter().enumerate().skip(logged) {
            eprintln!(
                "attempt {} at {:.3}s: {} model={} stream={} scenario=`{}` request_id={}",
                number + 1,
                attempt.at.as_secs_f64(),
                attempt.path,
                attempt.model,
                attempt.stream,
                attempt.scenario,
                attempt.request_id,
            );
        }
        logged = attempts.len();
    }
}

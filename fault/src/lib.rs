//! A scriptable, misbehaving Anthropic Messages API upstream for tests and demos.
//!
//! [`FaultUpstream`] serves `POST /v1/messages` (JSON, or SSE when the body says
//! `"stream": true`) and `POST /v1/messages/count_tokens` on a real socket, misbehaves as its
//! [`Scenario`] says (error statuses, resets, silence, slow or broken streams, outages,
//! redirects) and records every attempt it sees ([`AttemptRecord`]), including whether the
//! client went away before the answer was complete; it also counts the attempts and
//! connections still open, so a test can wait until a client has let go of everything.
//!
//! A request whose `model` is `fault:<scenario>` (e.g. `fault:status=503`) is answered by that
//! scenario; any other by the server's default.
//!
//! A crate of its own, a dev-dependency of `relayrace`'s tests and examples, so that the relay
//! does not ship it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use relayrace_fault::FaultUpstream;
//!
//! let upstream = FaultUpstream::start("fail_first=1,status=500".parse()?).await?;
//! // Point a provider's base_url at upstream.url() and send a request through the relay, then:
//! upstream.wait_for_attempts(2).await;
//! let attempts = upstream.attempts();
//! assert_eq!(attempts[0].headers["x-api-key"], "sk-provider");
//! assert!(attempts[1].completed);
//! # Ok(())
//! # }
//! ```

mod connection;
mod endpoint;
mod journal;
mod reply;
mod scenario;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

pub use journal::AttemptRecord;
pub use scenario::{Answer, Ending, ErrorReply, Scenario, ScenarioError};

use connection::OpenConnections;
use endpoint::ServerState;
use journal::Journal;

/// A running fault upstream. Dropping it stops the server and closes its connections.
pub struct FaultUpstream {
    addr: SocketAddr,
    state: Arc<ServerState>,
    server: JoinHandle<()>,
}

impl FaultUpstream {
    /// Starts a server on `127.0.0.1` and a free port, answering with `scenario` by default.
    pub async fn start(scenario: Scenario) -> io::Result<Self> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), scenario).await
    }

    /// Starts a server on `addr`, answering with `scenario` by default.
    pub async fn start_on(addr: SocketAddr, scenario: Scenario) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(ServerState {
            journal: Journal::new(),
            default: watch::Sender::new(scenario),
            connections: OpenConnections::new(),
        });
        let server = tokio::spawn(accept(
            listener,
            endpoint::app(Arc::clone(&state)),
            state.connections.clone(),
        ));
        Ok(FaultUpstream {
            addr,
            state,
            server,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes the default scenario for requests that arrive from now on.
    pub fn set_scenario(&self, scenario: Scenario) {
        self.state.default.send_replace(scenario);
    }

    /// The default scenario.
    pub fn scenario(&self) -> Scenario {
        self.state.default.borrow().clone()
    }

    /// A snapshot of every attempt so far, in arrival order.
    pub fn attempts(&self) -> Vec<AttemptRecord> {
        self.state.journal.snapshot()
    }

    /// How many attempts have arrived.
    pub fn attempt_count(&self) -> usize {
        self.state.journal.len()
    }

    /// Resolves once at least `n` attempts have arrived.
    pub async fn wait_for_attempts(&self, n: usize) {
        self.state.journal.wait_until(|log| log.len() >= n).await;
    }

    /// Attempts still open: neither played to their end nor abandoned by their client (a
    /// `silent` or stalled attempt stays open until the client goes away).
    pub fn open_attempts(&self) -> usize {
        self.state.journal.open_now()
    }

    /// Resolves once no attempt is open (see [`open_attempts`](Self::open_attempts)).
    pub async fn wait_for_no_open_attempts(&self) {
        self.state
            .journal
            .wait_until(|log| Journal::open(log) == 0)
            .await;
    }

    /// Connections accepted and not yet closed (idle keep-alive ones included).
    pub fn open_connections(&self) -> usize {
        self.state.connections.count()
    }

    /// Resolves once at most `n` connections are open.
    pub async fn wait_for_open_connections_at_most(&self, n: usize) {
        self.state.connections.wait_at_most(n).await;
    }

    /// Resolves once at least `n` attempts have been recorded as disconnected: their client
    /// went away before the scenario played to its end.
    pub async fn wait_for_disconnects(&self, n: usize) {
        let disconnects = |log: &Vec<AttemptRecord>| log.iter().filter(|a| a.disconnected).count();
        self.state
            .journal
            .wait_until(|log| disconnects(log) >= n)
            .await;
    }
}

impl Drop for FaultUpstream {
    fn drop(&mut self) {
        // The accept task owns the connection tasks; aborting it aborts them.
        self.server.abort();
    }
}

async fn accept(listener: TcpListener, app: axum::Router, open: OpenConnections) {
    let mut connections = JoinSet::new();
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                while connections.try_join_next().is_some() {}
                let counted = open.enter();
                let serve = connection::serve(stream, app.clone());
                connections.spawn(async move {
                    let _counted = counted;
                    serve.await;
                });
            }
            // Out of file descriptors and the like: back off instead of spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

#[cfg(test)]
mod tests;

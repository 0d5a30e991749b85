//! What happened during a route: every attempt, its outcome and latency.

use std::time::Duration;

use crate::error::AttemptError;
use crate::upstream::Provider;

/// How one attempt ended.
#[derive(Clone, Debug)]
pub enum AttemptOutcome {
    /// The attempt produced the response (or would have, had another not won first).
    Succeeded,
    /// The attempt failed.
    Failed(AttemptError),
    /// The attempt was cancelled: a race loser, a race timeout, or a dropped request.
    Cancelled,
}

impl AttemptOutcome {
    /// The error, when the attempt failed.
    pub fn error(&self) -> Option<&AttemptError> {
        match self {
            AttemptOutcome::Failed(error) => Some(error),
            _ => None,
        }
    }
}

/// One attempt against one provider.
#[derive(Clone, Debug)]
pub struct AttemptRecord {
    /// Who was tried.
    pub provider: Provider,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// From the attempt's start to its end (or cancellation).
    pub latency: Duration,
}

/// The story of a successful route.
#[derive(Clone, Debug)]
pub struct RouteReport {
    /// The provider whose response is returned.
    pub winner: Provider,
    /// Every attempt, in the order they started (the primary first).
    pub attempts: Vec<AttemptRecord>,
    /// Whether a failover race ran.
    pub raced: bool,
}

/// A response and how it was obtained.
#[derive(Debug)]
pub struct Routed<R> {
    /// The winning attempt's response.
    pub response: R,
    /// Who answered and what else was tried.
    pub report: RouteReport,
}

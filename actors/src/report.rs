//! What a route did, as the runtime saw it: every attempt with its outcome and latency, who
//! won, and whether the primary's failure started a failover and how its race ended. Success
//! and failure carry the same story, so an embedder never has to re-derive it.

use std::time::Duration;

use crate::upstream::{AttemptError, Cause, Provider};

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

    /// The outcome's name: `succeeded`, `failed` or `cancelled`.
    pub fn name(&self) -> &'static str {
        match self {
            AttemptOutcome::Succeeded => "succeeded",
            AttemptOutcome::Failed(_) => "failed",
            AttemptOutcome::Cancelled => "cancelled",
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
    /// From the attempt's start to its end (or cancellation); for the winner, its time to the
    /// commit point.
    pub latency: Duration,
}

impl AttemptRecord {
    /// Why the attempt failed, when it did.
    pub fn cause(&self) -> Option<Cause> {
        self.outcome.error().map(AttemptError::cause)
    }
}

/// How a failover race ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RaceEnd {
    /// An attempt succeeded.
    Won,
    /// Every attempt failed.
    AllFailed,
    /// The race timeout elapsed first.
    TimedOut,
}

impl RaceEnd {
    /// The end's name: `won`, `all_failed` or `timed_out`.
    pub fn name(self) -> &'static str {
        match self {
            RaceEnd::Won => "won",
            RaceEnd::AllFailed => "all_failed",
            RaceEnd::TimedOut => "timed_out",
        }
    }
}

/// A failover: the primary failed with a trigger and the others were raced, or the primary
/// was slow to commit and a hedge joined it ([`Cause::Hedge`]; then the primary is a racer too,
/// and the others join if it fails).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failover {
    /// Why the primary failed, or [`Cause::Hedge`].
    pub cause: Cause,
    /// How the race ended; `None` when no other provider was left to race.
    pub race: Option<RaceEnd>,
}

/// The story of a successful route.
#[derive(Clone, Debug)]
pub struct RouteReport {
    /// Every attempt, in the order they started (the primary first).
    pub attempts: Vec<AttemptRecord>,
    /// The index in `attempts` of the attempt whose response is returned.
    pub winner: usize,
    /// The failover that found the winner, when the primary failed.
    pub failover: Option<Failover>,
}

impl RouteReport {
    /// The provider whose response is returned.
    pub fn winner(&self) -> &Provider {
        &self.attempts[self.winner].provider
    }

    /// The winning attempt.
    pub fn winning_attempt(&self) -> &AttemptRecord {
        &self.attempts[self.winner]
    }

    /// Whether a failover race ran.
    pub fn raced(&self) -> bool {
        self.failover.is_some()
    }
}

/// A response and how it was obtained.
#[derive(Debug)]
pub struct Routed<R> {
    /// The winning attempt's response.
    pub response: R,
    /// Who answered and what else was tried.
    pub report: RouteReport,
}

/// Why a route produced no response.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// The runtime has no providers.
    #[error("no providers configured")]
    NoProviders,
    /// Every provider is unhealthy, cooling down, disabled or failed.
    #[error("all providers are unhealthy")]
    AllUnhealthy,
    /// The primary failed with an error that triggers no failover (or failover is off).
    #[error("provider {provider} failed")]
    Failed {
        /// The provider that failed.
        provider: Provider,
        /// Its error.
        #[source]
        error: AttemptError,
        /// The attempts made: this one, and a hedge cancelled beside it.
        attempts: Vec<AttemptRecord>,
    },
    /// Every attempt failed; `attempts` holds each attempt's error in order.
    #[error("all {} attempts failed", attempts.len())]
    Exhausted {
        /// Every attempt, in the order they started.
        attempts: Vec<AttemptRecord>,
        /// The failover that ran out of providers.
        failover: Failover,
    },
    /// The race found no winner within the race timeout.
    #[error("no provider answered within the race timeout of {timeout:?}")]
    Timeout {
        /// The race timeout in force.
        timeout: Duration,
        /// The attempts so far; those still running when time ran out are marked cancelled.
        attempts: Vec<AttemptRecord>,
        /// The failover whose race timed out.
        failover: Failover,
    },
    /// No enabled provider serves the request's model; no attempt was made.
    #[error("no provider serves the model `{model}`; served: {}", served.join(", "))]
    ModelNotServed {
        /// The model asked for.
        model: String,
        /// What the enabled providers serve (names and patterns, as configured).
        served: Vec<String>,
    },
    /// A provider name that is not configured.
    #[error("unknown provider `{0}`")]
    UnknownProvider(String),
    /// The runtime is shutting down or stopped.
    #[error("the runtime is shut down")]
    Stopped,
}

impl RouteError {
    /// Every attempt made before the error, in order (empty when none was made).
    pub fn attempts(&self) -> &[AttemptRecord] {
        match self {
            RouteError::Failed { attempts, .. }
            | RouteError::Exhausted { attempts, .. }
            | RouteError::Timeout { attempts, .. } => attempts,
            _ => &[],
        }
    }

    /// The failover that was tried, when the primary's failure started one.
    pub fn failover(&self) -> Option<Failover> {
        match self {
            RouteError::Exhausted { failover, .. } | RouteError::Timeout { failover, .. } => {
                Some(*failover)
            }
            _ => None,
        }
    }

    /// The error of the last attempt that failed, if any.
    pub fn last_error(&self) -> Option<&AttemptError> {
        self.attempts()
            .iter()
            .rev()
            .find_map(|record| record.outcome.error())
    }
}

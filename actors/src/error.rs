//! Errors of attempts, routes and start-up.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::config::ConfigError;
use crate::report::AttemptRecord;
use crate::upstream::Provider;

/// What went wrong in one attempt, as reported by the embedder's [`Upstream`](crate::Upstream).
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttemptError {
    /// The upstream answered with an error status (an error event inside a stream maps here too,
    /// e.g. `overloaded_error` as 529).
    #[error("upstream answered with status {status}")]
    Status {
        /// The status code.
        status: u16,
        /// The upstream's `retry-after`, when it sent one.
        retry_after: Option<Duration>,
        /// Whatever the embedder wants back when this error reaches the requester
        /// (the relay keeps the upstream's headers and body here).
        detail: Detail,
    },
    /// The attempt ran out of time.
    #[error("attempt timed out waiting for {phase}")]
    Timeout {
        /// What it was waiting for: `connect`, `first byte`, `first event`, ...
        phase: &'static str,
    },
    /// The connection could not be made or broke before an answer.
    #[error("connection failed: {message}")]
    Connection {
        /// What the transport said.
        message: String,
    },
    /// Anything else; counts against health, triggers no failover by default.
    #[error("attempt failed: {message}")]
    Other {
        /// What happened.
        message: String,
    },
}

impl AttemptError {
    /// An error status without `retry-after` or detail.
    pub fn status(status: u16) -> Self {
        AttemptError::Status {
            status,
            retry_after: None,
            detail: Detail::default(),
        }
    }

    /// The status code, when the upstream answered with one.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            AttemptError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The upstream's `retry-after`, when it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            AttemptError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Opaque, cheaply cloned data the embedder attaches to an [`AttemptError::Status`].
#[derive(Clone, Default)]
pub struct Detail(Option<Arc<dyn Any + Send + Sync>>);

impl Detail {
    /// Wraps a value.
    pub fn new<T: Any + Send + Sync>(value: T) -> Self {
        Detail(Some(Arc::new(value)))
    }

    /// The value, when it is a `T`.
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        self.0.as_deref().and_then(|value| value.downcast_ref())
    }
}

impl fmt::Debug for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Detail(..)"
        } else {
            "Detail(none)"
        })
    }
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
        /// The attempts made (just this one).
        attempts: Vec<AttemptRecord>,
    },
    /// Every attempt failed; `attempts` holds each attempt's error in order.
    #[error("all {} attempts failed", attempts.len())]
    Exhausted {
        /// Every attempt, in the order they started.
        attempts: Vec<AttemptRecord>,
    },
    /// The race found no winner within the race timeout.
    #[error("no provider answered within the race timeout of {timeout:?}")]
    Timeout {
        /// The race timeout in force.
        timeout: Duration,
        /// The attempts so far; those still running when time ran out are marked cancelled.
        attempts: Vec<AttemptRecord>,
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
            | RouteError::Exhausted { attempts }
            | RouteError::Timeout { attempts, .. } => attempts,
            _ => &[],
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

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is invalid; every problem is listed.
    #[error("invalid runtime configuration: {}", join(.0))]
    Config(Vec<ConfigError>),
    /// An actor failed to start.
    #[error("failed to start the {actor} actor: {message}")]
    Spawn {
        /// Which actor.
        actor: &'static str,
        /// What ractor said.
        message: String,
    },
}

fn join(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

//! The one I/O seam, and the leaf of the crate: the embedder performs attempts against
//! providers, the runtime decides where and when. [`Upstream`] is the trait, [`Provider`] what
//! it is handed, [`AttemptError`] what it returns on failure, and [`Cause`] the short label of
//! that failure. This module imports nothing else of the runtime.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Index of a provider in the configured order; stable for the runtime's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProviderId(pub usize);

impl ProviderId {
    /// Position of the provider in the configuration.
    pub fn index(self) -> usize {
        self.0
    }
}

/// A provider as handed to [`Upstream::attempt`]: its id and name. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Provider {
    id: ProviderId,
    name: Arc<str>,
}

impl Provider {
    /// A provider with this id and name.
    pub fn new(id: ProviderId, name: impl Into<Arc<str>>) -> Self {
        Self {
            id,
            name: name.into(),
        }
    }

    /// Its id (position in the configuration).
    pub fn id(&self) -> ProviderId {
        self.id
    }

    /// Its configured name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Provider({}, {:?})", self.id.0, self.name)
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Performs one attempt of a request against one provider.
///
/// The embedder implements this (the relay does it with HTTP); the runtime calls it for the
/// primary and for every racer. An attempt should return `Ok` only once it is committed to:
/// for a streamed answer, once the first event has arrived and is not an error. The rest of a
/// response (a body stream) may be consumed after `route` returns; the race timeout never cuts it.
///
/// Dropping the returned future cancels the attempt: a race loser's future is dropped the moment
/// the winner is known, so its upstream connection closes.
pub trait Upstream: Send + Sync + 'static {
    /// The request, shared between attempts (never copied per attempt).
    type Request: Send + Sync + 'static;
    /// The response of a successful attempt.
    type Response: Send + 'static;

    /// Tries `request` once on `provider`.
    fn attempt(
        &self,
        provider: &Provider,
        request: Arc<Self::Request>,
    ) -> impl Future<Output = Result<Self::Response, AttemptError>> + Send;

    /// The request's route key: the model it asks for. Only the providers that serve it are
    /// eligible (`ProviderSettings::models`). `None` (the default): every provider is.
    fn route_key(request: &Self::Request) -> Option<&str> {
        let _ = request;
        None
    }

    /// The request's shape: how big it is and whether it is streamed. Each provider learns
    /// its time to commit per class of shape (the runtime measures the time from the start of
    /// an attempt to its `Ok`), so a large prompt is not hedged just for being large. The
    /// default: a small stream.
    fn shape(request: &Self::Request) -> RequestShape {
        let _ = request;
        RequestShape::streamed(0)
    }
}

/// How big a request is and how it is answered (see [`Upstream::shape`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestShape {
    /// The size of its body, in bytes.
    pub bytes: usize,
    /// Whether it is answered as a stream (its commit is the first event) rather than whole
    /// (its commit is the whole answer).
    pub streamed: bool,
}

impl RequestShape {
    /// A streamed request of `bytes`.
    pub fn streamed(bytes: usize) -> Self {
        RequestShape {
            bytes,
            streamed: true,
        }
    }

    /// A request of `bytes` answered whole.
    pub fn whole(bytes: usize) -> Self {
        RequestShape {
            bytes,
            streamed: false,
        }
    }
}

impl<U: Upstream> Upstream for Arc<U> {
    type Request = U::Request;
    type Response = U::Response;

    fn attempt(
        &self,
        provider: &Provider,
        request: Arc<Self::Request>,
    ) -> impl Future<Output = Result<Self::Response, AttemptError>> + Send {
        U::attempt(self, provider, request)
    }

    fn route_key(request: &Self::Request) -> Option<&str> {
        U::route_key(request)
    }

    fn shape(request: &Self::Request) -> RequestShape {
        U::shape(request)
    }
}

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
    /// The provider refused the embedder's own credential or account: a bad or revoked key
    /// (401, 403), an exhausted budget (402) or a spent limit (a 429 that says so). Another
    /// provider can serve the request, so it fails over by default, and the provider leaves
    /// rotation as `rejected` until a probe finds it accepted again. A refusal of the client's
    /// own credential (passed through to the provider) is not this: report it as
    /// [`AttemptError::Status`], which the client gets unchanged.
    #[error("upstream refused the relay's credential (status {status})")]
    Rejected {
        /// The status code the provider answered with.
        status: u16,
        /// As for [`AttemptError::Status`].
        detail: Detail,
    },
    /// The provider does not serve the request's model (a 404 `not_found_error` about it): its
    /// model list was wrong. Another provider that serves the model is tried; the provider's
    /// health is left alone.
    #[error("upstream does not serve the requested model (status {status})")]
    NotServed {
        /// The status code the provider answered with.
        status: u16,
        /// As for [`AttemptError::Status`].
        detail: Detail,
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
            AttemptError::Status { status, .. }
            | AttemptError::Rejected { status, .. }
            | AttemptError::NotServed { status, .. } => Some(*status),
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

    /// Why the attempt failed, as a short label.
    pub fn cause(&self) -> Cause {
        match self {
            AttemptError::Status { status, .. }
            | AttemptError::Rejected { status, .. }
            | AttemptError::NotServed { status, .. } => Cause::Status(*status),
            AttemptError::Timeout { .. } => Cause::Timeout,
            AttemptError::Connection { .. } => Cause::Connection,
            AttemptError::Other { .. } => Cause::Other,
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

/// Why an attempt failed (or a failover began), as a label for metrics and events: it
/// displays as the status code (`529`), `timeout`, `connection`, `other` or `hedge`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cause {
    /// The upstream answered with this error status.
    Status(u16),
    /// The attempt ran out of time.
    Timeout,
    /// The connection could not be made or broke.
    Connection,
    /// Anything else.
    Other,
    /// Not a failure: the primary was slow to commit and a hedge joined it (only ever the
    /// cause of a [`Failover`](crate::Failover), never of an attempt's error).
    Hedge,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Status(status) => write!(f, "{status}"),
            Cause::Timeout => f.write_str("timeout"),
            Cause::Connection => f.write_str("connection"),
            Cause::Other => f.write_str("other"),
            Cause::Hedge => f.write_str("hedge"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_short_labels() {
        let connection = AttemptError::Connection {
            message: "refused".into(),
        };
        let timeout = AttemptError::Timeout {
            phase: "first event",
        };
        let other = AttemptError::Other {
            message: "x".into(),
        };
        assert_eq!(AttemptError::status(529).cause(), Cause::Status(529));
        assert_eq!(AttemptError::status(429).cause().to_string(), "429");
        assert_eq!(timeout.cause().to_string(), "timeout");
        assert_eq!(connection.cause().to_string(), "connection");
        assert_eq!(other.cause().to_string(), "other");
    }
}

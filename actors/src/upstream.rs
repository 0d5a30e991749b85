//! The one I/O seam: the embedder performs attempts, the runtime decides where and when.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use crate::error::AttemptError;

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
}

//! A scripted fake upstream for tests of the runtime and of code that embeds it.
//!
//! Each provider follows a script of [`Step`]s (the last one repeats). The fake records every
//! call and every cancellation (an attempt future dropped before it finished), and lets a test
//! wait for cancellations without sleeping.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use crate::upstream::{AttemptError, Detail};
use crate::upstream::{Provider, RequestShape, Upstream};

/// What one attempt does.
#[derive(Clone, Debug)]
pub struct Step {
    delay: Duration,
    action: Action,
}

#[derive(Clone, Debug)]
enum Action {
    Succeed,
    Fail(AttemptError),
    Hang,
}

impl Step {
    /// Succeeds.
    pub fn ok() -> Self {
        Step {
            delay: Duration::ZERO,
            action: Action::Succeed,
        }
    }

    /// Fails with `error`.
    pub fn fail(error: AttemptError) -> Self {
        Step {
            delay: Duration::ZERO,
            action: Action::Fail(error),
        }
    }

    /// Fails with an error status.
    pub fn status(status: u16) -> Self {
        Step::fail(AttemptError::status(status))
    }

    /// Fails with a 429 carrying `retry-after`.
    pub fn rate_limited(retry_after: Duration) -> Self {
        Step::fail(AttemptError::Status {
            status: 429,
            retry_after: Some(retry_after),
            detail: Detail::default(),
        })
    }

    /// Fails with an attempt timeout.
    pub fn timeout() -> Self {
        Step::fail(AttemptError::Timeout {
            phase: "first event",
        })
    }

    /// Fails with a connection error.
    pub fn refused() -> Self {
        Step::fail(AttemptError::Connection {
            message: "connection refused".into(),
        })
    }

    /// Never finishes (until cancelled).
    pub fn hang() -> Self {
        Step {
            delay: Duration::ZERO,
            action: Action::Hang,
        }
    }

    /// Takes `delay` before acting.
    #[must_use]
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// The fake's response: who answered, and which of its calls it was (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeResponse {
    /// The provider's name.
    pub provider: String,
    /// The call number on that provider.
    pub call: usize,
}

#[derive(Debug)]
struct Script {
    steps: Vec<Step>,
    cycle: bool,
    calls: AtomicUsize,
    completed: AtomicUsize,
    cancelled: watch::Sender<usize>,
}

/// A scripted upstream. Requests are strings (`model:NAME` routes by model `NAME`); any
/// provider without a script succeeds at once.
#[derive(Debug, Default)]
pub struct FakeUpstream {
    scripts: HashMap<String, Arc<Script>>,
    fallback: Option<Arc<Script>>,
    in_flight: Arc<AtomicUsize>,
}

impl FakeUpstream {
    /// A fake where every provider succeeds at once.
    pub fn new() -> Self {
        Self::default()
    }

    /// Gives `provider` a script; the last step repeats.
    #[must_use]
    pub fn script(mut self, provider: &str, steps: impl IntoIterator<Item = Step>) -> Self {
        self.scripts
            .insert(provider.to_owned(), Arc::new(Script::new(steps)));
        self
    }

    /// Gives `provider` a script that starts over after its last step.
    #[must_use]
    pub fn cycle(mut self, provider: &str, steps: impl IntoIterator<Item = Step>) -> Self {
        let mut script = Script::new(steps);
        script.cycle = true;
        self.scripts.insert(provider.to_owned(), Arc::new(script));
        self
    }

    /// Gives every provider without a script this behaviour.
    #[must_use]
    pub fn otherwise(mut self, step: Step) -> Self {
        self.fallback = Some(Arc::new(Script::new([step])));
        self
    }

    /// Calls made to `provider` so far.
    pub fn calls(&self, provider: &str) -> usize {
        self.scripts
            .get(provider)
            .map_or(0, |s| s.calls.load(Ordering::SeqCst))
    }

    /// Attempts on `provider` that were dropped before finishing.
    pub fn cancelled(&self, provider: &str) -> usize {
        self.scripts
            .get(provider)
            .map_or(0, |s| *s.cancelled.borrow())
    }

    /// Attempts on `provider` that ran to their end.
    pub fn completed(&self, provider: &str) -> usize {
        self.scripts
            .get(provider)
            .map_or(0, |s| s.completed.load(Ordering::SeqCst))
    }

    /// Attempts running right now, over all providers.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Waits until `provider` has seen at least `count` cancellations.
    pub async fn wait_cancelled(&self, provider: &str, count: usize) {
        if let Some(script) = self.scripts.get(provider) {
            let mut cancelled = script.cancelled.subscribe();
            let _ = cancelled.wait_for(|n| *n >= count).await;
        }
    }

    fn script_of(&self, provider: &str) -> Option<&Arc<Script>> {
        self.scripts.get(provider).or(self.fallback.as_ref())
    }
}

impl Script {
    fn new(steps: impl IntoIterator<Item = Step>) -> Self {
        let mut steps: Vec<Step> = steps.into_iter().collect();
        if steps.is_empty() {
            steps.push(Step::ok());
        }
        Script {
            steps,
            cycle: false,
            calls: AtomicUsize::new(0),
            completed: AtomicUsize::new(0),
            cancelled: watch::Sender::new(0),
        }
    }
}

impl Script {
    fn step(&self, call: usize) -> Step {
        let index = if self.cycle {
            (call - 1) % self.steps.len()
        } else {
            (call - 1).min(self.steps.len() - 1)
        };
        self.steps[index].clone()
    }
}

/// Counts a cancellation if the attempt future is dropped before it finished.
struct Pending {
    script: Option<Arc<Script>>,
    in_flight: Arc<AtomicUsize>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if let Some(script) = &self.script {
            script.cancelled.send_modify(|n| *n += 1);
        }
    }
}

impl Upstream for FakeUpstream {
    type Request = String;
    type Response = FakeResponse;

    /// A request `model:NAME` asks for model `NAME`; any other asks for none.
    fn route_key(request: &String) -> Option<&str> {
        request.strip_prefix("model:")
    }

    /// A request `bytes:N` is a stream of an `N`-byte body, `whole` an answer that is not
    /// streamed; any other is a stream of its own length.
    fn shape(request: &String) -> RequestShape {
        if request == "whole" {
            return RequestShape::whole(request.len());
        }
        request
            .strip_prefix("bytes:")
            .and_then(|bytes| bytes.parse().ok())
            .map_or(
                RequestShape::streamed(request.len()),
                RequestShape::streamed,
            )
    }

    async fn attempt(
        &self,
        provider: &Provider,
        _request: Arc<String>,
    ) -> Result<FakeResponse, AttemptError> {
        let script = self.script_of(provider.name()).cloned();
        let call = script
            .as_ref()
            .map_or(1, |s| s.calls.fetch_add(1, Ordering::SeqCst) + 1);
        let step = script
            .as_ref()
            .map(|s| s.step(call))
            .unwrap_or_else(Step::ok);
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let mut pending = Pending {
            script: script.clone(),
            in_flight: self.in_flight.clone(),
        };
        if !step.delay.is_zero() {
            tokio::time::sleep(step.delay).await;
        }
        let result = match step.action {
            Action::Succeed => Ok(FakeResponse {
                provider: provider.name().to_owned(),
                call,
            }),
            Action::Fail(error) => Err(error),
            Action::Hang => std::future::pending().await,
        };
        if let Some(script) = pending.script.take() {
            script.completed.fetch_add(1, Ordering::SeqCst);
        }
        drop(pending);
        result
    }
}

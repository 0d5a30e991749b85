//! How an attempt's outcome reaches its provider: judged once, reported by a guard that reports
//! a cancellation if the attempt is dropped, and — for a success on a provider in good standing —
//! counted without a message (see [`Standing`](super::standing)).

use std::time::Duration;

use ractor::ActorRef;
use ractor::rpc::CallResult;
use tokio::time::Instant;

use super::message::{ProviderMsg, Reported};
use super::standing::Standing;
use super::view::Target;
use crate::hedge::RequestClass;
use crate::report::AttemptOutcome;
use crate::trigger::Triggers;
use crate::upstream::{AttemptError, Provider, Upstream};

/// One attempt in flight on an admitted provider. Reports its outcome once; reports a
/// cancellation if dropped unfinished (a killed race actor, a dropped request future). Its
/// probe permit, if any, is freed when it is dropped, after the report is sent.
pub(crate) struct OutcomeGuard {
    target: Target,
    class: RequestClass,
    started: Instant,
    reported: bool,
}

impl OutcomeGuard {
    /// Starts the clock of an attempt of a request of `class` on `target`.
    pub(crate) fn start(target: Target, class: RequestClass) -> Self {
        Self {
            target,
            class,
            started: Instant::now(),
            reported: false,
        }
    }

    /// Who is tried.
    pub(crate) fn provider(&self) -> &Provider {
        &self.target.provider
    }

    /// Performs the attempt. A probe gets `probe_timeout` to reach its commit point; past it,
    /// it is a timeout (its request fails over, and the provider stays out of rotation). The
    /// future borrows only the upstream, so the guard can be finished while it is pending.
    pub(crate) fn run<'u, U: Upstream>(
        &self,
        upstream: &'u U,
        request: std::sync::Arc<U::Request>,
        probe_timeout: Duration,
    ) -> impl Future<Output = Result<U::Response, AttemptError>> + Send + use<'u, U> {
        let provider = self.target.provider.clone();
        let probe = self.target.is_probe();
        async move {
            let attempt = upstream.attempt(&provider, request);
            if !probe {
                return attempt.await;
            }
            tokio::time::timeout(probe_timeout, attempt)
                .await
                .unwrap_or(Err(AttemptError::Timeout {
                    phase: "the probe's answer",
                }))
        }
    }

    /// When the attempt started.
    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    /// Time since the attempt started.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Reports without waiting; a success on a provider in good standing is only counted. A
    /// success's time to commit is learned for its class.
    pub(crate) fn finish(mut self, report: Reported) {
        self.reported = true;
        if matches!(report, Reported::Succeeded) {
            let latency = self.elapsed();
            let now = self.started + latency;
            self.target.hedge.record(self.class, latency, now);
            if self.target.standing.count_success(latency) {
                return;
            }
        }
        send(
            &self.target.actor,
            &self.target.standing,
            report,
            self.elapsed(),
        );
    }

    /// Its hedge committed first. A primary is cancelled (neutral for health); a probe is
    /// judged timed out, so that a provider that has just come back but answers slower than
    /// its hedge stays out of rotation and is probed again later, rather than making every
    /// request wait for the hedge delay. Returns what to record.
    pub(crate) fn outrun(self, triggers: &Triggers) -> AttemptOutcome {
        if !self.target.is_probe() {
            // Dropped unfinished: reported as cancelled.
            return AttemptOutcome::Cancelled;
        }
        let error = AttemptError::Timeout {
            phase: "the probe's answer (its hedge answered first)",
        };
        self.finish(Reported::failed(&triggers.judge(&error), &error));
        AttemptOutcome::Failed(error)
    }

    /// Reports and waits until the provider has recorded it, so that what routing reads next
    /// reflects it. `false` when the provider could not be told.
    pub(crate) async fn finish_recorded(mut self, report: Reported) -> bool {
        self.reported = true;
        let target = &self.target;
        let latency = self.elapsed();
        target.standing.report_pending();
        let answered = target
            .actor
            .call(
                |reply| ProviderMsg::AttemptFinished {
                    report,
                    latency,
                    reply: Some(reply),
                },
                None,
            )
            .await;
        match answered {
            Ok(CallResult::Success(())) => true,
            Ok(_) => false,
            Err(_) => {
                target.standing.report_lost();
                false
            }
        }
    }
}

impl Drop for OutcomeGuard {
    fn drop(&mut self) {
        if !self.reported {
            let target = &self.target;
            send(
                &target.actor,
                &target.standing,
                Reported::Cancelled,
                self.elapsed(),
            );
        }
    }
}

/// Casts a report, marked pending until the provider has processed it.
pub(crate) fn send(
    actor: &ActorRef<ProviderMsg>,
    standing: &Standing,
    report: Reported,
    latency: Duration,
) {
    standing.report_pending();
    let sent = actor.cast(ProviderMsg::AttemptFinished {
        report,
        latency,
        reply: None,
    });
    if sent.is_err() {
        standing.report_lost();
    }
}

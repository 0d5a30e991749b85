//! How an attempt's outcome reaches its provider: judged once, reported by a guard that reports a
//! cancellation if the attempt is dropped, and — for a success on a provider in good standing —
//! counted without a message.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ractor::ActorRef;
use ractor::rpc::CallResult;
use tokio::time::Instant;

use super::{ProviderMsg, RaceRequest};
use crate::error::AttemptError;
use crate::router::Target;
use crate::trigger::{HealthEffect, Triggers};
use crate::upstream::ProviderId;

/// What the provider actor is told about one attempt.
#[derive(Clone, Debug)]
pub(crate) enum Reported {
    Succeeded,
    Failed { effect: HealthEffect, error: String },
    Cancelled,
}

impl Reported {
    /// Judges an attempt's result once, with the triggers in force.
    pub(crate) fn judge<R>(result: &Result<R, AttemptError>, triggers: &Triggers) -> Self {
        match result {
            Ok(_) => Reported::Succeeded,
            Err(error) => Reported::Failed {
                effect: triggers.judge(error).health,
                error: error.to_string(),
            },
        }
    }
}

/// What a request needs to record a success on a provider in good standing without a message:
/// the provider actor keeps `clean` true while the provider is healthy, enabled and has no
/// failure since its last success — then a success changes nothing but counters. One message per
/// successful request would otherwise wake the provider actor for nothing.
#[derive(Debug, Default)]
pub(crate) struct Standing {
    pub(super) clean: AtomicBool,
    /// Reports sent to the actor and not yet processed: while any is pending, a success must
    /// queue behind it (a success after a failure resets the failure count).
    pub(super) unsettled: AtomicU64,
    pub(super) quiet_successes: AtomicU64,
    last_success_nanos: AtomicU64,
}

impl Standing {
    pub(super) fn record_latency(&self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.last_success_nanos
            .store(nanos.max(1), Ordering::Relaxed);
    }

    pub(super) fn last_success_latency(&self) -> Option<Duration> {
        match self.last_success_nanos.load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }
}

/// Reports the outcome of one attempt to its provider; reports a cancellation if dropped
/// unfinished (a killed race actor, a dropped request future).
pub(crate) struct OutcomeGuard {
    provider: Option<ActorRef<ProviderMsg>>,
    standing: Arc<Standing>,
    started: Instant,
}

impl OutcomeGuard {
    pub(crate) fn start(target: &crate::router::Target) -> Self {
        Self {
            provider: Some(target.actor.clone()),
            standing: target.standing.clone(),
            started: Instant::now(),
        }
    }

    /// Time since the attempt started.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Reports without waiting; a success on a provider in good standing is only counted.
    pub(crate) fn finish(mut self, report: Reported) {
        let settled = self.standing.unsettled.load(Ordering::Acquire) == 0;
        if matches!(report, Reported::Succeeded)
            && settled
            && self.standing.clean.load(Ordering::Acquire)
        {
            self.provider = None;
            self.standing
                .quiet_successes
                .fetch_add(1, Ordering::Relaxed);
            self.standing.record_latency(self.started.elapsed());
            return;
        }
        self.send(report);
    }

    /// Reports a failure, then has the race planned by the router once it knows what the
    /// failure did to this provider (so the race includes it only if it is still in rotation).
    /// `None` when the provider or the router could not answer.
    pub(crate) async fn finish_then_plan_race(
        mut self,
        report: Reported,
        exclude: Option<ProviderId>,
    ) -> Option<Vec<Target>> {
        let provider = self.provider.take()?;
        let latency = self.started.elapsed();
        self.standing.unsettled.fetch_add(1, Ordering::AcqRel);
        let answered = provider
            .call(
                |reply| ProviderMsg::AttemptFinished {
                    report,
                    latency,
                    settles: true,
                    plan_race: Some(RaceRequest { exclude, reply }),
                },
                None,
            )
            .await;
        match answered {
            Ok(CallResult::Success(targets)) => Some(targets),
            Ok(_) => None,
            Err(_) => {
                // Never delivered: nothing will settle it.
                self.standing.unsettled.fetch_sub(1, Ordering::AcqRel);
                None
            }
        }
    }

    fn send(&mut self, report: Reported) {
        if let Some(provider) = self.provider.take() {
            self.standing.unsettled.fetch_add(1, Ordering::AcqRel);
            let sent = provider.cast(ProviderMsg::AttemptFinished {
                report,
                latency: self.started.elapsed(),
                settles: true,
                plan_race: None,
            });
            if sent.is_err() {
                self.standing.unsettled.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

impl Drop for OutcomeGuard {
    fn drop(&mut self) {
        self.send(Reported::Cancelled);
    }
}

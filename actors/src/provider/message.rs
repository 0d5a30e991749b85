//! What a provider actor is told and what it answers: its messages, the report of one attempt,
//! and its status.

use std::time::{Duration, SystemTime};

use ractor::RpcReplyPort;
use serde::Serialize;

use crate::state::HealthState;
use crate::trigger::{HealthEffect, Triggers, Verdict};
use crate::upstream::AttemptError;

/// Counters of one provider since the runtime started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Attempts reported.
    pub attempts: u64,
    /// Attempts that succeeded.
    pub successes: u64,
    /// Attempts that failed in a way that counts against health (or cooled it down).
    pub failures: u64,
    /// Attempts that failed with the client's error (e.g. 400); not held against the provider.
    pub client_errors: u64,
    /// Attempts cancelled: race losers, timeouts, dropped requests.
    pub cancelled: u64,
}

/// A provider's health and counters at one moment.
#[derive(Clone, Debug, Serialize)]
pub struct ProviderStatus {
    /// Current state.
    pub state: HealthState,
    /// Wall-clock time the state was entered.
    pub since: SystemTime,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// Counters.
    pub counters: Counters,
    /// The last error held against the provider, if any.
    pub last_error: Option<String>,
    /// When a cool-off or cooldown ends, if one is running.
    pub until: Option<SystemTime>,
    /// Latency of the last successful attempt.
    pub last_success_latency: Option<Duration>,
}

/// Messages of the provider actor.
pub(crate) enum ProviderMsg {
    /// An attempt against this provider ended (its report was marked pending in the standing).
    /// With `reply`, answered once it is recorded and the view republished.
    AttemptFinished {
        report: Reported,
        latency: Duration,
        reply: Option<RpcReplyPort<()>>,
    },
    /// The health deadline scheduled under `generation` passed.
    DeadlineReached { generation: u64 },
    /// An operator enables or disables the provider.
    SetEnabled {
        enabled: bool,
        reply: RpcReplyPort<()>,
    },
    /// Current health and counters.
    GetStatus { reply: RpcReplyPort<ProviderStatus> },
    /// Panics, to exercise supervision.
    #[cfg(any(test, feature = "test-util"))]
    Crash,
}

/// What the provider actor is told about one attempt.
#[derive(Clone, Debug)]
pub(crate) enum Reported {
    Succeeded,
    Failed { effect: HealthEffect, error: String },
    Cancelled,
}

impl Reported {
    /// A failure, with the health effect its verdict gave it.
    pub(crate) fn failed(verdict: &Verdict, error: &AttemptError) -> Self {
        Reported::Failed {
            effect: verdict.health.clone(),
            error: error.to_string(),
        }
    }

    /// Judges an attempt's result once, with the triggers in force.
    pub(crate) fn judge<R>(result: &Result<R, AttemptError>, triggers: &Triggers) -> Self {
        match result {
            Ok(_) => Reported::Succeeded,
            Err(error) => Reported::failed(&triggers.judge(error), error),
        }
    }
}

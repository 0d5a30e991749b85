//! Where a provider stands in routing, as everyone outside its actor sees it: the circuit's
//! state, or one decided above it (an operator disabled it, the supervisor gave up on it).

use serde::Serialize;

/// Where a provider stands in routing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// In rotation.
    Healthy,
    /// Out of rotation after consecutive failures, until its cool-off elapses.
    Unhealthy,
    /// Admits a bounded number of probe requests; one success closes it.
    HalfOpen,
    /// Out of rotation until a 429's `retry-after` elapses.
    CoolingDown,
    /// Out of rotation: it refused the relay's credential or account (a bad key, no budget
    /// left); probed again at a long interval.
    Rejected,
    /// Disabled by an operator.
    Disabled,
    /// Its actor crashed more often than the restart limit allows; out of routing for good.
    Failed,
}

impl HealthState {
    /// The state's name as shown to people (`half_open`, ...).
    pub fn name(self) -> &'static str {
        match self {
            HealthState::Healthy => "healthy",
            HealthState::Unhealthy => "unhealthy",
            HealthState::HalfOpen => "half_open",
            HealthState::CoolingDown => "cooling_down",
            HealthState::Rejected => "rejected",
            HealthState::Disabled => "disabled",
            HealthState::Failed => "failed",
        }
    }
}

impl std::fmt::Display for HealthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

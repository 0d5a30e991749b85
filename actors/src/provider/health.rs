//! A provider's health: a pure state machine fed by attempt outcomes and the clock.
//!
//! ```text
//!             N consecutive failures                cool-off elapsed
//!  Healthy ───────────────────────────▶ Unhealthy ──────────────────▶ HalfOpen
//!   ▲  │ 429 + retry-after                  ▲        probe failed        │
//!   │  ▼                                    └────────────────────────────┤
//!  CoolingDown ── retry-after elapsed ──▶ Healthy ◀──── probe succeeded ─┘
//! ```
//! The cool-off doubles on each re-opening (capped) and resets once the provider is healthy.

use std::time::Duration;

use tokio::time::Instant;

use crate::config::HealthConfig;
use crate::state::HealthState;
use crate::trigger::HealthEffect;

/// The circuit's own states: the only ones the state machine produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Circuit {
    /// In rotation.
    Healthy,
    /// Out of rotation after consecutive failures, until its cool-off elapses.
    Unhealthy,
    /// Admits a bounded number of probe requests; one success closes it.
    HalfOpen,
    /// Out of rotation until a 429's `retry-after` elapses.
    CoolingDown,
}

impl From<Circuit> for HealthState {
    fn from(circuit: Circuit) -> Self {
        match circuit {
            Circuit::Healthy => HealthState::Healthy,
            Circuit::Unhealthy => HealthState::Unhealthy,
            Circuit::HalfOpen => HealthState::HalfOpen,
            Circuit::CoolingDown => HealthState::CoolingDown,
        }
    }
}

/// One change of state and why it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The state before.
    pub from: Circuit,
    /// The state after.
    pub to: Circuit,
    /// Why, in words.
    pub reason: String,
}

/// The state machine. `Disabled` and `Failed` are not its states: the provider actor and the
/// supervisor decide those above it.
#[derive(Clone, Debug)]
pub struct Health {
    config: HealthConfig,
    state: Circuit,
    since: Instant,
    consecutive_failures: u32,
    reopenings: u32,
    until: Option<Instant>,
}

impl Health {
    /// A healthy provider as of `now`.
    pub fn new(config: HealthConfig, now: Instant) -> Self {
        Self {
            config,
            state: Circuit::Healthy,
            since: now,
            consecutive_failures: 0,
            reopenings: 0,
            until: None,
        }
    }

    /// The current state.
    pub fn state(&self) -> Circuit {
        self.state
    }

    /// When the current state was entered.
    pub fn since(&self) -> Instant {
        self.since
    }

    /// Failures since the last success.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// When the clock next changes the state (end of cool-off or of a 429 cooldown).
    pub fn deadline(&self) -> Option<Instant> {
        self.until
    }

    /// Feeds the outcome of one attempt.
    pub fn record(&mut self, effect: &HealthEffect, now: Instant) -> Option<Transition> {
        match (self.state, effect) {
            (_, HealthEffect::Neutral) => None,
            (Circuit::Unhealthy | Circuit::HalfOpen, HealthEffect::Success) => {
                self.consecutive_failures = 0;
                self.reopenings = 0;
                self.move_to(Circuit::Healthy, None, now, "attempt succeeded")
            }
            (_, HealthEffect::Success) => {
                self.consecutive_failures = 0;
                None
            }
            (Circuit::HalfOpen, HealthEffect::Failure(why)) => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.open(now, format!("probe failed: {why}"))
            }
            (Circuit::Unhealthy, HealthEffect::Failure(_)) => None,
            (_, HealthEffect::Failure(why)) => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                if self.consecutive_failures >= self.config.failure_threshold {
                    let reason = format!(
                        "{} consecutive failures, last: {why}",
                        self.consecutive_failures
                    );
                    self.open(now, reason)
                } else {
                    None
                }
            }
            (Circuit::Unhealthy, HealthEffect::Cooldown(_)) => None,
            (_, HealthEffect::Cooldown(wait)) => {
                let wait = (*wait).min(self.config.max_retry_after);
                let until = now + wait;
                if self.state == Circuit::CoolingDown {
                    self.until = self.until.max(Some(until));
                    return None;
                }
                let reason = format!("rate limited, retry after {}", human(wait));
                self.move_to(Circuit::CoolingDown, Some(until), now, reason)
            }
        }
    }

    /// Lets the clock act: ends a cool-off (to half-open) or a cooldown (to healthy).
    pub fn tick(&mut self, now: Instant) -> Option<Transition> {
        let until = self.until?;
        if now < until {
            return None;
        }
        match self.state {
            Circuit::Unhealthy => self.move_to(Circuit::HalfOpen, None, now, "cool-off elapsed"),
            Circuit::CoolingDown => {
                self.move_to(Circuit::Healthy, None, now, "retry-after elapsed")
            }
            _ => None,
        }
    }

    fn open(&mut self, now: Instant, reason: String) -> Option<Transition> {
        let exponent = self.reopenings.min(16);
        let cool_off = self
            .config
            .cool_off
            .saturating_mul(1 << exponent)
            .min(self.config.max_cool_off);
        self.reopenings = self.reopenings.saturating_add(1);
        let reason = format!("{reason}; cool-off {}", human(cool_off));
        self.move_to(Circuit::Unhealthy, Some(now + cool_off), now, reason)
    }

    fn move_to(
        &mut self,
        to: Circuit,
        until: Option<Instant>,
        now: Instant,
        reason: impl Into<String>,
    ) -> Option<Transition> {
        let from = self.state;
        self.state = to;
        self.until = until;
        self.since = now;
        Some(Transition {
            from,
            to,
            reason: reason.into(),
        })
    }
}

fn human(duration: Duration) -> String {
    humantime_serde::re::humantime::format_duration(duration).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn failure() -> HealthEffect {
        HealthEffect::Failure("upstream answered with status 503".into())
    }

    fn health() -> (Health, Instant) {
        let now = Instant::now();
        (Health::new(HealthConfig::default(), now), now)
    }

    fn fail_times(health: &mut Health, times: u32, now: Instant) -> Option<Transition> {
        (0..times)
            .filter_map(|_| health.record(&failure(), now))
            .last()
    }

    #[test]
    fn opens_after_five_consecutive_failures() {
        let (mut health, now) = health();
        assert_eq!(fail_times(&mut health, 4, now), None);
        let transition = health.record(&failure(), now).unwrap();
        assert_eq!(transition.from, Circuit::Healthy);
        assert_eq!(transition.to, Circuit::Unhealthy);
        assert!(
            transition.reason.contains("5 consecutive failures"),
            "{transition:?}"
        );
        assert_eq!(health.deadline(), Some(now + 30 * SECOND));
    }

    #[test]
    fn a_success_resets_the_consecutive_count() {
        let (mut health, now) = health();
        fail_times(&mut health, 4, now);
        health.record(&HealthEffect::Success, now);
        assert_eq!(fail_times(&mut health, 4, now), None);
        assert_eq!(health.state(), Circuit::Healthy);
    }

    #[test]
    fn half_open_after_the_cool_off_then_healthy_after_a_probe_succeeds() {
        let (mut health, now) = health();
        fail_times(&mut health, 5, now);
        assert_eq!(health.tick(now + 29 * SECOND), None);
        let half_open = health.tick(now + 30 * SECOND).unwrap();
        assert_eq!(half_open.to, Circuit::HalfOpen);
        let healed = health
            .record(&HealthEffect::Success, now + 31 * SECOND)
            .unwrap();
        assert_eq!(
            (healed.from, healed.to),
            (Circuit::HalfOpen, Circuit::Healthy)
        );
        assert_eq!(health.consecutive_failures(), 0);
    }

    #[test]
    fn cool_off_doubles_on_each_reopening_and_is_capped() {
        let (mut health, mut now) = health();
        fail_times(&mut health, 5, now);
        let mut cool_offs = Vec::new();
        for _ in 0..6 {
            let until = health.deadline().unwrap();
            cool_offs.push((until - now).as_secs());
            now = until;
            health.tick(now);
            assert_eq!(health.state(), Circuit::HalfOpen);
            let reopened = health.record(&failure(), now).unwrap();
            assert_eq!(reopened.to, Circuit::Unhealthy);
        }
        assert_eq!(cool_offs, [30, 60, 120, 240, 300, 300]);
    }

    #[test]
    fn cool_off_escalation_resets_once_healthy() {
        let (mut health, now) = health();
        fail_times(&mut health, 5, now);
        health.tick(now + 30 * SECOND);
        health.record(&failure(), now + 30 * SECOND);
        health.tick(now + 90 * SECOND);
        health.record(&HealthEffect::Success, now + 90 * SECOND);
        fail_times(&mut health, 5, now + 100 * SECOND);
        assert_eq!(health.deadline(), Some(now + 130 * SECOND));
    }

    #[test]
    fn retry_after_cools_down_without_counting_a_failure() {
        let (mut health, now) = health();
        let cooled = health
            .record(&HealthEffect::Cooldown(2 * SECOND), now)
            .unwrap();
        assert_eq!(cooled.to, Circuit::CoolingDown);
        assert_eq!(health.consecutive_failures(), 0);
        assert_eq!(health.tick(now + SECOND), None);
        let back = health.tick(now + 2 * SECOND).unwrap();
        assert_eq!(back.to, Circuit::Healthy);
    }

    #[test]
    fn retry_after_is_capped() {
        let (mut health, now) = health();
        health.record(&HealthEffect::Cooldown(3600 * SECOND), now);
        assert_eq!(health.deadline(), Some(now + 300 * SECOND));
    }

    #[test]
    fn neutral_outcomes_change_nothing() {
        let (mut health, now) = health();
        fail_times(&mut health, 4, now);
        assert_eq!(health.record(&HealthEffect::Neutral, now), None);
        assert_eq!(health.consecutive_failures(), 4);
    }

    #[test]
    fn failures_while_unhealthy_do_not_extend_the_cool_off() {
        let (mut health, now) = health();
        fail_times(&mut health, 5, now);
        assert_eq!(fail_times(&mut health, 3, now + SECOND), None);
        assert_eq!(health.deadline(), Some(now + 30 * SECOND));
    }
}

//! A provider's health: a pure state machine fed by attempt outcomes and the clock.
//!
//! ```text
//!             N consecutive failures                probe due
//!  Healthy ───────────────────────────▶ Unhealthy ───────────▶ HalfOpen ── probe succeeded ─▶ Healthy
//!   ▲  │ 429 + retry-after                  ▲     probe failed    │  │
//!   │  ▼                                    └─────────────────────┘  │ credential refused
//!  CoolingDown ── retry-after elapsed ──▶ Healthy                    ▼
//!                                  (any state) ── credential refused ─▶ Rejected ── probe due ─▶ HalfOpen
//! ```
//! Probes are paced by the outage's length (see [`HealthConfig`]): the wait before the next
//! probe grows with the time since the provider left rotation, between `probe_interval` and
//! `max_probe_interval`, shortened by a random 0–25 %. The outage ends when a probe succeeds.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::config::HealthConfig;
use crate::state::HealthState;
use crate::trigger::HealthEffect;

/// The circuit's own states: the only ones the state machine produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Circuit {
    /// In rotation.
    Healthy,
    /// Out of rotation after consecutive failures, until its next probe is due.
    Unhealthy,
    /// Admits a bounded number of probe requests; one success closes it.
    HalfOpen,
    /// Out of rotation until a 429's `retry-after` elapses.
    CoolingDown,
    /// Out of rotation because it refused the relay's credential or account, until its next
    /// probe is due.
    Rejected,
}

impl From<Circuit> for HealthState {
    fn from(circuit: Circuit) -> Self {
        match circuit {
            Circuit::Healthy => HealthState::Healthy,
            Circuit::Unhealthy => HealthState::Unhealthy,
            Circuit::HalfOpen => HealthState::HalfOpen,
            Circuit::CoolingDown => HealthState::CoolingDown,
            Circuit::Rejected => HealthState::Rejected,
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

/// Most a probe wait is shortened by, at random.
const JITTER: f64 = 0.25;

/// The state machine. `Disabled` and `Failed` are not its states: the provider actor and the
/// supervisor decide those above it.
#[derive(Clone, Debug)]
pub struct Health {
    config: HealthConfig,
    state: Circuit,
    since: Instant,
    consecutive_failures: u32,
    /// When the provider left rotation for failures; `None` while it is in rotation.
    outage_since: Option<Instant>,
    until: Option<Instant>,
    jitter: SmallRng,
}

impl Health {
    /// A healthy provider as of `now`; `seed` drives the jitter of its probe waits.
    pub fn new(config: HealthConfig, now: Instant, seed: u64) -> Self {
        Self {
            config,
            state: Circuit::Healthy,
            since: now,
            consecutive_failures: 0,
            outage_since: None,
            until: None,
            jitter: SmallRng::seed_from_u64(seed),
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

    /// When the clock next changes the state (a probe due, the end of a 429 cooldown).
    pub fn deadline(&self) -> Option<Instant> {
        self.until
    }

    /// Feeds the outcome of one attempt.
    pub fn record(&mut self, effect: &HealthEffect, now: Instant) -> Option<Transition> {
        use Circuit::{CoolingDown, HalfOpen, Healthy, Rejected, Unhealthy};
        match (self.state, effect) {
            (_, HealthEffect::Neutral) => None,
            (Unhealthy | HalfOpen | Rejected, HealthEffect::Success) => {
                self.consecutive_failures = 0;
                self.outage_since = None;
                let reason = if self.state == HalfOpen {
                    "probe succeeded"
                } else {
                    "attempt succeeded"
                };
                self.move_to(Healthy, None, now, reason)
            }
            (_, HealthEffect::Success) => {
                self.consecutive_failures = 0;
                None
            }
            // A late report of an attempt that began before the provider left rotation.
            (Rejected, HealthEffect::Reject(_) | HealthEffect::Failure(_))
            | (Unhealthy, HealthEffect::Failure(_)) => None,
            (_, HealthEffect::Reject(why)) => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                let until = now + self.config.rejected_probe_interval;
                let reason = format!(
                    "{why}; next probe in {}",
                    human(self.config.rejected_probe_interval)
                );
                self.move_to(Rejected, Some(until), now, reason)
            }
            (HalfOpen, HealthEffect::Failure(why)) => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.open(now, format!("probe failed: {why}"))
            }
            (Healthy | CoolingDown, HealthEffect::Failure(why)) => {
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
            (Unhealthy | Rejected, HealthEffect::Cooldown(_)) => None,
            (_, HealthEffect::Cooldown(wait)) => {
                let wait = (*wait).min(self.config.max_retry_after);
                let until = now + wait;
                if self.state == CoolingDown {
                    self.until = self.until.max(Some(until));
                    return None;
                }
                let reason = format!("rate limited, retry after {}", human(wait));
                self.move_to(CoolingDown, Some(until), now, reason)
            }
        }
    }

    /// Lets the clock act: a probe falls due (to half-open) or a cooldown ends (to healthy).
    pub fn tick(&mut self, now: Instant) -> Option<Transition> {
        let until = self.until?;
        if now < until {
            return None;
        }
        match self.state {
            Circuit::Unhealthy | Circuit::Rejected => {
                self.move_to(Circuit::HalfOpen, None, now, "probe due")
            }
            Circuit::CoolingDown => {
                self.move_to(Circuit::Healthy, None, now, "retry-after elapsed")
            }
            _ => None,
        }
    }

    /// Out of rotation until the next probe, paced by how long the outage has lasted.
    fn open(&mut self, now: Instant, reason: String) -> Option<Transition> {
        let outage = now - *self.outage_since.get_or_insert(now);
        let nominal = self.config.probe_wait(outage);
        let shortened = nominal.mul_f64(1.0 - JITTER * self.jitter.random::<f64>());
        // Whole milliseconds: the wait is shown to people.
        let wait = Duration::from_millis(u64::try_from(shortened.as_millis()).unwrap_or(u64::MAX));
        let reason = format!("{reason}; next probe in {}", human(wait));
        self.move_to(Circuit::Unhealthy, Some(now + wait), now, reason)
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
        (Health::new(HealthConfig::default(), now, 7), now)
    }

    fn fail_times(health: &mut Health, times: u32, now: Instant) -> Option<Transition> {
        (0..times)
            .filter_map(|_| health.record(&failure(), now))
            .last()
    }

    fn wait(health: &Health, now: Instant) -> Duration {
        health.deadline().unwrap() - now
    }

    #[test]
    fn opens_after_five_consecutive_failures_and_probes_within_four_seconds() {
        let (mut health, now) = health();
        assert_eq!(fail_times(&mut health, 4, now), None);
        let transition = health.record(&failure(), now).unwrap();
        assert_eq!(transition.from, Circuit::Healthy);
        assert_eq!(transition.to, Circuit::Unhealthy);
        assert!(
            transition.reason.contains("5 consecutive failures"),
            "{transition:?}"
        );
        assert!(
            transition.reason.contains("next probe in"),
            "{transition:?}"
        );
        let first = wait(&health, now);
        assert!(first >= 3 * SECOND && first <= 4 * SECOND, "{first:?}");
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
    fn half_open_when_the_probe_is_due_then_healthy_after_it_succeeds() {
        let (mut health, now) = health();
        fail_times(&mut health, 5, now);
        let due = health.deadline().unwrap();
        assert_eq!(health.tick(due - Duration::from_millis(1)), None);
        let half_open = health.tick(due).unwrap();
        assert_eq!(half_open.to, Circuit::HalfOpen);
        let healed = health.record(&HealthEffect::Success, due + SECOND).unwrap();
        assert_eq!(
            (healed.from, healed.to),
            (Circuit::HalfOpen, Circuit::Healthy)
        );
        assert_eq!(healed.reason, "probe succeeded");
        assert_eq!(health.consecutive_failures(), 0);
    }

    /// Every probe fails: the waits between them, by the outage's age when each was set.
    fn probe_waits(health: &mut Health, start: Instant, outage: Duration) -> Vec<(f64, f64)> {
        let mut now = start;
        let mut waits = Vec::new();
        while now - start < outage {
            waits.push(((now - start).as_secs_f64(), wait(health, now).as_secs_f64()));
            now = health.deadline().unwrap();
            health.tick(now);
            assert_eq!(health.state(), Circuit::HalfOpen);
            let reopened = health.record(&failure(), now).unwrap();
            assert_eq!(reopened.to, Circuit::Unhealthy);
        }
        waits
    }

    #[test]
    fn probe_waits_grow_with_the_outage_jittered_between_their_bounds() {
        let (mut health, now) = health();
        fail_times(&mut health, 5, now);
        let waits = probe_waits(&mut health, now, Duration::from_secs(4 * 3600));
        for &(age, wait) in &waits {
            let nominal = (age / 80.0).clamp(4.0, 30.0);
            assert!(
                wait <= nominal + 1e-9 && wait >= nominal * 0.75 - 1e-3,
                "at {age} s: waited {wait} s, nominal {nominal} s"
            );
        }
        let first_five_minutes = waits.iter().filter(|(age, _)| *age < 300.0);
        assert!(first_five_minutes.clone().all(|(_, wait)| *wait <= 4.0));
        assert!(first_five_minutes.count() >= 75);
        let at_half_an_hour = waits.iter().find(|(age, _)| *age >= 1800.0).unwrap();
        assert!(at_half_an_hour.1 <= 22.5, "{at_half_an_hour:?}");
        let distinct: std::collections::HashSet<u64> = waits
            .iter()
            .map(|(_, wait)| (wait * 1000.0) as u64)
            .collect();
        assert!(distinct.len() > waits.len() / 2, "the waits are jittered");
    }

    #[test]
    fn the_jitter_is_reproducible_from_the_seed_and_differs_between_seeds() {
        let run = |seed| {
            let now = Instant::now();
            let mut health = Health::new(HealthConfig::default(), now, seed);
            fail_times(&mut health, 5, now);
            probe_waits(&mut health, now, Duration::from_secs(60))
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn a_new_outage_starts_pacing_afresh() {
        let (mut health, now) = health();
        fail_times(&mut health, 5, now);
        probe_waits(&mut health, now, Duration::from_secs(3600));
        let later = health.deadline().unwrap();
        health.tick(later);
        health.record(&HealthEffect::Success, later);
        assert_eq!(health.state(), Circuit::Healthy);
        fail_times(&mut health, 5, later + SECOND);
        assert!(wait(&health, later + SECOND) <= 4 * SECOND);
    }

    #[test]
    fn a_refused_credential_rejects_at_once_and_probes_after_five_minutes() {
        let (mut health, now) = health();
        let refused = HealthEffect::Reject("upstream refused the relay's credential".into());
        let rejected = health.record(&refused, now).unwrap();
        assert_eq!(
            (rejected.from, rejected.to),
            (Circuit::Healthy, Circuit::Rejected)
        );
        assert!(rejected.reason.contains("next probe in 5m"), "{rejected:?}");
        assert_eq!(health.deadline(), Some(now + 300 * SECOND));
        // Late reports change nothing.
        assert_eq!(health.record(&failure(), now + SECOND), None);
        assert_eq!(health.record(&refused, now + SECOND), None);
        let probe = health.tick(now + 300 * SECOND).unwrap();
        assert_eq!(probe.to, Circuit::HalfOpen);
        let again = health.record(&refused, now + 301 * SECOND).unwrap();
        assert_eq!(again.to, Circuit::Rejected);
        health.tick(now + 601 * SECOND);
        let healed = health
            .record(&HealthEffect::Success, now + 602 * SECOND)
            .unwrap();
        assert_eq!(healed.to, Circuit::Healthy);
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
    fn failures_while_unhealthy_do_not_move_the_next_probe() {
        let (mut health, now) = health();
        fail_times(&mut health, 5, now);
        let due = health.deadline();
        assert_eq!(fail_times(&mut health, 3, now + SECOND), None);
        assert_eq!(health.deadline(), due);
    }
}

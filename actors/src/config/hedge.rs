//! Hedging settings: when a slow primary gets a second provider racing beside it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// When a primary that has not reached its commit point (its first event, or a whole JSON
/// answer) gets a hedge: the next eligible provider joins the race, and the first to commit
/// wins. The delay is learned per provider and per class of request from its recent times to
/// commit; the budget caps how many requests are hedged.
///
/// The initial delays (until a class has `min_samples` commits) follow published
/// time-to-first-token figures of current Claude models: Artificial Analysis measures about
/// 1.8 s for Sonnet 4.5 and 2.7 s for Opus 4.1 on short prompts, and prefill grows with the
/// prompt that is not cached. A small request is hedged after 6 s, about three times the
/// slowest typical figure; a 32–256 KB one (a Claude Code request mid-session, mostly cached)
/// after 12 s; a 256 KB–1 MB one after 20 s; a larger one, and a whole JSON answer (whose
/// commit is the end of its generation), only at `max_delay` until learned.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HedgeConfig {
    /// Whether requests are hedged at all.
    pub enabled: bool,
    /// The percentile of recent times to commit the delay is learned from (0 < p < 1).
    pub percentile: f64,
    /// The learned delay is the percentile times this (at least 1).
    pub factor: f64,
    /// The shortest delay, learned or not.
    #[serde(with = "humantime_serde")]
    pub min_delay: Duration,
    /// The longest delay; a provider whose requests reach it is not hedged sooner than it
    /// would time out. The relay sets it to each provider's first-event timeout.
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    /// Commits a class needs before its delay is learned rather than initial.
    pub min_samples: u32,
    /// The delays before a class has been learned.
    pub initial_delay: InitialDelays,
    /// How many requests may be hedged. Shared by every provider (a provider's own `hedge`
    /// settings cannot change it).
    pub budget: HedgeBudget,
}

/// The delay of each class of request before it has been learned. Classes go by the size of
/// the request's body; a request answered as a whole (no stream) is a class of its own.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct InitialDelays {
    /// Streams of a body under 32 KB.
    #[serde(with = "humantime_serde")]
    pub under_32kb: Duration,
    /// Streams of a body of 32 KB to 256 KB.
    #[serde(with = "humantime_serde")]
    pub under_256kb: Duration,
    /// Streams of a body of 256 KB to 1 MB.
    #[serde(with = "humantime_serde")]
    pub under_1mb: Duration,
    /// Streams of a larger body.
    #[serde(with = "humantime_serde")]
    pub larger: Duration,
    /// Answers that are not streamed, of any size.
    #[serde(with = "humantime_serde")]
    pub whole: Duration,
}

/// The hedge budget, in the style of a retry budget: over a sliding `window`, hedges are at
/// most `ratio` of the requests routed plus `min_per_second` per second. Past it, a slow
/// primary is not hedged and its own timeouts apply, so a slow incident cannot double the bill.
///
/// The floor (one per second, ten per window) absorbs the ups and downs of traffic: with each
/// request slow at random with a 10 % chance at 20 requests per second, the slow ones in a
/// 10 s window vary by ±4, and a floor of 0.2 per second left 1.5 % of 400 requests waiting
/// for their slow primary (measured with `examples/hedge_bench.rs`). One
/// user's traffic (a request every few seconds) is within the floor: each of its slow
/// requests may be hedged; a team's is held to the ratio.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HedgeBudget {
    /// Share of requests that may be hedged (0 to 1).
    pub ratio: f64,
    /// Hedges allowed per second on top of the share, so that light traffic can hedge too.
    pub min_per_second: f64,
    /// The sliding window requests and hedges are counted over.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
}

/// A provider's own hedge settings: each one given replaces the global one (`routing.hedge`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HedgeOverride {
    /// Replaces [`HedgeConfig::enabled`].
    pub enabled: Option<bool>,
    /// Replaces [`HedgeConfig::percentile`].
    pub percentile: Option<f64>,
    /// Replaces [`HedgeConfig::factor`].
    pub factor: Option<f64>,
    /// Replaces [`HedgeConfig::min_delay`].
    #[serde(with = "humantime_serde")]
    pub min_delay: Option<Duration>,
    /// Replaces [`HedgeConfig::max_delay`].
    #[serde(with = "humantime_serde")]
    pub max_delay: Option<Duration>,
    /// Replaces [`HedgeConfig::min_samples`].
    pub min_samples: Option<u32>,
    /// Replaces [`HedgeConfig::initial_delay`], whole.
    pub initial_delay: Option<InitialDelays>,
}

impl Default for HedgeConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            percentile: 0.95,
            factor: 1.5,
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            min_samples: 20,
            initial_delay: InitialDelays::default(),
            budget: HedgeBudget::default(),
        }
    }
}

impl Default for InitialDelays {
    fn default() -> Self {
        Self {
            under_32kb: Duration::from_secs(6),
            under_256kb: Duration::from_secs(12),
            under_1mb: Duration::from_secs(20),
            larger: Duration::from_secs(30),
            whole: Duration::from_secs(30),
        }
    }
}

impl Default for HedgeBudget {
    fn default() -> Self {
        Self {
            ratio: 0.1,
            min_per_second: 1.0,
            window: Duration::from_secs(10),
        }
    }
}

impl HedgeConfig {
    /// These settings with a provider's own laid over them.
    #[must_use]
    pub fn overridden(&self, own: &HedgeOverride) -> Self {
        Self {
            enabled: own.enabled.unwrap_or(self.enabled),
            percentile: own.percentile.unwrap_or(self.percentile),
            factor: own.factor.unwrap_or(self.factor),
            min_delay: own.min_delay.unwrap_or(self.min_delay),
            max_delay: own.max_delay.unwrap_or(self.max_delay),
            min_samples: own.min_samples.unwrap_or(self.min_samples),
            initial_delay: own.initial_delay.unwrap_or(self.initial_delay),
            budget: self.budget,
        }
    }

    /// Every problem, each under `path` (`routing.hedge`, `providers[1].hedge`).
    pub(crate) fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        let mut check = |ok: bool, field: &str, reason: &str| {
            if !ok {
                errors.push(ConfigError::new(format!("{path}.{field}"), reason));
            }
        };
        check(
            self.percentile > 0.0 && self.percentile < 1.0,
            "percentile",
            "must be between 0 and 1 (0.95 is p95)",
        );
        check(
            self.factor >= 1.0 && self.factor.is_finite(),
            "factor",
            "must be at least 1",
        );
        check(
            self.min_delay <= self.max_delay,
            "min_delay",
            "must not exceed max_delay",
        );
        check(self.min_samples >= 1, "min_samples", "must be at least 1");
    }
}

impl HedgeBudget {
    /// Every problem, each under `path`.
    pub(crate) fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        if !(0.0..=1.0).contains(&self.ratio) {
            errors.push(ConfigError::new(
                format!("{path}.ratio"),
                "must be between 0 and 1 (0.1 is 10 %)",
            ));
        }
        if !(self.min_per_second >= 0.0 && self.min_per_second.is_finite()) {
            errors.push(ConfigError::new(
                format!("{path}.min_per_second"),
                "must be zero or more",
            ));
        }
        if self.window < Duration::from_secs(1) {
            errors.push(ConfigError::new(
                format!("{path}.window"),
                "must be at least 1s",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_override_replaces_only_what_it_gives() {
        let global = HedgeConfig::default();
        let own = HedgeOverride {
            min_delay: Some(Duration::from_secs(3)),
            enabled: Some(false),
            ..HedgeOverride::default()
        };
        let merged = global.overridden(&own);
        assert!(!merged.enabled);
        assert_eq!(merged.min_delay, Duration::from_secs(3));
        assert_eq!(merged.percentile, global.percentile);
        assert_eq!(merged.budget, global.budget);
    }

    #[test]
    fn bad_settings_name_their_path() {
        let config = HedgeConfig {
            percentile: 1.0,
            factor: 0.5,
            min_delay: Duration::from_secs(40),
            ..HedgeConfig::default()
        };
        let mut errors = Vec::new();
        config.validate("routing.hedge", &mut errors);
        let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "routing.hedge.percentile",
                "routing.hedge.factor",
                "routing.hedge.min_delay"
            ]
        );
        let mut errors = Vec::new();
        HedgeBudget {
            ratio: 2.0,
            ..HedgeBudget::default()
        }
        .validate("routing.hedge.budget", &mut errors);
        assert_eq!(errors[0].path, "routing.hedge.budget.ratio");
    }
}

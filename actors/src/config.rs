//! The runtime's own settings: providers, routing, health and supervision.
//!
//! The runtime never reads files or the environment; an embedder builds (or deserializes) a
//! [`RuntimeConfig`] and calls [`RuntimeConfig::validate`] (the runtime does on start).
//! Durations use one format everywhere: humantime strings such as `"500ms"`, `"5s"`, `"2m"`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod hedge;

pub use hedge::{HedgeBudget, HedgeConfig, HedgeOverride, InitialDelays};

/// Everything the runtime needs to start.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// The providers, in configured order (ties in priority are broken by this order).
    #[serde(default)]
    pub providers: Vec<ProviderSettings>,
    /// How a provider is picked and how failures are raced.
    #[serde(default)]
    pub routing: RoutingConfig,
    /// When a provider leaves and re-enters rotation.
    #[serde(default)]
    pub health: HealthConfig,
    /// How crashed actors are restarted.
    #[serde(default)]
    pub supervision: SupervisionConfig,
}

/// One provider as the runtime sees it: a name and its place in routing.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProviderSettings {
    /// Unique name; shown in events, snapshots and errors.
    pub name: String,
    /// Lower numbers are tried first by the `failover` strategy (1 is the primary).
    #[serde(default = "default_priority")]
    pub priority: u32,
    /// Share of traffic under `weighted_round_robin` (at least 1).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// A disabled provider is configured but out of routing until enabled at run time.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The models it serves (see [`Upstream::route_key`](crate::Upstream::route_key)): exact
    /// names or glob patterns (`*` any run of characters, `?` one). Empty: every model.
    #[serde(default)]
    pub models: Vec<String>,
    /// At most this many attempts in flight on it at once; a request that finds it full goes
    /// to the next provider as if it were out of rotation. `None`: no bound.
    #[serde(default)]
    pub max_concurrent_attempts: Option<u32>,
    /// Its own hedge settings, laid over [`RoutingConfig::hedge`].
    #[serde(default)]
    pub hedge: HedgeOverride,
}

impl ProviderSettings {
    /// A provider with the default priority (1), weight (1), enabled.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            priority: default_priority(),
            weight: default_weight(),
            enabled: true,
            models: Vec::new(),
            max_concurrent_attempts: None,
            hedge: HedgeOverride::default(),
        }
    }

    /// Lays its own hedge settings over the global ones.
    #[must_use]
    pub fn hedge(mut self, hedge: HedgeOverride) -> Self {
        self.hedge = hedge;
        self
    }

    /// Bounds its attempts in flight.
    #[must_use]
    pub fn max_concurrent_attempts(mut self, max: u32) -> Self {
        self.max_concurrent_attempts = Some(max);
        self
    }

    /// Serves only these models (exact names or glob patterns).
    #[must_use]
    pub fn serves<S: Into<String>>(mut self, models: impl IntoIterator<Item = S>) -> Self {
        self.models = models.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the priority (lower is tried first).
    #[must_use]
    pub fn priority(mut self, priority: u32) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the weight for `weighted_round_robin`.
    #[must_use]
    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// Starts the provider disabled.
    #[must_use]
    pub fn disabled(mut self) -> Self {
        self.enabled = false;
        self
    }
}

/// The routing strategy: which healthy provider is the primary of a request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum StrategyKind {
    /// Highest priority (lowest number) first, ties in configured order.
    #[default]
    Failover,
    /// Each healthy provider in turn, in configured order.
    RoundRobin,
    /// Smooth weighted round robin: each provider gets its weight's share per cycle, interleaved.
    WeightedRoundRobin,
    /// Every healthy provider once per deck, a new random permutation per deck.
    Shuffle,
}

impl StrategyKind {
    /// Every strategy, in the order they are documented.
    pub const ALL: [StrategyKind; 4] = [
        StrategyKind::Failover,
        StrategyKind::RoundRobin,
        StrategyKind::WeightedRoundRobin,
        StrategyKind::Shuffle,
    ];

    /// The configuration name of the strategy.
    pub fn name(self) -> &'static str {
        match self {
            StrategyKind::Failover => "failover",
            StrategyKind::RoundRobin => "round_robin",
            StrategyKind::WeightedRoundRobin => "weighted_round_robin",
            StrategyKind::Shuffle => "shuffle",
        }
    }
}

impl fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown strategy name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown strategy `{0}`, expected one of: failover, round_robin, weighted_round_robin, shuffle"
)]
pub struct UnknownStrategy(pub String);

impl FromStr for StrategyKind {
    type Err = UnknownStrategy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim();
        if name.is_empty() {
            return Ok(StrategyKind::Failover);
        }
        StrategyKind::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
            .ok_or_else(|| UnknownStrategy(name.to_owned()))
    }
}

impl TryFrom<String> for StrategyKind {
    type Error = UnknownStrategy;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<StrategyKind> for String {
    fn from(kind: StrategyKind) -> Self {
        kind.name().to_owned()
    }
}

/// Routing: strategy, failover race and what triggers it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// `failover` (default, also chosen by an empty name), `round_robin`,
    /// `weighted_round_robin` or `shuffle`.
    pub strategy: StrategyKind,
    /// When the primary fails with a trigger, race the healthy providers in parallel.
    pub failover: bool,
    /// Bound on the time until a race finds a winner; `0s` means the default (5 s).
    /// A winner's response that is still being consumed is never cut by it.
    #[serde(with = "humantime_serde")]
    pub race_timeout: Duration,
    /// Upstream status codes that trigger failover.
    pub trigger_statuses: Vec<u16>,
    /// Attempt timeouts trigger failover.
    pub trigger_on_timeout: bool,
    /// Connection errors (refused, reset, DNS) trigger failover.
    pub trigger_on_connection_error: bool,
    /// A provider that refused the embedder's own credential or account (a bad key, no
    /// budget left) triggers failover.
    pub trigger_on_rejected: bool,
    /// A provider that says it does not serve the request's model (the embedder's
    /// [`AttemptError::NotServed`](crate::AttemptError::NotServed)) triggers failover to the
    /// next provider that serves it.
    pub trigger_on_unserved_model: bool,
    /// Per-model provider order: the first rule whose `model` matches a request's model tries
    /// its `providers` first, in that order; the other providers that serve the model follow by
    /// priority. Without a matching rule, priority decides.
    pub model_order: Vec<ModelOrder>,
    /// When a slow primary gets a second provider racing beside it.
    pub hedge: HedgeConfig,
    /// Seed for the `shuffle` strategy; random when absent.
    pub seed: Option<u64>,
}

/// Whether a model in [`ProviderSettings::models`] (or a [`ModelOrder`] rule) is a glob
/// pattern (it holds `*` or `?`) rather than an exact name.
pub fn is_model_pattern(model: &str) -> bool {
    model.contains(['*', '?'])
}

/// Whether a provider serving `models` (see [`ProviderSettings::models`]) serves `model`: it
/// lists no models, names it, or has a pattern that matches it. Routing decides with the same
/// rule (patterns compiled once).
pub fn serves_model(models: &[String], model: &str) -> bool {
    models.is_empty()
        || models.iter().any(|served| {
            if is_model_pattern(served) {
                wildmatch::WildMatch::new(served).matches(model)
            } else {
                served == model
            }
        })
}

/// One per-model order rule of [`RoutingConfig::model_order`].
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ModelOrder {
    /// The models it applies to: an exact name or a glob pattern.
    pub model: String,
    /// Provider names, first tried first.
    pub providers: Vec<String>,
}

/// The race timeout used when none (or zero) is configured.
pub const DEFAULT_RACE_TIMEOUT: Duration = Duration::from_secs(5);

/// Status codes that trigger failover by default (529 is Anthropic's "overloaded").
pub const DEFAULT_TRIGGER_STATUSES: [u16; 6] = [429, 500, 502, 503, 504, 529];

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            strategy: StrategyKind::Failover,
            failover: true,
            race_timeout: DEFAULT_RACE_TIMEOUT,
            trigger_statuses: DEFAULT_TRIGGER_STATUSES.to_vec(),
            trigger_on_timeout: true,
            trigger_on_connection_error: true,
            trigger_on_rejected: true,
            trigger_on_unserved_model: true,
            model_order: Vec::new(),
            hedge: HedgeConfig::default(),
            seed: None,
        }
    }
}

impl RoutingConfig {
    /// The race timeout in force (`0` means the default).
    pub fn effective_race_timeout(&self) -> Duration {
        if self.race_timeout.is_zero() {
            DEFAULT_RACE_TIMEOUT
        } else {
            self.race_timeout
        }
    }
}

/// When a provider leaves rotation and how it is probed back in. Every provider shares these.
///
/// A provider out of rotation after failures is probed with a real request: the first probe
/// after `probe_interval`, the next ones a 1/80 of the outage so far apart (but never closer
/// than `probe_interval` nor further than `max_probe_interval`), each wait shortened by a random
/// 0–25 % so that relays do not probe in step. On defaults that is a probe every 3–4 s for the
/// first five minutes, every ~17–22 s at thirty minutes, and 23–30 s at most: with a request
/// every 1–5 s, the primary serves again within 10 s of its recovery after an outage of up to
/// 5 minutes, and within 35 s after a 30-minute one.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Consecutive failures that take a healthy provider out of rotation.
    pub failure_threshold: u32,
    /// The wait before the first probe of a provider that left rotation, and the shortest wait
    /// between two probes. (`cool_off` is accepted as its old name.)
    #[serde(with = "humantime_serde", alias = "cool_off")]
    pub probe_interval: Duration,
    /// The longest wait between two probes, however long the outage. (`max_cool_off` is
    /// accepted as its old name.)
    #[serde(with = "humantime_serde", alias = "max_cool_off")]
    pub max_probe_interval: Duration,
    /// How long a probe may take to reach its commit point (the first event of a stream, or a
    /// whole JSON answer). Past it the probe fails and its request fails over at once, so a
    /// silent provider costs its prober this, not the first-event timeout.
    #[serde(with = "humantime_serde")]
    pub probe_timeout: Duration,
    /// The wait before probing a provider that refused the relay's credential or account
    /// (`rejected`): a key is rarely fixed within seconds.
    #[serde(with = "humantime_serde")]
    pub rejected_probe_interval: Duration,
    /// Probes in flight at once per provider.
    pub half_open_probes: u32,
    /// Cap on how long a 429's `retry-after` keeps a provider out of rotation.
    #[serde(with = "humantime_serde")]
    pub max_retry_after: Duration,
}

/// The share of an outage's length that the wait between two probes grows to.
pub const PROBE_INTERVAL_SHARE: u32 = 80;

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            probe_interval: Duration::from_secs(4),
            max_probe_interval: Duration::from_secs(30),
            probe_timeout: Duration::from_secs(10),
            rejected_probe_interval: Duration::from_secs(300),
            half_open_probes: 1,
            max_retry_after: Duration::from_secs(300),
        }
    }
}

impl HealthConfig {
    /// The nominal wait before the next probe of a provider that has been out of rotation for
    /// `outage` (before jitter).
    pub fn probe_wait(&self, outage: Duration) -> Duration {
        (outage / PROBE_INTERVAL_SHARE)
            .max(self.probe_interval)
            .min(self.max_probe_interval)
    }

    /// Every duration multiplied by `factor` (for tests that shorten time and keep the
    /// defaults' ratios).
    #[must_use]
    pub fn scaled(&self, factor: f64) -> Self {
        let scale = |d: Duration| d.mul_f64(factor);
        Self {
            probe_interval: scale(self.probe_interval),
            max_probe_interval: scale(self.max_probe_interval),
            probe_timeout: scale(self.probe_timeout),
            rejected_probe_interval: scale(self.rejected_probe_interval),
            max_retry_after: scale(self.max_retry_after),
            ..self.clone()
        }
    }
}

/// Restart policy of the root supervisor.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisionConfig {
    /// Restarts allowed per actor within `restart_window`; one more and the actor is given up.
    pub max_restarts: u32,
    /// The window over which restarts are counted.
    #[serde(with = "humantime_serde")]
    pub restart_window: Duration,
    /// Capacity of the health event channel; a subscriber further behind is told what it missed.
    pub event_capacity: usize,
}

impl Default for SupervisionConfig {
    fn default() -> Self {
        Self {
            max_restarts: 3,
            restart_window: Duration::from_secs(10),
            event_capacity: 1024,
        }
    }
}

/// One invalid setting: where it is and why it is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct ConfigError {
    /// Path of the setting, e.g. `providers[2].name`.
    pub path: String,
    /// Why the value is rejected.
    pub reason: String,
}

impl ConfigError {
    /// A new error at `path`.
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl RuntimeConfig {
    /// A config with these providers (in this order) and every default.
    pub fn with_providers(providers: impl IntoIterator<Item = ProviderSettings>) -> Self {
        Self {
            providers: providers.into_iter().collect(),
            ..Self::default()
        }
    }

    /// Every problem in the config, each naming its path; empty when valid.
    pub fn validate(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        for (i, provider) in self.providers.iter().enumerate() {
            let path = |field: &str| format!("providers[{i}].{field}");
            if provider.name.trim().is_empty() {
                errors.push(ConfigError::new(path("name"), "must not be empty"));
            } else if self.providers[..i].iter().any(|p| p.name == provider.name) {
                errors.push(ConfigError::new(
                    path("name"),
                    format!("duplicate provider name `{}`", provider.name),
                ));
            }
            if provider.weight == 0 {
                errors.push(ConfigError::new(path("weight"), "must be at least 1"));
            }
            if provider.max_concurrent_attempts == Some(0) {
                errors.push(ConfigError::new(
                    path("max_concurrent_attempts"),
                    "must be at least 1 (or absent: no bound)",
                ));
            }
            if provider.hedge != HedgeOverride::default() {
                self.routing
                    .hedge
                    .overridden(&provider.hedge)
                    .validate(&format!("providers[{i}].hedge"), &mut errors);
            }
        }
        self.routing.hedge.validate("routing.hedge", &mut errors);
        self.routing
            .hedge
            .budget
            .validate("routing.hedge.budget", &mut errors);
        for (i, rule) in self.routing.model_order.iter().enumerate() {
            let path = |field: &str| format!("routing.model_order[{i}].{field}");
            if rule.model.trim().is_empty() {
                errors.push(ConfigError::new(path("model"), "must not be empty"));
            }
            if rule.providers.is_empty() {
                errors.push(ConfigError::new(
                    path("providers"),
                    "must name at least one provider",
                ));
            }
            for (j, name) in rule.providers.iter().enumerate() {
                let at = path(&format!("providers[{j}]"));
                if !self.providers.iter().any(|p| &p.name == name) {
                    errors.push(ConfigError::new(at, format!("unknown provider `{name}`")));
                } else if rule.providers[..j].contains(name) {
                    errors.push(ConfigError::new(at, format!("`{name}` is listed twice")));
                }
            }
        }
        let health = &self.health;
        if health.failure_threshold == 0 {
            errors.push(ConfigError::new(
                "health.failure_threshold",
                "must be at least 1",
            ));
        }
        if health.half_open_probes == 0 {
            errors.push(ConfigError::new(
                "health.half_open_probes",
                "must be at least 1",
            ));
        }
        for (name, value) in [
            ("probe_interval", health.probe_interval),
            ("probe_timeout", health.probe_timeout),
            ("rejected_probe_interval", health.rejected_probe_interval),
        ] {
            if value.is_zero() {
                errors.push(ConfigError::new(
                    format!("health.{name}"),
                    "must be above zero",
                ));
            }
        }
        if health.max_probe_interval < health.probe_interval {
            errors.push(ConfigError::new(
                "health.max_probe_interval",
                "must not be below health.probe_interval",
            ));
        }
        if self.supervision.event_capacity == 0 {
            errors.push(ConfigError::new(
                "supervision.event_capacity",
                "must be at least 1",
            ));
        }
        for (i, status) in self.routing.trigger_statuses.iter().enumerate() {
            if !(100..=599).contains(status) {
                errors.push(ConfigError::new(
                    format!("routing.trigger_statuses[{i}]"),
                    format!("{status} is not an HTTP status code"),
                ));
            }
        }
        errors
    }
}

fn default_priority() -> u32 {
    1
}

fn default_weight() -> u32 {
    1
}

fn default_true() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_strategy_name_means_failover() {
        assert_eq!("".parse::<StrategyKind>(), Ok(StrategyKind::Failover));
        assert_eq!(
            "weighted_round_robin".parse::<StrategyKind>(),
            Ok(StrategyKind::WeightedRoundRobin)
        );
    }

    #[test]
    fn unknown_strategy_lists_the_valid_ones() {
        let err = "fastest".parse::<StrategyKind>().unwrap_err();
        let text = err.to_string();
        for kind in StrategyKind::ALL {
            assert!(text.contains(kind.name()), "{text}");
        }
        assert!(text.contains("fastest"));
    }

    #[test]
    fn zero_race_timeout_means_the_default() {
        let routing = RoutingConfig {
            race_timeout: Duration::ZERO,
            ..RoutingConfig::default()
        };
        assert_eq!(routing.effective_race_timeout(), DEFAULT_RACE_TIMEOUT);
    }

    #[test]
    fn validation_names_the_path_of_each_problem() {
        let mut config = RuntimeConfig::with_providers([
            ProviderSettings::new("a"),
            ProviderSettings::new("a"),
            ProviderSettings::new("").weight(0),
        ]);
        config.health.failure_threshold = 0;
        let paths: Vec<String> = config.validate().into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            [
                "providers[1].name",
                "providers[2].name",
                "providers[2].weight",
                "health.failure_threshold"
            ]
        );
    }

    #[test]
    fn the_probe_wait_grows_with_the_outage_between_its_bounds() {
        let health = HealthConfig::default();
        let wait = |secs: u64| health.probe_wait(Duration::from_secs(secs)).as_secs_f64();
        assert_eq!(wait(0), 4.0);
        assert_eq!(wait(300), 4.0);
        assert_eq!(wait(600), 7.5);
        assert_eq!(wait(1800), 22.5);
        assert_eq!(wait(24 * 3600), 30.0);
    }

    #[test]
    fn the_old_names_of_the_probe_settings_are_accepted() {
        let health: HealthConfig =
            serde_json::from_str(r#"{"cool_off": "7s", "max_cool_off": "1m"}"#).unwrap();
        assert_eq!(health.probe_interval, Duration::from_secs(7));
        assert_eq!(health.max_probe_interval, Duration::from_secs(60));
    }

    #[test]
    fn model_order_rules_must_name_configured_providers_once() {
        let mut config = RuntimeConfig::with_providers([ProviderSettings::new("a")]);
        config.routing.model_order = vec![
            ModelOrder {
                model: "claude-haiku-*".into(),
                providers: vec!["a".into(), "b".into(), "a".into()],
            },
            ModelOrder {
                model: " ".into(),
                providers: vec![],
            },
        ];
        let errors: Vec<(String, String)> = config
            .validate()
            .into_iter()
            .map(|e| (e.path, e.reason))
            .collect();
        assert_eq!(
            errors,
            [
                (
                    "routing.model_order[0].providers[1]".into(),
                    "unknown provider `b`".into()
                ),
                (
                    "routing.model_order[0].providers[2]".into(),
                    "`a` is listed twice".into()
                ),
                (
                    "routing.model_order[1].model".into(),
                    "must not be empty".into()
                ),
                (
                    "routing.model_order[1].providers".into(),
                    "must name at least one provider".into()
                ),
            ]
        );
    }

    #[test]
    fn defaults_are_valid() {
        let config = RuntimeConfig::with_providers([ProviderSettings::new("a")]);
        assert!(config.validate().is_empty());
        assert_eq!(config.health.failure_threshold, 5);
        assert_eq!(config.routing.trigger_statuses, DEFAULT_TRIGGER_STATUSES);
    }
}

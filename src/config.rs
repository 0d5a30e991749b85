//! The relay's configuration: a YAML file, then `RELAYRACE__…` environment overrides.
//!
//! The runtime's own sections (`routing`, `health`, `supervision`) are the types of
//! `relayrace-actors`; this module adds the server, the clients and the providers.
//! Secrets are never inline: the file names the environment variable that holds each key.
//!
//! The life of a configuration: [`load`] (parse; unknown keys and wrong types are errors naming
//! their path) → [`Config::validate`] (every problem, each naming its path) →
//! [`Config::resolve`] (read the keys; skip providers whose key is unset) →
//! [`Config::runtime_config`] (what the runtime starts from). [`describe`] renders the result
//! for `relayrace check` without ever printing a key. `config.example.yaml` at the repository
//! root is the reference of every field.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use relayrace_actors::{
    HealthConfig, HedgeOverride, ProviderSettings, RoutingConfig, SupervisionConfig,
};
use serde::{Deserialize, Serialize};

mod choice;
mod cloud;
mod describe;
mod load;
mod overrides;
mod resolve;
#[cfg(test)]
mod tests;
mod validate;

pub use choice::UnknownChoice;
pub use cloud::{
    AuthorizedUser, AwsKeys, CloudAccess, CloudCredentials, ServiceAccount, default_model_mapping,
};
pub use describe::describe;
pub use load::{ConfigLoadError, load, load_from};
pub use overrides::{ENV_PREFIX, ENV_SEPARATOR};
pub use resolve::{ResolveError, Resolved, SkippedProvider};

/// The base URL of a `type: anthropic` provider that sets none.
pub const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";

/// The whole configuration file.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The HTTP server.
    #[serde(default)]
    pub server: ServerConfig,
    /// Who may use the relay.
    #[serde(default)]
    pub clients: ClientsConfig,
    /// Strategy, failover race and its triggers.
    #[serde(default)]
    pub routing: RoutingConfig,
    /// When a provider leaves and re-enters rotation.
    #[serde(default)]
    pub health: HealthConfig,
    /// Restart policy of the runtime's actors.
    #[serde(default)]
    pub supervision: SupervisionConfig,
    /// Logging.
    #[serde(default)]
    pub logging: LoggingConfig,
    /// The providers, in order (ties in priority go to the earlier one).
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
}

/// The HTTP server.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// A separate address for the operator endpoints (`/status`, `/metrics`,
    /// `/v1/relay/events`); absent, they are served on `listen` beside the API.
    pub admin_listen: Option<SocketAddr>,
    /// Threads that serve requests (default 1). One thread relays tens of thousands of
    /// requests a second, and on a small machine it answers sooner than several: requests do
    /// not hop between threads. More help only past what one core can serve. Read by
    /// `relayrace serve`; a program that embeds [`crate::Relay`] runs it on its own runtime.
    pub workers: usize,
    /// Largest request body accepted, in bytes (default 32 MiB); larger gets 413.
    pub max_body_bytes: usize,
    /// On SIGINT/SIGTERM, how long in-flight requests may finish before they are cancelled.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// How long a client may take to send its request headers; then the connection is closed.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// How long a client may take to send its request body; then it gets 408.
    #[serde(with = "humantime_serde")]
    pub body_read_timeout: Duration,
    /// Messages API requests handled at once (default 2048), streams until their end; one more
    /// gets 529 `overloaded_error` with `retry-after: 1` at once, never a queue.
    pub max_in_flight: usize,
    /// Client connections open at once (default 4096); one more gets 529 and is closed.
    pub max_connections: usize,
}

/// Client authentication.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientsConfig {
    /// Names of environment variables, each holding one accepted relay key. Empty: no client
    /// authentication (bind to loopback then).
    pub api_key_envs: Vec<String>,
    /// Name of the environment variable holding the operator key. Set: the operator endpoints
    /// (`/status`, `/metrics`, `/v1/relay/events`) accept only that key. Absent: they accept
    /// the client keys (or anyone, when there are none).
    pub admin_key_env: Option<String>,
}

/// Logging.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// `text` (default) or `json`.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `relayrace=debug`; `RUST_LOG` wins when set.
    pub filter: Option<String>,
}

/// Log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// One provider.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Unique name (shown in `x-relayrace-provider`, `/status`, logs).
    pub name: String,
    /// What kind of provider this is.
    #[serde(rename = "type")]
    pub kind: ProviderKind,
    /// Base URL (`http` or `https`); the relay appends `/v1/messages`. Required for
    /// `anthropic_compatible`, optional for `anthropic` (default [`ANTHROPIC_BASE_URL`]), not
    /// allowed for `simulated`. For `bedrock` it replaces
    /// `https://bedrock-runtime.{region}.amazonaws.com` and for `vertex`
    /// `https://{region}-aiplatform.googleapis.com` (VPC endpoints, proxies, tests).
    #[serde(default)]
    pub base_url: Option<url::Url>,
    /// Name of the environment variable holding the API key (never the key itself). A provider
    /// whose variable is unset or empty is skipped at start-up with a warning. Required for
    /// `anthropic`; optional for `anthropic_compatible` (absent: no auth header is sent, e.g. for
    /// a local Ollama) and for `bedrock` (a Bedrock API key, sent as a bearer token instead of
    /// SigV4 signing); not allowed for `simulated`, `vertex` or with `auth: passthrough`.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// How the key is sent upstream.
    #[serde(default)]
    pub auth: AuthStyle,
    /// Lower is tried first by the `failover` strategy.
    #[serde(default = "default_priority")]
    pub priority: u32,
    /// Share of traffic under `weighted_round_robin`.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// A disabled provider is kept out of routing (it can be enabled at run time).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Models this provider serves, with the keys of `model_mapping`: exact names or glob
    /// patterns (`claude-haiku-*`). Neither: it serves every model. Exact names are listed by
    /// `GET /v1/models`.
    #[serde(default)]
    pub models: Vec<String>,
    /// Rewrites the request's `model` before it goes upstream (client name → provider name);
    /// a key may be a glob pattern (an exact key wins, then the longest matching pattern).
    #[serde(default)]
    pub model_mapping: BTreeMap<String, String>,
    /// At most this many attempts in flight on this provider at once; a request that finds it
    /// full goes to the next provider. Absent: no bound.
    #[serde(default)]
    pub max_concurrent_attempts: Option<u32>,
    /// Timeouts of one attempt.
    #[serde(default)]
    pub timeouts: TimeoutsConfig,
    /// Its own hedge settings (`enabled`, `percentile`, `factor`, `min_delay`, `max_delay`,
    /// `min_samples`, `initial_delay`), each replacing the one of `routing.hedge`.
    #[serde(default)]
    pub hedge: HedgeOverride,
    /// The cloud region of a `bedrock` provider (default `AWS_REGION`, `AWS_DEFAULT_REGION`,
    /// the AWS profile's) or a `vertex` one (required; `global` included). Only for those.
    #[serde(default)]
    pub region: Option<String>,
    /// The Google Cloud project of a `vertex` provider (required; only for `vertex`).
    #[serde(default)]
    pub project: Option<String>,
    /// Behaviour of a `simulated` provider (only allowed with `type: simulated`; absent means
    /// every default).
    #[serde(default)]
    pub simulated: Option<SimulatedConfig>,
}

impl ProviderConfig {
    /// Whether this provider reads a key from `api_key_env` (it then has one configured and
    /// neither is `simulated` nor forwards the client's credentials).
    pub fn uses_key(&self) -> bool {
        self.api_key_env.is_some()
            && self.kind != ProviderKind::Simulated
            && self.auth != AuthStyle::Passthrough
    }

    /// The provider as the runtime sees it: name, priority, weight, enabled, models served.
    pub fn settings(&self) -> ProviderSettings {
        ProviderSettings {
            name: self.name.clone(),
            priority: self.priority,
            weight: self.weight,
            enabled: self.enabled,
            models: self.served_models(),
            max_concurrent_attempts: self.max_concurrent_attempts,
            hedge: self.hedge.clone(),
        }
    }

    /// The models it serves: its `models`, then the keys of its `model_mapping` (names and
    /// patterns, each once). Empty: it serves every model.
    pub fn served_models(&self) -> Vec<String> {
        let mut served = self.models.clone();
        for from in self.effective_model_mapping().keys() {
            if !served.contains(from) {
                served.push(from.clone());
            }
        }
        served
    }

    /// Its `model_mapping`, or for a `bedrock` or `vertex` provider that configures none, the
    /// default one ([`default_model_mapping`]).
    pub fn effective_model_mapping(&self) -> std::borrow::Cow<'_, BTreeMap<String, String>> {
        match default_model_mapping(self.kind) {
            Some(defaults) if self.model_mapping.is_empty() => std::borrow::Cow::Owned(defaults),
            _ => std::borrow::Cow::Borrowed(&self.model_mapping),
        }
    }

    /// The exact names among its served models (patterns cannot be listed), in order.
    pub fn served_names(&self) -> Vec<String> {
        let mut names = self.served_models();
        names.retain(|model| !is_model_pattern(model));
        names
    }

    /// Whether it serves `model`: an exact name, a pattern that matches it, or no list at all
    /// (the rule routing applies).
    pub fn serves(&self, model: &str) -> bool {
        relayrace_actors::serves_model(&self.served_models(), model)
    }
}

/// Whether a provider serving `served` (see [`ProviderConfig::served_models`]) serves any model
/// whatever: the list is empty, or has a pattern of nothing but `*`.
pub fn serves_every_model(served: &[String]) -> bool {
    served.is_empty()
        || served
            .iter()
            .any(|s| !s.is_empty() && s.chars().all(|c| c == '*'))
}

pub use relayrace_actors::is_model_pattern;

/// Provider kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum ProviderKind {
    /// Anthropic's API: `x-api-key` and `anthropic-version` (added when the client sent none).
    Anthropic,
    /// Any Anthropic-compatible base URL (Z.AI, MiniMax, Ollama, OpenRouter, ...).
    AnthropicCompatible,
    /// Built in, in process: answers the Messages API with configurable faults.
    Simulated,
    /// Amazon Bedrock (InvokeModel): SigV4 or a Bedrock API key, AWS event-stream answers.
    Bedrock,
    /// Google Vertex AI (rawPredict): an OAuth2 token from Application Default Credentials.
    Vertex,
}

/// How the provider's key is sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum AuthStyle {
    /// `x-api-key: KEY`.
    #[default]
    XApiKey,
    /// `authorization: Bearer KEY`.
    Bearer,
    /// Forward the client's own `x-api-key` / `authorization` (only for `anthropic`; for
    /// subscription users whose Claude Code sends its own OAuth token).
    Passthrough,
}

/// Timeouts of one attempt against a provider.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutsConfig {
    /// To establish the connection.
    #[serde(with = "humantime_serde")]
    pub connect: Duration,
    /// From sending the request to the response headers and then the first event of a stream
    /// (or the first bytes of a JSON answer). A provider silent for longer fails over. A JSON
    /// answer's headers only come once it is generated: keep this above your longest
    /// non-streamed generation (Claude Code streams its main requests).
    #[serde(with = "humantime_serde")]
    pub first_event: Duration,
    /// Longest silence between two events of a stream (or two chunks of a JSON answer).
    #[serde(with = "humantime_serde")]
    pub idle: Duration,
    /// The whole request, stream included.
    #[serde(with = "humantime_serde")]
    pub total: Duration,
}

/// Behaviour of a simulated provider. Every field has a default; an empty section answers fast.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SimulatedConfig {
    /// Delay before the response headers / first event.
    #[serde(with = "humantime_serde")]
    pub first_event_delay: Duration,
    /// Delay between two stream events.
    #[serde(with = "humantime_serde")]
    pub event_delay: Duration,
    /// Words in the answer (one text delta per word when streaming).
    pub answer_words: usize,
    /// Probability (0.0–1.0) that a request fails with `failure_status`.
    pub failure_rate: f64,
    /// The status of a simulated failure (e.g. 529, 503, 429).
    pub failure_status: u16,
    /// Seed of the failure dice, for reproducible demos and tests.
    pub seed: Option<u64>,
    /// Stall forever after this many events (the idle timeout then ends the stream).
    pub stall_after_events: Option<usize>,
    /// Cut the stream after this many events, without `message_stop`.
    pub cut_after_events: Option<usize>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
            admin_listen: None,
            workers: 1,
            max_body_bytes: 32 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(60),
            max_in_flight: 2048,
            max_connections: 4096,
        }
    }
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            first_event: Duration::from_secs(30),
            idle: Duration::from_secs(60),
            total: Duration::from_secs(10 * 60),
        }
    }
}

impl Default for SimulatedConfig {
    fn default() -> Self {
        Self {
            first_event_delay: Duration::from_millis(50),
            event_delay: Duration::from_millis(20),
            answer_words: 12,
            failure_rate: 0.0,
            failure_status: 529,
            seed: None,
            stall_after_events: None,
            cut_after_events: None,
        }
    }
}

/// A secret loaded from the environment; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A provider ready to use: its settings, its checked base URL and, when it needs one, its key.
#[derive(Clone, Debug)]
pub struct ResolvedProvider {
    /// The configured settings.
    pub config: ProviderConfig,
    /// The base URL in force, defaulted and checked once (see
    /// [`ProviderConfig::checked_base_url`]): `http` or `https`, [`ANTHROPIC_BASE_URL`] for an
    /// `anthropic` provider that sets none. Present for the HTTP kinds, absent for `simulated`.
    pub base_url: Option<url::Url>,
    /// The key from `api_key_env` (none for `simulated` and `passthrough`).
    pub key: Option<Secret>,
    /// A `bedrock` or `vertex` provider's region and credentials.
    pub cloud: Option<CloudAccess>,
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

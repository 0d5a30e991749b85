//! Validation: every problem of a loaded configuration, each naming its path and the reason.

use std::time::Duration;

use relayrace_actors::ConfigError;
use url::Url;

use super::{
    ANTHROPIC_BASE_URL, AuthStyle, Config, ProviderConfig, ProviderKind, SimulatedConfig,
    TimeoutsConfig,
};

/// Most threads `server.workers` may ask for.
const MAX_WORKERS: usize = 256;

/// Why an `api_key_env`, a `clients.api_key_envs` entry or `clients.admin_key_env` is rejected.
const NOT_A_VARIABLE: &str =
    "must name an environment variable (keys are never written in the config)";

impl Config {
    /// Every problem in the configuration, each naming its path (`providers[2].base_url`);
    /// empty when it is valid. Includes the runtime's own checks
    /// ([`relayrace_actors::RuntimeConfig::validate`]).
    pub fn validate(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        for (field, timeout) in [
            (
                "server.header_read_timeout",
                self.server.header_read_timeout,
            ),
            ("server.body_read_timeout", self.server.body_read_timeout),
        ] {
            if timeout.is_zero() {
                errors.push(ConfigError::new(field, "must be above zero"));
            }
        }
        if !(1..=MAX_WORKERS).contains(&self.server.workers) {
            errors.push(ConfigError::new(
                "server.workers",
                format!("must be between 1 and {MAX_WORKERS}"),
            ));
        }
        for (name, value) in [
            ("max_body_bytes", self.server.max_body_bytes),
            ("max_in_flight", self.server.max_in_flight),
            ("max_connections", self.server.max_connections),
        ] {
            if value == 0 {
                errors.push(ConfigError::new(
                    format!("server.{name}"),
                    "must be above zero",
                ));
            }
        }
        if self.server.admin_listen == Some(self.server.listen) && self.server.listen.port() != 0 {
            errors.push(ConfigError::new(
                "server.admin_listen",
                "must differ from server.listen (leave it out to serve both on one address)",
            ));
        }
        if self
            .clients
            .admin_key_env
            .as_deref()
            .is_some_and(|var| !is_env_var_name(var))
        {
            errors.push(ConfigError::new("clients.admin_key_env", NOT_A_VARIABLE));
        }
        for (i, var) in self.clients.api_key_envs.iter().enumerate() {
            if !is_env_var_name(var) {
                errors.push(ConfigError::new(
                    format!("clients.api_key_envs[{i}]"),
                    NOT_A_VARIABLE,
                ));
            }
        }
        if self.providers.is_empty() {
            errors.push(ConfigError::new(
                "providers",
                "at least one provider is required",
            ));
        }
        for (i, provider) in self.providers.iter().enumerate() {
            validate_provider(provider, &format!("providers[{i}]"), &mut errors);
        }
        let settings: Vec<_> = self
            .providers
            .iter()
            .map(ProviderConfig::settings)
            .collect();
        errors.extend(self.runtime_config_of(settings).validate());
        errors
    }
}

/// Whether `name` looks like an environment variable name: `^[A-Za-z_][A-Za-z0-9_]*$`.
pub(super) fn is_env_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn validate_provider(provider: &ProviderConfig, at: &str, errors: &mut Vec<ConfigError>) {
    if !provider.name.is_empty() && !is_header_safe(&provider.name) {
        push(
            errors,
            at,
            "name",
            "may contain only ASCII letters, digits, `-`, `_` and `.` (it is sent in a header)",
        );
    }
    validate_base_url(provider, at, errors);
    validate_credentials(provider, at, errors);
    for (j, model) in provider.models.iter().enumerate() {
        if model.trim().is_empty() {
            push(errors, at, &format!("models[{j}]"), "must not be empty");
        }
    }
    for (from, to) in &provider.model_mapping {
        if from.trim().is_empty() || to.trim().is_empty() {
            let field = format!("model_mapping.{from}");
            push(errors, at, &field, "model names must not be empty");
        }
    }
    validate_timeouts(&provider.timeouts, &format!("{at}.timeouts"), errors);
    validate_cloud(provider, at, errors);
    match (&provider.simulated, provider.kind) {
        (Some(simulated), ProviderKind::Simulated) => {
            validate_simulated(simulated, &format!("{at}.simulated"), errors);
        }
        (Some(_), _) => push(errors, at, "simulated", "only allowed for type simulated"),
        (None, _) => {}
    }
}

impl ProviderConfig {
    /// The base URL in force, defaulted and checked in this one place for validation and
    /// resolution alike: the configured one, or [`ANTHROPIC_BASE_URL`] for `anthropic`; `None`
    /// for `simulated`. A checked URL is `http` or `https`, so it can be a base (the endpoint
    /// paths are appended to its own).
    ///
    /// # Errors
    ///
    /// The reason [`Config::validate`] gives at `base_url`: required for
    /// `anthropic_compatible`, not used by `simulated`, or not `http(s)`.
    pub fn checked_base_url(&self) -> Result<Option<Url>, &'static str> {
        let url = match (&self.base_url, self.kind) {
            (None, ProviderKind::AnthropicCompatible) => {
                return Err("required for type anthropic_compatible");
            }
            (Some(_), ProviderKind::Simulated) => return Err("not used by type simulated"),
            (None, ProviderKind::Simulated | ProviderKind::Bedrock | ProviderKind::Vertex) => {
                // A cloud provider's default follows its region (see resolution).
                return Ok(None);
            }
            (None, ProviderKind::Anthropic) => anthropic_base_url(),
            (Some(url), _) => url.clone(),
        };
        if !matches!(url.scheme(), "http" | "https") {
            return Err("must be an http or https URL");
        }
        Ok(Some(url))
    }
}

/// [`ANTHROPIC_BASE_URL`], parsed.
#[expect(
    clippy::expect_used,
    reason = "a constant URL; the config tests resolve an anthropic provider with it"
)]
fn anthropic_base_url() -> Url {
    Url::parse(ANTHROPIC_BASE_URL).expect("ANTHROPIC_BASE_URL is a valid URL")
}

/// `base_url`: see [`ProviderConfig::checked_base_url`].
fn validate_base_url(provider: &ProviderConfig, at: &str, errors: &mut Vec<ConfigError>) {
    if let Err(reason) = provider.checked_base_url() {
        push(errors, at, "base_url", reason);
    }
}

/// `auth` and `api_key_env`: which kinds take a key, and how it is named.
fn validate_credentials(provider: &ProviderConfig, at: &str, errors: &mut Vec<ConfigError>) {
    let kind = provider.kind;
    let passthrough = provider.auth == AuthStyle::Passthrough;
    if passthrough && kind != ProviderKind::Anthropic {
        push(
            errors,
            at,
            "auth",
            "passthrough is only allowed for type anthropic",
        );
    }
    let reason = match &provider.api_key_env {
        Some(_) if kind == ProviderKind::Simulated => "not used by type simulated",
        Some(_) if kind == ProviderKind::Vertex => {
            "not used by type vertex (it uses Application Default Credentials)"
        }
        Some(_) if passthrough => "not used with auth passthrough (the client's key is forwarded)",
        Some(var) if !is_env_var_name(var) => NOT_A_VARIABLE,
        None if kind == ProviderKind::Anthropic && !passthrough => {
            "required for type anthropic (or set auth: passthrough)"
        }
        _ => return,
    };
    push(errors, at, "api_key_env", reason);
}

/// `region` and `project`: for the cloud kinds only; Vertex needs both.
fn validate_cloud(provider: &ProviderConfig, at: &str, errors: &mut Vec<ConfigError>) {
    let kind = provider.kind;
    let cloud = matches!(kind, ProviderKind::Bedrock | ProviderKind::Vertex);
    match &provider.region {
        Some(_) if !cloud => push(
            errors,
            at,
            "region",
            "only allowed for types bedrock and vertex",
        ),
        Some(region) if !is_region(region) => push(
            errors,
            at,
            "region",
            "must be a region name such as us-east-1 or global",
        ),
        None if kind == ProviderKind::Vertex => {
            push(errors, at, "region", "required for type vertex");
        }
        _ => {}
    }
    match &provider.project {
        Some(_) if kind != ProviderKind::Vertex => {
            push(errors, at, "project", "only allowed for type vertex");
        }
        Some(project) if !is_region(project) => push(
            errors,
            at,
            "project",
            "must be a project id (letters, digits, `-`)",
        ),
        None if kind == ProviderKind::Vertex => {
            push(errors, at, "project", "required for type vertex");
        }
        _ => {}
    }
}

/// Whether `name` can be a region or project id: ASCII letters, digits and `-`, not empty.
fn is_region(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn push(errors: &mut Vec<ConfigError>, at: &str, field: &str, reason: &str) {
    errors.push(ConfigError::new(format!("{at}.{field}"), reason));
}

fn validate_timeouts(timeouts: &TimeoutsConfig, at: &str, errors: &mut Vec<ConfigError>) {
    let TimeoutsConfig {
        connect,
        first_event,
        idle,
        total,
    } = *timeouts;
    let all: [(&str, Duration); 4] = [
        ("connect", connect),
        ("first_event", first_event),
        ("idle", idle),
        ("total", total),
    ];
    for (field, value) in all {
        if value.is_zero() {
            errors.push(ConfigError::new(
                format!("{at}.{field}"),
                "must be above zero",
            ));
        }
    }
}

fn validate_simulated(simulated: &SimulatedConfig, at: &str, errors: &mut Vec<ConfigError>) {
    if !(0.0..=1.0).contains(&simulated.failure_rate) {
        errors.push(ConfigError::new(
            format!("{at}.failure_rate"),
            format!("{} is not within 0.0..=1.0", simulated.failure_rate),
        ));
    }
    if !(100..=599).contains(&simulated.failure_status) {
        errors.push(ConfigError::new(
            format!("{at}.failure_status"),
            format!("{} is not an HTTP status code", simulated.failure_status),
        ));
    }
}

/// Whether a provider name can go in a header value and a log line unescaped.
fn is_header_safe(name: &str) -> bool {
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

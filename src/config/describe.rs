//! What `relayrace check --config F` prints: the effective settings, never a key.

use humantime_serde::re::humantime::format_duration;

use super::{AuthStyle, Config, ProviderKind, Resolved, ResolvedProvider, serves_every_model};
use crate::anthropic::CLAUDE_CODE_DEFAULT_MODELS;

/// A human-readable summary of `resolved` (from `config`): listen address, routing, then one
/// line per provider with the models it serves, the per-model order rules, a warning for each
/// model Claude Code requests by default that no enabled provider serves, and the skipped
/// providers. Keys are shown only as `set (N chars)`.
pub fn describe(resolved: &Resolved, config: &Config) -> String {
    let routing = &config.routing;
    let on_off = |on: bool| if on { "on" } else { "off" };
    let mut lines = vec![
        format!("listen: {}", config.server.listen),
        format!("workers: {}", config.server.workers),
        format!("strategy: {}", routing.strategy),
        format!("failover: {}", on_off(routing.failover)),
        format!(
            "race timeout: {}",
            format_duration(routing.effective_race_timeout())
        ),
        match config.clients.api_key_envs.as_slice() {
            [] => "client auth: off (no clients.api_key_envs)".to_owned(),
            vars => format!("client auth: on (keys from {})", vars.join(", ")),
        },
        match config.server.admin_listen {
            Some(admin) => format!("operator endpoints: on {admin}"),
            None => "operator endpoints: on the listen address".to_owned(),
        },
        match (
            &config.clients.admin_key_env,
            config.clients.api_key_envs.is_empty(),
        ) {
            (Some(var), _) => format!("operator auth: on (key from {var})"),
            (None, false) => "operator auth: the client keys".to_owned(),
            (None, true) => "operator auth: off (no clients.admin_key_env)".to_owned(),
        },
        format!("providers ({}):", resolved.providers.len()),
    ];
    for provider in &resolved.providers {
        lines.push(provider_line(provider));
        lines.push(format!("    models: {}", served(provider)));
    }
    if !resolved.providers.iter().any(|p| p.config.enabled) {
        lines.push("  warning: no provider is enabled; enable one at run time".to_owned());
    }
    lines.extend(model_order_lines(resolved, config));
    lines.extend(unserved_default_warnings(resolved));
    if !resolved.skipped.is_empty() {
        lines.push(format!(
            "skipped, key variable unset or empty ({}):",
            resolved.skipped.len()
        ));
        lines.extend(
            resolved
                .skipped
                .iter()
                .map(|s| format!("  {}: set {} to use it", s.name, s.env_var)),
        );
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// One provider: `name: type …, base_url …, priority …, weight …, enabled, auth …, key …`.
fn provider_line(provider: &ResolvedProvider) -> String {
    let config = &provider.config;
    let mut fields = vec![format!("type {}", config.kind)];
    if let Some(url) = &provider.base_url {
        fields.push(format!("base_url {url}"));
    }
    fields.push(format!("priority {}", config.priority));
    fields.push(format!("weight {}", config.weight));
    fields.push(
        if config.enabled {
            "enabled"
        } else {
            "disabled"
        }
        .to_owned(),
    );
    if let Some(cloud) = &provider.cloud {
        fields.push(format!("region {}", cloud.region));
        if let Some(project) = &config.project {
            fields.push(format!("project {project}"));
        }
        fields.push(format!("credentials {}", cloud.credentials.describe()));
    }
    fields.push(match (config.kind, config.auth, &config.api_key_env) {
        (ProviderKind::Simulated, ..) => "auth none (simulated)".to_owned(),
        (ProviderKind::Bedrock, _, Some(_)) => "auth bearer (bedrock api key)".to_owned(),
        (ProviderKind::Bedrock, ..) => "auth sigv4".to_owned(),
        (ProviderKind::Vertex, ..) => "auth oauth2 token".to_owned(),
        (_, AuthStyle::Passthrough, _) => "auth passthrough (the client's own key)".to_owned(),
        (_, _, None) => "auth none (no api_key_env)".to_owned(),
        (_, auth, Some(var)) => {
            let key = match &provider.key {
                Some(key) => format!("set ({} chars)", key.expose().chars().count()),
                None => "unset".to_owned(),
            };
            format!("auth {auth}, key {var} {key}")
        }
    });
    if let Some(simulated) = &config.simulated {
        fields.push(format!(
            "failure_rate {}, failure_status {}",
            simulated.failure_rate, simulated.failure_status
        ));
    }
    format!("  {}: {}", config.name, fields.join(", "))
}

/// What a provider serves: its names and patterns as configured, `every model` without any
/// (and after them when a `*` pattern serves every model).
fn served(provider: &ResolvedProvider) -> String {
    let models = provider.config.served_models();
    match (models.is_empty(), serves_every_model(&models)) {
        (true, _) => "every model".to_owned(),
        (false, true) => format!("{} (every model)", models.join(", ")),
        (false, false) => models.join(", "),
    }
}

/// The `routing.model_order` rules in force (those naming only skipped providers are gone),
/// one line each: `pattern: provider, provider`.
fn model_order_lines(resolved: &Resolved, config: &Config) -> Vec<String> {
    let rules = config
        .runtime_config(&resolved.providers)
        .routing
        .model_order;
    if rules.is_empty() {
        return Vec::new();
    }
    let mut lines = vec![format!("model order ({}):", rules.len())];
    lines.extend(
        rules
            .iter()
            .map(|rule| format!("  {}: {}", rule.model, rule.providers.join(", "))),
    );
    lines
}

/// A warning for each model Claude Code requests by default that no enabled provider serves.
fn unserved_default_warnings(resolved: &Resolved) -> Vec<String> {
    CLAUDE_CODE_DEFAULT_MODELS
        .iter()
        .filter(|model| {
            !resolved
                .providers
                .iter()
                .any(|p| p.config.enabled && p.config.serves(model))
        })
        .map(|model| {
            format!(
                "warning: no enabled provider serves {model}, which Claude Code requests by \
                 default (list it, or a pattern that matches it, in a provider's models or \
                 model_mapping)"
            )
        })
        .collect()
}

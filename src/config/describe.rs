//! What `relayrace check --config F` prints: the effective settings, never a key.

use humantime_serde::re::humantime::format_duration;

use super::{AuthStyle, Config, ProviderKind, Resolved, ResolvedProvider};

/// A human-readable summary of `resolved` (from `config`): listen address, routing, then one
/// line per provider and per skipped provider. Keys are shown only as `set (N chars)`.
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
    lines.extend(resolved.providers.iter().map(provider_line));
    if !resolved.providers.iter().any(|p| p.config.enabled) {
        lines.push("  warning: no provider is enabled; enable one at run time".to_owned());
    }
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
    fields.push(match (config.kind, config.auth, &config.api_key_env) {
        (ProviderKind::Simulated, ..) => "auth none (simulated)".to_owned(),
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

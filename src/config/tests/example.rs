//! `config.example.yaml`: it loads, validates, resolves and documents every field.

use std::collections::BTreeSet;

use super::*;

#[test]
fn example_file_parses_and_validates_without_errors() {
    let config = parse(EXAMPLE, &[]);
    assert_eq!(problems(&config), Vec::<(String, String)>::new());
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8787");
    assert_eq!(config.routing.strategy, StrategyKind::Failover);
    assert_eq!(config.routing.race_timeout, Duration::from_secs(5));
    assert_eq!(config.logging.format, LogFormat::Text);
    assert_eq!(config.health, HealthConfig::default());
    assert_eq!(config.supervision, SupervisionConfig::default());
    assert_eq!(config.routing, RoutingConfig::default());
}

#[test]
fn example_file_without_keys_runs_the_simulated_providers_and_skips_the_keyed_ones() {
    let config = parse(EXAMPLE, &[]);
    let resolved = resolved(&config, no_env);

    // Ollama needs no key, so it is kept, but it is disabled: the simulated pair serves.
    assert_eq!(
        names(&resolved.providers),
        ["ollama", "sim-flaky", "sim-steady"]
    );
    let enabled: Vec<&str> = resolved
        .providers
        .iter()
        .filter(|p| p.config.enabled)
        .map(|p| p.config.name.as_str())
        .collect();
    assert_eq!(enabled, ["sim-flaky", "sim-steady"]);
    assert!(resolved.providers.iter().all(|p| p.key.is_none()));
    let skipped: Vec<(&str, &str)> = resolved
        .skipped
        .iter()
        .map(|s| (s.name.as_str(), s.env_var.as_str()))
        .collect();
    assert_eq!(
        skipped,
        [
            ("anthropic", "ANTHROPIC_API_KEY"),
            ("zai", "ZAI_API_KEY"),
            ("minimax", "MINIMAX_API_KEY"),
        ]
    );
    assert!(resolved.client_keys.is_empty());

    let flaky = &resolved.providers[1].config;
    let expected = SimulatedConfig {
        failure_rate: 0.5,
        failure_status: 529,
        seed: Some(7),
        ..SimulatedConfig::default()
    };
    assert_eq!(flaky.simulated.as_ref(), Some(&expected));
}

#[test]
fn example_file_with_keys_uses_every_keyed_provider() {
    let config = parse(EXAMPLE, &[]);
    let resolved = resolved(&config, |var| Some(format!("key-of-{var}")));
    assert_eq!(
        names(&resolved.providers),
        [
            "anthropic",
            "zai",
            "minimax",
            "ollama",
            "sim-flaky",
            "sim-steady"
        ]
    );
    assert!(resolved.skipped.is_empty());
    let zai = &resolved.providers[1];
    assert_eq!(
        zai.key.as_ref().map(Secret::expose),
        Some("key-of-ZAI_API_KEY")
    );
    assert_eq!(zai.config.auth, AuthStyle::Bearer);
    assert_eq!(
        zai.config
            .model_mapping
            .get("claude-sonnet-4-5")
            .map(String::as_str),
        Some("glm-4.6")
    );
}

/// Every field name, at any depth, of a serialized value.
fn field_names(value: &serde_json::Value, names: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                names.insert(key.clone());
                field_names(value, names);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| field_names(v, names)),
        _ => {}
    }
}

#[test]
fn example_file_spells_out_every_field() {
    let config = parse(EXAMPLE, &[]);
    let value = match serde_json::to_value(&config) {
        Ok(value) => value,
        Err(err) => panic!("cannot serialize the config: {err}"),
    };
    let mut names = BTreeSet::new();
    field_names(&value, &mut names);
    let missing: Vec<&String> = names
        .iter()
        .filter(|name| !EXAMPLE.contains(&format!("{name}:")))
        .collect();
    assert!(
        missing.is_empty(),
        "not in config.example.yaml: {missing:?}"
    );
    // The simulated section that spells out every field does so with non-null or null values.
    assert!(names.contains("stall_after_events") && names.contains("first_event"));
}

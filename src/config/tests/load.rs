//! Loading: the file, environment overrides, and errors that name their path.

use std::path::Path;

use super::*;

#[test]
fn empty_file_gives_the_documented_defaults() {
    let config = parse("", &[]);
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8787");
    assert_eq!(config.server.max_body_bytes, 32 * 1024 * 1024);
    assert_eq!(config.server.workers, 1);
    assert_eq!(config.server.shutdown_grace, Duration::from_secs(30));
    assert!(config.providers.is_empty());
    assert_eq!(
        TimeoutsConfig::default(),
        TimeoutsConfig {
            connect: Duration::from_secs(5),
            first_event: Duration::from_secs(30),
            idle: Duration::from_secs(60),
            total: Duration::from_secs(600),
        }
    );
}

#[test]
fn omitted_provider_fields_take_their_defaults() {
    let config = parse(
        "providers:\n  - name: sim\n    type: simulated\n    simulated: {}\n",
        &[],
    );
    let sim = &config.providers[0];
    assert_eq!((sim.priority, sim.weight, sim.enabled), (1, 1, true));
    assert_eq!(sim.timeouts, TimeoutsConfig::default());
    let expected = SimulatedConfig {
        first_event_delay: Duration::from_millis(50),
        event_delay: Duration::from_millis(20),
        answer_words: 12,
        failure_rate: 0.0,
        failure_status: 529,
        seed: None,
        stall_after_events: None,
        cut_after_events: None,
    };
    assert_eq!(sim.simulated.as_ref(), Some(&expected));
}

#[test]
fn durations_are_humantime_strings() {
    let config = parse(
        "server:\n  shutdown_grace: 1m 30s\nproviders:\n  - name: sim\n    type: simulated\n    timeouts:\n      connect: 500ms\n",
        &[],
    );
    assert_eq!(config.server.shutdown_grace, Duration::from_secs(90));
    assert_eq!(
        config.providers[0].timeouts.connect,
        Duration::from_millis(500)
    );
    let (path, reason) = rejected(
        "providers:\n  - name: sim\n    type: simulated\n    timeouts:\n      idle: 5 parsecs\n",
        &[],
    );
    assert_eq!(path, "providers[0].timeouts.idle");
    assert!(reason.contains("duration"), "{reason}");
}

#[test]
fn environment_overrides_the_listen_address() {
    let config = parse(EXAMPLE, &[("RELAYRACE__SERVER__LISTEN", "0.0.0.0:9000")]);
    assert_eq!(config.server.listen.to_string(), "0.0.0.0:9000");
}

#[test]
fn environment_overrides_nested_fields_with_typed_values() {
    let config = parse(
        EXAMPLE,
        &[
            ("RELAYRACE__ROUTING__STRATEGY", "round_robin"),
            ("RELAYRACE__ROUTING__FAILOVER", "false"),
            ("RELAYRACE__ROUTING__RACE_TIMEOUT", "2s"),
            ("RELAYRACE__ROUTING__SEED", "42"),
            ("RELAYRACE__HEALTH__FAILURE_THRESHOLD", "3"),
            ("RELAYRACE__SERVER__MAX_BODY_BYTES", "1024"),
            ("RELAYRACE__SERVER__WORKERS", "4"),
            ("RELAYRACE__PROVIDERS__4__SIMULATED__FAILURE_RATE", "0.25"),
            ("RELAYRACE__LOGGING__FORMAT", "json"),
        ],
    );
    assert_eq!(config.routing.strategy, StrategyKind::RoundRobin);
    assert!(!config.routing.failover);
    assert_eq!(config.routing.race_timeout, Duration::from_secs(2));
    assert_eq!(config.routing.seed, Some(42));
    assert_eq!(config.health.failure_threshold, 3);
    assert_eq!(config.server.max_body_bytes, 1024);
    assert_eq!(config.server.workers, 4);
    assert_eq!(config.logging.format, LogFormat::Json);
    let flaky = config.providers[4]
        .simulated
        .as_ref()
        .map(|s| s.failure_rate);
    assert_eq!(flaky, Some(0.25));
    // The rest of the provider is untouched.
    assert_eq!(config.providers[4].name, "sim-flaky");
}

#[test]
fn environment_overrides_a_provider_by_index() {
    let config = parse(EXAMPLE, &[("RELAYRACE__PROVIDERS__3__ENABLED", "true")]);
    assert_eq!(config.providers[3].name, "ollama");
    assert!(config.providers[3].enabled);
    assert_eq!(config.providers.len(), 6);
}

#[test]
fn environment_override_of_a_provider_the_file_lacks_is_rejected() {
    let (path, reason) = rejected(EXAMPLE, &[("RELAYRACE__PROVIDERS__9__ENABLED", "true")]);
    assert_eq!(path, "providers[9].enabled");
    assert!(
        reason.contains("RELAYRACE__PROVIDERS__9__ENABLED"),
        "{reason}"
    );
    assert!(reason.contains("6 item(s)"), "{reason}");
}

#[test]
fn environment_lists_are_comma_separated() {
    let config = parse(
        EXAMPLE,
        &[
            ("RELAYRACE__ROUTING__TRIGGER_STATUSES", "429, 529"),
            (
                "RELAYRACE__CLIENTS__API_KEY_ENVS",
                "RELAY_KEY_A,RELAY_KEY_B",
            ),
            ("RELAYRACE__PROVIDERS__0__MODELS", "claude-sonnet-4-5"),
        ],
    );
    assert_eq!(config.routing.trigger_statuses, [429, 529]);
    assert_eq!(config.clients.api_key_envs, ["RELAY_KEY_A", "RELAY_KEY_B"]);
    assert_eq!(config.providers[0].models, ["claude-sonnet-4-5"]);

    let single = parse(EXAMPLE, &[("RELAYRACE__ROUTING__TRIGGER_STATUSES", "503")]);
    assert_eq!(single.routing.trigger_statuses, [503]);
}

#[test]
fn environment_errors_name_the_variable() {
    let (path, reason) = rejected(EXAMPLE, &[("RELAYRACE__SERVER__LISTEN", "nowhere")]);
    assert_eq!(path, "server.listen");
    assert!(reason.contains("RELAYRACE__SERVER__LISTEN"), "{reason}");

    let (path, reason) = rejected(EXAMPLE, &[("RELAYRACE__HEALTH__PROBE_INTERVAL", "soon")]);
    assert_eq!(path, "health.probe_interval");
    assert!(
        reason.contains("RELAYRACE__HEALTH__PROBE_INTERVAL"),
        "{reason}"
    );
}

#[test]
fn unknown_environment_setting_is_rejected_with_its_path() {
    let (path, reason) = rejected(EXAMPLE, &[("RELAYRACE__SERVER__LISTN", "0.0.0.0:1")]);
    assert_eq!(path, "server.listn");
    assert!(reason.contains("unknown field `listn`"), "{reason}");
    assert!(reason.contains("RELAYRACE__SERVER__LISTN"), "{reason}");

    let (path, _) = rejected(EXAMPLE, &[("RELAYRACE__SERVER____LISTEN", "0.0.0.0:1")]);
    assert_eq!(path, "server..listen");
}

#[test]
fn variables_without_the_prefix_are_ignored() {
    let config = parse(
        EXAMPLE,
        &[
            ("HOME", "/root"),
            ("RELAYRACE_CONFIG", "/etc/relayrace.yaml"),
            ("RELAYRACE__", "x"),
            ("ANTHROPIC_API_KEY", "sk-ant-not-a-setting"),
        ],
    );
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8787");
}

#[test]
fn unknown_key_in_a_provider_is_rejected_with_its_path() {
    let yaml = "providers:\n  - name: a\n    type: simulated\n  - name: b\n    type: anthropic\n    api_key_env: B_KEY\n    bse_url: https://example.com\n";
    let (path, reason) = rejected(yaml, &[]);
    assert_eq!(path, "providers[1].bse_url");
    assert!(reason.contains("unknown field `bse_url`"), "{reason}");
    assert!(
        reason.contains("`base_url`"),
        "lists the known fields: {reason}"
    );
}

#[test]
fn unknown_key_deep_inside_a_provider_is_rejected_with_its_path() {
    let yaml = "providers:\n  - name: a\n    type: simulated\n  - name: b\n    type: simulated\n    simulated:\n      failure_rat: 0.5\n";
    let (path, reason) = rejected(yaml, &[]);
    assert_eq!(path, "providers[1].simulated.failure_rat");
    assert!(reason.contains("unknown field `failure_rat`"), "{reason}");

    let yaml = "providers:\n  - name: a\n    type: simulated\n    timeouts:\n      conect: 1s\n";
    assert_eq!(rejected(yaml, &[]).0, "providers[0].timeouts.conect");
}

#[test]
fn unknown_top_level_section_is_rejected() {
    let (path, reason) = rejected("servr:\n  listen: 127.0.0.1:1\n", &[]);
    assert_eq!(path, "servr");
    assert!(reason.contains("unknown field `servr`"), "{reason}");
}

#[test]
fn wrong_type_names_its_path() {
    let yaml = "providers:\n  - name: a\n    type: simulated\n  - name: b\n    type: simulated\n    priority: high\n";
    let (path, reason) = rejected(yaml, &[]);
    assert_eq!(path, "providers[1].priority");
    assert_eq!(reason, "invalid type: string \"high\", expected an integer");

    let (path, _) = rejected("routing:\n  failover: maybe\n", &[]);
    assert_eq!(path, "routing.failover");
    let (path, _) = rejected("providers:\n  name: a\n", &[]);
    assert_eq!(path, "providers");
    let yaml = "providers:\n  - name: a\n    type: anthropic_compatible\n    base_url: not a url\n";
    assert_eq!(rejected(yaml, &[]).0, "providers[0].base_url");
}

#[test]
fn missing_required_field_names_its_path() {
    let yaml = "providers:\n  - name: a\n    type: simulated\n  - name: b\n";
    let (path, reason) = rejected(yaml, &[]);
    assert_eq!(path, "providers[1].type");
    assert_eq!(reason, "missing required field");
}

#[test]
fn unknown_strategy_lists_the_valid_ones() {
    let (path, reason) = rejected("routing:\n  strategy: fastest\n", &[]);
    assert_eq!(path, "routing.strategy");
    assert!(reason.contains("`fastest`"), "{reason}");
    for kind in StrategyKind::ALL {
        assert!(reason.contains(kind.name()), "{reason}");
    }
}

#[test]
fn unknown_choices_list_the_valid_ones() {
    let (path, reason) = rejected("providers:\n  - name: a\n    type: antropic\n", &[]);
    assert_eq!(path, "providers[0].type");
    assert_eq!(
        reason,
        "unknown provider type `antropic`, expected one of: anthropic, anthropic_compatible, simulated, bedrock, vertex"
    );
    let yaml = "providers:\n  - name: a\n    type: anthropic\n    auth: oauth\n";
    let (path, reason) = rejected(yaml, &[]);
    assert_eq!(path, "providers[0].auth");
    assert!(
        reason.contains("x_api_key, bearer, passthrough"),
        "{reason}"
    );
    let (path, reason) = rejected("logging:\n  format: xml\n", &[]);
    assert_eq!(path, "logging.format");
    assert!(reason.contains("text, json"), "{reason}");
}

#[test]
fn malformed_yaml_is_a_yaml_error() {
    match load_from("server: [\n", env(&[])) {
        Err(ConfigLoadError::Yaml(_)) => {}
        other => panic!("expected a YAML error, got {other:?}"),
    }
}

#[test]
fn load_reads_the_file_and_names_one_it_cannot_read() {
    let file = std::env::temp_dir().join(format!("relayrace-config-{}.yaml", std::process::id()));
    if let Err(err) = std::fs::write(&file, EXAMPLE) {
        panic!("cannot write {}: {err}", file.display());
    }
    let loaded = load(&file);
    let _ = std::fs::remove_file(&file);
    match loaded {
        Ok(config) => assert_eq!(config.providers.len(), 6),
        Err(err) => panic!("expected the file to load: {err}"),
    }

    let missing = Path::new("/nonexistent/relayrace.yaml");
    match load(missing) {
        Err(err @ ConfigLoadError::Read { .. }) => {
            assert_eq!(
                err.to_string(),
                "cannot read config file `/nonexistent/relayrace.yaml`"
            );
        }
        other => panic!("expected a read error, got {other:?}"),
    }
}

//! Validation: each rule reports its path and reason.

use super::*;

#[test]
fn valid_providers_of_every_kind_have_no_errors() {
    let mut passthrough = provider("subscription", ProviderKind::Anthropic);
    passthrough.auth = AuthStyle::Passthrough;
    let mut keyed = compatible("zai", "https://api.z.ai/api/anthropic");
    keyed.api_key_env = Some("ZAI_API_KEY".to_owned());
    keyed.auth = AuthStyle::Bearer;
    keyed.models = vec!["glm-4.6".to_owned()];
    let config = with(vec![
        anthropic("anthropic", "ANTHROPIC_API_KEY"),
        passthrough,
        keyed,
        compatible("ollama", "http://127.0.0.1:11434"),
        simulated("sim"),
        provider("sim-defaults", ProviderKind::Simulated),
    ]);
    assert_eq!(problems(&config), Vec::<(String, String)>::new());
}

#[test]
fn at_least_one_provider_is_required() {
    assert_eq!(paths(&with(vec![])), ["providers"]);
}

#[test]
fn anthropic_compatible_requires_a_base_url() {
    let config = with(vec![
        simulated("sim"),
        provider("zai", ProviderKind::AnthropicCompatible),
    ]);
    assert_eq!(
        problems(&config),
        [(
            "providers[1].base_url".to_owned(),
            "required for type anthropic_compatible".to_owned()
        )]
    );
}

#[test]
fn base_url_must_be_http_or_https() {
    let mut config = with(vec![compatible("ftp", "ftp://example.com/anthropic")]);
    assert_eq!(paths(&config), ["providers[0].base_url"]);
    config.providers[0].base_url = Some(url("file:///etc/passwd"));
    assert_eq!(paths(&config), ["providers[0].base_url"]);
}

#[test]
fn simulated_takes_no_base_url_and_no_key() {
    let mut sim = simulated("sim");
    sim.base_url = Some(url("https://example.com"));
    sim.api_key_env = Some("SIM_KEY".to_owned());
    assert_eq!(
        paths(&with(vec![sim])),
        ["providers[0].base_url", "providers[0].api_key_env"]
    );
}

#[test]
fn passthrough_is_only_allowed_for_anthropic() {
    let mut zai = compatible("zai", "https://api.z.ai/api/anthropic");
    zai.auth = AuthStyle::Passthrough;
    let mut sim = simulated("sim");
    sim.auth = AuthStyle::Passthrough;
    let config = with(vec![zai, sim]);
    assert_eq!(
        problems(&config),
        [
            (
                "providers[0].auth".to_owned(),
                "passthrough is only allowed for type anthropic".to_owned()
            ),
            (
                "providers[1].auth".to_owned(),
                "passthrough is only allowed for type anthropic".to_owned()
            ),
        ]
    );
}

#[test]
fn passthrough_takes_no_key_variable() {
    let mut subscription = anthropic("subscription", "ANTHROPIC_API_KEY");
    subscription.auth = AuthStyle::Passthrough;
    assert_eq!(
        paths(&with(vec![subscription])),
        ["providers[0].api_key_env"]
    );
}

#[test]
fn anthropic_requires_a_key_variable_but_anthropic_compatible_does_not() {
    let config = with(vec![
        provider("anthropic", ProviderKind::Anthropic),
        compatible("ollama", "http://127.0.0.1:11434"),
    ]);
    assert_eq!(paths(&config), ["providers[0].api_key_env"]);
}

#[test]
fn api_key_env_must_name_a_variable_not_hold_a_key() {
    for value in ["sk-ant-api03-abcdef0123456789", "MY KEY", "1PASSWORD", ""] {
        let config = with(vec![anthropic("anthropic", value)]);
        assert_eq!(
            problems(&config),
            [(
                "providers[0].api_key_env".to_owned(),
                "must name an environment variable (keys are never written in the config)"
                    .to_owned()
            )],
            "{value:?}"
        );
    }
    for value in ["ANTHROPIC_API_KEY", "_KEY", "key2"] {
        assert!(
            problems(&with(vec![anthropic("anthropic", value)])).is_empty(),
            "{value}"
        );
    }
}

#[test]
fn simulated_section_is_only_allowed_with_type_simulated() {
    let mut anthropic = anthropic("anthropic", "ANTHROPIC_API_KEY");
    anthropic.simulated = Some(SimulatedConfig::default());
    assert_eq!(
        problems(&with(vec![anthropic])),
        [(
            "providers[0].simulated".to_owned(),
            "only allowed for type simulated".to_owned()
        )]
    );
}

#[test]
fn simulated_failure_rate_and_status_must_be_in_range() {
    let mut sim = simulated("sim");
    let Some(settings) = sim.simulated.as_mut() else {
        panic!("simulated() has a section");
    };
    settings.failure_rate = 1.5;
    settings.failure_status = 99;
    let mut nan = simulated("nan");
    if let Some(settings) = nan.simulated.as_mut() {
        settings.failure_rate = f64::NAN;
        settings.failure_status = 600;
    }
    assert_eq!(
        paths(&with(vec![sim, nan])),
        [
            "providers[0].simulated.failure_rate",
            "providers[0].simulated.failure_status",
            "providers[1].simulated.failure_rate",
            "providers[1].simulated.failure_status",
        ]
    );
}

#[test]
fn every_timeout_must_be_above_zero() {
    let mut sim = simulated("sim");
    sim.timeouts = TimeoutsConfig {
        connect: Duration::ZERO,
        first_event: Duration::ZERO,
        idle: Duration::ZERO,
        total: Duration::ZERO,
    };
    let found = problems(&with(vec![sim]));
    let expected: Vec<(String, String)> = ["connect", "first_event", "idle", "total"]
        .iter()
        .map(|field| {
            (
                format!("providers[0].timeouts.{field}"),
                "must be above zero".to_owned(),
            )
        })
        .collect();
    assert_eq!(found, expected);
}

#[test]
fn workers_must_be_between_one_and_the_limit() {
    for (workers, valid) in [(0, false), (1, true), (256, true), (257, false)] {
        let mut config = with(vec![simulated("sim")]);
        config.server.workers = workers;
        let expected: &[&str] = if valid { &[] } else { &["server.workers"] };
        assert_eq!(paths(&config), expected, "workers: {workers}");
    }
}

#[test]
fn max_body_bytes_must_be_above_zero() {
    let mut config = with(vec![simulated("sim")]);
    config.server.max_body_bytes = 0;
    assert_eq!(paths(&config), ["server.max_body_bytes"]);
}

#[test]
fn model_names_must_not_be_empty() {
    let mut sim = simulated("sim");
    sim.models = vec!["claude-sonnet-4-5".to_owned(), " ".to_owned()];
    sim.model_mapping
        .insert("claude-haiku-4-5".to_owned(), String::new());
    assert_eq!(
        paths(&with(vec![sim])),
        [
            "providers[0].models[1]",
            "providers[0].model_mapping.claude-haiku-4-5"
        ]
    );
}

#[test]
fn client_key_variables_must_be_variable_names() {
    let mut config = with(vec![simulated("sim")]);
    config.clients.api_key_envs = vec!["RELAY_KEY".to_owned(), "rr-secret-123!".to_owned()];
    assert_eq!(paths(&config), ["clients.api_key_envs[1]"]);
}

#[test]
fn the_admin_key_variable_must_be_a_variable_name() {
    let mut config = with(vec![simulated("sim")]);
    config.clients.admin_key_env = Some("ADMIN_KEY".to_owned());
    assert_eq!(paths(&config), Vec::<String>::new());
    config.clients.admin_key_env = Some("ak-secret-1".to_owned());
    assert_eq!(paths(&config), ["clients.admin_key_env"]);
}

#[test]
fn the_admin_listener_must_differ_from_the_main_one() {
    let mut config = with(vec![simulated("sim")]);
    config.server.admin_listen = Some("127.0.0.1:8788".parse().unwrap());
    assert_eq!(paths(&config), Vec::<String>::new());
    config.server.admin_listen = Some(config.server.listen);
    assert_eq!(paths(&config), ["server.admin_listen"]);
}

#[test]
fn provider_names_must_be_safe_in_a_header() {
    let config = with(vec![simulated("sim one\n")]);
    assert_eq!(paths(&config), ["providers[0].name"]);
}

#[test]
fn runtime_checks_are_included_with_their_paths() {
    let mut twin = simulated("sim");
    twin.weight = 0;
    let mut config = with(vec![simulated("sim"), twin]);
    config.health.failure_threshold = 0;
    config.routing.trigger_statuses = vec![429, 1000];
    assert_eq!(
        paths(&config),
        [
            "providers[1].name",
            "providers[1].weight",
            "health.failure_threshold",
            "routing.trigger_statuses[1]",
        ]
    );
}

#[test]
fn a_model_order_rule_names_configured_providers_with_the_path_of_each_problem() {
    let mut config = with(vec![simulated("sim")]);
    config.routing.model_order = vec![relayrace_actors::ModelOrder {
        model: "claude-haiku-*".to_owned(),
        providers: vec!["sim".to_owned(), "nowhere".to_owned()],
    }];
    assert_eq!(paths(&config), ["routing.model_order[0].providers[1]"]);
}

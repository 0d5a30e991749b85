//! `relayrace check`'s description: what it shows (settings, what each provider serves,
//! warnings) and that secrets never show, there or in `Debug` of a key.

use relayrace_actors::ModelOrder;

use super::*;
use crate::anthropic::CLAUDE_CODE_DEFAULT_MODELS;

const PLANTED: &str = "sk-ant-api03-PLANTEDSECRETVALUE0123456789";

#[test]
fn secret_debug_never_shows_the_value() {
    let secret = Secret::new(PLANTED);
    assert_eq!(format!("{secret:?}"), "***");
    let config = with(vec![anthropic("anthropic", "ANTHROPIC_API_KEY")]);
    let resolved = resolved(&config, |_| Some(PLANTED.to_owned()));
    let debug = format!("{resolved:?} {:#?}", resolved.providers);
    assert!(!debug.contains("PLANTED"), "{debug}");
}

#[test]
fn describe_never_prints_a_secret() {
    let mut config = parse(EXAMPLE, &[]);
    config.clients.api_key_envs = vec!["RELAY_KEY".to_owned()];
    let resolved = resolved(&config, |_| Some(PLANTED.to_owned()));
    let text = describe(&resolved, &config);
    assert!(!text.contains("PLANTED"), "{text}");
    assert!(!text.contains("sk-ant"), "not even the prefix: {text}");
    assert!(
        text.contains(&format!(
            "key ANTHROPIC_API_KEY set ({} chars)",
            PLANTED.len()
        )),
        "{text}"
    );
    assert!(
        text.contains("client auth: on (keys from RELAY_KEY)"),
        "{text}"
    );
    assert!(text.contains("operator auth: the client keys"), "{text}");
}

#[test]
fn describe_shows_the_operator_listener_and_key_variable() {
    let mut config = parse(EXAMPLE, &[]);
    config.server.admin_listen = Some("127.0.0.1:8788".parse().unwrap());
    config.clients.admin_key_env = Some("ADMIN_KEY".to_owned());
    let resolved = resolved(&config, |_| Some(PLANTED.to_owned()));
    let text = describe(&resolved, &config);
    assert!(
        text.contains("operator endpoints: on 127.0.0.1:8788"),
        "{text}"
    );
    assert!(
        text.contains("operator auth: on (key from ADMIN_KEY)"),
        "{text}"
    );
    assert!(!text.contains("PLANTED"), "{text}");
}

#[test]
fn describe_shows_the_settings_and_names_the_skipped_variables() {
    let config = parse(EXAMPLE, &[]);
    let resolved = resolved(&config, no_env);
    let text = describe(&resolved, &config);
    for expected in [
        "listen: 127.0.0.1:8787",
        "workers: 1",
        "strategy: failover",
        "failover: on",
        "race timeout: 5s",
        "client auth: off",
        "operator endpoints: on the listen address",
        "operator auth: off (no clients.admin_key_env)",
        "  ollama: type anthropic_compatible, base_url http://127.0.0.1:11434/, priority 4, \
         weight 1, disabled, auth none (no api_key_env)",
        "  sim-flaky: type simulated, priority 5, weight 1, enabled, auth none (simulated), \
         failure_rate 0.5, failure_status 529",
        "  anthropic: set ANTHROPIC_API_KEY to use it",
        "  zai: set ZAI_API_KEY to use it",
        "  minimax: set MINIMAX_API_KEY to use it",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn describe_warns_when_no_provider_is_enabled() {
    let mut off = simulated("sim");
    off.enabled = false;
    let config = with(vec![off]);
    let resolved = resolved(&config, no_env);
    assert!(describe(&resolved, &config).contains("no provider is enabled"));
}

fn serving(name: &str, models: &[&str]) -> ProviderConfig {
    ProviderConfig {
        models: models.iter().map(|m| (*m).to_owned()).collect(),
        ..simulated(name)
    }
}

fn warnings(config: &Config) -> Vec<String> {
    describe(&resolved(config, no_env), config)
        .lines()
        .filter(|line| line.starts_with("warning:"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn describe_lists_what_each_provider_serves_and_the_model_order() {
    let mut mapped = serving("zai", &["glm-4.6"]);
    mapped.model_mapping = BTreeMap::from([
        ("claude-haiku-*".to_owned(), "glm-4.5-air".to_owned()),
        ("claude-opus-4-6".to_owned(), "glm-4.6".to_owned()),
    ]);
    let mut config = with(vec![simulated("anthropic"), mapped, serving("any", &["*"])]);
    config.routing.model_order = vec![ModelOrder {
        model: "claude-haiku-*".to_owned(),
        providers: vec!["zai".to_owned(), "anthropic".to_owned()],
    }];
    let text = describe(&resolved(&config, no_env), &config);
    for expected in [
        "  anthropic: type simulated, priority 1, weight 1, enabled, auth none (simulated), \
         failure_rate 0, failure_status 529\n    models: every model\n",
        "  zai: type simulated, priority 1, weight 1, enabled, auth none (simulated), \
         failure_rate 0, failure_status 529\n    models: glm-4.6, claude-haiku-*, \
         claude-opus-4-6\n",
        "\n    models: * (every model)\nmodel order (1):\n  claude-haiku-*: zai, anthropic\n",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn describe_has_no_model_order_section_without_rules() {
    let config = with(vec![simulated("sim")]);
    let text = describe(&resolved(&config, no_env), &config);
    assert!(!text.contains("model order"), "{text}");
}

#[test]
fn describe_warns_about_each_claude_code_default_no_enabled_provider_serves() {
    let mut everything = simulated("off");
    everything.enabled = false;
    // An exact name does not serve a dated snapshot, and a disabled provider serves nothing.
    let config = with(vec![
        serving("glm", &["glm-4.6", "claude-haiku-4-5"]),
        everything,
    ]);
    let found = warnings(&config);
    assert_eq!(found.len(), CLAUDE_CODE_DEFAULT_MODELS.len(), "{found:?}");
    for (warning, model) in found.iter().zip(CLAUDE_CODE_DEFAULT_MODELS) {
        assert!(
            warning.starts_with(&format!("warning: no enabled provider serves {model}, ")),
            "{warning}"
        );
        assert!(
            warning.contains("Claude Code requests by default"),
            "{warning}"
        );
    }
}

#[test]
fn describe_warns_only_about_the_defaults_left_unserved() {
    let [main, small] = CLAUDE_CODE_DEFAULT_MODELS;
    let config = with(vec![serving("main-only", &[main])]);
    let found = warnings(&config);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains(&format!("serves {small},")), "{found:?}");
}

#[test]
fn describe_does_not_warn_when_a_provider_serves_every_model_or_a_matching_pattern() {
    let mut mapped = serving("mapped", &["glm-4.6"]);
    mapped.model_mapping = BTreeMap::from([("claude-*".to_owned(), "glm-4.6".to_owned())]);
    for providers in [
        vec![simulated("no-list")],
        vec![serving("star", &["*"])],
        vec![serving("glob", &["claude-*"])],
        vec![mapped],
    ] {
        let config = with(providers);
        assert_eq!(warnings(&config), Vec::<String>::new(), "{config:?}");
    }
}

#[test]
fn what_a_provider_serves_names_patterns_and_every_model() {
    let mut provider = serving("p", &["claude-opus-4-6", "claude-haiku-4-?"]);
    provider.model_mapping = BTreeMap::from([("claude-sonnet-*".to_owned(), "x".to_owned())]);
    assert_eq!(provider.served_names(), ["claude-opus-4-6"]);
    assert!(provider.serves("claude-opus-4-6"));
    assert!(!provider.serves("claude-opus-4-6-20260101"));
    assert!(provider.serves("claude-haiku-4-5"));
    assert!(!provider.serves("claude-haiku-4-5-20251001"));
    assert!(provider.serves("claude-sonnet-4-6"));
    assert!(!serves_every_model(&provider.served_models()));
    assert!(serves_every_model(&[]));
    assert!(serves_every_model(&["a".to_owned(), "**".to_owned()]));
    assert!(!serves_every_model(&["*-4-5".to_owned()]));
}

//! Secrets never show: `Debug` of a key, and `relayrace check`'s description.

use super::*;

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

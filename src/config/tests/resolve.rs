//! Resolution of keys, and the runtime configuration built from the result.

use super::*;

#[test]
fn unset_or_empty_key_variable_skips_the_provider() {
    let config = with(vec![
        anthropic("unset", "UNSET_KEY"),
        anthropic("empty", "EMPTY_KEY"),
        anthropic("blank", "BLANK_KEY"),
        anthropic("set", "SET_KEY"),
    ]);
    let resolved = resolved(&config, |var| match var {
        "EMPTY_KEY" => Some(String::new()),
        "BLANK_KEY" => Some("  \n".to_owned()),
        "SET_KEY" => Some("sk-ant-set\n".to_owned()),
        _ => None,
    });
    assert_eq!(names(&resolved.providers), ["set"]);
    assert_eq!(
        resolved.providers[0].key.as_ref().map(Secret::expose),
        Some("sk-ant-set")
    );
    assert_eq!(
        resolved.skipped,
        [
            SkippedProvider {
                name: "unset".to_owned(),
                env_var: "UNSET_KEY".to_owned()
            },
            SkippedProvider {
                name: "empty".to_owned(),
                env_var: "EMPTY_KEY".to_owned()
            },
            SkippedProvider {
                name: "blank".to_owned(),
                env_var: "BLANK_KEY".to_owned()
            },
        ]
    );
}

#[test]
fn disabled_providers_are_kept() {
    let mut off = anthropic("off", "OFF_KEY");
    off.enabled = false;
    let config = with(vec![off, simulated("sim")]);
    let resolved = resolved(&config, |_| Some("k".to_owned()));
    assert_eq!(names(&resolved.providers), ["off", "sim"]);
    assert!(!resolved.providers[0].config.enabled);
}

#[test]
fn providers_without_a_key_variable_are_kept_without_a_key() {
    let mut subscription = provider("subscription", ProviderKind::Anthropic);
    subscription.auth = AuthStyle::Passthrough;
    let config = with(vec![
        subscription,
        compatible("ollama", "http://127.0.0.1:11434"),
        simulated("sim"),
    ]);
    let resolved = resolved(&config, |_| panic!("no variable should be read"));
    assert_eq!(
        names(&resolved.providers),
        ["subscription", "ollama", "sim"]
    );
    assert!(resolved.providers.iter().all(|p| p.key.is_none()));
}

#[test]
fn no_provider_left_is_an_error_naming_each_skipped_variable() {
    let config = with(vec![
        anthropic("anthropic", "ANTHROPIC_API_KEY"),
        anthropic("backup", "BACKUP_KEY"),
    ]);
    let err = match config.resolve(no_env) {
        Err(err) => err,
        Ok(resolved) => panic!("expected no providers, got {resolved:?}"),
    };
    assert!(matches!(&err, ResolveError::NoProviders { skipped } if skipped.len() == 2));
    assert_eq!(
        err.to_string(),
        "no provider is usable, every one was skipped for want of its key: \
         anthropic (ANTHROPIC_API_KEY is unset or empty), backup (BACKUP_KEY is unset or empty)"
    );
}

#[test]
fn no_provider_configured_is_an_error() {
    match with(vec![]).resolve(no_env) {
        Err(err @ ResolveError::NoProviders { .. }) => {
            assert_eq!(err.to_string(), "no provider is configured");
        }
        other => panic!("expected no providers, got {other:?}"),
    }
}

#[test]
fn unset_client_key_variable_is_an_error_naming_it() {
    let mut config = with(vec![simulated("sim")]);
    config.clients.api_key_envs = vec!["RELAY_KEY_A".to_owned(), "RELAY_KEY_B".to_owned()];
    let err = match config.resolve(|var| (var == "RELAY_KEY_A").then(|| "a".to_owned())) {
        Err(err) => err,
        Ok(resolved) => panic!("expected an error, got {resolved:?}"),
    };
    assert_eq!(
        err,
        ResolveError::MissingClientKey {
            index: 1,
            env_var: "RELAY_KEY_B".to_owned()
        }
    );
    assert!(err.to_string().contains("RELAY_KEY_B"), "{err}");
}

#[test]
fn the_admin_key_is_read_and_an_unset_one_is_an_error_naming_it() {
    let mut config = with(vec![simulated("sim")]);
    assert_eq!(resolved(&config, no_env).admin_key, None);
    config.clients.admin_key_env = Some("ADMIN_KEY".to_owned());
    let resolved = resolved(&config, |var| Some(format!(" value-of-{var} ")));
    assert_eq!(
        resolved.admin_key.as_ref().map(Secret::expose),
        Some("value-of-ADMIN_KEY")
    );
    let err = match config.resolve(|_| Some(String::new())) {
        Err(err) => err,
        Ok(resolved) => panic!("expected an error, got {resolved:?}"),
    };
    assert_eq!(
        err,
        ResolveError::MissingAdminKey {
            env_var: "ADMIN_KEY".to_owned()
        }
    );
    assert!(err.to_string().contains("clients.admin_key_env"), "{err}");
}

#[test]
fn client_keys_are_read_in_order() {
    let mut config = with(vec![simulated("sim")]);
    config.clients.api_key_envs = vec!["RELAY_KEY_A".to_owned(), "RELAY_KEY_B".to_owned()];
    let resolved = resolved(&config, |var| Some(format!("value-of-{var}")));
    let keys: Vec<&str> = resolved.client_keys.iter().map(Secret::expose).collect();
    assert_eq!(keys, ["value-of-RELAY_KEY_A", "value-of-RELAY_KEY_B"]);
}

#[test]
fn runtime_config_keeps_provider_order_and_copies_the_runtime_sections() {
    let mut config = parse(EXAMPLE, &[("RELAYRACE__ROUTING__STRATEGY", "shuffle")]);
    config.health.failure_threshold = 2;
    let resolved = resolved(&config, no_env);
    let runtime = config.runtime_config(&resolved.providers);
    let settings: Vec<(&str, u32, u32, bool)> = runtime
        .providers
        .iter()
        .map(|p| (p.name.as_str(), p.priority, p.weight, p.enabled))
        .collect();
    assert_eq!(
        settings,
        [
            ("ollama", 4, 1, false),
            ("sim-flaky", 5, 1, true),
            ("sim-steady", 6, 1, true),
        ]
    );
    assert_eq!(runtime.routing, config.routing);
    assert_eq!(runtime.routing.strategy, StrategyKind::Shuffle);
    assert_eq!(runtime.health.failure_threshold, 2);
    assert_eq!(runtime.supervision, config.supervision);
    assert!(runtime.validate().is_empty());
}

#[test]
fn resolved_providers_carry_their_base_url_defaulted_and_checked() {
    let config = with(vec![
        anthropic("anthropic", "ANTHROPIC_API_KEY"),
        compatible("zai", "https://api.z.ai/api/anthropic"),
        simulated("sim"),
    ]);
    let resolved = resolved(&config, |_| Some("k".to_owned()));
    let urls: Vec<Option<&str>> = resolved
        .providers
        .iter()
        .map(|p| p.base_url.as_ref().map(url::Url::as_str))
        .collect();
    assert_eq!(
        urls,
        [
            Some("https://api.anthropic.com/"),
            Some("https://api.z.ai/api/anthropic"),
            None
        ]
    );
    // Parsed from ANTHROPIC_BASE_URL: the default and the constant say the same.
    assert_eq!(
        url(ANTHROPIC_BASE_URL).as_str(),
        "https://api.anthropic.com/"
    );
}

#[test]
fn a_base_url_validation_refuses_is_refused_by_resolution_with_the_same_error() {
    for config in [
        with(vec![
            simulated("sim"),
            compatible("ftp", "ftp://example.com/anthropic"),
        ]),
        with(vec![provider("zai", ProviderKind::AnthropicCompatible)]),
    ] {
        let validation = config.validate();
        assert_eq!(validation.len(), 1, "{validation:?}");
        match config.resolve(no_env) {
            Err(ResolveError::Invalid(error)) => {
                assert_eq!(error, validation[0]);
                assert_eq!(error.to_string(), validation[0].to_string());
            }
            other => panic!("expected the base URL refused, got {other:?}"),
        }
    }
}

#[test]
fn every_checked_base_url_can_be_a_base() {
    for text in ["http:example.com", "https://h", "http://[::1]:8080/a/b?q#f"] {
        let mut zai = compatible("zai", "https://api.z.ai");
        zai.base_url = Some(url(text));
        let checked = zai.checked_base_url();
        assert!(
            matches!(&checked, Ok(Some(url)) if !url.cannot_be_a_base()),
            "{text}: {checked:?}"
        );
    }
}

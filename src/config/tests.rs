//! Tests of the configuration; shared builders here, one module per stage.

use relayrace_actors::StrategyKind;

use super::*;

mod describe;
mod example;
mod load;
mod props;
mod resolve;
mod validate;

const EXAMPLE: &str = include_str!("../../config.example.yaml");

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(var, value)| ((*var).to_owned(), (*value).to_owned()))
        .collect()
}

fn parse(yaml: &str, vars: &[(&str, &str)]) -> Config {
    match load_from(yaml, env(vars)) {
        Ok(config) => config,
        Err(err) => panic!("expected the config to load, got: {err}"),
    }
}

/// The path and reason of a load that must fail on a setting.
fn rejected(yaml: &str, vars: &[(&str, &str)]) -> (String, String) {
    match load_from(yaml, env(vars)) {
        Ok(config) => panic!("expected an error, loaded: {config:?}"),
        Err(ConfigLoadError::Invalid { path, reason }) => (path, reason),
        Err(other) => panic!("expected an invalid setting, got: {other:?}"),
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn resolved(config: &Config, env: impl Fn(&str) -> Option<String>) -> Resolved {
    match config.resolve(env) {
        Ok(resolved) => resolved,
        Err(err) => panic!("expected the keys to resolve, got: {err}"),
    }
}

fn url(text: &str) -> url::Url {
    match url::Url::parse(text) {
        Ok(url) => url,
        Err(err) => panic!("bad test URL {text}: {err}"),
    }
}

fn provider(name: &str, kind: ProviderKind) -> ProviderConfig {
    ProviderConfig {
        name: name.to_owned(),
        kind,
        base_url: None,
        api_key_env: None,
        auth: AuthStyle::XApiKey,
        priority: 1,
        weight: 1,
        enabled: true,
        models: Vec::new(),
        model_mapping: BTreeMap::new(),
        max_concurrent_attempts: None,
        timeouts: TimeoutsConfig::default(),
        hedge: Default::default(),
        region: None,
        project: None,
        simulated: None,
    }
}

fn anthropic(name: &str, key_var: &str) -> ProviderConfig {
    ProviderConfig {
        api_key_env: Some(key_var.to_owned()),
        ..provider(name, ProviderKind::Anthropic)
    }
}

fn compatible(name: &str, base_url: &str) -> ProviderConfig {
    ProviderConfig {
        base_url: Some(url(base_url)),
        ..provider(name, ProviderKind::AnthropicCompatible)
    }
}

fn simulated(name: &str) -> ProviderConfig {
    ProviderConfig {
        simulated: Some(SimulatedConfig::default()),
        ..provider(name, ProviderKind::Simulated)
    }
}

fn with(providers: Vec<ProviderConfig>) -> Config {
    Config {
        providers,
        ..Config::default()
    }
}

/// `(path, reason)` of every validation error.
fn problems(config: &Config) -> Vec<(String, String)> {
    config
        .validate()
        .into_iter()
        .map(|err| (err.path, err.reason))
        .collect()
}

fn paths(config: &Config) -> Vec<String> {
    problems(config).into_iter().map(|(path, _)| path).collect()
}

fn names(providers: &[ResolvedProvider]) -> Vec<&str> {
    providers.iter().map(|p| p.config.name.as_str()).collect()
}

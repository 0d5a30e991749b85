//! Resolution: reading the keys the configuration names from the environment, and building the
//! runtime's configuration from the providers that remain.

use std::fmt;

use relayrace_actors::{ConfigError, ProviderSettings, RuntimeConfig};

use super::cloud::{self, CloudProblem, Sources};
use super::{Config, ProviderConfig, ProviderKind, ResolvedProvider, Secret};

/// The configuration with its keys read: what the relay starts with.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The usable providers, in configured order (disabled ones included: they can be enabled
    /// at run time).
    pub providers: Vec<ResolvedProvider>,
    /// Providers left out because their key variable is unset or empty, in configured order.
    pub skipped: Vec<SkippedProvider>,
    /// The accepted client keys, one per `clients.api_key_envs` entry; empty means no client
    /// authentication.
    pub client_keys: Vec<Secret>,
    /// The operator key from `clients.admin_key_env`, when one is configured.
    pub admin_key: Option<Secret>,
}

/// A provider left out because its key variable is unset or empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedProvider {
    /// The provider's name.
    pub name: String,
    /// The variable that was unset or empty.
    pub env_var: String,
}

impl fmt::Display for SkippedProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} is unset or empty)", self.name, self.env_var)
    }
}

/// The keys the configuration names could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// Every provider was skipped (or none is configured).
    #[error("{}", no_providers_message(.skipped))]
    NoProviders {
        /// The providers skipped, each with its variable.
        skipped: Vec<SkippedProvider>,
    },
    /// A client key variable is unset or empty: the relay would otherwise run without the
    /// authentication the operator asked for.
    #[error(
        "client key variable {env_var} (clients.api_key_envs[{index}]) is unset or empty; \
         set it, or remove it from clients.api_key_envs"
    )]
    MissingClientKey {
        /// Its index in `clients.api_key_envs`.
        index: usize,
        /// The variable.
        env_var: String,
    },
    /// The operator key variable is unset or empty: the operator endpoints would otherwise be
    /// open when a key was asked for.
    #[error(
        "admin key variable {env_var} (clients.admin_key_env) is unset or empty; set it, or \
         remove clients.admin_key_env"
    )]
    MissingAdminKey {
        /// The variable.
        env_var: String,
    },
    /// A setting [`Config::validate`] refuses (the configuration was not validated first).
    #[error(transparent)]
    Invalid(ConfigError),
}

fn no_providers_message(skipped: &[SkippedProvider]) -> String {
    if skipped.is_empty() {
        return "no provider is configured".to_owned();
    }
    let list: Vec<String> = skipped.iter().map(ToString::to_string).collect();
    format!(
        "no provider is usable, every one was skipped for want of its key: {}",
        list.join(", ")
    )
}

impl Config {
    /// Reads the keys this configuration names through `env` (`std::env::var(..).ok()` in
    /// production). A provider whose key variable is unset or empty is skipped (the caller warns,
    /// naming the variable); a provider with no `api_key_env` is kept without a key. Leading and
    /// trailing whitespace of a key is dropped.
    ///
    /// Expects a configuration that [`Config::validate`] accepted. Each provider kept gets its
    /// base URL checked and defaulted ([`ProviderConfig::checked_base_url`]), so nothing after
    /// this meets an invalid one.
    ///
    /// # Errors
    ///
    /// [`ResolveError::MissingClientKey`] when a `clients.api_key_envs` variable is unset or
    /// empty; [`ResolveError::MissingAdminKey`] when the `clients.admin_key_env` variable is;
    /// [`ResolveError::NoProviders`] when no provider is left; [`ResolveError::Invalid`] when a
    /// kept provider's base URL is one validation refuses.
    pub fn resolve(&self, env: impl Fn(&str) -> Option<String>) -> Result<Resolved, ResolveError> {
        self.resolve_with(env, read_file)
    }

    /// [`Config::resolve`], with the files a cloud provider's credentials live in read through
    /// `read_file` (`Ok(None)`: no such file).
    ///
    /// # Errors
    ///
    /// As [`Config::resolve`]; also [`ResolveError::Invalid`] for a cloud provider whose
    /// credentials are named but unusable or whose region is unknown.
    pub fn resolve_with(
        &self,
        env: impl Fn(&str) -> Option<String>,
        read_file: impl Fn(&str) -> Result<Option<String>, String>,
    ) -> Result<Resolved, ResolveError> {
        let sources = Sources {
            env: &env,
            read: &read_file,
        };
        let read = |var: &str| {
            env(var)
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
                .map(Secret::new)
        };
        let mut client_keys = Vec::with_capacity(self.clients.api_key_envs.len());
        for (index, var) in self.clients.api_key_envs.iter().enumerate() {
            let key = read(var).ok_or_else(|| ResolveError::MissingClientKey {
                index,
                env_var: var.clone(),
            })?;
            client_keys.push(key);
        }
        let admin_key = match &self.clients.admin_key_env {
            Some(var) => Some(read(var).ok_or_else(|| ResolveError::MissingAdminKey {
                env_var: var.clone(),
            })?),
            None => None,
        };
        let mut providers = Vec::new();
        let mut skipped = Vec::new();
        for (i, provider) in self.providers.iter().enumerate() {
            let var = provider
                .api_key_env
                .as_deref()
                .filter(|_| provider.uses_key());
            let key = var.map(read);
            match (var, key) {
                (Some(var), Some(None)) => skipped.push(SkippedProvider {
                    name: provider.name.clone(),
                    env_var: var.to_owned(),
                }),
                (_, key) => {
                    let key = key.flatten();
                    let cloud = match cloud::resolve(provider, key.as_ref(), &sources) {
                        Ok(cloud) => cloud,
                        Err(CloudProblem::Missing { hint }) => {
                            skipped.push(SkippedProvider {
                                name: provider.name.clone(),
                                env_var: hint.to_owned(),
                            });
                            continue;
                        }
                        Err(CloudProblem::Invalid { field, reason }) => {
                            return Err(ResolveError::Invalid(ConfigError::new(
                                format!("providers[{i}].{field}"),
                                reason,
                            )));
                        }
                    };
                    let base_url = match (base_url_of(provider, i)?, &cloud) {
                        (None, Some(cloud)) => Some(cloud_base_url(provider, &cloud.region, i)?),
                        (base_url, _) => base_url,
                    };
                    providers.push(ResolvedProvider {
                        config: provider.clone(),
                        base_url,
                        key,
                        cloud,
                    });
                }
            }
        }
        if providers.is_empty() {
            return Err(ResolveError::NoProviders { skipped });
        }
        Ok(Resolved {
            providers,
            skipped,
            client_keys,
            admin_key,
        })
    }

    /// The runtime's configuration for `providers` (in this order), with this configuration's
    /// routing, health and supervision.
    pub fn runtime_config(&self, providers: &[ResolvedProvider]) -> RuntimeConfig {
        self.runtime_config_of(providers.iter().map(|p| p.config.settings()).collect())
    }

    /// The runtime's config over `providers`. A `routing.model_order` rule keeps only the
    /// providers among them (a provider skipped for want of its key drops out of the rules
    /// that name it; a rule left with none is dropped).
    pub(super) fn runtime_config_of(&self, providers: Vec<ProviderSettings>) -> RuntimeConfig {
        let mut routing = self.routing.clone();
        let configured = |name: &String| providers.iter().any(|p| &p.name == name);
        // Validation passes every configured provider: then the rules stay as written, so that
        // a name that is not configured at all is reported.
        let all_configured = self.providers.len() == providers.len();
        if !all_configured {
            for rule in &mut routing.model_order {
                rule.providers.retain(configured);
            }
            routing
                .model_order
                .retain(|rule| !rule.providers.is_empty());
        }
        RuntimeConfig {
            providers,
            routing,
            health: self.health.clone(),
            supervision: self.supervision.clone(),
        }
    }
}

/// The default base URL of a cloud provider in `region`: Bedrock's runtime endpoint, Vertex's
/// regional one (its global one for `global`).
fn cloud_base_url(
    provider: &ProviderConfig,
    region: &str,
    index: usize,
) -> Result<url::Url, ResolveError> {
    let text = match (provider.kind, region) {
        (ProviderKind::Vertex, "global") => "https://aiplatform.googleapis.com".to_owned(),
        (ProviderKind::Vertex, region) => format!("https://{region}-aiplatform.googleapis.com"),
        (_, region) => format!("https://bedrock-runtime.{region}.amazonaws.com"),
    };
    url::Url::parse(&text).map_err(|_| {
        ResolveError::Invalid(ConfigError::new(
            format!("providers[{index}].region"),
            "does not make a valid endpoint URL",
        ))
    })
}

/// A file's contents; `Ok(None)` when it does not exist.
fn read_file(path: &str) -> Result<Option<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error.to_string()),
    }
}

/// The checked base URL of `provider`, the `index`th: an error names its path as validation
/// does.
fn base_url_of(provider: &ProviderConfig, index: usize) -> Result<Option<url::Url>, ResolveError> {
    provider.checked_base_url().map_err(|reason| {
        ResolveError::Invalid(ConfigError::new(
            format!("providers[{index}].base_url"),
            reason,
        ))
    })
}

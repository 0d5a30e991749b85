//! The credentials of the cloud provider types, `bedrock` and `vertex`, found the way the
//! clouds' own tools find them (read at resolution, like the keys of the other providers), and
//! the model names they are sent by default.
//!
//! - `bedrock`: a Bedrock API key when `api_key_env` names one (sent as a bearer token), else
//!   AWS access keys, signed with SigV4: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
//!   `AWS_SESSION_TOKEN`, then the profile `AWS_PROFILE` (default `default`) of the shared
//!   credentials and config files (`AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`, default
//!   `~/.aws/credentials` and `~/.aws/config`). The region: `region`, else `AWS_REGION`,
//!   `AWS_DEFAULT_REGION`, the profile's `region`.
//! - `vertex`: Application Default Credentials: the JSON file `GOOGLE_APPLICATION_CREDENTIALS`
//!   names (a service account key or an authorized user), else gcloud's ADC file
//!   (`$CLOUDSDK_CONFIG` or `~/.config/gcloud`, `application_default_credentials.json`), else
//!   the metadata server (`GCE_METADATA_HOST`, default `metadata.google.internal`).

mod aws;
mod google;

use std::collections::BTreeMap;

pub use aws::AwsKeys;
pub use google::{AuthorizedUser, ServiceAccount};

use super::{ProviderConfig, ProviderKind, Secret};

/// A cloud provider's region and credentials, as resolved.
#[derive(Clone, Debug)]
pub struct CloudAccess {
    /// The region in force (Bedrock's may come from the environment or the profile).
    pub region: String,
    /// The credentials.
    pub credentials: CloudCredentials,
}

/// Where a cloud provider's credentials came from, and what they are. `Debug` shows no secret.
#[derive(Clone, Debug)]
pub enum CloudCredentials {
    /// AWS access keys, for SigV4.
    AwsKeys {
        /// The keys.
        keys: AwsKeys,
        /// Where they were found, e.g. `environment` or `profile default of ~/.aws/credentials`.
        source: String,
    },
    /// A Bedrock API key, sent as `authorization: Bearer`.
    BedrockApiKey {
        /// The key.
        key: Secret,
        /// The variable it came from.
        env_var: String,
    },
    /// A Google service account key, exchanged for access tokens at its `token_uri`.
    ServiceAccount {
        /// The key.
        account: ServiceAccount,
        /// The file it was read from, and which variable or default named it.
        source: String,
    },
    /// A Google authorized user (gcloud's `application-default login`): a refresh token.
    AuthorizedUser {
        /// The user's client and refresh token.
        user: AuthorizedUser,
        /// The file it was read from.
        source: String,
    },
    /// The metadata server of the machine (Compute Engine, GKE, Cloud Run).
    Metadata {
        /// Its host (and port).
        host: String,
    },
}

/// Why a cloud provider cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum CloudProblem {
    /// No credentials were found: the provider is skipped; `hint` names the variable to set.
    Missing {
        /// The variable to set.
        hint: &'static str,
    },
    /// Credentials were named but are unusable (a file unreadable, a region missing).
    Invalid {
        /// The field the problem is reported at (`region`, `credentials`).
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Reads environment variables and files: `std::env::var` and `std::fs` in production.
pub(super) struct Sources<'a> {
    /// A variable's value (empty counts as unset).
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// A file's contents, `None` when it does not exist.
    pub read: &'a dyn Fn(&str) -> Result<Option<String>, String>,
}

impl Sources<'_> {
    fn var(&self, name: &str) -> Option<String> {
        (self.env)(name)
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    }

    /// `$HOME/rest`, when `HOME` is set.
    fn home(&self, rest: &str) -> Option<String> {
        Some(format!(
            "{}/{rest}",
            self.var("HOME")?.trim_end_matches('/')
        ))
    }
}

/// The access of a `bedrock` or `vertex` provider (`key` is its `api_key_env` key, if any);
/// `Ok(None)` for the other kinds.
pub(super) fn resolve(
    provider: &ProviderConfig,
    key: Option<&Secret>,
    sources: &Sources<'_>,
) -> Result<Option<CloudAccess>, CloudProblem> {
    match provider.kind {
        ProviderKind::Bedrock => aws::resolve(provider, key, sources).map(Some),
        ProviderKind::Vertex => google::resolve(provider, sources).map(Some),
        _ => Ok(None),
    }
}

impl CloudCredentials {
    /// Where the credentials came from, masked: e.g. `aws keys from environment (access key
    /// AKIA… 20 chars, session token set)`.
    pub fn describe(&self) -> String {
        match self {
            CloudCredentials::AwsKeys { keys, source } => format!(
                "aws keys from {source} (access key {}, session token {})",
                masked(&keys.access_key_id),
                if keys.session_token.is_some() {
                    "set"
                } else {
                    "none"
                }
            ),
            CloudCredentials::BedrockApiKey { key, env_var } => {
                format!("bedrock api key {env_var} {}", masked(key))
            }
            CloudCredentials::ServiceAccount { account, source } => {
                format!("service account {} from {source}", account.client_email)
            }
            CloudCredentials::AuthorizedUser { source, .. } => {
                format!("authorized user (gcloud) from {source}")
            }
            CloudCredentials::Metadata { host } => {
                format!("metadata server {host} (no credentials file found)")
            }
        }
    }
}

/// `AKIA… 20 chars`: at most the first four characters of a long value, and its length.
fn masked(secret: &Secret) -> String {
    let value = secret.expose();
    let chars = value.chars().count();
    if chars < 16 {
        return format!("set ({chars} chars)");
    }
    let head: String = value.chars().take(4).collect();
    format!("{head}… ({chars} chars)")
}

/// The `model_mapping` a `bedrock` or `vertex` provider uses when it configures none: the
/// current Claude models, from the Claude API's names (and their dated snapshots) to the
/// cloud's ids. Bedrock's are `global.` cross-region inference profiles (Claude 4 and later
/// have no on-demand throughput without a profile). `None` for the other kinds.
pub fn default_model_mapping(kind: ProviderKind) -> Option<BTreeMap<String, String>> {
    let pairs: &[(&str, &str)] = match kind {
        ProviderKind::Bedrock => &[
            ("claude-opus-4-8", "global.anthropic.claude-opus-4-8"),
            ("claude-opus-4-7", "global.anthropic.claude-opus-4-7"),
            ("claude-opus-4-6", "global.anthropic.claude-opus-4-6-v1"),
            ("claude-sonnet-4-6", "global.anthropic.claude-sonnet-4-6"),
            (
                "claude-opus-4-5*",
                "global.anthropic.claude-opus-4-5-20251101-v1:0",
            ),
            (
                "claude-sonnet-4-5*",
                "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
            ),
            (
                "claude-haiku-4-5*",
                "global.anthropic.claude-haiku-4-5-20251001-v1:0",
            ),
        ],
        ProviderKind::Vertex => &[
            ("claude-opus-4-8", "claude-opus-4-8"),
            ("claude-opus-4-7", "claude-opus-4-7"),
            ("claude-opus-4-6", "claude-opus-4-6"),
            ("claude-sonnet-4-6", "claude-sonnet-4-6"),
            ("claude-opus-4-5*", "claude-opus-4-5@20251101"),
            ("claude-sonnet-4-5*", "claude-sonnet-4-5@20250929"),
            ("claude-haiku-4-5*", "claude-haiku-4-5@20251001"),
        ],
        _ => return None,
    };
    Some(
        pairs
            .iter()
            .map(|(from, to)| ((*from).to_owned(), (*to).to_owned()))
            .collect(),
    )
}

#[cfg(test)]
mod tests;

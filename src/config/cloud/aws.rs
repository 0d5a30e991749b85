//! Bedrock's credentials: a Bedrock API key, or AWS access keys from the environment or the
//! shared credentials and config files; and its region.

use super::{CloudAccess, CloudCredentials, CloudProblem, Sources};
use crate::config::{ProviderConfig, Secret};

/// AWS access keys. `Debug` shows none of them.
#[derive(Clone, Debug)]
pub struct AwsKeys {
    /// `aws_access_key_id`.
    pub access_key_id: Secret,
    /// `aws_secret_access_key`.
    pub secret_access_key: Secret,
    /// `aws_session_token`, for temporary credentials.
    pub session_token: Option<Secret>,
}

/// The region and credentials of a `bedrock` provider.
pub(super) fn resolve(
    provider: &ProviderConfig,
    key: Option<&Secret>,
    sources: &Sources<'_>,
) -> Result<CloudAccess, CloudProblem> {
    let profile = sources
        .var("AWS_PROFILE")
        .unwrap_or_else(|| "default".to_owned());
    let config_file = sources
        .var("AWS_CONFIG_FILE")
        .or_else(|| sources.home(".aws/config"));
    let config = read_ini(sources, config_file.as_deref())?;
    let config_section = if profile == "default" {
        "default".to_owned()
    } else {
        format!("profile {profile}")
    };
    let profile_config = section(config.as_deref(), &config_section);
    let region = provider
        .region
        .clone()
        .or_else(|| sources.var("AWS_REGION"))
        .or_else(|| sources.var("AWS_DEFAULT_REGION"))
        .or_else(|| value(&profile_config, "region"))
        .ok_or_else(|| CloudProblem::Invalid {
            field: "region",
            reason: "required for type bedrock (or set AWS_REGION)".to_owned(),
        })?;
    let credentials = match (key, &provider.api_key_env) {
        (Some(key), Some(env_var)) => CloudCredentials::BedrockApiKey {
            key: key.clone(),
            env_var: env_var.clone(),
        },
        _ => keys(
            sources,
            &profile,
            credentials_file(sources),
            &profile_config,
        )?,
    };
    Ok(CloudAccess {
        region,
        credentials,
    })
}

fn credentials_file(sources: &Sources<'_>) -> Option<String> {
    sources
        .var("AWS_SHARED_CREDENTIALS_FILE")
        .or_else(|| sources.home(".aws/credentials"))
}

/// Access keys: the environment's, then the profile's in the credentials file, then in the
/// config file.
fn keys(
    sources: &Sources<'_>,
    profile: &str,
    credentials_path: Option<String>,
    profile_config: &[(String, String)],
) -> Result<CloudCredentials, CloudProblem> {
    if let (Some(id), Some(secret)) = (
        sources.var("AWS_ACCESS_KEY_ID"),
        sources.var("AWS_SECRET_ACCESS_KEY"),
    ) {
        return Ok(CloudCredentials::AwsKeys {
            keys: AwsKeys {
                access_key_id: Secret::new(id),
                secret_access_key: Secret::new(secret),
                session_token: sources.var("AWS_SESSION_TOKEN").map(Secret::new),
            },
            source: "environment (AWS_ACCESS_KEY_ID)".to_owned(),
        });
    }
    let credentials = read_ini(sources, credentials_path.as_deref())?;
    let from_credentials = section(credentials.as_deref(), profile);
    for (entries, path) in [
        (&from_credentials[..], credentials_path.as_deref()),
        (profile_config, None),
    ] {
        if let (Some(id), Some(secret)) = (
            value(entries, "aws_access_key_id"),
            value(entries, "aws_secret_access_key"),
        ) {
            let file = path.map_or("the config file".to_owned(), str::to_owned);
            return Ok(CloudCredentials::AwsKeys {
                keys: AwsKeys {
                    access_key_id: Secret::new(id),
                    secret_access_key: Secret::new(secret),
                    session_token: value(entries, "aws_session_token").map(Secret::new),
                },
                source: format!("profile {profile} of {file}"),
            });
        }
    }
    Err(CloudProblem::Missing {
        hint: "AWS_ACCESS_KEY_ID",
    })
}

fn read_ini(sources: &Sources<'_>, path: Option<&str>) -> Result<Option<String>, CloudProblem> {
    let Some(path) = path else {
        return Ok(None);
    };
    (sources.read)(path).map_err(|reason| CloudProblem::Invalid {
        field: "credentials",
        reason: format!("cannot read {path}: {reason}"),
    })
}

/// The `key = value` entries of `[name]` in an INI text (`#` and `;` start comments).
fn section(text: Option<&str>, name: &str) -> Vec<(String, String)> {
    let mut entries = Vec::new();
    let mut inside = false;
    for line in text.unwrap_or_default().lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = header.trim() == name;
            continue;
        }
        match line.split_once('=') {
            Some((key, value)) if inside => {
                entries.push((key.trim().to_owned(), value.trim().to_owned()));
            }
            _ => {}
        }
    }
    entries
}

fn value(entries: &[(String, String)], key: &str) -> Option<String> {
    entries
        .iter()
        .find(|(k, v)| k == key && !v.is_empty())
        .map(|(_, v)| v.clone())
}

//! Reading the configuration: the YAML file, then `RELAYRACE__…` environment overrides, then
//! deserialization that names the path of whatever it rejects.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use config::{File, FileFormat};

use super::Config;
use super::overrides::Overrides;

/// The configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigLoadError {
    /// The file could not be read.
    #[error("cannot read config file `{path}`")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The file is not YAML, or its top level is not a map.
    #[error("cannot parse the YAML: {0}")]
    Yaml(config::ConfigError),
    /// A setting has an unknown name, a value of the wrong type, or is missing.
    #[error("{path}: {reason}")]
    Invalid {
        /// Path of the setting, e.g. `providers[2].base_url`.
        path: String,
        /// Why it is rejected (and, when it came from the environment, which variable set it).
        reason: String,
    },
}

/// Loads the file at `path`, then applies the process's `RELAYRACE__…` variables. Performs no
/// validation: call [`Config::validate`] next.
///
/// # Errors
///
/// As [`load_from`], and [`ConfigLoadError::Read`] when the file cannot be read.
pub fn load(path: &Path) -> Result<Config, ConfigLoadError> {
    let yaml = std::fs::read_to_string(path).map_err(|source| ConfigLoadError::Read {
        path: path.to_owned(),
        source,
    })?;
    let env = std::env::vars_os().filter_map(|(var, value)| unicode_pair(var, value));
    load_from(&yaml, env)
}

/// Parses `yaml`, then applies the `RELAYRACE__…` overrides found in `env` (other variables are
/// ignored; see `config.example.yaml` for their syntax). Performs no validation: call
/// [`Config::validate`] next.
///
/// # Errors
///
/// [`ConfigLoadError::Yaml`] when `yaml` is not a YAML map; [`ConfigLoadError::Invalid`],
/// naming the path, for an unknown field, a value of the wrong type, a missing required field or
/// a malformed override (the reason then names the variable).
pub fn load_from(
    yaml: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigLoadError> {
    let file = config::Config::builder()
        .add_source(File::from_str(yaml, FileFormat::Yaml))
        .build()
        .map_err(ConfigLoadError::Yaml)?;
    let overrides = Overrides::from_env(env);
    check_overrides(&file, &overrides)?;
    let mut builder = config::Config::builder()
        .add_source(file)
        .add_source(overrides.scalars());
    for list in overrides.lists() {
        builder = builder
            .set_override(&list.path, list.items())
            .map_err(|err| invalid(&list.path, &err.to_string(), &overrides))?;
    }
    let merged = builder
        .build()
        .map_err(|err| invalid("", &err.to_string(), &overrides))?;
    serde_path_to_error::deserialize(merged).map_err(|err| {
        let path = err.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let (path, reason) = explain(path, err.into_inner());
        invalid(&path, &reason, &overrides)
    })
}

/// An override's levels must be plain names, and it may only index list items the file defines
/// (`RELAYRACE__PROVIDERS__2__…` needs a third provider): `config` would pad the list with empty
/// items.
fn check_overrides(file: &config::Config, overrides: &Overrides) -> Result<(), ConfigLoadError> {
    for o in overrides.iter() {
        if !o.is_well_formed() {
            return Err(ConfigLoadError::Invalid {
                path: o.path.clone(),
                reason: format!("{} does not name a setting", o.var),
            });
        }
        for (list, index) in o.indices() {
            let len = file.get_array(list).map_or(0, |items| items.len());
            if index >= len {
                return Err(ConfigLoadError::Invalid {
                    path: o.path.clone(),
                    reason: format!(
                        "set by {}, but the file defines {len} item(s) in `{list}`",
                        o.var
                    ),
                });
            }
        }
    }
    Ok(())
}

/// The path and reason of a deserialization error, without the `config` crate's own (less
/// precise) key and origin decorations.
fn explain(path: String, err: config::ConfigError) -> (String, String) {
    match err {
        config::ConfigError::Type {
            unexpected,
            expected,
            ..
        } => (
            path,
            format!("invalid type: {unexpected}, expected {expected}"),
        ),
        config::ConfigError::At { error, .. } => explain(path, *error),
        config::ConfigError::NotFound(key) => {
            // `key` is `config`'s rendering of the path; its last level is the missing field.
            let field = key.rsplit(['.', ']']).next().unwrap_or_default();
            let path = if path.is_empty() {
                field.to_owned()
            } else {
                format!("{path}.{field}")
            };
            (path, "missing required field".to_owned())
        }
        other => (path, other.to_string()),
    }
}

/// An [`ConfigLoadError::Invalid`], naming the variable when an override set the value.
fn invalid(path: &str, reason: &str, overrides: &Overrides) -> ConfigLoadError {
    let reason = match overrides.touching(path).filter(|_| !path.is_empty()) {
        Some(o) => format!("{reason} (set by {})", o.var),
        None => reason.to_owned(),
    };
    ConfigLoadError::Invalid {
        path: if path.is_empty() {
            "(root)".to_owned()
        } else {
            path.to_owned()
        },
        reason,
    }
}

fn unicode_pair(var: OsString, value: OsString) -> Option<(String, String)> {
    Some((var.into_string().ok()?, value.into_string().ok()?))
}

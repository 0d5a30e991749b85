//! `RELAYRACE__…` environment variables, each translated to the setting it overrides.
//!
//! `RELAYRACE__SERVER__LISTEN` sets `server.listen`; a numeric level indexes a list, so
//! `RELAYRACE__PROVIDERS__2__ENABLED` sets `providers[2].enabled` (the file must define that
//! provider). The lists `routing.trigger_statuses`, `clients.api_key_envs` and a provider's
//! `models` take comma-separated values (`RELAYRACE__ROUTING__TRIGGER_STATUSES=429,529`).

use config::Environment;

/// Prefix of the environment variables that override the file (`RELAYRACE__SERVER__LISTEN`).
pub const ENV_PREFIX: &str = "RELAYRACE";

/// Separator between the prefix and the levels of a key in an override variable.
pub const ENV_SEPARATOR: &str = "__";

/// Settings that are lists; their overrides are comma-separated.
const LIST_FIELDS: [&str; 3] = ["trigger_statuses", "api_key_envs", "models"];

/// One override: a variable and the setting it sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Override {
    /// The variable, as spelled in the environment.
    pub var: String,
    /// The setting, e.g. `providers[2].enabled`.
    pub path: String,
    /// The value, as a string.
    pub value: String,
}

impl Override {
    /// The override `var=value` stands for, if `var` starts with `RELAYRACE__` (in any case).
    fn parse(var: String, value: String) -> Option<Self> {
        let lower = var.to_lowercase();
        let rest = lower.strip_prefix(&format!("{}{ENV_SEPARATOR}", ENV_PREFIX.to_lowercase()))?;
        if rest.is_empty() {
            return None;
        }
        let mut path = String::new();
        for (n, level) in rest.split(ENV_SEPARATOR).enumerate() {
            let is_index = !level.is_empty() && level.bytes().all(|b| b.is_ascii_digit());
            if n > 0 && is_index {
                path.push('[');
                path.push_str(level);
                path.push(']');
            } else {
                if n > 0 {
                    path.push('.');
                }
                path.push_str(level);
            }
        }
        Some(Self { var, path, value })
    }

    /// Whether the path is well formed: plain names (no empty level), indices in brackets.
    pub fn is_well_formed(&self) -> bool {
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '[' | ']');
        self.path.chars().all(plain)
            && !self.path.contains("..")
            && !self.path.starts_with('.')
            && !self.path.ends_with('.')
    }

    /// Whether the setting is a list (its value is comma-separated).
    fn is_list(&self) -> bool {
        let field = self.path.rsplit(['.', ']']).next().unwrap_or_default();
        LIST_FIELDS.contains(&field)
    }

    /// The list items of a list override (an empty value is an empty list).
    pub fn items(&self) -> Vec<String> {
        if self.value.trim().is_empty() {
            return Vec::new();
        }
        self.value
            .split(',')
            .map(|item| item.trim().to_owned())
            .collect()
    }

    /// Each list index in the path, with the path of the list it indexes:
    /// `providers[2].models[0]` gives `(providers, 2)` and `(providers[2].models, 0)`.
    pub fn indices(&self) -> impl Iterator<Item = (&str, usize)> {
        self.path.match_indices('[').filter_map(|(open, _)| {
            let close = open + self.path[open..].find(']')?;
            let index = self.path[open + 1..close].parse().ok()?;
            Some((&self.path[..open], index))
        })
    }

    /// Whether this override set `path` or something within or around it.
    pub fn touches(&self, path: &str) -> bool {
        fn within(inner: &str, outer: &str) -> bool {
            inner == outer
                || inner
                    .strip_prefix(outer)
                    .is_some_and(|rest| rest.starts_with(['.', '[']))
        }
        within(path, &self.path) || within(&self.path, path)
    }
}

/// Every `RELAYRACE__…` override in an environment.
#[derive(Clone, Debug, Default)]
pub(super) struct Overrides(Vec<Override>);

impl Overrides {
    /// The overrides among `env`; other variables are ignored.
    pub fn from_env(env: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut overrides: Vec<Override> = env
            .into_iter()
            .filter_map(|(var, value)| Override::parse(var, value))
            .collect();
        overrides.sort_by(|a, b| a.var.cmp(&b.var));
        Self(overrides)
    }

    /// Every override.
    pub fn iter(&self) -> impl Iterator<Item = &Override> {
        self.0.iter()
    }

    /// The scalar overrides as a `config` source (values that look like numbers or booleans are
    /// typed as such).
    pub fn scalars(&self) -> Environment {
        let vars = self
            .0
            .iter()
            .filter(|o| !o.is_list())
            .map(|o| {
                // Config maps `__` back to `.`; an index stays `[n]`, which it understands.
                let key = o.path.replace('.', ENV_SEPARATOR);
                (format!("{ENV_PREFIX}{ENV_SEPARATOR}{key}"), o.value.clone())
            })
            .collect();
        Environment::with_prefix(ENV_PREFIX)
            .separator(ENV_SEPARATOR)
            .try_parsing(true)
            .source(Some(vars))
    }

    /// The list overrides.
    pub fn lists(&self) -> impl Iterator<Item = &Override> {
        self.0.iter().filter(|o| o.is_list())
    }

    /// The override that set `path` (or something within or around it), if any.
    pub fn touching(&self, path: &str) -> Option<&Override> {
        self.0.iter().find(|o| o.touches(path))
    }
}

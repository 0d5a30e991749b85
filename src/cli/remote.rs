//! The `watch` and `status` commands as the binary runs them: where the relay is, how to get
//! in, and whether standard output is a terminal (colours and in-place redraws) or a pipe.

use std::io::{IsTerminal, Write};

use super::render::Style;
use super::view::WatchView;
use super::{DEFAULT_URL, Target};
use crate::config::Secret;

/// Where the relay is and how to get in.
#[derive(Clone, Debug, clap::Args)]
pub struct Remote {
    /// The relay's base URL (its operator address, when it has its own).
    #[arg(long, default_value = DEFAULT_URL)]
    pub url: String,
    /// The environment variable holding the operator key (see `clients.admin_key_env`).
    #[arg(long)]
    pub admin_key_env: Option<String>,
}

impl Remote {
    /// The relay to ask, with the key read from `admin_key_env`.
    ///
    /// # Errors
    ///
    /// When the key variable is named but unset or empty.
    pub fn target(&self) -> Result<Target, String> {
        let key = match &self.admin_key_env {
            Some(var) => match std::env::var(var) {
                Ok(key) if !key.trim().is_empty() => Some(Secret::new(key.trim())),
                _ => return Err(format!("the admin key variable {var} is unset or empty")),
            },
            None => None,
        };
        Ok(Target::new(&self.url, key))
    }
}

/// `relayrace watch`: the event stream on standard output until the relay ends it.
///
/// # Errors
///
/// A message for the user: the key, the connection, the answer or the output failed.
pub async fn watch(remote: &Remote) -> Result<(), String> {
    let target = remote.target()?;
    let (terminal, style) = terminal();
    let mut out = std::io::stdout().lock();
    super::watch(&target, &mut out, WatchView::new(terminal, style))
        .await
        .map_err(|e| e.to_string())
}

/// `relayrace status`: the providers' table on standard output.
///
/// # Errors
///
/// As [`watch`].
pub async fn status(remote: &Remote) -> Result<(), String> {
    let target = remote.target()?;
    let table = super::status(&target, terminal().1)
        .await
        .map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    out.write_all(table.as_bytes())
        .map_err(|e| format!("cannot write the output: {e}"))
}

/// Colours and in-place redraws only on a terminal, and not when `NO_COLOR` is set.
fn terminal() -> (bool, Style) {
    let terminal = std::io::stdout().is_terminal();
    let color = terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    (terminal, Style { color })
}

//! Installs the tracing subscriber: text by default (see [`line`](mod@line)), JSON on request;
//! `RUST_LOG` wins over the configured filter. Lines go to stderr through a batching writer (see
//! [`batch`]).

pub mod batch;
pub mod line;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LoggingConfig};

pub use batch::FlushGuard;
pub use line::{TextFields, TextLine};

/// Installs the global subscriber (once; later calls do nothing). Keep the guard until the end:
/// dropping it writes the lines still queued. Fails only when the writer thread cannot start.
pub fn init(logging: &LoggingConfig) -> std::io::Result<FlushGuard> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(logging.filter.as_deref().unwrap_or("info")))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (lines, guard) = batch::batched(std::io::stderr())?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        // Colour only for a person at a terminal, never into a log file or collector.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(lines);
    let _ = match logging.format {
        LogFormat::Text => builder
            .event_format(TextLine)
            .fmt_fields(TextFields)
            .try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    Ok(guard)
}

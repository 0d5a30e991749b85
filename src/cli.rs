//! The operator commands: `relayrace status` (a one-shot table from `GET /status`) and
//! `relayrace watch` (the live `GET /v1/relay/events` stream, one line per event). Text comes
//! from the pure functions of [`render`] and [`view`]; this module only talks to the relay, and
//! [`remote`] ties it to the command line and standard output.

pub mod remote;
pub mod render;
pub mod view;

use std::io::Write;
use std::time::SystemTime;

use futures_util::StreamExt;

use crate::config::Secret;
use crate::observe::RelayEvent;
use crate::upstream::sse;
use render::{StatusView, Style};
use view::WatchView;

/// The relay's address when none is given.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8787";

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The relay could not be reached, or the connection broke.
    #[error("cannot reach the relay at {url}: {reason}")]
    Unreachable {
        /// The URL asked.
        url: String,
        /// What the transport said.
        reason: String,
    },
    /// The relay answered with an error.
    #[error("the relay answered {status} for {url}: {message}")]
    Refused {
        /// The URL asked.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The error message of its body, or the body.
        message: String,
    },
    /// The answer was not what the command expected.
    #[error("unexpected answer from {url}: {reason}")]
    Malformed {
        /// The URL asked.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// Writing the output failed.
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

/// A relay to ask: its base URL and, when it wants one, the operator key.
#[derive(Clone, Debug)]
pub struct Target {
    url: String,
    key: Option<Secret>,
    client: reqwest::Client,
}

impl Target {
    /// The relay at `url` (`http://127.0.0.1:8787`), sending `key` when given. A loopback
    /// relay is asked directly, whatever proxy the environment names.
    pub fn new(url: &str, key: Option<Secret>) -> Self {
        let loopback = url::Url::parse(url)
            .ok()
            .is_some_and(|url| match url.host() {
                Some(url::Host::Domain(name)) => name == "localhost",
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            });
        let builder = reqwest::Client::builder();
        let builder = if loopback {
            builder.no_proxy()
        } else {
            builder
        };
        Target {
            url: url.trim_end_matches('/').to_owned(),
            key,
            client: builder.build().unwrap_or_default(),
        }
    }

    async fn get(&self, path: &str) -> Result<reqwest::Response, CliError> {
        let url = format!("{}{path}", self.url);
        let mut request = self.client.get(&url);
        if let Some(key) = &self.key {
            request = request.header("x-api-key", key.expose());
        }
        let response = request.send().await.map_err(|e| CliError::Unreachable {
            url: url.clone(),
            reason: causes(&e),
        })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or(body);
        Err(CliError::Refused {
            url,
            status,
            message,
        })
    }
}

/// `relayrace status`: the relay's `/status` as a table.
pub async fn status(target: &Target, style: Style) -> Result<String, CliError> {
    let response = target.get("/status").await?;
    let malformed = |reason: String| CliError::Malformed {
        url: format!("{}/status", target.url),
        reason,
    };
    let body = response
        .text()
        .await
        .map_err(|e| malformed(e.to_string()))?;
    let view: StatusView = serde_json::from_str(&body).map_err(|e| malformed(e.to_string()))?;
    Ok(render::status_table(&view, SystemTime::now(), style))
}

/// `relayrace watch`: writes the relay's events to `out` as `view` renders them, until the
/// relay ends the stream (it shuts down).
pub async fn watch(
    target: &Target,
    out: &mut impl Write,
    mut view: WatchView,
) -> Result<(), CliError> {
    let response = target.get("/v1/relay/events").await?;
    let mut frames = std::pin::pin!(sse::frames(response.bytes_stream()));
    while let Some(frame) = frames.next().await {
        let frame = frame.map_err(|e| CliError::Unreachable {
            url: format!("{}/v1/relay/events", target.url),
            reason: e.to_string(),
        })?;
        let event = frame
            .event()
            .zip(frame.data())
            .and_then(|(name, data)| RelayEvent::parse(name, data));
        if let Some(event) = event {
            out.write_all(view.apply(&event).as_bytes())?;
            out.flush()?;
        }
    }
    Ok(())
}

/// An error and its causes, `: `-separated (reqwest's own message hides why a request failed).
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let message = inner.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests;

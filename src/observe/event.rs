//! What `GET /v1/relay/events` sends: one SSE frame per [`RelayEvent`], named by its kind, its
//! data one JSON object. The same types parse the stream back for `relayrace watch`.
//!
//! ```text
//! event: snapshot   {"providers":[{"name":"a","state":"healthy","since":"…","consecutive_failures":0}],"at":"…"}
//! event: health     {"provider":"a","from":"healthy","to":"unhealthy","reason":"…","at":"…"}
//! event: failover   {"request_id":"rr_…","model":"m","primary":"a","cause":"503","winner":"b",
//!                    "attempts":[{"provider":"a","outcome":"failed","cause":"503","latency_ms":12},…],
//!                    "duration_ms":40,"at":"…"}
//! event: lagged     {"stream":"health","missed":12}
//! ```
//!
//! Times are RFC 3339 UTC with milliseconds. After a `lagged` health stream a fresh `snapshot`
//! follows, so the watcher's table is right again.

use std::time::SystemTime;

use relayrace_actors::{AttemptRecord, HealthEvent, ProviderSnapshot};
use serde::{Deserialize, Serialize};

/// One event of the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayEvent {
    /// Every provider's current state: the first event, and again after missed health events.
    Snapshot(Snapshot),
    /// A provider changed health state.
    Health(HealthChange),
    /// A request's primary failed and the request failed over.
    Failover(Failover),
    /// The watcher fell behind and missed events.
    Lagged(Lagged),
}

/// Every provider's state at one moment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The providers, in configured order.
    pub providers: Vec<ProviderState>,
    /// When it was taken.
    pub at: String,
}

/// One provider in a [`Snapshot`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderState {
    /// The provider's name.
    pub name: String,
    /// Its health state (`healthy`, `unhealthy`, `half_open`, `cooling_down`, `disabled`,
    /// `failed`).
    pub state: String,
    /// When it entered that state; absent when its actor could not be asked.
    pub since: Option<String>,
    /// Failures since its last success.
    pub consecutive_failures: Option<u32>,
}

/// A health transition of one provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthChange {
    /// The provider.
    pub provider: String,
    /// The state before.
    pub from: String,
    /// The state after.
    pub to: String,
    /// Why, in words.
    pub reason: String,
    /// When.
    pub at: String,
}

/// How a request whose primary failed was answered (or not).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failover {
    /// The request's id (`x-relayrace-request-id`).
    pub request_id: String,
    /// The request's model.
    pub model: String,
    /// The provider tried first.
    pub primary: String,
    /// Why the primary failed: a status code (`529`), `timeout`, `connection` or `other`.
    pub cause: String,
    /// The provider that answered; absent when every attempt failed.
    pub winner: Option<String>,
    /// Every attempt, in the order they started (the primary first).
    pub attempts: Vec<AttemptSummary>,
    /// A warning: the providers that answered they do not serve the model although their
    /// configuration lists it (fix their `models`). Absent when none did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_serving: Vec<String>,
    /// From routing to the winner's commit point (or to the failure).
    pub duration_ms: u64,
    /// When the route ended.
    pub at: String,
}

/// One attempt of a [`Failover`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptSummary {
    /// Who was tried.
    pub provider: String,
    /// `succeeded`, `failed` or `cancelled`.
    pub outcome: String,
    /// Why it failed (as [`Failover::cause`]); absent unless it failed.
    pub cause: Option<String>,
    /// From its start to its end or cancellation.
    pub latency_ms: u64,
}

/// Events a watcher missed because it read too slowly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lagged {
    /// Which stream dropped them: `health` or `failover`.
    pub stream: String,
    /// How many.
    pub missed: u64,
}

impl RelayEvent {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            RelayEvent::Snapshot(_) => "snapshot",
            RelayEvent::Health(_) => "health",
            RelayEvent::Failover(_) => "failover",
            RelayEvent::Lagged(_) => "lagged",
        }
    }

    /// The SSE data: one line of JSON.
    pub fn data(&self) -> String {
        let json = match self {
            RelayEvent::Snapshot(snapshot) => serde_json::to_string(snapshot),
            RelayEvent::Health(change) => serde_json::to_string(change),
            RelayEvent::Failover(failover) => serde_json::to_string(failover),
            RelayEvent::Lagged(lagged) => serde_json::to_string(lagged),
        };
        // Plain structs of strings and numbers always serialize.
        json.unwrap_or_default()
    }

    /// Reads an event back from its SSE name and data; `None` for an unknown name or bad data.
    pub fn parse(name: &str, data: &str) -> Option<Self> {
        let event = match name {
            "snapshot" => RelayEvent::Snapshot(serde_json::from_str(data).ok()?),
            "health" => RelayEvent::Health(serde_json::from_str(data).ok()?),
            "failover" => RelayEvent::Failover(serde_json::from_str(data).ok()?),
            "lagged" => RelayEvent::Lagged(serde_json::from_str(data).ok()?),
            _ => return None,
        };
        Some(event)
    }
}

impl Snapshot {
    /// The snapshot of the runtime's provider table.
    pub fn of(rows: &[ProviderSnapshot]) -> Self {
        let providers = rows
            .iter()
            .map(|row| ProviderState {
                name: row.name.clone(),
                state: row.state.name().to_owned(),
                since: row.status.as_ref().map(|s| rfc3339(s.since)),
                consecutive_failures: row.status.as_ref().map(|s| s.consecutive_failures),
            })
            .collect();
        Snapshot {
            providers,
            at: rfc3339(SystemTime::now()),
        }
    }
}

impl From<&HealthEvent> for HealthChange {
    fn from(event: &HealthEvent) -> Self {
        HealthChange {
            provider: event.provider.name().to_owned(),
            from: event.from.name().to_owned(),
            to: event.to.name().to_owned(),
            reason: event.reason.clone(),
            at: rfc3339(event.at),
        }
    }
}

impl From<&AttemptRecord> for AttemptSummary {
    fn from(record: &AttemptRecord) -> Self {
        AttemptSummary {
            provider: record.provider.name().to_owned(),
            outcome: record.outcome.name().to_owned(),
            cause: record.cause().map(|cause| cause.to_string()),
            latency_ms: millis(record.latency),
        }
    }
}

/// A time as RFC 3339 UTC with milliseconds.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    humantime_serde::re::humantime::format_rfc3339_millis(time).to_string()
}

/// Whole milliseconds, saturating.
pub(crate) fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_reads_back_from_its_name_and_data() {
        let events = [
            RelayEvent::Snapshot(Snapshot {
                providers: vec![ProviderState {
                    name: "a".into(),
                    state: "healthy".into(),
                    since: Some("2026-01-02T03:04:05.006Z".into()),
                    consecutive_failures: Some(0),
                }],
                at: "2026-01-02T03:04:05.006Z".into(),
            }),
            RelayEvent::Health(HealthChange {
                provider: "a".into(),
                from: "healthy".into(),
                to: "unhealthy".into(),
                reason: "5 consecutive failures".into(),
                at: "2026-01-02T03:04:05.006Z".into(),
            }),
            RelayEvent::Failover(Failover {
                request_id: "rr_1".into(),
                model: "m".into(),
                primary: "a".into(),
                cause: "529".into(),
                winner: None,
                attempts: vec![AttemptSummary {
                    provider: "a".into(),
                    outcome: "failed".into(),
                    cause: Some("529".into()),
                    latency_ms: 3,
                }],
                not_serving: vec!["a".into()],
                duration_ms: 4,
                at: "2026-01-02T03:04:05.006Z".into(),
            }),
            RelayEvent::Lagged(Lagged {
                stream: "health".into(),
                missed: 7,
            }),
        ];
        for event in events {
            let data = event.data();
            assert!(!data.contains('\n'), "one line: {data}");
            assert_eq!(RelayEvent::parse(event.name(), &data), Some(event));
        }
    }

    #[test]
    fn unknown_names_and_bad_data_read_as_nothing() {
        assert_eq!(RelayEvent::parse("ping", "{}"), None);
        assert_eq!(RelayEvent::parse("lagged", "{\"missed\":\"x\"}"), None);
    }
}

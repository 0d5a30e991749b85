//! The scenario text: parsing (`FromStr`) and the canonical form (`Display`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use http::{HeaderValue, StatusCode};

use super::{Answer, DEFAULT_WORDS, Ending, ErrorReply, Scenario};

/// Every key the DSL knows, as error messages list them.
const KEYS: &[&str] = &[
    "ok",
    "model_echo",
    "reset",
    "silent",
    "error_event",
    "redirect_to",
    "down_for_ms",
    "fail_first",
    "status",
    "retry_after",
    "message",
    "words",
    "name",
    "headers_delay_ms",
    "first_event_delay_ms",
    "event_delay_ms",
    "cut_after",
    "stall_after",
    "malformed_after",
];
/// Keys written without a value.
const FLAGS: &[&str] = &["ok", "model_echo", "reset", "silent", "error_event"];
/// Keys that pick the kind of scenario; at most one per text.
const KINDS: &[&str] = &[
    "reset",
    "silent",
    "error_event",
    "redirect_to",
    "down_for_ms",
    "fail_first",
];
const ANSWER_KEYS: &[&str] = &[
    "ok",
    "model_echo",
    "words",
    "name",
    "headers_delay_ms",
    "first_event_delay_ms",
    "event_delay_ms",
    "cut_after",
    "stall_after",
    "malformed_after",
];
const ERROR_KEYS: &[&str] = &[
    "status",
    "retry_after",
    "message",
    "headers_delay_ms",
    "name",
];

/// Why a scenario text does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    /// A key the DSL does not know.
    #[error("unknown scenario key `{key}` (valid keys: {valid})", valid = KEYS.join(", "))]
    UnknownKey {
        /// The key as written.
        key: String,
    },
    /// A key that needs a value has none.
    #[error("scenario key `{key}` needs a value (`{key}=...`)")]
    MissingValue {
        /// The key.
        key: &'static str,
    },
    /// A flag was given a value.
    #[error("scenario key `{key}` takes no value")]
    UnexpectedValue {
        /// The key.
        key: &'static str,
    },
    /// A key appears twice.
    #[error("scenario key `{key}` appears twice")]
    Duplicate {
        /// The key.
        key: &'static str,
    },
    /// A value does not parse.
    #[error("invalid value `{value}` for scenario key `{key}`: {reason}")]
    InvalidValue {
        /// The key.
        key: &'static str,
        /// The value as written.
        value: String,
        /// What was expected.
        reason: &'static str,
    },
    /// Two keys that exclude each other.
    #[error("scenario keys `{first}` and `{second}` exclude each other")]
    Conflict {
        /// One key.
        first: &'static str,
        /// The other.
        second: &'static str,
    },
    /// A key that means nothing for this kind of scenario.
    #[error("scenario key `{key}` does not combine with `{kind}`")]
    NotAllowed {
        /// The key.
        key: &'static str,
        /// The key that chose the kind (`ok` for answers).
        kind: &'static str,
    },
}

impl FromStr for Scenario {
    type Err = ScenarioError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let items = Items::parse(text)?;
        let kinds: Vec<&'static str> = KINDS.iter().copied().filter(|k| items.has(k)).collect();
        if let [first, second, ..] = kinds[..] {
            return Err(ScenarioError::Conflict { first, second });
        }
        let kind =
            kinds
                .first()
                .copied()
                .unwrap_or(if items.has("status") { "status" } else { "ok" });
        let composite: Vec<&str> = [kind, "status", "retry_after", "message"]
            .into_iter()
            .chain(ANSWER_KEYS.iter().copied())
            .collect();
        let allowed: &[&str] = match kind {
            "reset" | "error_event" => &[kind, "headers_delay_ms"],
            "silent" | "redirect_to" => &[kind],
            "status" => ERROR_KEYS,
            "ok" => ANSWER_KEYS,
            _ => &composite,
        };
        if let Some(key) = items.keys().find(|key| !allowed.contains(key)) {
            return Err(ScenarioError::NotAllowed { key, kind });
        }
        Ok(match kind {
            "reset" => Scenario::Reset {
                delay: items.millis("headers_delay_ms")?,
            },
            "silent" => Scenario::Silent,
            "redirect_to" => Scenario::Redirect {
                location: items.location()?,
            },
            "error_event" => Scenario::ErrorEvent {
                delay: items.millis("headers_delay_ms")?,
            },
            "status" => Scenario::Error(items.error(StatusCode::INTERNAL_SERVER_ERROR)?),
            "down_for_ms" => Scenario::DownFor {
                duration: items.millis("down_for_ms")?,
                error: items.error(StatusCode::SERVICE_UNAVAILABLE)?,
                then: items.answer()?,
            },
            "fail_first" => Scenario::FailFirst {
                count: items.number("fail_first")?.unwrap_or(0),
                error: items.error(StatusCode::INTERNAL_SERVER_ERROR)?,
                then: items.answer()?,
            },
            _ => Scenario::Answer(items.answer()?),
        })
    }
}

/// The items of one scenario text, by canonical key.
struct Items<'a>(BTreeMap<&'static str, &'a str>);

impl<'a> Items<'a> {
    fn parse(text: &'a str) -> Result<Self, ScenarioError> {
        let mut items = BTreeMap::new();
        for item in text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let (key, value) = match item.split_once('=') {
                Some((key, value)) => (key.trim(), Some(value.trim())),
                None => (item, None),
            };
            let Some(key) = KEYS.iter().copied().find(|known| *known == key) else {
                return Err(ScenarioError::UnknownKey {
                    key: key.to_owned(),
                });
            };
            let value = match (FLAGS.contains(&key), value) {
                (true, None) => "",
                (true, Some(_)) => return Err(ScenarioError::UnexpectedValue { key }),
                (false, None | Some("")) => return Err(ScenarioError::MissingValue { key }),
                (false, Some(value)) => value,
            };
            if items.insert(key, value).is_some() {
                return Err(ScenarioError::Duplicate { key });
            }
        }
        Ok(Items(items))
    }

    fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    fn keys(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.keys().copied()
    }

    fn number<T: FromStr>(&self, key: &'static str) -> Result<Option<T>, ScenarioError> {
        self.0
            .get(key)
            .map(|value| {
                value.parse().map_err(|_| ScenarioError::InvalidValue {
                    key,
                    value: (*value).to_owned(),
                    reason: "expected a non-negative integer",
                })
            })
            .transpose()
    }

    fn millis(&self, key: &'static str) -> Result<Duration, ScenarioError> {
        Ok(Duration::from_millis(self.number(key)?.unwrap_or(0)))
    }

    fn name(&self) -> Result<Option<String>, ScenarioError> {
        let Some(name) = self.0.get("name") else {
            return Ok(None);
        };
        match HeaderValue::from_str(name) {
            Ok(_) => Ok(Some((*name).to_owned())),
            Err(_) => Err(ScenarioError::InvalidValue {
                key: "name",
                value: (*name).to_owned(),
                reason: "expected visible ASCII (it becomes a header)",
            }),
        }
    }

    fn location(&self) -> Result<String, ScenarioError> {
        let location = self.0.get("redirect_to").copied().unwrap_or_default();
        match HeaderValue::from_str(location) {
            Ok(_) => Ok(location.to_owned()),
            Err(_) => Err(ScenarioError::InvalidValue {
                key: "redirect_to",
                value: location.to_owned(),
                reason: "expected visible ASCII (it becomes a header)",
            }),
        }
    }

    fn error(&self, default: StatusCode) -> Result<ErrorReply, ScenarioError> {
        let status = match self.number::<u16>("status")? {
            None => default,
            Some(code) => StatusCode::from_u16(code)
                .ok()
                .filter(|status| status.is_client_error() || status.is_server_error())
                .ok_or_else(|| ScenarioError::InvalidValue {
                    key: "status",
                    value: code.to_string(),
                    reason: "expected an error status, 400 to 599",
                })?,
        };
        Ok(ErrorReply {
            status,
            retry_after: self.number("retry_after")?,
            message: self.0.get("message").map(|m| (*m).to_owned()),
            headers_delay: self.millis("headers_delay_ms")?,
            name: self.name()?,
        })
    }

    fn answer(&self) -> Result<Answer, ScenarioError> {
        let ending = match (self.number("cut_after")?, self.number("stall_after")?) {
            (Some(_), Some(_)) => {
                return Err(ScenarioError::Conflict {
                    first: "cut_after",
                    second: "stall_after",
                });
            }
            (Some(n), None) => Ending::CutAfter(n),
            (None, Some(n)) => Ending::StallAfter(n),
            (None, None) => Ending::Complete,
        };
        Ok(Answer {
            words: self.number("words")?.unwrap_or(DEFAULT_WORDS),
            name: self.name()?,
            headers_delay: self.millis("headers_delay_ms")?,
            first_event_delay: self.millis("first_event_delay_ms")?,
            event_delay: self.millis("event_delay_ms")?,
            ending,
            malformed_after: self.number("malformed_after")?,
        })
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        match self {
            Scenario::Answer(answer) => answer_parts(answer, &mut parts),
            Scenario::Error(error) => {
                error_parts(error, None, &mut parts);
                millis_part("headers_delay_ms", error.headers_delay, &mut parts);
                parts.extend(error.name.as_ref().map(|name| format!("name={name}")));
            }
            Scenario::Reset { delay } => {
                parts.push("reset".to_owned());
                millis_part("headers_delay_ms", *delay, &mut parts);
            }
            Scenario::Silent => parts.push("silent".to_owned()),
            Scenario::Redirect { location } => parts.push(format!("redirect_to={location}")),
            Scenario::ErrorEvent { delay } => {
                parts.push("error_event".to_owned());
                millis_part("headers_delay_ms", *delay, &mut parts);
            }
            Scenario::DownFor {
                duration,
                error,
                then,
            } => {
                parts.push(format!("down_for_ms={}", duration.as_millis()));
                error_parts(error, Some(StatusCode::SERVICE_UNAVAILABLE), &mut parts);
                answer_parts(then, &mut parts);
            }
            Scenario::FailFirst { count, error, then } => {
                parts.push(format!("fail_first={count}"));
                error_parts(error, None, &mut parts);
                answer_parts(then, &mut parts);
            }
        }
        if parts.is_empty() {
            return f.write_str("ok");
        }
        f.write_str(&parts.join(","))
    }
}

fn error_parts(error: &ErrorReply, default: Option<StatusCode>, parts: &mut Vec<String>) {
    if Some(error.status) != default {
        parts.push(format!("status={}", error.status.as_u16()));
    }
    parts.extend(error.retry_after.map(|secs| format!("retry_after={secs}")));
    parts.extend(
        error
            .message
            .as_ref()
            .map(|message| format!("message={message}")),
    );
}

fn answer_parts(answer: &Answer, parts: &mut Vec<String>) {
    if answer.words != DEFAULT_WORDS {
        parts.push(format!("words={}", answer.words));
    }
    parts.extend(answer.name.as_ref().map(|name| format!("name={name}")));
    millis_part("headers_delay_ms", answer.headers_delay, parts);
    millis_part("first_event_delay_ms", answer.first_event_delay, parts);
    millis_part("event_delay_ms", answer.event_delay, parts);
    match answer.ending {
        Ending::Complete => {}
        Ending::CutAfter(n) => parts.push(format!("cut_after={n}")),
        Ending::StallAfter(n) => parts.push(format!("stall_after={n}")),
    }
    parts.extend(
        answer
            .malformed_after
            .map(|n| format!("malformed_after={n}")),
    );
}

fn millis_part(key: &str, value: Duration, parts: &mut Vec<String>) {
    if !value.is_zero() {
        parts.push(format!("{key}={}", value.as_millis()));
    }
}

//! The scenario DSL: what a [`FaultUpstream`](super::FaultUpstream) does with an attempt.

mod text;

use std::time::Duration;

use http::StatusCode;

pub use text::ScenarioError;

const DEFAULT_WORDS: usize = 5;

/// What the fault upstream does with a request: a tiny text DSL of comma-separated `key=value`
/// items and bare flags, e.g. `status=429,retry_after=3` or `words=3,stall_after=4`.
///
/// | text | behaviour |
/// |---|---|
/// | `ok` (or empty) | a well-formed JSON message or full SSE sequence |
/// | `status=CODE` | an Anthropic-shaped JSON error; with `retry_after=SECS`, `message=TEXT` |
/// | `reset` | close the connection (RST) after reading the request |
/// | `silent` | read the request, never answer |
/// | `error_event` | 200 `text/event-stream`, one overloaded `error` event, end |
/// | `redirect_to=URL` | `307 Temporary Redirect` to `URL` (a client must not follow it) |
/// | `down_for_ms=T` | `status=503` for the first `T` ms after server start, then the answer |
/// | `fail_first=N` | the server's first `N` attempts get `status` (default 500), then the answer |
///
/// Answer options: `words=N` (default 5), `name=X` (in the text and an `x-fault-name` header),
/// `headers_delay_ms=N` (also for errors, `reset`, `error_event`), `first_event_delay_ms=N`,
/// `event_delay_ms=N`, and at most one of `cut_after=N` / `stall_after=N` (SSE events before
/// the stream ends without `message_stop` / goes quiet; a JSON answer is cut or stalled halfway),
/// plus `malformed_after=N` (one broken SSE frame after `N` events; a JSON answer is not JSON).
/// `model_echo` is accepted and always on. Values cannot contain commas.
///
/// `Display` writes the canonical text (known keys in a fixed order, defaults left out), which
/// parses back to the same scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// `ok` and its options: a well-formed answer, possibly slow or broken mid-stream.
    Answer(Answer),
    /// `status=CODE`: an Anthropic-shaped JSON error.
    Error(ErrorReply),
    /// `reset`: close the connection after reading the request, before any response byte.
    Reset {
        /// `headers_delay_ms`: wait this long before closing.
        delay: Duration,
    },
    /// `silent`: read the request and never answer, until the client goes away.
    Silent,
    /// `error_event`: 200 `text/event-stream` whose only frame is an overloaded `error` event.
    ErrorEvent {
        /// `headers_delay_ms`: wait this long before answering.
        delay: Duration,
    },
    /// `redirect_to=URL`: `307 Temporary Redirect` with `location: URL` and an empty body.
    Redirect {
        /// The `location` header.
        location: String,
    },
    /// `down_for_ms=T`: `error` for the first `duration` after the server started, then `then`.
    DownFor {
        /// How long after the server started it is down.
        duration: Duration,
        /// The reply while down (`status`, default 503).
        error: ErrorReply,
        /// The answer afterwards.
        then: Answer,
    },
    /// `fail_first=N`: the server's first `count` attempts get `error`, later ones `then`.
    FailFirst {
        /// How many of the server's first attempts fail.
        count: usize,
        /// The failure (`status`, default 500).
        error: ErrorReply,
        /// The answer afterwards.
        then: Answer,
    },
}

/// A well-formed answer and the ways it can be slow or broken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// Text words, one `content_block_delta` each.
    pub words: usize,
    /// Put into the text and an `x-fault-name` header, to tell servers apart.
    pub name: Option<String>,
    /// Wait before sending anything.
    pub headers_delay: Duration,
    /// After the 200 headers, wait this long before the first event (or the JSON body).
    pub first_event_delay: Duration,
    /// Wait between SSE events.
    pub event_delay: Duration,
    /// How the answer ends.
    pub ending: Ending,
    /// Send one malformed SSE frame after this many events, then carry on.
    pub malformed_after: Option<usize>,
}

/// How an [`Answer`] ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Through `message_stop`.
    Complete,
    /// `cut_after=N`: `N` events, then the body ends without `message_stop`.
    CutAfter(usize),
    /// `stall_after=N`: `N` events, then silence with the connection open.
    StallAfter(usize),
}

/// An Anthropic-shaped error reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorReply {
    /// The HTTP status; the error `type` follows from it.
    pub status: StatusCode,
    /// A `retry-after` header, in seconds.
    pub retry_after: Option<u64>,
    /// The error message; a default for the type when `None`.
    pub message: Option<String>,
    /// Wait before sending anything.
    pub headers_delay: Duration,
    /// An `x-fault-name` header.
    pub name: Option<String>,
}

/// What one attempt gets, once `down_for_ms` / `fail_first` are decided.
#[derive(Clone, Copy, Debug)]
pub(super) enum Reply<'a> {
    Answer(&'a Answer),
    Error(&'a ErrorReply),
    Reset(Duration),
    Silent,
    ErrorEvent(Duration),
    Redirect(&'a str),
}

impl Scenario {
    /// The reply for the server's attempt number `attempt` (from 0), `uptime` after it started.
    pub(super) fn reply(&self, attempt: usize, uptime: Duration) -> Reply<'_> {
        match self {
            Scenario::Answer(answer) => Reply::Answer(answer),
            Scenario::Error(error) => Reply::Error(error),
            Scenario::Reset { delay } => Reply::Reset(*delay),
            Scenario::Silent => Reply::Silent,
            Scenario::ErrorEvent { delay } => Reply::ErrorEvent(*delay),
            Scenario::Redirect { location } => Reply::Redirect(location),
            Scenario::DownFor {
                duration,
                error,
                then,
            } if uptime < *duration => Reply::Error(error),
            Scenario::FailFirst { count, error, then } if attempt < *count => Reply::Error(error),
            Scenario::DownFor { then, .. } | Scenario::FailFirst { then, .. } => {
                Reply::Answer(then)
            }
        }
    }
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario::Answer(Answer::default())
    }
}

impl Default for Answer {
    fn default() -> Self {
        Answer {
            words: DEFAULT_WORDS,
            name: None,
            headers_delay: Duration::ZERO,
            first_event_delay: Duration::ZERO,
            event_delay: Duration::ZERO,
            ending: Ending::Complete,
            malformed_after: None,
        }
    }
}

impl ErrorReply {
    /// A reply with `status` and no options.
    pub fn new(status: StatusCode) -> Self {
        ErrorReply {
            status,
            retry_after: None,
            message: None,
            headers_delay: Duration::ZERO,
            name: None,
        }
    }
}

#[cfg(test)]
mod tests;

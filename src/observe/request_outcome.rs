//! How a client request ended, from the relay's side: the `outcome` of its log line and of
//! `relayrace_requests_total`. (An attempt's outcome — `succeeded`, `failed`, `cancelled` — is
//! the runtime's `AttemptOutcome`; a request has one of these whatever its attempts did.)

use std::fmt;

/// How a request ended. [`RequestOutcome::as_str`] is its name in logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RequestOutcome {
    /// A provider answered and the whole answer reached the client (a stream to its end).
    Ok,
    /// No provider answered: the route failed and the client got an error.
    Error,
    /// A committed stream failed (cut, idle, total timeout, an upstream error event); the
    /// client got an error event in place of the rest.
    StreamFailed,
    /// The client went away before its stream ended.
    ClientClosed,
    /// The request was refused before routing: its body was too large, too slow, unreadable or
    /// not a Messages API request the relay can route (no `model`, say).
    Rejected,
}

impl RequestOutcome {
    /// Every outcome.
    #[cfg(test)]
    pub(crate) const ALL: [RequestOutcome; 5] = [
        RequestOutcome::Ok,
        RequestOutcome::Error,
        RequestOutcome::StreamFailed,
        RequestOutcome::ClientClosed,
        RequestOutcome::Rejected,
    ];

    /// The name logs and metrics use: `ok`, `error`, `stream_failed`, `client_closed` or
    /// `rejected`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RequestOutcome::Ok => "ok",
            RequestOutcome::Error => "error",
            RequestOutcome::StreamFailed => "stream_failed",
            RequestOutcome::ClientClosed => "client_closed",
            RequestOutcome::Rejected => "rejected",
        }
    }

    /// Whether a provider answered: it committed, whatever became of the answer after that.
    /// Its traffic figures count the request.
    pub(crate) fn answered(self) -> bool {
        match self {
            RequestOutcome::Ok | RequestOutcome::StreamFailed | RequestOutcome::ClientClosed => {
                true
            }
            RequestOutcome::Error | RequestOutcome::Rejected => false,
        }
    }
}

impl fmt::Display for RequestOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_outcome_has_its_own_lowercase_name() {
        let names: Vec<&str> = RequestOutcome::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(
            names,
            ["ok", "error", "stream_failed", "client_closed", "rejected"]
        );
        assert_eq!(names.iter().collect::<HashSet<_>>().len(), names.len());
        for outcome in RequestOutcome::ALL {
            assert_eq!(outcome.to_string(), outcome.as_str());
        }
    }

    #[test]
    fn only_requests_a_provider_committed_to_were_answered() {
        let answered: Vec<RequestOutcome> = RequestOutcome::ALL
            .into_iter()
            .filter(|o| o.answered())
            .collect();
        assert_eq!(
            answered,
            [
                RequestOutcome::Ok,
                RequestOutcome::StreamFailed,
                RequestOutcome::ClientClosed
            ]
        );
    }
}

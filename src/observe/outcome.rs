//! What a route did, read once from the runtime's report (or error): who was tried first and
//! who answered, whether the primary's failure started a failover, whether a race ran and how
//! it ended, the winner's time to its commit point, and the upstream time on the request's
//! critical path (what the relay's overhead is measured against).

use std::time::Duration;

use relayrace_actors::{AttemptError, AttemptOutcome, AttemptRecord, RouteError, RouteReport};

/// How a failover race ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RaceEnd {
    /// An attempt succeeded.
    Won,
    /// Every attempt failed.
    AllFailed,
    /// The race timeout elapsed first.
    TimedOut,
}

impl RaceEnd {
    /// The `result` label of `relayrace_races_total`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            RaceEnd::Won => "won",
            RaceEnd::AllFailed => "all_failed",
            RaceEnd::TimedOut => "timed_out",
        }
    }
}

/// The story of one route, as the service's observers need it.
#[derive(Clone, Debug)]
pub(crate) struct RouteSummary<'a> {
    /// Every attempt, in the order they started (the primary first).
    pub(crate) attempts: &'a [AttemptRecord],
    /// Who answered.
    pub(crate) winner: Option<&'a str>,
    /// Why the primary failed, when its failure started a failover.
    pub(crate) failover: Option<String>,
    /// How the race ended, when one ran.
    pub(crate) race: Option<RaceEnd>,
    /// The winning attempt's latency: from its start to its commit point (the first event of a
    /// stream).
    pub(crate) first_event: Option<Duration>,
}

impl<'a> RouteSummary<'a> {
    /// A route that produced a response.
    pub(crate) fn answered(report: &'a RouteReport) -> Self {
        let winner = report.winner.name();
        let attempts = report.attempts.as_slice();
        let failover = report
            .raced
            .then(|| attempts.first().and_then(failure_cause))
            .flatten();
        // The primary is first; when it raced again it appears twice, and its first try failed.
        let first_event = attempts
            .iter()
            .rev()
            .find(|a| a.provider.name() == winner && matches!(a.outcome, AttemptOutcome::Succeeded))
            .map(|a| a.latency);
        RouteSummary {
            attempts,
            winner: Some(winner),
            failover,
            race: report.raced.then_some(RaceEnd::Won),
            first_event,
        }
    }

    /// A route that produced no response.
    pub(crate) fn failed(error: &'a RouteError) -> Self {
        let attempts = error.attempts();
        let (failed_over, race) = match error {
            RouteError::Exhausted { attempts } => {
                (true, (attempts.len() > 1).then_some(RaceEnd::AllFailed))
            }
            RouteError::Timeout { .. } => (true, Some(RaceEnd::TimedOut)),
            _ => (false, None),
        };
        RouteSummary {
            attempts,
            winner: None,
            failover: failed_over
                .then(|| attempts.first().and_then(failure_cause))
                .flatten(),
            race,
            first_event: None,
        }
    }

    /// The provider tried first.
    pub(crate) fn primary(&self) -> Option<&'a str> {
        self.attempts.first().map(|a| a.provider.name())
    }

    /// Upstream time on the critical path: the primary's attempt, then the longest of the race
    /// (the winner's, when there is one; race attempts run side by side).
    pub(crate) fn upstream_time(&self) -> Duration {
        let Some((primary, raced)) = self.attempts.split_first() else {
            return Duration::ZERO;
        };
        let race = match self.first_event {
            Some(winner) if self.race.is_some() => winner,
            _ => raced.iter().map(|a| a.latency).max().unwrap_or_default(),
        };
        primary.latency + race
    }
}

/// Why an attempt failed, as a label: the status code (`529`), `timeout`, `connection` or
/// `other`.
pub(crate) fn cause(error: &AttemptError) -> String {
    match error {
        AttemptError::Status { status, .. } => status.to_string(),
        AttemptError::Timeout { .. } => "timeout".to_owned(),
        AttemptError::Connection { .. } => "connection".to_owned(),
        _ => "other".to_owned(),
    }
}

/// An attempt outcome's name: `succeeded`, `failed` or `cancelled`.
pub(crate) fn outcome_name(outcome: &AttemptOutcome) -> &'static str {
    match outcome {
        AttemptOutcome::Succeeded => "succeeded",
        AttemptOutcome::Failed(_) => "failed",
        AttemptOutcome::Cancelled => "cancelled",
    }
}

fn failure_cause(record: &AttemptRecord) -> Option<String> {
    record.outcome.error().map(cause)
}

#[cfg(test)]
mod tests {
    use relayrace_actors::{Provider, ProviderId};

    use super::*;

    fn provider(name: &str) -> Provider {
        Provider::new(ProviderId(usize::from(name.as_bytes()[0])), name)
    }

    fn attempt(name: &str, outcome: AttemptOutcome, ms: u64) -> AttemptRecord {
        AttemptRecord {
            provider: provider(name),
            outcome,
            latency: Duration::from_millis(ms),
        }
    }

    #[test]
    fn a_direct_answer_is_no_failover() {
        let report = RouteReport {
            winner: provider("a"),
            attempts: vec![attempt("a", AttemptOutcome::Succeeded, 40)],
            raced: false,
        };
        let summary = RouteSummary::answered(&report);
        assert_eq!(summary.failover, None);
        assert_eq!(summary.race, None);
        assert_eq!(summary.first_event, Some(Duration::from_millis(40)));
        assert_eq!(summary.upstream_time(), Duration::from_millis(40));
    }

    #[test]
    fn a_won_race_names_the_primarys_cause_and_the_winners_commit_time() {
        let report = RouteReport {
            winner: provider("a"),
            attempts: vec![
                attempt("a", AttemptOutcome::Failed(AttemptError::status(529)), 10),
                attempt("b", AttemptOutcome::Cancelled, 31),
                attempt("a", AttemptOutcome::Succeeded, 30),
            ],
            raced: true,
        };
        let summary = RouteSummary::answered(&report);
        assert_eq!(summary.primary(), Some("a"));
        assert_eq!(summary.failover.as_deref(), Some("529"));
        assert_eq!(summary.race, Some(RaceEnd::Won));
        assert_eq!(summary.first_event, Some(Duration::from_millis(30)));
        assert_eq!(summary.upstream_time(), Duration::from_millis(40));
    }

    #[test]
    fn exhausted_and_timed_out_routes_failed_over_and_others_did_not() {
        let timeout = AttemptError::Timeout {
            phase: "first event",
        };
        let alone = RouteError::Exhausted {
            attempts: vec![attempt("a", AttemptOutcome::Failed(timeout.clone()), 600)],
        };
        let summary = RouteSummary::failed(&alone);
        assert_eq!(
            (summary.failover.as_deref(), summary.race),
            (Some("timeout"), None)
        );
        let timed_out = RouteError::Timeout {
            timeout: Duration::from_secs(1),
            attempts: vec![
                attempt("a", AttemptOutcome::Failed(AttemptError::status(503)), 5),
                attempt("b", AttemptOutcome::Cancelled, 1000),
            ],
        };
        let summary = RouteSummary::failed(&timed_out);
        assert_eq!(summary.failover.as_deref(), Some("503"));
        assert_eq!(summary.race, Some(RaceEnd::TimedOut));
        assert_eq!(summary.upstream_time(), Duration::from_millis(1005));
        let client_error = RouteError::Failed {
            provider: provider("a"),
            error: AttemptError::status(400),
            attempts: vec![attempt(
                "a",
                AttemptOutcome::Failed(AttemptError::status(400)),
                5,
            )],
        };
        assert_eq!(RouteSummary::failed(&client_error).failover, None);
    }

    #[test]
    fn causes_are_short_labels() {
        let connection = AttemptError::Connection {
            message: "refused".into(),
        };
        let other = AttemptError::Other {
            message: "x".into(),
        };
        assert_eq!(cause(&AttemptError::status(429)), "429");
        assert_eq!(cause(&connection), "connection");
        assert_eq!(cause(&other), "other");
    }
}

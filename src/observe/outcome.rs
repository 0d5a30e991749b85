//! What a route did, as the service's observers need it: read from the runtime's report (or
//! error), which says who was tried and who answered, whether the primary's failure started a
//! failover and how its race ended. Here only what the observers add: the winner's time to its
//! commit point, and the upstream time on the request's critical path (what the relay's
//! overhead is measured against).

use std::time::Duration;

use relayrace_actors::{AttemptRecord, Cause, RaceEnd, RouteError, RouteReport};

/// The story of one route, as the service's observers need it.
#[derive(Clone, Debug)]
pub(crate) struct RouteSummary<'a> {
    /// Every attempt, in the order they started (the primary first).
    pub(crate) attempts: &'a [AttemptRecord],
    /// Who answered.
    pub(crate) winner: Option<&'a str>,
    /// Why the primary failed, when its failure started a failover.
    pub(crate) failover: Option<Cause>,
    /// How the race ended, when one ran.
    pub(crate) race: Option<RaceEnd>,
    /// The winning attempt's latency: from its start to its commit point (the first event of a
    /// stream).
    pub(crate) first_event: Option<Duration>,
}

impl<'a> RouteSummary<'a> {
    /// A route that produced a response.
    pub(crate) fn answered(report: &'a RouteReport) -> Self {
        RouteSummary {
            attempts: &report.attempts,
            winner: Some(report.winner().name()),
            failover: report.failover.map(|failover| failover.cause),
            race: report.failover.and_then(|failover| failover.race),
            first_event: Some(report.winning_attempt().latency),
        }
    }

    /// A route that produced no response.
    pub(crate) fn failed(error: &'a RouteError) -> Self {
        let failover = error.failover();
        RouteSummary {
            attempts: error.attempts(),
            winner: None,
            failover: failover.map(|failover| failover.cause),
            race: failover.and_then(|failover| failover.race),
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

#[cfg(test)]
mod tests {
    use relayrace_actors::{AttemptError, AttemptOutcome, Failover, Provider, ProviderId};

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
            attempts: vec![attempt("a", AttemptOutcome::Succeeded, 40)],
            winner: 0,
            failover: None,
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
            attempts: vec![
                attempt("a", AttemptOutcome::Failed(AttemptError::status(529)), 10),
                attempt("b", AttemptOutcome::Cancelled, 31),
                attempt("a", AttemptOutcome::Succeeded, 30),
            ],
            winner: 2,
            failover: Some(Failover {
                cause: Cause::Status(529),
                race: Some(RaceEnd::Won),
            }),
        };
        let summary = RouteSummary::answered(&report);
        assert_eq!(summary.primary(), Some("a"));
        assert_eq!(summary.winner, Some("a"));
        assert_eq!(summary.failover, Some(Cause::Status(529)));
        assert_eq!(summary.race, Some(RaceEnd::Won));
        assert_eq!(summary.first_event, Some(Duration::from_millis(30)));
        assert_eq!(summary.upstream_time(), Duration::from_millis(40));
    }

    #[test]
    fn a_timed_out_race_takes_its_longest_attempt_and_a_failed_route_no_failover() {
        let timed_out = RouteError::Timeout {
            timeout: Duration::from_secs(1),
            attempts: vec![
                attempt("a", AttemptOutcome::Failed(AttemptError::status(503)), 5),
                attempt("b", AttemptOutcome::Cancelled, 1000),
            ],
            failover: Failover {
                cause: Cause::Status(503),
                race: Some(RaceEnd::TimedOut),
            },
        };
        let summary = RouteSummary::failed(&timed_out);
        assert_eq!(summary.failover, Some(Cause::Status(503)));
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
        let summary = RouteSummary::failed(&client_error);
        assert_eq!((summary.failover, summary.race), (None, None));
    }
}

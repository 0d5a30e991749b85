//! Many concurrent routes with mixed outcomes: each reply is consistent, every attempt's outcome
//! reaches health once, nothing leaks.

use relayrace_actors::AttemptOutcome;
use relayrace_actors::testing::{FakeUpstream, Step};
use tokio::task::JoinSet;

use crate::{Harness, MS, config};

#[tokio::test(start_paused = true)]
async fn ten_thousand_concurrent_routes_report_every_attempt_once_and_nothing_leaks() {
    let mut config = config(&["a", "b", "c"]);
    // Keep everyone in rotation so the mix stays mixed.
    config.health.failure_threshold = u32::MAX;
    let fake = FakeUpstream::new()
        .cycle(
            "a",
            [
                Step::ok().after(3 * MS),
                Step::status(503).after(MS),
                Step::status(400),
                Step::timeout().after(7 * MS),
                Step::ok(),
            ],
        )
        .cycle(
            "b",
            [Step::status(529), Step::ok().after(5 * MS), Step::hang()],
        )
        .cycle("c", [Step::ok().after(2 * MS), Step::refused()]);
    let harness = Harness::start(config, fake).await;
    let mut requests = JoinSet::new();
    for i in 0..10_000 {
        let handle = harness.handle();
        requests.spawn(async move { handle.route(format!("req-{i}")).await });
    }
    let (mut ok, mut failed, mut attempts) = (0, 0, 0);
    while let Some(joined) = requests.join_next().await {
        match joined.unwrap() {
            Ok(routed) => {
                // The response is the winner's, and the winner is the one success reported.
                let winner = routed.report.winning_attempt();
                assert_eq!(routed.response.provider, winner.provider.name());
                assert!(matches!(winner.outcome, AttemptOutcome::Succeeded));
                attempts += routed.report.attempts.len();
                ok += 1;
            }
            Err(error) => {
                assert!(!error.attempts().is_empty(), "{error:?}");
                attempts += error.attempts().len();
                failed += 1;
            }
        }
    }
    assert!(
        ok > 5_000 && failed > 500,
        "mixed outcomes: {ok} ok, {failed} failed"
    );
    harness.handle().races_finished().await;
    assert_eq!(harness.handle().race_actors_alive(), 0);
    assert_eq!(harness.fake.in_flight(), 0);
    // Every attempt made reached its provider's health exactly once, and is in a report.
    let mut reported = 0;
    for row in harness.handle().snapshot().await.unwrap() {
        let counters = row.status.unwrap().counters;
        let calls = harness.fake.calls(&row.name) as u64;
        assert_eq!(counters.attempts, calls, "{}: {counters:?}", row.name);
        assert_eq!(
            counters.successes + counters.failures + counters.client_errors + counters.cancelled,
            counters.attempts,
            "{}",
            row.name
        );
        reported += calls;
    }
    assert_eq!(reported, attempts as u64);
    harness.shutdown().await;
}

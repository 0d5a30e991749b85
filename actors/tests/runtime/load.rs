//! Many concurrent routes with mixed outcomes: each gets exactly one reply, nothing leaks.

use relayrace_actors::testing::{FakeUpstream, Step};
use tokio::task::JoinSet;

use crate::{Harness, MS, config};

#[tokio::test(start_paused = true)]
async fn ten_thousand_concurrent_routes_each_get_one_reply_and_nothing_leaks() {
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
        requests.spawn(async move { (i, handle.route(format!("req-{i}")).await) });
    }
    let mut replies = vec![0u8; 10_000];
    let (mut ok, mut failed) = (0, 0);
    while let Some(joined) = requests.join_next().await {
        let (i, result) = joined.unwrap();
        replies[i] += 1;
        match result {
            Ok(_) => ok += 1,
            Err(_) => failed += 1,
        }
    }
    assert!(replies.iter().all(|&n| n == 1));
    assert!(
        ok > 5_000 && failed > 500,
        "mixed outcomes: {ok} ok, {failed} failed"
    );
    harness.handle().races_finished().await;
    assert_eq!(harness.handle().race_actors_alive(), 0);
    assert_eq!(harness.fake.in_flight(), 0);
    harness.shutdown().await;
}

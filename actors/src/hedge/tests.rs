use super::*;
use tokio::time::Instant;

const S: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);

fn small() -> RequestClass {
    RequestClass::of(RequestShape::streamed(1000))
}

#[test]
fn classes_go_by_body_size_and_whole_answers_are_their_own() {
    let class = |bytes, streamed| RequestClass::of(RequestShape { bytes, streamed });
    assert_eq!(class(0, true), RequestClass::Under32kb);
    assert_eq!(class(32 * 1024 - 1, true), RequestClass::Under32kb);
    assert_eq!(class(180 * 1024, true), RequestClass::Under256kb);
    assert_eq!(class(500 * 1024, true), RequestClass::Under1mb);
    assert_eq!(class(2 << 20, true), RequestClass::Larger);
    assert_eq!(class(10, false), RequestClass::Whole);
    assert_eq!(RequestClass::Under1mb.name(), "under_1mb");
}

#[test]
fn buckets_are_within_a_tenth_of_the_time_and_edges_err_late() {
    for ms in [1.0, 3.0, 950.0, 1000.0, 20_000.0, 600_000.0] {
        let latency = Duration::from_secs_f64(ms / 1e3);
        let edge = upper_edge(bucket(latency));
        assert!(edge > latency, "{ms} ms: edge {edge:?}");
        assert!(edge.as_secs_f64() < latency.as_secs_f64() * 1.1, "{ms} ms");
    }
    assert_eq!(bucket(Duration::ZERO), 0);
    assert_eq!(bucket(Duration::from_secs(1 << 30)), BUCKETS - 1);
}

#[tokio::test(start_paused = true)]
async fn the_initial_delay_applies_until_a_class_has_enough_commits() {
    let hedge = ProviderHedge::new(HedgeConfig::default());
    assert_eq!(hedge.delay(small()), Some(6 * S));
    assert_eq!(hedge.delay(RequestClass::Under256kb), Some(12 * S));
    for _ in 0..19 {
        hedge.record(small(), S, Instant::now());
    }
    assert_eq!(hedge.delay(small()), Some(6 * S), "19 commits are too few");
    hedge.record(small(), S, Instant::now());
    let learned = hedge.delay(small()).unwrap();
    // p95 of 1 s (the bucket's upper edge, under 1.1 s) times 1.5.
    assert!(learned >= 1500 * MS && learned < 1650 * MS, "{learned:?}");
    assert_eq!(
        hedge.delay(RequestClass::Under256kb),
        Some(12 * S),
        "each class learns on its own"
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_twenty_fifth_does_not_raise_the_p95_but_a_slow_tenth_does() {
    let hedge = ProviderHedge::new(HedgeConfig::default());
    for i in 0..100 {
        hedge.record(
            small(),
            if i % 25 == 0 { 20 * S } else { S },
            Instant::now(),
        );
    }
    assert!(hedge.delay(small()).unwrap() < 2 * S);
    let hedge = ProviderHedge::new(HedgeConfig::default());
    for i in 0..100 {
        hedge.record(
            small(),
            if i % 10 == 0 { 20 * S } else { S },
            Instant::now(),
        );
    }
    assert_eq!(
        hedge.delay(small()),
        Some(30 * S),
        "20 s × 1.5, clamped to max_delay"
    );
}

#[tokio::test(start_paused = true)]
async fn learned_delays_are_clamped_and_a_disabled_provider_is_not_hedged() {
    let hedge = ProviderHedge::new(HedgeConfig::default());
    for _ in 0..50 {
        hedge.record(small(), 10 * MS, Instant::now());
    }
    assert_eq!(hedge.delay(small()), Some(S), "min_delay");
    let off = ProviderHedge::new(HedgeConfig {
        enabled: false,
        ..HedgeConfig::default()
    });
    assert_eq!(off.delay(small()), None);
}

#[tokio::test(start_paused = true)]
async fn old_commits_decay_out_by_count_and_by_age() {
    let hedge = ProviderHedge::new(HedgeConfig::default());
    for _ in 0..300 {
        hedge.record(small(), 10 * S, Instant::now());
    }
    // 256 fill the first half; a rotation opens the second; 256 more rotate the first out.
    for _ in 0..600 {
        hedge.record(small(), S, Instant::now());
    }
    assert!(
        hedge.delay(small()).unwrap() < 2 * S,
        "slow commits forgotten"
    );
    let hedge = ProviderHedge::new(HedgeConfig::default());
    for _ in 0..30 {
        hedge.record(small(), 10 * S, Instant::now());
    }
    tokio::time::advance(HALF_AGE).await;
    hedge.record(small(), S, Instant::now());
    assert_eq!(
        hedge.times.samples(small()),
        31,
        "the old half is kept once"
    );
    tokio::time::advance(HALF_AGE).await;
    hedge.record(small(), S, Instant::now());
    assert_eq!(
        hedge.times.samples(small()),
        2,
        "ten minutes on, it is gone"
    );
    assert_eq!(hedge.delay(small()), Some(6 * S), "too few again: initial");
}

#[tokio::test(start_paused = true)]
async fn the_budget_allows_a_share_of_requests_plus_a_floor() {
    let budget = Budget::new(&HedgeBudget {
        ratio: 0.1,
        min_per_second: 0.0,
        window: 10 * S,
    });
    assert!(!budget.withdraw(), "no requests, no floor: nothing");
    for _ in 0..100 {
        budget.deposit(Instant::now());
    }
    assert!((0..10).all(|_| budget.withdraw()));
    assert!(!budget.withdraw(), "the 11th of 100 is past 10 %");
    let status = budget.status();
    assert_eq!(
        (status.requests, status.hedges, status.available),
        (100, 10, 0)
    );
    tokio::time::advance(11 * S).await;
    assert_eq!(budget.status().requests, 0, "the window slid past them");
    let floor = Budget::new(&HedgeBudget::default());
    assert!((0..10).all(|_| floor.withdraw()), "1/s over 10 s: ten");
    assert!(!floor.withdraw());
}

#[tokio::test(start_paused = true)]
async fn the_window_slides_slot_by_slot() {
    let budget = Budget::new(&HedgeBudget {
        ratio: 1.0,
        min_per_second: 0.0,
        window: 10 * S,
    });
    for second in 0..10 {
        budget.deposit(Instant::now());
        assert_eq!(budget.status().requests, second + 1);
        tokio::time::advance(S).await;
    }
    assert_eq!(
        budget.status().requests,
        9,
        "the first second left the window"
    );
}

#[test]
fn counters_count_each_end() {
    let counters = HedgeCounters::default();
    counters.started();
    counters.started();
    counters.ended(HedgeEnd::Original);
    counters.ended(HedgeEnd::Hedge);
    counters.budget_spent();
    let counts = counters.counts();
    assert_eq!(
        (
            counts.started,
            counts.won_by_original,
            counts.won_by_hedge,
            counts.budget_spent
        ),
        (2, 1, 1, 1)
    );
}

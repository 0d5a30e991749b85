//! Runtime micro-benchmarks: `select` and `route` with an immediately successful fake — under
//! `failover` (the primary is read from the published table and the providers' views, no
//! message) and under `round_robin` (a round trip through the router actor) —, a race of 3 after
//! the primary fails, how the router round trip grows with the number of providers, and what
//! routing by model costs with 3, 50 and 500 providers serving 10 models.
//!
//! Run with `cargo bench -p relayrace-actors --bench runtime`.

#![expect(
    clippy::expect_used,
    reason = "benchmark set-up: failing to start is fatal"
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use relayrace_actors::testing::{FakeUpstream, Step};
use relayrace_actors::{ProviderSettings, Runtime, RuntimeConfig, StrategyKind};
use tokio::runtime::Runtime as Tokio;

fn tokio() -> Tokio {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn config(providers: usize) -> RuntimeConfig {
    let mut config = RuntimeConfig::with_providers(
        (0..providers).map(|i| ProviderSettings::new(format!("p{i}")).priority(i as u32 + 1)),
    );
    config.routing.seed = Some(1);
    // Failures in the race benchmark must not eject the failing primary.
    config.health.failure_threshold = u32::MAX;
    config
}

fn select_and_route(c: &mut Criterion) {
    let rt = tokio();
    let runtime = rt
        .block_on(Runtime::start(
            config(3),
            FakeUpstream::new().otherwise(Step::ok()),
        ))
        .expect("runtime");
    let handle = runtime.handle();
    c.bench_function("select", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(handle.select().await) })
    });
    c.bench_function("route", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(handle.route("request".to_owned()).await) })
    });
    rt.block_on(runtime.shutdown(Duration::from_secs(1)));

    let mut round_robin = config(3);
    round_robin.routing.strategy = StrategyKind::RoundRobin;
    let runtime = rt
        .block_on(Runtime::start(
            round_robin,
            FakeUpstream::new().otherwise(Step::ok()),
        ))
        .expect("runtime");
    let handle = runtime.handle();
    c.bench_function("select_via_router", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(handle.select().await) })
    });
    c.bench_function("route_via_router", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(handle.route("request".to_owned()).await) })
    });
    rt.block_on(runtime.shutdown(Duration::from_secs(1)));
}

fn race_of_three(c: &mut Criterion) {
    let rt = tokio();
    // The primary fails at once (a 500: it may race again); the race runs p0 (again), p1 and
    // p2; p1 wins.
    let fake = FakeUpstream::new()
        .script("p0", [Step::status(500)])
        .otherwise(Step::ok());
    let runtime = rt
        .block_on(Runtime::start(config(3), fake))
        .expect("runtime");
    let handle = runtime.handle();
    c.bench_function("race_of_3", |b| {
        b.to_async(&rt).iter(|| async {
            let routed = handle.route("request".to_owned()).await;
            black_box(routed)
        })
    });
    rt.block_on(runtime.shutdown(Duration::from_secs(1)));
}

fn scaling(c: &mut Criterion) {
    let mut group = c.benchmark_group("providers");
    for providers in [3, 50, 500] {
        let rt = tokio();
        // Round robin: every pick goes through the router, over every provider in rotation.
        let mut config = config(providers);
        config.routing.strategy = StrategyKind::RoundRobin;
        let runtime = rt
            .block_on(Runtime::start(
                config,
                FakeUpstream::new().otherwise(Step::ok()),
            ))
            .expect("runtime");
        let handle = runtime.handle();
        group.bench_with_input(BenchmarkId::new("select", providers), &providers, |b, _| {
            b.to_async(&rt)
                .iter(|| async { black_box(handle.select().await) })
        });
        group.bench_with_input(BenchmarkId::new("route", providers), &providers, |b, _| {
            b.to_async(&rt)
                .iter(|| async { black_box(handle.route("request".to_owned()).await) })
        });
        rt.block_on(runtime.shutdown(Duration::from_secs(1)));
    }
    group.finish();
}

/// Ten models; provider `i` serves model `i % 10` by name and every `claude-haiku-*` by
/// pattern when `i` is even.
fn by_model(c: &mut Criterion) {
    let mut group = c.benchmark_group("models");
    for providers in [3, 50, 500] {
        let rt = tokio();
        let mut config = config(providers);
        for (i, provider) in config.providers.iter_mut().enumerate() {
            provider.models = vec![format!("model-{}", i % 10)];
            if i % 2 == 0 {
                provider.models.push("claude-haiku-*".to_owned());
            }
        }
        let runtime = rt
            .block_on(Runtime::start(
                config,
                FakeUpstream::new().otherwise(Step::ok()),
            ))
            .expect("runtime");
        let handle = runtime.handle();
        group.bench_with_input(
            BenchmarkId::new("select_model", providers),
            &providers,
            |b, _| {
                b.to_async(&rt)
                    .iter(|| async { black_box(handle.select_model("model-1").await) })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("select_pattern", providers),
            &providers,
            |b, _| {
                b.to_async(&rt).iter(|| async {
                    black_box(handle.select_model("claude-haiku-4-5-20251001").await)
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("route", providers), &providers, |b, _| {
            b.to_async(&rt)
                .iter(|| async { black_box(handle.route("model:model-1".to_owned()).await) })
        });
        rt.block_on(runtime.shutdown(Duration::from_secs(1)));
    }
    group.finish();
}

criterion_group!(benches, select_and_route, race_of_three, scaling, by_model);
criterion_main!(benches);

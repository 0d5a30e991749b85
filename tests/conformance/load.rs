//! Load: 1,000 concurrent requests, each with a fault picked at random (seeded). Each ends
//! exactly once, with an answer or a clean error; afterwards no race or attempt actor, no
//! attempt and no connection beyond the idle pool is left, and memory is back near where it
//! was.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use relayrace_fault::FaultUpstream;
use serde_json::Value;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

use crate::fixture::{
    Provider, Reply, SECOND, ask_at, assert_bound, config_with_timeouts, exclusive, fault, human,
    within,
};
use crate::harness::{TestRelay, message};
use crate::report::{Row, record};

const REQUESTS: usize = 1000;
const SEED: u64 = 0x4c0a_d5ee_d000_0004;
/// The relay keeps at most this many idle connections per provider (`MAX_IDLE_CONNECTIONS`
/// in `src/upstream/http.rs`).
const IDLE_POOL: usize = 32;
/// How much a second identical burst may add to resident memory: allocator noise (up to
/// ~25 MiB seen on a 2-core machine) plus the fault upstreams' journals (~5 MiB a burst).
const MEMORY_TOLERANCE: u64 = 48 * 1024 * 1024;
/// Generous next to the scenarios' 1 s: a healthy upstream in this very process must not time
/// out while 1,000 requests share two cores.
const TIMEOUTS: &str = "{connect: 2s, first_event: 3s, idle: 3s, total: 30s}";

/// How a request is expected to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// A complete answer.
    Answer,
    /// A stream that ends with an `event: error` frame after the commit.
    ErrorFrame,
    /// An Anthropic error with this status.
    Error(u16),
}

/// One mix: what the primary and the fallback do, and how the request ends, JSON / stream.
struct Mix {
    primary: &'static str,
    fallback: &'static str,
    json: Option<End>,
    stream: End,
}

const fn mix(primary: &'static str, fallback: &'static str, json: Option<End>, stream: End) -> Mix {
    Mix {
        primary,
        fallback,
        json,
        stream,
    }
}

const ANSWER: End = End::Answer;

/// Health never opens a circuit here (`failure_threshold` is huge), so every request meets
/// its own fault; `retry-after` is left out for the same reason (it would rest the primary).
const MIXES: [Mix; 18] = [
    mix("ok", "ok", Some(ANSWER), ANSWER),
    mix("status=429", "ok", Some(ANSWER), ANSWER),
    mix("status=500", "ok", Some(ANSWER), ANSWER),
    mix("status=503", "ok", Some(ANSWER), ANSWER),
    mix("status=529", "ok", Some(ANSWER), ANSWER),
    mix("status=400", "ok", Some(End::Error(400)), End::Error(400)),
    mix("reset", "ok", Some(ANSWER), ANSWER),
    mix("silent", "ok", Some(ANSWER), ANSWER),
    mix("first_event_delay_ms=20000", "ok", Some(ANSWER), ANSWER),
    mix("error_event", "ok", None, ANSWER),
    mix("cut_after=4", "ok", Some(ANSWER), End::ErrorFrame),
    mix("stall_after=3", "ok", Some(ANSWER), End::ErrorFrame),
    mix("malformed_after=3", "ok", Some(ANSWER), ANSWER),
    mix(
        "headers_delay_ms=300,event_delay_ms=20",
        "ok",
        Some(ANSWER),
        ANSWER,
    ),
    mix(
        "status=503",
        "status=503",
        Some(End::Error(503)),
        End::Error(503),
    ),
    mix("reset", "silent", Some(End::Error(502)), End::Error(502)),
    mix(
        "silent",
        "status=529",
        Some(End::Error(529)),
        End::Error(529),
    ),
    mix(
        "status=500",
        "reset",
        Some(End::Error(500)),
        End::Error(500),
    ),
];

fn model(index: usize) -> String {
    format!("mix-{index}")
}

/// One planned request: its mix and whether it streams.
#[derive(Clone, Copy)]
struct Planned {
    mix: usize,
    stream: bool,
}

impl Planned {
    fn expected(self) -> End {
        let mix = &MIXES[self.mix];
        match (self.stream, mix.json) {
            (false, Some(end)) => end,
            _ => mix.stream,
        }
    }

    fn body(self) -> Value {
        let stream = self.stream || MIXES[self.mix].json.is_none();
        let mut body = message(stream);
        body["model"] = model(self.mix).into();
        body
    }
}

fn plan(count: usize, seed: u64) -> Vec<Planned> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..count)
        .map(|_| Planned {
            mix: rng.random_range(0..MIXES.len()),
            stream: rng.random_bool(0.5),
        })
        .collect()
}

/// How one request ended, as the client saw it.
fn ended(reply: &Reply) -> Option<End> {
    if reply.is_complete_answer() {
        Some(End::Answer)
    } else if reply.status == 200 && reply.ends_with_error_frame() {
        Some(End::ErrorFrame)
    } else if reply.is_clean_error() {
        Some(End::Error(reply.status))
    } else {
        None
    }
}

/// Sends every planned request at once; the replies in plan order.
async fn burst(relay: &TestRelay, client: &reqwest::Client, planned: &[Planned]) -> Vec<Reply> {
    let mut tasks = JoinSet::new();
    for (index, request) in planned.iter().enumerate() {
        let client = client.clone();
        let url = relay.url.clone();
        let body = request.body();
        tasks.spawn(async move { (index, ask_at(&client, &url, &body).await) });
    }
    let mut replies: Vec<Option<Reply>> = (0..planned.len()).map(|_| None).collect();
    while let Some(done) = tasks.join_next().await {
        let (index, reply) = done.unwrap();
        assert!(
            replies[index].replace(reply).is_none(),
            "request {index} ended twice"
        );
    }
    replies.into_iter().map(Option::unwrap).collect()
}

/// Waits until the relay holds nothing of the burst: no race or attempt actor, no attempt
/// open at either upstream, no connection beyond the idle pool.
async fn settled(relay: &TestRelay, upstreams: [&FaultUpstream; 2]) -> Duration {
    let started = Instant::now();
    within(
        10 * SECOND,
        "no race actor left",
        relay.router.races_finished(),
    )
    .await;
    for upstream in upstreams {
        within(
            10 * SECOND,
            "no attempt left open",
            upstream.wait_for_no_open_attempts(),
        )
        .await;
        within(
            10 * SECOND,
            "no connection beyond the idle pool",
            upstream.wait_for_open_connections_at_most(IDLE_POOL),
        )
        .await;
    }
    assert_eq!(relay.router.race_actors_alive(), 0);
    started.elapsed()
}

/// Resident memory of this process, from `/proc/self/statm` (4 KiB pages).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// A relay whose providers answer model `mix-N` with mix N's faults.
async fn mixed_relay(primary: &FaultUpstream, fallback: &FaultUpstream) -> TestRelay {
    let mut first = Provider::at("primary", primary);
    let mut second = Provider::at("fallback", fallback);
    for (i, mix) in MIXES.iter().enumerate() {
        first = first.maps(&model(i), &format!("fault:{}", mix.primary));
        second = second.maps(&model(i), &format!("fault:{}", mix.fallback));
    }
    let yaml = config_with_timeouts(
        &[first, second],
        TIMEOUTS,
        "health:\n  failure_threshold: 1000000\n",
    );
    TestRelay::start(&yaml).await
}

/// Asserts each reply ended as its fault predicts; how many ended each way, for the table.
fn tally(planned: &[Planned], replies: &[Reply]) -> Vec<String> {
    let mut tally: HashMap<String, usize> = HashMap::new();
    let mut unexpected = Vec::new();
    for (request, reply) in planned.iter().zip(replies) {
        let end =
            ended(reply).unwrap_or_else(|| panic!("neither answer nor clean error: {reply:?}"));
        let name = match end {
            End::Answer => "answers".to_owned(),
            End::ErrorFrame => "error frames after the commit".to_owned(),
            End::Error(status) => format!("clean {status} errors"),
        };
        *tally.entry(name).or_default() += 1;
        if end != request.expected() {
            unexpected.push(format!(
                "{} (stream {}): expected {:?}, got {reply:?}",
                MIXES[request.mix].primary,
                request.stream,
                request.expected()
            ));
        }
    }
    assert!(
        unexpected.is_empty(),
        "{} unexpected: {unexpected:#?}",
        unexpected.len()
    );
    let mut tally: Vec<_> = tally.into_iter().collect();
    tally.sort();
    tally
        .iter()
        .map(|(name, n)| format!("{n} {name}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_requests_with_mixed_faults_each_end_once_and_leave_nothing_behind() {
    let _alone = exclusive().await;
    let finished = FinishedLog::install();
    let primary = fault("ok").await;
    let fallback = fault("ok").await;
    let relay = mixed_relay(&primary, &fallback).await;
    // No keep-alive on the client side: a connection per request, closed after it, so what is
    // left afterwards is the relay's own.
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();

    // A first burst of the same size takes the allocator to its high-water mark (glibc keeps
    // freed memory for reuse rather than returning it): the baseline is what the relay holds
    // once it has seen such a burst, so a second one must not add to it.
    let cold = resident_bytes();
    let planned = plan(REQUESTS, SEED);
    burst(&relay, &client, &planned).await;
    settled(&relay, [&primary, &fallback]).await;
    let baseline = resident_bytes();
    let tasks_before = alive_tasks();

    let started = Instant::now();
    let replies = burst(&relay, &client, &planned).await;
    let elapsed = started.elapsed();
    let at_end = resident_bytes();
    let settle = settled(&relay, [&primary, &fallback]).await;
    let tasks_after = alive_tasks();

    let tally = tally(&planned, &replies);
    // The relay's view: one "request finished" line per request, no more, no less.
    for reply in &replies {
        let id = reply.headers["x-relayrace-request-id"].to_str().unwrap();
        let count = finished.count(id);
        assert_eq!(count, 1, "request {id} finished {count} times");
    }
    drop(replies);
    let after = resident_bytes();
    let grown = after.saturating_sub(baseline);
    assert!(
        grown < MEMORY_TOLERANCE,
        "resident memory grew by {} (baseline {}, after {})",
        mib(grown),
        mib(baseline),
        mib(after)
    );
    let pooled = primary.open_connections() + fallback.open_connections();
    // Pooled connections are tasks on both sides; nothing else may be left.
    assert!(
        tasks_after <= tasks_before + 2 * pooled + 8,
        "tasks: {tasks_before} before, {tasks_after} after, {pooled} pooled connections"
    );
    let bound = 20 * SECOND;
    assert_bound(elapsed, bound, "the burst");
    record(Row {
        id: "17",
        scenario: "1,000 concurrent requests with randomly mixed faults",
        configuration: format!(
            "{} mixes of primary/fallback faults (every fault above, and both failing), JSON or \
             stream, seed {SEED:#x}; provider timeouts {TIMEOUTS}; `health.failure_threshold: \
             1000000` so every request meets its fault; the same burst is sent twice: the \
             first sets the memory baseline, the second is measured",
            MIXES.len()
        ),
        expected: "each request ends exactly once, with an answer or a clean error; afterwards \
                   no race actor, attempt task or upstream connection is left, and memory \
                   returns to its baseline",
        outcome: format!(
            "1000/1000 ended once as their fault predicts ({}); one \"request finished\" log \
             line each; settled {} after the burst: 0 race/attempt actors, 0 open attempts, \
             {pooled} idle pooled upstream connections (cap {IDLE_POOL} per provider), tasks \
             {tasks_before} → {tasks_after}; resident memory {} at start, {} after the first \
             burst (baseline), {} at the end of this one, {} after it settled (+{}, \
             tolerance {})",
            tally.join(", "),
            human(settle),
            mib(cold),
            mib(baseline),
            mib(at_end),
            mib(after),
            mib(grown),
            mib(MEMORY_TOLERANCE)
        ),
        time: elapsed,
        bound,
    });
    relay.stop().await;
}

/// Counts the relay's `request finished` log lines per request id.
#[derive(Clone)]
struct FinishedLog(Arc<Mutex<HashMap<String, usize>>>);

impl FinishedLog {
    /// The process-wide log, installed as the global tracing subscriber on first use.
    fn install() -> Self {
        static LOG: LazyLock<FinishedLog> =
            LazyLock::new(|| FinishedLog(Arc::new(Mutex::new(HashMap::new()))));
        static INSTALLED: OnceLock<()> = OnceLock::new();
        INSTALLED.get_or_init(|| {
            let subscriber = tracing_subscriber::registry().with(LOG.clone());
            tracing::subscriber::set_global_default(subscriber).unwrap();
        });
        LOG.clone()
    }

    fn count(&self, request_id: &str) -> usize {
        self.0.lock().unwrap().get(request_id).copied().unwrap_or(0)
    }
}

impl<S: Subscriber> Layer<S> for FinishedLog {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if metadata.is_event() && metadata.target().starts_with("relayrace") {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        if fields.message == "request finished" {
            *self.0.lock().unwrap().entry(fields.request_id).or_default() += 1;
        }
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    request_id: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "request_id" {
            self.request_id = value.to_owned();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "request_id" => self.request_id = format!("{value:?}"),
            _ => {}
        }
    }
}

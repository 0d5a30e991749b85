//! Hedging's pure core: each provider's learned delay per class of request, and the budget
//! shared by every request. No actor owns these: requests write them in place (a commit time
//! per success, a deposit per request, a withdrawal per hedge) with atomics, so learning costs
//! a success no message, and the route path and `/status` read them the same way.
//!
//! **The sketch.** A provider's times to commit, per [`RequestClass`], go into a log-bucketed
//! histogram (eight buckets per doubling, so a bucket is ±5 % wide, from 1 ms to over an hour)
//! in two halves: new commits go to the current half, and the quantile reads both. When the
//! current half holds 256 commits or is five minutes old, the older half is cleared and takes
//! its place, so the estimate follows the last 256–512 commits or ten minutes, whichever is
//! fewer. A quantile is the upper edge of its bucket: it errs towards hedging later. No crate
//! fits: `sketches-ddsketch` (the same log buckets) takes `&mut` for every insert, which would
//! put a lock on every success.
//!
//! **The budget**, in the style of a retry budget: over a sliding window of ten slots, each
//! request deposits and each hedge withdraws; a hedge is allowed while the hedges in the window
//! stay within `ratio` of its requests plus `min_per_second` per second. A slot is one 64-bit
//! word (its slot number, requests, hedges), updated by compare-and-swap.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::config::{HedgeBudget, HedgeConfig};
use crate::upstream::RequestShape;

/// The classes of request a provider's time to commit is learned for: streams by the size of
/// their body, and answers that are not streamed (whose commit is the end of the generation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequestClass {
    /// A stream of a body under 32 KB.
    Under32kb,
    /// A stream of a body of 32 KB to 256 KB.
    Under256kb,
    /// A stream of a body of 256 KB to 1 MB.
    Under1mb,
    /// A stream of a larger body.
    Larger,
    /// An answer that is not streamed.
    Whole,
}

const CLASSES: usize = 5;

impl RequestClass {
    /// Every class, smallest first.
    pub const ALL: [RequestClass; CLASSES] = [
        RequestClass::Under32kb,
        RequestClass::Under256kb,
        RequestClass::Under1mb,
        RequestClass::Larger,
        RequestClass::Whole,
    ];

    /// The class of a request of this shape.
    pub fn of(shape: RequestShape) -> Self {
        const KB: usize = 1024;
        match shape.bytes {
            _ if !shape.streamed => RequestClass::Whole,
            bytes if bytes < 32 * KB => RequestClass::Under32kb,
            bytes if bytes < 256 * KB => RequestClass::Under256kb,
            bytes if bytes < 1024 * KB => RequestClass::Under1mb,
            _ => RequestClass::Larger,
        }
    }

    /// Its name, as in the config's `initial_delay`: `under_32kb`, …, `whole`.
    pub fn name(self) -> &'static str {
        match self {
            RequestClass::Under32kb => "under_32kb",
            RequestClass::Under256kb => "under_256kb",
            RequestClass::Under1mb => "under_1mb",
            RequestClass::Larger => "larger",
            RequestClass::Whole => "whole",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn initial_delay(self, config: &HedgeConfig) -> Duration {
        let initial = &config.initial_delay;
        match self {
            RequestClass::Under32kb => initial.under_32kb,
            RequestClass::Under256kb => initial.under_256kb,
            RequestClass::Under1mb => initial.under_1mb,
            RequestClass::Larger => initial.larger,
            RequestClass::Whole => initial.whole,
        }
    }
}

/// Serialized as its [`name`](RequestClass::name).
impl Serialize for RequestClass {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// One provider's hedge settings and what it has learned.
#[derive(Debug)]
pub(crate) struct ProviderHedge {
    pub(crate) config: HedgeConfig,
    times: CommitTimes,
}

impl ProviderHedge {
    pub(crate) fn new(config: HedgeConfig) -> Self {
        ProviderHedge {
            times: CommitTimes::new(config.percentile, config.min_samples),
            config,
        }
    }

    /// How long a primary of this class waits for its commit before a hedge joins; `None` when
    /// the provider is not hedged.
    pub(crate) fn delay(&self, class: RequestClass) -> Option<Duration> {
        self.config.enabled.then(|| self.planned(class).0)
    }

    /// The delay and whether it was learned.
    fn planned(&self, class: RequestClass) -> (Duration, bool) {
        let config = &self.config;
        let (delay, learned) = match self.times.quantile(class) {
            Some(quantile) => (quantile.mul_f64(config.factor), true),
            None => (class.initial_delay(config), false),
        };
        (delay.clamp(config.min_delay, config.max_delay), learned)
    }

    /// Learns one commit, made at `now` (the caller's clock reading, to spare one).
    pub(crate) fn record(&self, class: RequestClass, latency: Duration, now: Instant) {
        self.times.record(class, latency, now);
    }

    /// Each class's delay, as shown in `/status`.
    pub(crate) fn delays(&self) -> Vec<ClassDelay> {
        RequestClass::ALL
            .iter()
            .map(|&class| {
                let (delay, learned) = self.planned(class);
                ClassDelay {
                    class,
                    delay,
                    learned,
                    samples: self.times.samples(class),
                }
            })
            .collect()
    }
}

/// One class's hedge delay on one provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ClassDelay {
    /// The class of request.
    pub class: RequestClass,
    /// How long a primary of this class waits for its commit before a hedge joins.
    #[serde(serialize_with = "millis", rename = "delay_ms")]
    pub delay: Duration,
    /// Whether it is learned (`false`: the initial delay, too few commits yet).
    pub learned: bool,
    /// Commits it is learned from.
    pub samples: u32,
}

fn millis<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}

/// Buckets per doubling of the time to commit.
const PER_OCTAVE: f64 = 8.0;
/// Bucket 0 holds commits under 1 ms; the last, those over 2^22 ms (70 minutes).
const BUCKETS: usize = 1 + 22 * 8;
/// Commits in a half before it is rotated out.
const HALF_SAMPLES: u32 = 256;
/// Age of a half before it is rotated out.
const HALF_AGE: Duration = Duration::from_secs(300);

/// Times to commit of one provider, per class.
#[derive(Debug)]
struct CommitTimes {
    born: Instant,
    percentile: f64,
    min_samples: u32,
    classes: [Sketch; CLASSES],
}

#[derive(Debug)]
struct Sketch {
    halves: [Half; 2],
    current: AtomicUsize,
    rotating: AtomicBool,
    /// When the current half opened, in nanoseconds since `born`.
    opened: AtomicU64,
    /// The quantile as last computed, in nanoseconds; 0 while there are too few commits.
    quantile: AtomicU64,
    recorded: AtomicU32,
}

#[derive(Debug)]
struct Half {
    counts: Box<[AtomicU32]>,
    total: AtomicU32,
}

impl Half {
    fn new() -> Self {
        Half {
            counts: (0..BUCKETS).map(|_| AtomicU32::new(0)).collect(),
            total: AtomicU32::new(0),
        }
    }

    fn clear(&self) {
        for count in self.counts.iter() {
            count.store(0, Ordering::Relaxed);
        }
        self.total.store(0, Ordering::Relaxed);
    }
}

fn bucket(latency: Duration) -> usize {
    let ms = latency.as_secs_f64() * 1e3;
    if ms < 1.0 {
        return 0;
    }
    // `ms >= 1`, so the logarithm is finite and not negative.
    (1 + (ms.log2() * PER_OCTAVE) as usize).min(BUCKETS - 1)
}

/// The upper edge of a bucket: bucket `b ≥ 1` holds [2^((b-1)/8), 2^(b/8)) ms.
fn upper_edge(bucket: usize) -> Duration {
    Duration::from_secs_f64(2f64.powf(bucket as f64 / PER_OCTAVE) / 1e3)
}

impl CommitTimes {
    fn new(percentile: f64, min_samples: u32) -> Self {
        let sketch = || Sketch {
            halves: [Half::new(), Half::new()],
            current: AtomicUsize::new(0),
            rotating: AtomicBool::new(false),
            opened: AtomicU64::new(0),
            quantile: AtomicU64::new(0),
            recorded: AtomicU32::new(0),
        };
        CommitTimes {
            born: Instant::now(),
            percentile,
            min_samples,
            classes: std::array::from_fn(|_| sketch()),
        }
    }

    fn record(&self, class: RequestClass, latency: Duration, now: Instant) {
        let sketch = &self.classes[class.index()];
        let now = nanos(now.saturating_duration_since(self.born));
        sketch.rotate_if_due(now);
        let half = &sketch.halves[sketch.current.load(Ordering::Acquire)];
        half.counts[bucket(latency)].fetch_add(1, Ordering::Relaxed);
        half.total.fetch_add(1, Ordering::Relaxed);
        let recorded = sketch
            .recorded
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_add(1);
        // Every commit while few are known, then every eighth: the quantile moves slowly.
        if recorded <= 64 || recorded % 8 == 0 {
            sketch.refresh(self.percentile, self.min_samples);
        }
    }

    fn quantile(&self, class: RequestClass) -> Option<Duration> {
        match self.classes[class.index()].quantile.load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    fn samples(&self, class: RequestClass) -> u32 {
        self.classes[class.index()].samples()
    }
}

impl Sketch {
    fn samples(&self) -> u32 {
        self.halves
            .iter()
            .map(|half| half.total.load(Ordering::Relaxed))
            .sum()
    }

    /// Opens a fresh half when the current one is full or old (one rotator at a time; a
    /// commit racing the rotation lands in one half or the other).
    fn rotate_if_due(&self, now: u64) {
        let current = self.current.load(Ordering::Acquire);
        let total = self.halves[current].total.load(Ordering::Relaxed);
        let age = now.saturating_sub(self.opened.load(Ordering::Relaxed));
        let due = total >= HALF_SAMPLES || (total > 0 && age >= nanos(HALF_AGE));
        if !due || self.rotating.swap(true, Ordering::AcqRel) {
            return;
        }
        let older = 1 - current;
        self.halves[older].clear();
        self.opened.store(now, Ordering::Relaxed);
        self.current.store(older, Ordering::Release);
        self.rotating.store(false, Ordering::Release);
    }

    fn refresh(&self, percentile: f64, min_samples: u32) {
        let samples = self.samples();
        if samples < min_samples {
            self.quantile.store(0, Ordering::Relaxed);
            return;
        }
        let rank = (percentile * f64::from(samples)).ceil().max(1.0) as u32;
        let mut seen = 0;
        let mut found = BUCKETS - 1;
        for index in 0..BUCKETS {
            seen += self
                .halves
                .iter()
                .map(|half| half.counts[index].load(Ordering::Relaxed))
                .sum::<u32>();
            if seen >= rank {
                found = index;
                break;
            }
        }
        self.quantile
            .store(nanos(upper_edge(found)).max(1), Ordering::Relaxed);
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Slots of the budget's sliding window.
const SLOTS: u64 = 10;
const EPOCH_BITS: u32 = 24;
const EPOCH_MASK: u64 = (1 << EPOCH_BITS) - 1;
const MAX_REQUESTS: u64 = (1 << 24) - 1;
const MAX_HEDGES: u64 = (1 << 16) - 1;

/// One runtime's hedging: its budget and its counters.
#[derive(Debug)]
pub(crate) struct Hedging {
    pub(crate) enabled: bool,
    pub(crate) budget: Budget,
    pub(crate) counters: HedgeCounters,
}

impl Hedging {
    pub(crate) fn new(config: &HedgeConfig) -> Self {
        Hedging {
            enabled: config.enabled,
            budget: Budget::new(&config.budget),
            counters: HedgeCounters::default(),
        }
    }
}

/// The hedge budget of one runtime.
#[derive(Debug)]
pub(crate) struct Budget {
    born: Instant,
    slot: Duration,
    slots: [AtomicU64; SLOTS as usize],
    ratio: f64,
    floor: f64,
    window: Duration,
}

fn pack(epoch: u64, requests: u64, hedges: u64) -> u64 {
    (epoch & EPOCH_MASK) << 40 | requests.min(MAX_REQUESTS) << 16 | hedges.min(MAX_HEDGES)
}

fn unpack(word: u64) -> (u64, u64, u64) {
    (word >> 40, (word >> 16) & MAX_REQUESTS, word & MAX_HEDGES)
}

impl Budget {
    pub(crate) fn new(config: &HedgeBudget) -> Self {
        Budget {
            born: Instant::now(),
            slot: config.window / SLOTS as u32,
            slots: std::array::from_fn(|_| AtomicU64::new(pack(EPOCH_MASK, 0, 0))),
            ratio: config.ratio,
            floor: config.min_per_second * config.window.as_secs_f64(),
            window: config.window,
        }
    }

    fn epoch(&self, now: Instant) -> u64 {
        let slot = nanos(self.slot).max(1);
        (nanos(now.saturating_duration_since(self.born)) / slot) & EPOCH_MASK
    }

    fn slot_of(&self, epoch: u64) -> &AtomicU64 {
        &self.slots[(epoch % SLOTS) as usize]
    }

    /// One request routed, at `now`.
    pub(crate) fn deposit(&self, now: Instant) {
        let epoch = self.epoch(now);
        let _ = self
            .slot_of(epoch)
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                let (at, requests, hedges) = unpack(word);
                Some(if at == epoch {
                    pack(at, requests + 1, hedges)
                } else {
                    pack(epoch, 1, 0)
                })
            });
    }

    /// Takes one hedge from the budget; `false` when it is spent.
    pub(crate) fn withdraw(&self) -> bool {
        let epoch = self.epoch(Instant::now());
        let (requests, hedges) = self.tally(epoch);
        if (hedges + 1) as f64 > self.allowed(requests) {
            return false;
        }
        self.slot_of(epoch)
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                let (at, requests, hedges) = unpack(word);
                if at != epoch {
                    Some(pack(epoch, 0, 1))
                } else if hedges < MAX_HEDGES {
                    Some(pack(at, requests, hedges + 1))
                } else {
                    None
                }
            })
            .is_ok()
    }

    fn allowed(&self, requests: u64) -> f64 {
        self.ratio * requests as f64 + self.floor
    }

    /// Requests and hedges in the window that ends in slot `epoch`.
    fn tally(&self, epoch: u64) -> (u64, u64) {
        self.slots
            .iter()
            .map(|slot| unpack(slot.load(Ordering::Acquire)))
            .filter(|(at, _, _)| epoch.wrapping_sub(*at) & EPOCH_MASK < SLOTS)
            .fold((0, 0), |(r, h), (_, requests, hedges)| {
                (r + requests, h + hedges)
            })
    }

    pub(crate) fn status(&self) -> BudgetStatus {
        let (requests, hedges) = self.tally(self.epoch(Instant::now()));
        let allowed = self.allowed(requests).floor() as u64;
        BudgetStatus {
            window: self.window,
            requests,
            hedges,
            allowed,
            available: allowed.saturating_sub(hedges),
        }
    }
}

/// The hedge budget as it stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct BudgetStatus {
    /// The sliding window counted over.
    #[serde(serialize_with = "millis", rename = "window_ms")]
    pub window: Duration,
    /// Requests routed in the window.
    pub requests: u64,
    /// Hedges started in the window.
    pub hedges: u64,
    /// Hedges the window allows.
    pub allowed: u64,
    /// Hedges left before the budget is spent.
    pub available: u64,
}

/// How hedged requests ended, counted since the runtime started.
#[derive(Debug, Default)]
pub(crate) struct HedgeCounters {
    started: AtomicU64,
    won_by_original: AtomicU64,
    won_by_hedge: AtomicU64,
    failed: AtomicU64,
    budget_spent: AtomicU64,
}

/// What ended a hedged request (or kept one from being hedged).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HedgeEnd {
    /// The slow primary committed first.
    Original,
    /// The race the hedge started won (the hedge, or a failover racer that joined it).
    Hedge,
    /// Nobody committed.
    Failed,
}

impl HedgeCounters {
    pub(crate) fn started(&self) {
        self.started.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn budget_spent(&self) {
        self.budget_spent.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn ended(&self, end: HedgeEnd) {
        let counter = match end {
            HedgeEnd::Original => &self.won_by_original,
            HedgeEnd::Hedge => &self.won_by_hedge,
            HedgeEnd::Failed => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn counts(&self) -> HedgeCounts {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        HedgeCounts {
            started: read(&self.started),
            won_by_original: read(&self.won_by_original),
            won_by_hedge: read(&self.won_by_hedge),
            failed: read(&self.failed),
            budget_spent: read(&self.budget_spent),
        }
    }
}

/// Hedges since the runtime started, by how they ended. `started` minus the three ends is the
/// hedged requests in flight or abandoned by their client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HedgeCounts {
    /// Hedges started.
    pub started: u64,
    /// The slow primary committed first after all.
    pub won_by_original: u64,
    /// The hedge (or a failover racer that joined its race) committed first.
    pub won_by_hedge: u64,
    /// Nobody committed.
    pub failed: u64,
    /// A slow primary was not hedged: the budget was spent.
    pub budget_spent: u64,
}

#[cfg(test)]
mod tests;

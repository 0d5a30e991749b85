//! A bounded window of the latest durations and their percentiles, recorded without locks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The latest `capacity` durations; older ones are overwritten as new ones come. Any number of
/// threads record at once; a read sees each slot's latest sample.
#[derive(Debug)]
pub(crate) struct Samples {
    /// Nanoseconds plus one; 0 is a slot never written.
    slots: Box<[AtomicU64]>,
    recorded: AtomicU64,
}

impl Samples {
    /// An empty window of at most `capacity` (at least one) durations.
    pub(crate) fn new(capacity: usize) -> Self {
        Samples {
            slots: (0..capacity.max(1)).map(|_| AtomicU64::new(0)).collect(),
            recorded: AtomicU64::new(0),
        }
    }

    /// Adds a duration in place of the oldest.
    pub(crate) fn record(&self, sample: Duration) {
        let index = self.recorded.fetch_add(1, Ordering::Relaxed) % self.slots.len() as u64;
        let nanos = u64::try_from(sample.as_nanos()).unwrap_or(u64::MAX - 1);
        // The index is below the length: `%` above.
        if let Some(slot) = self.slots.get(index as usize) {
            slot.store(nanos + 1, Ordering::Relaxed);
        }
    }

    /// The nearest-rank percentiles `ps` (each within 0.0..=1.0) of the window, in that order;
    /// `None` for every one when the window is empty.
    pub(crate) fn percentiles<const N: usize>(&self, ps: [f64; N]) -> [Option<Duration>; N] {
        let mut sorted: Vec<Duration> = self
            .slots
            .iter()
            .map(|slot| slot.load(Ordering::Relaxed))
            .filter(|&stored| stored != 0)
            .map(|stored| Duration::from_nanos(stored - 1))
            .collect();
        sorted.sort_unstable();
        ps.map(|p| {
            let rank = (p.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
            sorted.get(rank.saturating_sub(1)).copied()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples = Samples::new(100);
        for n in (1..=100).rev() {
            samples.record(ms(n));
        }
        assert_eq!(
            samples.percentiles([0.5, 0.99, 1.0]),
            [Some(ms(50)), Some(ms(99)), Some(ms(100))]
        );
    }

    #[test]
    fn an_empty_window_has_no_percentiles() {
        assert_eq!(Samples::new(8).percentiles([0.5]), [None]);
    }

    #[test]
    fn the_window_keeps_only_the_latest() {
        let samples = Samples::new(3);
        for n in [900, 800, 1, 2, 3] {
            samples.record(ms(n));
        }
        assert_eq!(samples.percentiles([1.0]), [Some(ms(3))]);
        assert_eq!(samples.percentiles([0.0]), [Some(ms(1))]);
    }

    #[test]
    fn threads_recording_at_once_fill_every_slot_with_their_samples() {
        let samples = Samples::new(64);
        std::thread::scope(|scope| {
            for thread in 0..4u64 {
                let samples = &samples;
                scope.spawn(move || {
                    for n in 1..=1000 {
                        samples.record(ms(thread * 1000 + n));
                    }
                });
            }
        });
        let [lowest, highest] = samples.percentiles([0.0, 1.0]);
        assert!(lowest.unwrap() >= ms(1) && highest.unwrap() <= ms(4000));
        let filled = samples
            .slots
            .iter()
            .filter(|s| s.load(Ordering::Relaxed) != 0);
        assert_eq!(filled.count(), 64);
        assert_eq!(samples.recorded.load(Ordering::Relaxed), 4000);
    }
}

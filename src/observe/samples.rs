//! A bounded window of the latest durations and their percentiles.

use std::collections::VecDeque;
use std::time::Duration;

/// The latest `capacity` durations; older ones fall out as new ones come.
#[derive(Clone, Debug)]
pub(crate) struct Samples {
    window: VecDeque<Duration>,
    capacity: usize,
}

impl Samples {
    /// An empty window of at most `capacity` (at least one) durations.
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Samples {
            window: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    /// Adds a duration, dropping the oldest when full.
    pub(crate) fn record(&mut self, sample: Duration) {
        if self.window.len() == self.capacity {
            self.window.pop_front();
        }
        self.window.push_back(sample);
    }

    /// The nearest-rank percentiles `ps` (each within 0.0..=1.0) of the window, in that order;
    /// `None` for every one when the window is empty.
    pub(crate) fn percentiles<const N: usize>(&self, ps: [f64; N]) -> [Option<Duration>; N] {
        let mut sorted: Vec<Duration> = self.window.iter().copied().collect();
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
        let mut samples = Samples::new(100);
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
        let mut samples = Samples::new(3);
        for n in [900, 800, 1, 2, 3] {
            samples.record(ms(n));
        }
        assert_eq!(samples.percentiles([1.0]), [Some(ms(3))]);
        assert_eq!(samples.percentiles([0.0]), [Some(ms(1))]);
    }
}

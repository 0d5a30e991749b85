//! A provider's standing: what lets a request count a success without a message.
//!
//! One message per successful request would wake the provider actor for nothing: while the
//! provider is healthy, enabled and has no failure since its last success, a success changes
//! nothing but counters. So the actor (the [`StandingOwner`]) keeps a `clean` flag, requests (the
//! [`Standing`] they hold) count pending reports, and a success is counted in place only when
//! the provider is clean and no report is pending.
//!
//! **The ordering invariant.** A requester marks a report pending before it sends it, and the
//! owner settles it only after it has processed it and republished `clean`. `clean` is stored
//! with `Release` before the `AcqRel` decrement of `pending`; a requester loads `pending` with
//! `Acquire` before `clean`. So a requester that sees nothing pending also sees `clean` as it
//! stood after the last processed report, and a success never overtakes a failure still in the
//! mailbox (a success after a failure resets the failure count).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, Default)]
struct Cells {
    clean: AtomicBool,
    pending: AtomicU64,
    quiet_successes: AtomicU64,
    last_success_nanos: AtomicU64,
}

impl Cells {
    fn record_latency(&self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.last_success_nanos
            .store(nanos.max(1), Ordering::Relaxed);
    }

    /// One fewer pending report, never below zero (a restart may have forgotten it already).
    fn settle(&self) {
        let _ = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }
}

/// A provider's two halves: the requesters' and its actor's.
pub(crate) fn standing() -> (Standing, StandingOwner) {
    let cells = Arc::new(Cells::default());
    (Standing(cells.clone()), StandingOwner(cells))
}

/// The requesters' half: count a success in place, or mark a report pending.
#[derive(Clone, Debug)]
pub(crate) struct Standing(Arc<Cells>);

impl Standing {
    /// Counts a success without a message when the provider is clean and nothing is pending;
    /// `false` means the success must be reported.
    pub(crate) fn count_success(&self, latency: Duration) -> bool {
        let cells = &self.0;
        if cells.pending.load(Ordering::Acquire) != 0 || !cells.clean.load(Ordering::Acquire) {
            return false;
        }
        cells.quiet_successes.fetch_add(1, Ordering::Relaxed);
        cells.record_latency(latency);
        true
    }

    /// Marks a report pending, before it is sent.
    pub(crate) fn report_pending(&self) {
        self.0.pending.fetch_add(1, Ordering::AcqRel);
    }

    /// The report marked pending was never delivered: nothing will settle it.
    pub(crate) fn report_lost(&self) {
        self.0.settle();
    }
}

/// The provider actor's half: publishes `clean`, settles processed reports, reads the counts.
#[derive(Clone, Debug)]
pub(crate) struct StandingOwner(Arc<Cells>);

impl StandingOwner {
    /// A (re)started actor: the reports a crashed predecessor never processed are gone with its
    /// mailbox.
    pub(crate) fn restart(&self, clean: bool) {
        self.0.pending.store(0, Ordering::Release);
        self.0.clean.store(clean, Ordering::Release);
    }

    /// Publishes whether a success may be counted without a message. Call before [`settle`].
    ///
    /// [`settle`]: StandingOwner::settle
    pub(crate) fn set_clean(&self, clean: bool) {
        self.0.clean.store(clean, Ordering::Release);
    }

    /// One pending report has been processed.
    pub(crate) fn settle(&self) {
        self.0.settle();
    }

    /// Records the latency of a success that was reported.
    pub(crate) fn record_latency(&self, latency: Duration) {
        self.0.record_latency(latency);
    }

    /// Successes counted without a message.
    pub(crate) fn quiet_successes(&self) -> u64 {
        self.0.quiet_successes.load(Ordering::Relaxed)
    }

    /// The latency of the last success, however it was counted.
    pub(crate) fn last_success_latency(&self) -> Option<Duration> {
        match self.0.last_success_nanos.load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::thread;

    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// What requesters send their provider's actor.
    enum Report {
        Success,
        Failure,
    }

    #[test]
    fn a_success_is_counted_in_place_only_when_clean_and_nothing_is_pending() {
        let (standing, owner) = standing();
        owner.restart(true);
        assert!(standing.count_success(MS));
        standing.report_pending();
        assert!(!standing.count_success(MS), "a report is pending");
        owner.set_clean(false);
        owner.settle();
        assert!(!standing.count_success(MS), "the provider is not clean");
        owner.set_clean(true);
        assert!(standing.count_success(2 * MS));
        assert_eq!(owner.quiet_successes(), 2);
        assert_eq!(owner.last_success_latency(), Some(2 * MS));
    }

    #[test]
    fn a_report_lost_after_a_restart_does_not_wrap_the_pending_count() {
        let (standing, owner) = standing();
        standing.report_pending();
        owner.restart(true);
        standing.report_lost();
        assert!(standing.count_success(MS), "pending must stay at zero");
    }

    /// Requesters on four threads report failures and successes to an owner thread that
    /// processes them in order, the way the actor does. However the threads interleave, every
    /// report arrives marked pending, no success is lost or counted twice, and every pending mark
    /// is settled.
    #[test]
    fn both_halves_driven_concurrently_account_for_every_success() {
        const REQUESTERS: u64 = 4;
        const REPORTS: u64 = 20_000;
        let (standing, owner) = standing();
        owner.restart(true);
        let (sender, mailbox) = mpsc::channel::<Report>();
        let actor = {
            let owner = owner.clone();
            thread::spawn(move || {
                let mut reported_successes = 0u64;
                for report in mailbox {
                    // A report is marked pending before it is sent, so it is pending still.
                    assert!(owner.0.pending.load(Ordering::Acquire) >= 1);
                    match report {
                        Report::Success => {
                            reported_successes += 1;
                            owner.set_clean(true);
                        }
                        Report::Failure => owner.set_clean(false),
                    }
                    owner.settle();
                }
                reported_successes
            })
        };
        let requesters: Vec<_> = (0..REQUESTERS)
            .map(|seed| {
                let (standing, sender) = (standing.clone(), sender.clone());
                thread::spawn(move || {
                    let mut rng = SmallRng::seed_from_u64(seed);
                    let mut successes = 0u64;
                    for _ in 0..REPORTS {
                        let success = rng.random_bool(0.9);
                        successes += u64::from(success);
                        if success && standing.count_success(MS) {
                            continue;
                        }
                        standing.report_pending();
                        sender
                            .send(if success {
                                Report::Success
                            } else {
                                Report::Failure
                            })
                            .unwrap();
                    }
                    successes
                })
            })
            .collect();
        drop(sender);
        let successes: u64 = requesters.into_iter().map(|r| r.join().unwrap()).sum();
        let reported = actor.join().unwrap();
        assert!(
            owner.quiet_successes() > 0,
            "some successes skip the mailbox"
        );
        assert!(reported > 0, "some successes queue behind a failure");
        assert_eq!(owner.quiet_successes() + reported, successes);
        assert_eq!(standing.0.pending.load(Ordering::Acquire), 0);
    }
}

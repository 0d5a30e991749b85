//! The record of every attempt a fault upstream saw, published through a `watch` channel so
//! tests can wait for "n attempts" or "n disconnects" without polling.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use tokio::sync::watch;
use tokio::time::Instant;

/// One request the fault upstream saw.
#[derive(Clone, Debug)]
pub struct AttemptRecord {
    /// When it arrived (its body read), since the server started.
    pub at: Duration,
    /// The path: `/v1/messages` or `/v1/messages/count_tokens`.
    pub path: String,
    /// The scenario text it was answered by: the canonical text of the server's default, or
    /// the text after `fault:` in its `model` as written.
    pub scenario: String,
    /// Its body's `stream` flag.
    pub stream: bool,
    /// Its body's `model` (empty when the body has none).
    pub model: String,
    /// The `request-id` header of the answer (`req_fault_N`, unique in the process).
    pub request_id: String,
    /// Its headers, as received.
    pub headers: HeaderMap,
    /// Its body, as received.
    pub body: Bytes,
    /// The client went away before the scenario played to its end.
    pub disconnected: bool,
    /// The scenario played to its end: the whole answer or error was handed to the connection,
    /// or the scripted cut / reset happened. Stays false for `silent` and `stall_after`.
    pub completed: bool,
}

/// The attempts of one server, in arrival order.
pub(super) struct Journal {
    started: Instant,
    log: watch::Sender<Vec<AttemptRecord>>,
}

impl Journal {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Journal {
            started: Instant::now(),
            log: watch::Sender::new(Vec::new()),
        })
    }

    /// Time since the server started.
    pub(super) fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Appends `record` (its `at` set to now); returns its index and the guard that marks how
    /// it ended.
    pub(super) fn record(self: &Arc<Self>, mut record: AttemptRecord) -> (usize, AttemptGuard) {
        record.at = self.uptime();
        // What hyper parsed still points into the connection's read buffer; a record kept for
        // the server's life must not pin one buffer per attempt.
        record.body = Bytes::copy_from_slice(&record.body);
        record.headers = owned(&record.headers);
        let mut index = 0;
        self.log.send_modify(|log| {
            index = log.len();
            log.push(record);
        });
        let guard = AttemptGuard {
            journal: Arc::clone(self),
            index,
            finished: false,
        };
        (index, guard)
    }

    pub(super) fn snapshot(&self) -> Vec<AttemptRecord> {
        self.log.borrow().clone()
    }

    pub(super) fn len(&self) -> usize {
        self.log.borrow().len()
    }

    /// Attempts neither played to their end nor abandoned by their client.
    pub(super) fn open(log: &[AttemptRecord]) -> usize {
        log.iter()
            .filter(|record| !record.completed && !record.disconnected)
            .count()
    }

    pub(super) fn open_now(&self) -> usize {
        Self::open(&self.log.borrow())
    }

    /// Resolves once `done` holds for the log.
    pub(super) async fn wait_until(&self, done: impl FnMut(&Vec<AttemptRecord>) -> bool) {
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = self.log.subscribe().wait_for(done).await;
    }

    fn update(&self, index: usize, change: impl FnOnce(&mut AttemptRecord)) {
        self.log.send_modify(|log| {
            if let Some(record) = log.get_mut(index) {
                change(record);
            }
        });
    }
}

/// A copy of `headers` in allocations of its own.
fn owned(headers: &HeaderMap) -> HeaderMap {
    let mut copy = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let mut owned = HeaderValue::from_maybe_shared(Bytes::copy_from_slice(value.as_bytes()))
            .unwrap_or_else(|_| value.clone());
        owned.set_sensitive(value.is_sensitive());
        copy.append(name.clone(), owned);
    }
    copy
}

/// Marks its attempt `completed` on [`finish`](Self::finish), or `disconnected` when dropped
/// unfinished: the handler future or the body stream holding it was dropped because the client
/// went away.
pub(super) struct AttemptGuard {
    journal: Arc<Journal>,
    index: usize,
    finished: bool,
}

impl AttemptGuard {
    pub(super) fn finish(&mut self) {
        if !self.finished {
            self.finished = true;
            self.journal
                .update(self.index, |record| record.completed = true);
        }
    }
}

impl Drop for AttemptGuard {
    fn drop(&mut self) {
        if !self.finished {
            self.journal
                .update(self.index, |record| record.disconnected = true);
        }
    }
}

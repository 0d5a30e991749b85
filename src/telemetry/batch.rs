//! Log lines written in batches. A request's log line is handed to a bounded queue and the
//! handler goes on; one thread writes whatever has queued up, gathering for at most
//! [`BATCH_EVERY`] after the first line, in one write. Under load that is one write call per
//! batch instead of one per line, and worker threads never wait for each other on the stderr
//! lock (which, with every request logging a line, parked a worker whenever two lines were
//! written at once).
//!
//! No line is dropped: when the queue is full (the output is stuck), the logging thread waits as
//! a direct write would. Dropping the [`FlushGuard`] writes what is queued and stops the thread;
//! lines logged after that are written directly.

use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Longest a line waits in the queue while a batch gathers.
pub const BATCH_EVERY: Duration = Duration::from_millis(20);
/// Lines that may wait before loggers wait for the writer.
const QUEUE_LINES: usize = 16 * 1024;
/// A batch buffer grown larger than this is given back after its write.
const KEEP_BUFFER_BYTES: usize = 1024 * 1024;

enum Msg {
    Line(Vec<u8>),
    Stop,
}

/// The subscriber's writer: queues each line for the writer thread.
#[derive(Clone, Debug)]
pub struct LineQueue {
    lines: SyncSender<Msg>,
}

/// Writes what is queued and stops the writer thread when dropped.
#[derive(Debug)]
pub struct FlushGuard {
    lines: SyncSender<Msg>,
    writer: Option<JoinHandle<()>>,
}

/// A queue whose lines one thread writes to `output` in batches.
pub fn batched<W: Write + Send + 'static>(output: W) -> io::Result<(LineQueue, FlushGuard)> {
    let (lines, queued) = mpsc::sync_channel(QUEUE_LINES);
    let writer = thread::Builder::new()
        .name("relayrace-log".to_owned())
        .spawn(move || write_batches(&queued, output))?;
    let guard = FlushGuard {
        lines: lines.clone(),
        writer: Some(writer),
    };
    Ok((LineQueue { lines }, guard))
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        let Some(writer) = self.writer.take() else {
            return;
        };
        // Wakes the writer whether it waits for a first line or gathers a batch.
        if self.lines.send(Msg::Stop).is_ok() {
            writer.thread().unpark();
            let _ = writer.join();
        }
    }
}

impl Write for &LineQueue {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let line = Msg::Line(buf.to_vec());
        let unsent = match self.lines.try_send(line) {
            Ok(()) => return Ok(buf.len()),
            Err(TrySendError::Full(line)) => self.lines.send(line).err().map(|e| e.0),
            Err(TrySendError::Disconnected(line)) => Some(line),
        };
        if let Some(Msg::Line(line)) = unsent {
            // The writer has stopped (shutdown): write it ourselves.
            io::stderr().write_all(&line)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LineQueue {
    type Writer = &'a LineQueue;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

/// The writer thread: waits for a line, lets a batch gather, writes it; until told to stop.
fn write_batches<W: Write>(queued: &Receiver<Msg>, mut output: W) {
    let mut batch = Vec::new();
    loop {
        let mut stop = match queued.recv() {
            Ok(Msg::Line(line)) => {
                batch.extend_from_slice(&line);
                false
            }
            Ok(Msg::Stop) | Err(_) => true,
        };
        if !stop {
            thread::park_timeout(BATCH_EVERY);
        }
        for msg in queued.try_iter() {
            match msg {
                Msg::Line(line) => batch.extend_from_slice(&line),
                Msg::Stop => stop = true,
            }
        }
        // Nowhere to report a failed write but the output that failed.
        let _ = output.write_all(&batch).and_then(|()| output.flush());
        batch.clear();
        if batch.capacity() > KEEP_BUFFER_BYTES {
            batch = Vec::new();
        }
        if stop {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// An output that records each write call.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_logged_together_are_written_in_order_in_few_writes_by_the_time_the_guard_drops() {
        let output = Recorder::default();
        let (queue, guard) = batched(output.clone()).unwrap();
        for n in 0..1000 {
            (&queue)
                .write_all(format!("line {n}\n").as_bytes())
                .unwrap();
        }
        drop(guard);
        let writes = output.0.lock().unwrap().clone();
        assert!(
            writes.len() < 100,
            "1000 lines took {} writes",
            writes.len()
        );
        let expected: String = (0..1000).map(|n| format!("line {n}\n")).collect();
        assert_eq!(String::from_utf8(writes.concat()).unwrap(), expected);
    }

    /// An output that reports each write on a channel.
    struct Announcer(mpsc::Sender<Vec<u8>>);

    impl Write for Announcer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let _ = self.0.send(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_lone_line_is_written_without_waiting_for_more() {
        let (sender, written) = mpsc::channel();
        let (queue, _guard) = batched(Announcer(sender)).unwrap();
        (&queue).write_all(b"alone\n").unwrap();
        let line = written.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(line, b"alone\n");
    }
}

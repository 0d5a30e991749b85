//! The text log line: `<RFC 3339 time, µs> <LEVEL> <span{fields}:>… <message> <name=value>…`,
//! the layout of tracing-subscriber's default formatter, written with a few direct string writes
//! per field instead of its general-purpose formatting. Every request logs one line, and the
//! default formatter spent about a microsecond on it; this one takes about a third of that.
//!
//! Values are written the way the default formatter writes them: `%display` and numbers as they
//! are, strings and `?debug` values Debug-formatted (quoted, newlines and quotes escaped), so a
//! value a client chose cannot end the line or forge another.

use std::fmt;
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Formats an event as one text line (the subscriber's `event_format`).
#[derive(Clone, Copy, Debug, Default)]
pub struct TextLine;

/// Formats an event's or a span's fields (the subscriber's `fmt_fields`).
#[derive(Clone, Copy, Debug, Default)]
pub struct TextFields;

impl<S, N> FormatEvent<S, N> for TextLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(
            writer,
            "{} ",
            humantime::format_rfc3339_micros(SystemTime::now())
        )?;
        let level = event.metadata().level();
        if writer.has_ansi_escapes() {
            writer.write_str(colour(level))?;
            writer.write_str(label(level))?;
            writer.write_str(RESET)?;
        } else {
            writer.write_str(label(level))?;
        }
        writer.write_str(" ")?;
        if let Some(scope) = ctx.event_scope() {
            let mut in_span = false;
            for span in scope.from_root() {
                in_span = true;
                writer.write_str(span.metadata().name())?;
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    writer.write_str("{")?;
                    writer.write_str(fields)?;
                    writer.write_str("}")?;
                }
                writer.write_str(":")?;
            }
            if in_span {
                writer.write_str(" ")?;
            }
        }
        ctx.format_fields(writer.by_ref(), event)?;
        writer.write_str("\n")
    }
}

/// The level, right-aligned in five columns like the default formatter's.
fn label(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => " INFO",
        Level::WARN => " WARN",
        Level::ERROR => "ERROR",
    }
}

/// The level's colour at a terminal (the default formatter's).
fn colour(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "\x1b[35m",
        Level::DEBUG => "\x1b[34m",
        Level::INFO => "\x1b[32m",
        Level::WARN => "\x1b[33m",
        Level::ERROR => "\x1b[31m",
    }
}

const RESET: &str = "\x1b[0m";

impl<'w> FormatFields<'w> for TextFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = FieldWriter {
            writer,
            result: Ok(()),
            first: true,
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

/// Writes fields separated by spaces: the message as it is, the others as `name=value`.
struct FieldWriter<'w> {
    writer: Writer<'w>,
    result: fmt::Result,
    first: bool,
}

impl FieldWriter<'_> {
    /// Writes one field with `value` unless an earlier write failed.
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        self.result = self.write_field(field, value);
    }

    fn write_field(
        &mut self,
        field: &Field,
        value: impl FnOnce(&mut Writer<'_>) -> fmt::Result,
    ) -> fmt::Result {
        if !self.first {
            self.writer.write_str(" ")?;
        }
        self.first = false;
        if field.name() != "message" {
            self.writer.write_str(field.name())?;
            self.writer.write_str("=")?;
        }
        value(&mut self.writer)
    }
}

impl Visit for FieldWriter<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            return self.field(field, |w| w.write_str(value));
        }
        self.field(field, |w| {
            // Debug-formatted, as the default formatter writes strings; most values need no
            // escaping and skip the formatting machinery.
            if value
                .bytes()
                .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
            {
                w.write_str("\"")?;
                w.write_str(value)?;
                w.write_str("\"")
            } else {
                write!(w, "{value:?}")
            }
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |w| w.write_str(itoa::Buffer::new().format(value)));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |w| w.write_str(itoa::Buffer::new().format(value)));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.field(field, |w| {
            write!(w, "{value}")?;
            let mut source = value.source();
            while let Some(cause) = source {
                write!(w, ": {cause}")?;
                source = cause.source();
            }
            Ok(())
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // Records bridged from the `log` crate carry their metadata as `log.*` fields.
        if field.name().starts_with("log.") {
            return;
        }
        self.field(field, |w| write!(w, "{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    /// Collects what the subscriber writes.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Capture {
        type Writer = Capture;
        fn make_writer(&'a self) -> Capture {
            self.clone()
        }
    }

    /// The lines `log` writes through the text format (ANSI colours when `ansi`).
    fn lines(ansi: bool, log: impl FnOnce()) -> Vec<String> {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(ansi)
            .with_max_level(Level::TRACE)
            .event_format(TextLine)
            .fmt_fields(TextFields)
            .with_writer(capture.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        captured(&capture)
    }

    fn captured(capture: &Capture) -> Vec<String> {
        let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    /// Events of every kind the relay logs: fields of each type, in spans and not.
    fn every_kind() {
        let model = String::from("m\nFORGED \"x\"");
        tracing::info!(
            request_id = %"rr_01",
            model = model.as_str(),
            debugged = ?model,
            attempts = 2usize,
            shift = -3i64,
            raced = true,
            "request finished"
        );
        let span = tracing::info_span!("request", request_id = %"rr_02", stream = false);
        let _entered = span.enter();
        tracing::warn!(
            grace_ms = 100u64,
            "grace period elapsed: cancelling in-flight requests"
        );
        tracing::info!(message = "a message given as a field", n = 1u64);
    }

    /// The line without its timestamp, which is checked apart.
    fn untimed(line: &str) -> &str {
        line.split_once(' ').unwrap().1
    }

    #[test]
    fn a_line_is_time_level_message_then_fields_in_order() {
        let model = String::from("claude-sonnet-4-5");
        let lines = lines(false, || {
            tracing::info!(
                request_id = %"rr_01",
                model = model.as_str(),
                provider = %"mock",
                attempts = 1usize,
                status = 200u16,
                shift = -3i64,
                raced = false,
                "request finished"
            );
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(
            untimed(&lines[0]),
            " INFO request finished request_id=rr_01 model=\"claude-sonnet-4-5\" provider=mock \
             attempts=1 status=200 shift=-3 raced=false"
        );
        let time = lines[0].split_once(' ').unwrap().0;
        assert!(
            humantime::parse_rfc3339(time).is_ok()
                && time.len() == "2026-01-01T00:00:00.000000Z".len(),
            "an RFC 3339 time with microseconds: {time}"
        );
    }

    #[test]
    fn lines_are_those_of_the_default_formatter_but_for_the_time() {
        let ours = lines(false, every_kind);
        let capture = Capture::default();
        let default = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_target(false)
            .with_max_level(Level::TRACE)
            .with_writer(capture.clone())
            .finish();
        tracing::subscriber::with_default(default, every_kind);
        let theirs = captured(&capture);
        assert_eq!(ours.len(), 3, "{ours:?}");
        let ours: Vec<&str> = ours.iter().map(|l| untimed(l)).collect();
        let theirs: Vec<&str> = theirs.iter().map(|l| untimed(l)).collect();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn strings_a_client_chose_are_escaped_and_cannot_forge_a_line() {
        let forged = "m\nFORGED request finished outcome=ok \"quoted\" back\\slash";
        let lines = lines(false, || {
            tracing::warn!(model = forged, debugged = ?forged, "odd model");
        });
        assert_eq!(lines.len(), 1, "one line, not two: {lines:?}");
        let escaped = format!("{forged:?}");
        assert_eq!(
            untimed(&lines[0]),
            format!(" WARN odd model model={escaped} debugged={escaped}")
        );
    }

    #[test]
    fn levels_are_aligned_and_coloured_only_when_asked() {
        let plain = lines(false, || {
            tracing::trace!("t");
            tracing::debug!("d");
            tracing::info!("i");
            tracing::warn!("w");
            tracing::error!("e");
        });
        let plain: Vec<&str> = plain.iter().map(|l| untimed(l)).collect();
        assert_eq!(
            plain,
            ["TRACE t", "DEBUG d", " INFO i", " WARN w", "ERROR e"]
        );
        let coloured = lines(true, || tracing::warn!("w"));
        assert_eq!(untimed(&coloured[0]), "\x1b[33m WARN\x1b[0m w");
    }

    #[test]
    fn events_in_spans_name_them_with_their_fields_outermost_first() {
        let lines = lines(false, || {
            let outer = tracing::info_span!("request", request_id = %"rr_02", stream = true);
            let _outer = outer.enter();
            let inner = tracing::debug_span!("attempt");
            let _inner = inner.enter();
            tracing::debug!(provider = %"a", "trying");
        });
        assert_eq!(
            untimed(&lines[0]),
            "DEBUG request{request_id=rr_02 stream=true}:attempt: trying provider=a"
        );
    }

    #[derive(Debug)]
    struct Outer(Inner);
    #[derive(Debug)]
    struct Inner;
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("connect failed")
        }
    }
    impl fmt::Display for Inner {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("refused")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    impl std::error::Error for Inner {}

    #[test]
    fn errors_are_written_with_their_causes() {
        let error = Outer(Inner);
        let lines = lines(false, || {
            tracing::error!(
                error = &error as &(dyn std::error::Error + 'static),
                "upstream"
            );
        });
        assert_eq!(
            untimed(&lines[0]),
            "ERROR upstream error=connect failed: refused"
        );
    }
}

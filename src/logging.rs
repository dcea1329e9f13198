//! The log subscriber, and the writer behind it.
//!
//! Every request logs a line, so how a line is written is on the hot path: a
//! `write(2)` per line, or waking a writer thread per line, cost a third of a cached
//! introspection (README, "Performance"). Lines are appended to a shared buffer
//! instead, and a thread writes the buffer to standard error every 20 ms. A logger
//! that finds the buffer past 1 MiB (standard error is slower than the lines) writes
//! it out itself, so lines are never dropped and memory stays bounded. [`LogGuard`]
//! writes what is left when the process ends normally; a killed process loses at most
//! the last 20 ms of lines.

use crate::config::LogFormat;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::{LookupSpan, SpanRef};

/// How often buffered lines are written.
const FLUSH_EVERY: Duration = Duration::from_millis(20);

/// Past this, the logger that crosses it writes the buffer itself.
const MAX_BUFFERED_BYTES: usize = 1024 * 1024;

/// Lines waiting to be written.
#[derive(Debug, Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    /// Writes out what is buffered. The lock is held across the write so that lines
    /// keep their order.
    fn flush(&self) {
        let mut pending = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !pending.is_empty() {
            let _ = std::io::stderr().lock().write_all(&pending);
            pending.clear();
        }
    }
}

impl Buffer {
    /// Adds a line; past [`MAX_BUFFERED_BYTES`] the caller writes the buffer out itself.
    fn append(&self, line: &[u8]) -> std::io::Result<()> {
        let mut pending = self.0.lock().unwrap_or_else(|e| e.into_inner());
        pending.extend_from_slice(line);
        if pending.len() > MAX_BUFFERED_BYTES {
            std::io::stderr().lock().write_all(&pending)?;
            pending.clear();
        }
        Ok(())
    }
}

/// Writes the buffered lines when dropped; hold it until the process ends.
#[derive(Debug)]
pub struct LogGuard(Buffer);

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.0.flush();
    }
}

/// Installs the log subscriber: one line per event, text or JSON, on standard error.
/// `RUST_LOG` filters.
pub fn init_logging(format: LogFormat) -> LogGuard {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let buffer = Buffer::default();
    let flusher = buffer.clone();
    let spawned = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || loop {
            std::thread::sleep(FLUSH_EVERY);
            flusher.flush();
        });
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let lines = Lines {
        // Without a writer thread, every line is written at once.
        buffered: spawned.is_ok().then(|| buffer.clone()),
        json: format == LogFormat::Json,
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .try_init();
    LogGuard(buffer)
}

/// The layer that writes each event as one line. tracing-subscriber's own formatter
/// goes through `core::fmt` for every part of every line and took an eighth of a
/// cached introspection's CPU (README, "Performance"); this one writes the same lines
/// (the timestamp, the level, the spans in scope with their fields, the target, the
/// message and the fields) with the timestamp's date made once a second, numbers
/// through `itoa`, and a span's fields rendered once, when they are recorded.
struct Lines {
    /// `None`: straight to standard error.
    buffered: Option<Buffer>,
    json: bool,
}

/// A span's fields, rendered as its lines show them: `a=1 b="x"` or `"a":1,"b":"x"`.
struct SpanFields(String);

impl<S> Layer<S> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut fields = String::new();
        attributes.record(&mut FieldWriter::new(&mut fields, None, self.json));
        span.extensions_mut().insert(SpanFields(fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        if let Some(SpanFields(fields)) = extensions.get_mut::<SpanFields>() {
            values.record(&mut FieldWriter::new(fields, None, self.json));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        // The line's three buffers are kept per thread: a line allocates nothing once
        // the thread has written a few.
        thread_local! {
            static SCRATCH: std::cell::Cell<[String; 3]> = const { std::cell::Cell::new([String::new(), String::new(), String::new()]) };
        }
        let [mut line, mut message, mut fields] = SCRATCH.take();
        self.write_line(event, &ctx, &mut line, &mut message, &mut fields);
        match &self.buffered {
            Some(buffer) => {
                let _ = buffer.append(line.as_bytes());
            }
            None => {
                let _ = std::io::stderr().lock().write_all(line.as_bytes());
            }
        }
        for buffer in [&mut line, &mut message, &mut fields] {
            buffer.clear();
        }
        SCRATCH.set([line, message, fields]);
    }
}

impl Lines {
    /// Formats `event` into `line`; `message` and `fields` are scratch space.
    fn write_line<S>(
        &self,
        event: &Event<'_>,
        ctx: &Context<'_, S>,
        line: &mut String,
        message: &mut String,
        fields: &mut String,
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        event.record(&mut FieldWriter::new(fields, Some(message), self.json));
        let spans = ctx
            .event_scope(event)
            .into_iter()
            .flat_map(|scope| scope.from_root());
        let text = EventText {
            metadata: event.metadata(),
            message,
            fields,
        };
        if self.json {
            text.write_json(spans, line);
        } else {
            text.write_plain(spans, line);
        }
    }
}

/// An event's parts, rendered once, for either shape of line.
struct EventText<'a> {
    metadata: &'static tracing::Metadata<'static>,
    message: &'a str,
    fields: &'a str,
}

impl EventText<'_> {
    /// tracing-subscriber's JSON shape: fields, target, the innermost span and all.
    fn write_json<'s, S: for<'a> LookupSpan<'a> + 's>(
        &self,
        spans: impl Iterator<Item = SpanRef<'s, S>>,
        line: &mut String,
    ) {
        line.push_str("{\"timestamp\":\"");
        timestamp(line);
        line.push_str("\",\"level\":\"");
        line.push_str(self.metadata.level().as_str());
        line.push_str("\",\"fields\":{");
        if !self.message.is_empty() {
            line.push_str("\"message\":");
            json_string(line, self.message);
            if !self.fields.is_empty() {
                line.push(',');
            }
        }
        line.push_str(self.fields);
        line.push_str("},\"target\":");
        json_string(line, self.metadata.target());
        let mut innermost = None;
        let mut list = String::new();
        for span in spans {
            let extensions = span.extensions();
            let mut object = String::from("{");
            if let Some(SpanFields(fields)) = extensions.get::<SpanFields>() {
                if !fields.is_empty() {
                    object.push_str(fields);
                    object.push(',');
                }
            }
            object.push_str("\"name\":");
            json_string(&mut object, span.name());
            object.push('}');
            if !list.is_empty() {
                list.push(',');
            }
            list.push_str(&object);
            innermost = Some(object);
        }
        if let Some(span) = innermost {
            line.push_str(",\"span\":");
            line.push_str(&span);
            line.push_str(",\"spans\":[");
            line.push_str(&list);
            line.push(']');
        }
        line.push_str("}\n");
    }

    /// tracing-subscriber's compact text: time, level, spans with their fields,
    /// target, message, fields.
    fn write_plain<'s, S: for<'a> LookupSpan<'a> + 's>(
        &self,
        spans: impl Iterator<Item = SpanRef<'s, S>>,
        line: &mut String,
    ) {
        timestamp(line);
        line.push(' ');
        let level = self.metadata.level().as_str();
        line.push_str(&"     "[level.len()..]);
        line.push_str(level);
        line.push(' ');
        let mut any = false;
        for span in spans {
            line.push_str(span.name());
            if let Some(SpanFields(fields)) = span.extensions().get::<SpanFields>() {
                if !fields.is_empty() {
                    line.push('{');
                    line.push_str(fields);
                    line.push('}');
                }
            }
            line.push(':');
            any = true;
        }
        if any {
            line.push(' ');
        }
        line.push_str(self.metadata.target());
        line.push_str(": ");
        line.push_str(self.message);
        if !self.fields.is_empty() {
            if !self.message.is_empty() {
                line.push(' ');
            }
            line.push_str(self.fields);
        }
        line.push('\n');
    }
}

/// Renders fields as a line shows them: text `a=1 b="x"` (strings and `?` values in
/// their `Debug` form, `%` values as they display, as tracing-subscriber writes them),
/// or JSON members. The `message` goes apart, when asked for.
struct FieldWriter<'a> {
    out: &'a mut String,
    message: Option<&'a mut String>,
    json: bool,
}

impl<'a> FieldWriter<'a> {
    fn new(out: &'a mut String, message: Option<&'a mut String>, json: bool) -> Self {
        FieldWriter { out, message, json }
    }

    /// Starts the member `name` and returns where its value goes; `None` for the
    /// message, which goes to `message`.
    fn member(&mut self, name: &str) -> &mut String {
        if name == "message" {
            if let Some(message) = self.message.as_deref_mut() {
                return message;
            }
        }
        if !self.out.is_empty() {
            self.out.push(if self.json { ',' } else { ' ' });
        }
        if self.json {
            json_string(self.out, name);
            self.out.push(':');
        } else {
            self.out.push_str(name);
            self.out.push('=');
        }
        self.out
    }

    /// Whether `field` is the message that goes apart, as it is, to be placed later.
    fn is_apart(&self, field: &Field) -> bool {
        field.name() == "message" && self.message.is_some()
    }

    fn number(&mut self, name: &str, value: impl itoa::Integer) {
        let mut digits = itoa::Buffer::new();
        self.member(name).push_str(digits.format(value));
    }
}

impl Visit for FieldWriter<'_> {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.number(field.name(), value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.number(field.name(), value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        let text = if value { "true" } else { "false" };
        let out = self.member(field.name());
        out.push_str(text);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let json = self.json;
        let apart = self.is_apart(field);
        let out = self.member(field.name());
        if apart {
            out.push_str(value);
        } else if json {
            json_string(out, value);
        } else {
            let _ = write!(out, "{value:?}");
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let json = self.json;
        let apart = self.is_apart(field);
        let out = self.member(field.name());
        if json && !apart {
            json_string(out, &format!("{value:?}"));
        } else {
            let _ = write!(out, "{value:?}");
        }
    }
}

/// `text` as a JSON string.
fn json_string(out: &mut String, text: &str) {
    // Writing to a `Vec` cannot fail, and serde_json writes valid UTF-8.
    let mut bytes = std::mem::take(out).into_bytes();
    let _ = serde_json::to_writer(&mut bytes, text);
    *out = String::from_utf8(bytes).unwrap_or_default();
}

/// Now as RFC 3339 in UTC with microseconds: `2026-12-05T01:50:00.123456Z`. The part
/// up to the second is made once a second per thread.
fn timestamp(out: &mut String) {
    thread_local! {
        static SECOND: std::cell::RefCell<(u64, String)> =
            const { std::cell::RefCell::new((u64::MAX, String::new())) };
    }
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let (seconds, micros) = (since_epoch.as_secs(), since_epoch.subsec_micros());
    SECOND.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != seconds {
            *cached = (seconds, date_and_time(seconds));
        }
        out.push_str(&cached.1);
    });
    let _ = write!(out, ".{micros:06}Z");
}

/// `seconds` since the Unix epoch as `YYYY-MM-DDTHH:MM:SS` (UTC), by the civil-from-days
/// algorithm of Howard Hinnant's date library. The console shows times with it too.
pub fn date_and_time(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let in_day = seconds % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        in_day / 3_600,
        in_day / 60 % 60,
        in_day % 60
    )
}

/// The first second (UTC) of a day written `YYYY-MM-DD`: the inverse of
/// [`date_and_time`] at midnight. `None` for anything that is not such a day.
pub(crate) fn start_of_day(text: &str) -> Option<u64> {
    let mut parts = text.splitn(3, '-');
    let mut number = |len: usize| {
        let part = parts.next().filter(|p| p.len() == len)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse::<i64>().ok())?
    };
    let (year, month, day) = (number(4)?, number(2)?, number(2)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let days_in_month = *month_days.get(usize::try_from(month).ok()?.checked_sub(1)?)?;
    if year < 1970 || day < 1 || day > days_in_month {
        return None;
    }
    // Days since 1970-01-01, counting years from March so that February comes last.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    u64::try_from(days * 86_400).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_day_starts_where_its_date_says() {
        for seconds in [0_u64, 86_400, 951_782_400, 1_796_428_800, 4_102_444_800] {
            let day = &date_and_time(seconds)[..10];
            assert_eq!(start_of_day(day), Some(seconds), "{day}");
        }
        for bad in [
            "",
            "2026-13-01",
            "2026-02-29",
            "1969-12-31",
            "2026-1-01",
            "2026-01-01x",
            "+026-01-01",
        ] {
            assert_eq!(start_of_day(bad), None, "{bad}");
        }
        assert_eq!(start_of_day("2024-02-29"), Some(1_709_164_800));
    }

    use super::*;

    /// The lines of one request span and one event inside it, in `json` or text.
    fn lines(json: bool) -> String {
        use tracing_subscriber::layer::SubscriberExt;
        let buffer = Buffer::default();
        let lines = Lines {
            buffered: Some(buffer.clone()),
            json,
        };
        let subscriber = tracing_subscriber::registry().with(lines);
        tracing::subscriber::with_default(subscriber, || {
            let address = std::net::IpAddr::from([127, 0, 0, 1]);
            let span = tracing::info_span!(
                "request",
                tenant = tracing::field::Empty,
                client = %address,
            );
            let _inside = span.enter();
            span.record("tenant", "foo.com");
            tracing::warn!(attempts = 5u64, "locked \"alice\"");
        });
        let text = buffer.0.lock().unwrap().clone();
        String::from_utf8(text).unwrap()
    }

    #[test]
    fn text_lines_read_as_tracing_subscriber_writes_them() {
        let line = lines(false);
        let (time, rest) = line.split_once(' ').unwrap();
        assert_eq!(time.len(), "2026-12-05T01:50:00.123456Z".len(), "{line}");
        assert!(time.ends_with('Z') && time.as_bytes()[10] == b'T', "{line}");
        assert_eq!(
            rest,
            " WARN request{client=127.0.0.1 tenant=\"foo.com\"}: portcullis::logging::tests: \
             locked \"alice\" attempts=5\n"
        );
    }

    #[test]
    fn json_lines_carry_the_event_and_its_spans() {
        let line = lines(true);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["level"], "WARN");
        assert_eq!(value["fields"]["message"], "locked \"alice\"");
        assert_eq!(value["fields"]["attempts"], 5);
        assert_eq!(value["target"], "portcullis::logging::tests");
        assert_eq!(value["span"]["name"], "request");
        assert_eq!(value["span"]["tenant"], "foo.com");
        assert_eq!(value["span"]["client"], "127.0.0.1");
        assert_eq!(value["spans"][0], value["span"]);
        assert!(value["timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(line.ends_with("}\n"));
    }

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(date_and_time(0), "1970-01-01T00:00:00");
        assert_eq!(date_and_time(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(date_and_time(1_796_434_200), "2026-12-05T01:30:00");
        assert_eq!(date_and_time(4_107_542_399), "2100-02-28T23:59:59");
    }
}

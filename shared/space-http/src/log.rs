//! Log lines: one per request (`served`, with method, route template and status) plus
//! whatever the code reports, each carrying the id of the request it belongs to.
//!
//! The request id comes from the request's task-local ([`request_id::with_current`]), not
//! from a tracing span: a span per request cost an allocation in the registry and a
//! thread-local push and pop on every poll, and the stock formatters walk the span stack
//! for every line. The two formats are written here directly, in one pass over the event:
//!
//! - on Lambda, JSON for CloudWatch (`{"level","fields":{"message",…,"request_id"},"target"}`,
//!   the shape the 5xx metric filter in `infra/alarms.tf` reads; no timestamp, CloudWatch
//!   adds one);
//! - locally, text: `2026-11-23T08:34:34.511407Z INFO space_http::request_id: served
//!   method=GET route=/… status=200 request_id=req_…`.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::request_id;

/// Installs the process's subscriber: JSON lines on Lambda (`AWS_LAMBDA_RUNTIME_API` set),
/// text elsewhere, written through `writer`, filtered by `RUST_LOG` (default `info`). A
/// second call (tests) keeps the first subscriber.
pub fn init<W>(writer: W)
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let format = if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        LogFormat::Json
    } else {
        LogFormat::Text
    };
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .event_format(format);
    drop(tracing_subscriber::registry().with(filter()).with(layer).try_init());
}

/// `RUST_LOG` as `target=level` directives and a bare default level (`info` when unset or
/// unreadable). `Targets` rather than `EnvFilter`: no span-field matching, and no regex
/// engine in every Lambda binary.
fn filter() -> tracing_subscriber::filter::Targets {
    std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| directives.parse().ok())
        .unwrap_or_else(|| tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO))
}

/// How a line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, for CloudWatch.
    Json,
    /// Human-readable, with a UTC timestamp.
    Text,
}

impl<S, N> FormatEvent<S, N> for LogFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _context: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        self.write(&mut writer, event)
    }
}

impl LogFormat {
    /// Writes `event` as one line into `out`.
    pub fn write(self, out: &mut impl fmt::Write, event: &Event<'_>) -> fmt::Result {
        let metadata = event.metadata();
        match self {
            LogFormat::Json => {
                write!(out, "{{\"level\":\"{}\",\"fields\":{{", metadata.level())?;
            }
            LogFormat::Text => {
                write_timestamp(out, SystemTime::now())?;
                write!(out, " {:>5} {}:", metadata.level(), metadata.target())?;
            }
        }
        let mut fields = Fields {
            out,
            format: self,
            pass: Pass::Message,
            first: true,
            has_request_id: false,
            result: Ok(()),
        };
        // The message first, then the other fields in their order.
        event.record(&mut fields);
        fields.pass = Pass::Others;
        event.record(&mut fields);
        fields.result?;
        if !fields.has_request_id {
            request_id::with_current(|id| match id {
                Some(id) => fields.field("request_id", |out, format| format.string(out, id)),
                None => Ok(()),
            })?;
        }
        let out = fields.out;
        match self {
            LogFormat::Json => writeln!(out, "}},\"target\":\"{}\"}}", metadata.target()),
            LogFormat::Text => out.write_char('\n'),
        }
    }

    /// A string value: JSON-escaped, or as text with quotes only where a reader needs them.
    fn string(self, out: &mut dyn fmt::Write, value: &str) -> fmt::Result {
        match self {
            LogFormat::Json => {
                out.write_char('"')?;
                JsonEscaped(out).write_str(value)?;
                out.write_char('"')
            }
            LogFormat::Text if value.is_empty() || value.contains([' ', '"', '=', '\n']) => write!(out, "{value:?}"),
            LogFormat::Text => out.write_str(value),
        }
    }

    /// A value known by its `Debug` form (`%value` fields arrive here as `Display`).
    fn debug(self, out: &mut dyn fmt::Write, value: &dyn fmt::Debug) -> fmt::Result {
        match self {
            LogFormat::Json => {
                out.write_char('"')?;
                write!(JsonEscaped(out), "{value:?}")?;
                out.write_char('"')
            }
            LogFormat::Text => write!(out, "{value:?}"),
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`. The part up to the second is formatted once per second
/// per thread.
fn write_timestamp(out: &mut impl fmt::Write, now: SystemTime) -> fmt::Result {
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    SECOND.with_borrow_mut(|(cached, text)| {
        if *cached != seconds {
            text.clear();
            let time = i64::try_from(seconds)
                .ok()
                .and_then(|seconds| chrono::DateTime::from_timestamp(seconds, 0))
                .unwrap_or_default();
            write!(text, "{}", time.format("%Y-%m-%dT%H:%M:%S"))?;
            *cached = seconds;
        }
        write!(out, "{text}.{:06}Z", since_epoch.subsec_micros())
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    Message,
    Others,
}

/// Writes an event's fields, in one of the two passes.
struct Fields<'w, W: fmt::Write> {
    out: &'w mut W,
    format: LogFormat,
    pass: Pass,
    first: bool,
    has_request_id: bool,
    /// `Visit` cannot fail; the first write error is kept here.
    result: fmt::Result,
}

impl<W: fmt::Write> Fields<'_, W> {
    /// Writes `name` and its value (written by `value`), separated from earlier fields.
    fn field(&mut self, name: &str, value: impl FnOnce(&mut dyn fmt::Write, LogFormat) -> fmt::Result) -> fmt::Result {
        let first = std::mem::replace(&mut self.first, false);
        let out: &mut dyn fmt::Write = &mut *self.out;
        match (self.format, name) {
            (LogFormat::Json, _) => {
                if !first {
                    out.write_char(',')?;
                }
                write!(out, "\"{name}\":")?;
            }
            // Text shows the message bare, the other fields as `name=value`.
            (LogFormat::Text, "message") => out.write_char(' ')?,
            (LogFormat::Text, _) => write!(out, " {name}=")?,
        }
        value(out, self.format)
    }

    fn visit(&mut self, field: &Field, value: impl FnOnce(&mut dyn fmt::Write, LogFormat) -> fmt::Result) {
        let is_message = field.name() == "message";
        if self.result.is_err() || is_message != (self.pass == Pass::Message) {
            return;
        }
        if field.name() == "request_id" {
            self.has_request_id = true;
        }
        self.result = self.field(field.name(), value);
    }
}

impl<W: fmt::Write> Visit for Fields<'_, W> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.visit(field, |out, format| match (format, field.name()) {
            (LogFormat::Text, "message") => out.write_str(value),
            _ => format.string(out, value),
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.visit(field, |out, format| match (format, field.name()) {
            (LogFormat::Text, "message") => write!(out, "{value:?}"),
            _ => format.debug(out, value),
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.visit(field, |out, _| write!(out, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.visit(field, |out, _| write!(out, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.visit(field, |out, _| write!(out, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.visit(field, |out, format| {
            if value.is_finite() {
                write!(out, "{value}")
            } else {
                format.debug(out, &value)
            }
        });
    }
}

/// Writes what it is given as the inside of a JSON string.
struct JsonEscaped<'a>(&'a mut dyn fmt::Write);

impl fmt::Write for JsonEscaped<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut plain_from = 0;
        for (index, byte) in text.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f => "",
                _ => continue,
            };
            self.0.write_str(&text[plain_from..index])?;
            if escape.is_empty() {
                write!(self.0, "\\u{byte:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            plain_from = index + 1;
        }
        self.0.write_str(&text[plain_from..])
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::Value;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    /// Lines written by a subscriber with `format` while `work` runs.
    fn capture(format: LogFormat, work: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_writer(move || writer.clone())
                .event_format(format),
        );
        tracing::subscriber::with_default(subscriber, work);
        String::from_utf8(sink.0.lock().unwrap().clone()).unwrap()
    }

    fn in_request(id: &str, work: impl FnOnce()) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(request_id::scope(id.to_owned(), async { work() }));
    }

    #[test]
    fn json_lines_carry_the_message_fields_and_request_id_in_the_shape_the_alarm_reads() {
        let text = capture(LogFormat::Json, || {
            in_request("req_abc", || {
                tracing::info!(method = %"GET", route = %"/contacts/{id}", status = 500_u16, "served");
            });
        });
        let line: Value = serde_json::from_str(text.trim_end()).expect("one JSON line");
        assert_eq!(
            line,
            serde_json::json!({
                "level": "INFO",
                "fields": {"message": "served", "method": "GET", "route": "/contacts/{id}", "status": 500, "request_id": "req_abc"},
                "target": module_path!(),
            })
        );
        assert!(text.ends_with("}\n") && text.matches('\n').count() == 1, "{text:?}");
    }

    #[test]
    fn json_escapes_every_string_and_keeps_numbers_and_booleans() {
        let tricky = "a \"quote\", a \\ and\na newline\u{1}";
        let text = capture(LogFormat::Json, || {
            tracing::warn!(reason = tricky, shown = %tricky, ok = false, ratio = 0.5, missing = f64::NAN, "it {}", "broke");
        });
        let line: Value = serde_json::from_str(text.trim_end()).expect("valid JSON");
        let fields = &line["fields"];
        assert_eq!(fields["message"], "it broke");
        assert_eq!(fields["reason"], tricky);
        assert_eq!(fields["shown"], tricky);
        assert_eq!(fields["ok"], false);
        assert_eq!(fields["ratio"], 0.5);
        assert_eq!(fields["missing"], "NaN");
        assert!(fields.get("request_id").is_none(), "outside a request there is no id");
        assert_eq!(line["level"], "WARN");
    }

    #[test]
    fn text_lines_read_as_time_level_target_message_and_fields() {
        let text = capture(LogFormat::Text, || {
            in_request("req_xyz", || {
                tracing::info!(status = 201_u16, route = %"/a/{b}", note = "two words", "served");
            });
        });
        let (time, rest) = text.split_once(' ').expect("a timestamp");
        assert!(
            chrono::DateTime::parse_from_rfc3339(time).is_ok() && time.len() == 27,
            "{time}"
        );
        assert_eq!(
            rest,
            format!(
                " INFO {}: served status=201 route=/a/{{b}} note=\"two words\" request_id=req_xyz\n",
                module_path!()
            )
        );
    }

    #[test]
    fn an_explicit_request_id_field_is_not_repeated() {
        let text = capture(LogFormat::Json, || {
            in_request("req_task", || tracing::info!(request_id = "req_field", "x"));
        });
        let line: Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(line["fields"]["request_id"], "req_field");
        assert_eq!(text.matches("request_id").count(), 1);
    }

    #[test]
    fn the_timestamp_changes_with_the_second_and_keeps_microseconds() {
        let mut out = String::new();
        let base = UNIX_EPOCH + std::time::Duration::from_secs(1_795_000_000);
        write_timestamp(&mut out, base + std::time::Duration::from_micros(1_234)).unwrap();
        out.push('|');
        write_timestamp(&mut out, base + std::time::Duration::from_micros(1_000_007)).unwrap();
        assert_eq!(out, "2026-11-18T11:06:40.001234Z|2026-11-18T11:06:41.000007Z");
    }
}

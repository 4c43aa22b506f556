//! Logs on stderr, at the edge of every command: text (`key=value`, a value
//! with a space or a quote in quotes, `key="a b"`, so a line splits back into
//! its fields) or JSON (one object per line, the fields at the top level, for
//! a cluster's log store). The level: `--log-level`, else `RUST_LOG`, else the
//! command's default (`info` for `serve`, `warn` for the others).

use std::fmt;
use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::EnvFilter;

use crate::publish::text::Colour;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// `TIME LEVEL target: message key=value key="a b"`.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message` and
    /// the fields.
    Json,
}

/// The filter: `level` (a level or a `RUST_LOG` directive) when given, else
/// `RUST_LOG`, else `default`. An invalid one is said and the default used.
pub fn filter(level: Option<&str>, default: &str) -> EnvFilter {
    let given = level
        .map(str::to_owned)
        .or_else(|| std::env::var("RUST_LOG").ok())
        .filter(|l| !l.trim().is_empty());
    match given.as_deref().map(EnvFilter::try_new) {
        Some(Ok(f)) => f,
        Some(Err(e)) => {
            eprintln!("routewarden: log level {given:?} not understood ({e}); using {default}");
            EnvFilter::new(default)
        }
        None => EnvFilter::new(default),
    }
}

/// Install the subscriber for this process (once; later calls do nothing).
pub fn init(format: LogFormat, level: Option<&str>, default: &str) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(level, default))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(ansi_on_stderr())
            .fmt_fields(QuotedFields)
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
}

/// Colours in the log as in `check`'s text: only on a terminal, without a
/// non-empty `NO_COLOR`, and not for `TERM=dumb`.
fn ansi_on_stderr() -> bool {
    Colour::choose(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
        std::env::var_os("TERM").as_deref(),
    ) == Colour::On
}

/// `key=value` fields, the value quoted when it holds a space, a quote, an
/// `=` or nothing; the message as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuotedFields;

impl<'w> FormatFields<'w> for QuotedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = Visitor {
            writer,
            result: Ok(()),
            first: true,
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct Visitor<'w> {
    writer: Writer<'w>,
    result: fmt::Result,
    first: bool,
}

impl Visitor<'_> {
    fn write(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        let sep = if self.first { "" } else { " " };
        self.first = false;
        self.result = if field.name() == "message" {
            write!(self.writer, "{sep}{value}")
        } else {
            write!(self.writer, "{sep}{}={}", field.name(), quoted(value))
        };
    }
}

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.write(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        // `?value` of a string is quoted already.
        if field.name() != "message" && text.len() > 1 && text.starts_with('"') && text.ends_with('"') {
            let sep = if self.first { "" } else { " " };
            self.first = false;
            if self.result.is_ok() {
                self.result = write!(self.writer, "{sep}{}={text}", field.name());
            }
            return;
        }
        self.write(field, &text);
    }
}

/// The value as is, or in double quotes (with `\"` and `\\` escaped) when it
/// would not read back as one field.
pub fn quoted(value: &str) -> String {
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '=' | '\\'));
    if plain {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::ErrorKind::Other)?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn captured(format: LogFormat, event: impl FnOnce()) -> String {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let builder = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .without_time();
        match format {
            LogFormat::Text => {
                tracing::subscriber::with_default(builder.fmt_fields(QuotedFields).finish(), event)
            }
            LogFormat::Json => {
                tracing::subscriber::with_default(builder.json().flatten_event(true).finish(), event)
            }
        }
        let bytes = buffer.0.lock().expect("buffer").clone();
        String::from_utf8(bytes).expect("utf-8")
    }

    #[test]
    fn values_with_spaces_are_quoted() {
        let reason = "cannot connect to unix:path=/run/dbus/system_bus_socket: No such file";
        let line = captured(
            LogFormat::Text,
            || tracing::warn!(source = "systemd", reason = %reason, n = 3, name = ?"a b", "source down"),
        );
        assert!(line.contains("source down source=systemd"), "{line}");
        assert!(
            line.contains(
                r#"reason="cannot connect to unix:path=/run/dbus/system_bus_socket: No such file""#
            ),
            "{line}"
        );
        assert!(line.contains(" n=3 "), "{line}");
        assert!(line.contains(r#"name="a b""#), "not quoted twice: {line}");
    }

    #[test]
    fn quoting() {
        assert_eq!(quoted("up"), "up");
        assert_eq!(quoted(""), "\"\"");
        assert_eq!(quoted("a=b"), "\"a=b\"");
        assert_eq!(quoted("say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"");
    }

    #[test]
    fn json_lines_are_objects_with_the_fields() {
        let line = captured(
            LogFormat::Json,
            || tracing::warn!(source = "systemd", reason = %"a b", "source down"),
        );
        let v: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON object");
        assert_eq!(v["message"], "source down");
        assert_eq!(v["source"], "systemd");
        assert_eq!(v["reason"], "a b");
        assert_eq!(v["level"], "WARN");
    }

    #[test]
    fn the_flag_wins_over_the_default() {
        assert_eq!(filter(Some("debug"), "warn").to_string(), "debug");
        assert_eq!(filter(Some("no such=level=x"), "warn").to_string(), "warn");
    }
}

//! How the JSON log layer keeps a span's fields: as one JSON object, written straight from
//! the field values and merged into by key as text when fields are recorded later.
//! tracing-subscriber's own `JsonFields` collects each span's fields into a map of
//! `serde_json::Value`s and serializes it, and parses the object back and rewrites it each
//! time a field is recorded on an open span. Every RPC span is created with six fields
//! (four of them written here) and records two more (the property, the status code; the
//! trace id only when a line is written, `trace_id_field.rs`), for log lines that are
//! almost never written: in a profile of GetGuest (guestloop-bench P6, perf with DWARF call
//! graphs) the span's JSON was 7.6 % of the service's CPU, new span 3.3 and records 4.4.
//! Here fields are written as `"key":value` members as they are visited (the OpenTelemetry
//! layer's `otel.name`, `otel.kind` and `otel.status_*` left out), and a recorded field is
//! found by a scan of the object's top-level members and replaced in place (or appended),
//! so the object keeps one member per key however often a key is recorded.

use std::fmt;
use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FormatFields, FormattedFields};

/// The fields tracing-opentelemetry reads as a span's name, kind and status rather than as
/// attributes.
const OTEL_INSTRUCTIONS: [&str; 4] = [
    "otel.name",
    "otel.kind",
    "otel.status_code",
    "otel.status_description",
];

/// `JsonFields`' objects (the same members and values, without [`OTEL_INSTRUCTIONS`];
/// members in field order rather than sorted), written without a map in between and merged
/// as text instead of by re-parsing.
#[derive(Debug, Default, Clone, Copy)]
pub struct AppendingJsonFields;

impl<'w> FormatFields<'w> for AppendingJsonFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut object = JsonObject::new(writer);
        fields.record(&mut object);
        object.finish()
    }

    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut more = String::new();
        let mut object = JsonObject::new(&mut more);
        fields.record(&mut object);
        object.finish()?;
        append(&mut current.fields, &more);
        Ok(())
    }
}

/// A field visitor writing one JSON object member per field, each value serialized by
/// serde_json as `JsonFields` serializes it (a float that is not finite as `null`, bytes as
/// an array of numbers, anything else as its `Debug` text), but straight to the output
/// instead of into a map of `serde_json::Value`s first.
struct JsonObject<W> {
    out: W,
    empty: bool,
    result: fmt::Result,
}

impl<W: fmt::Write> JsonObject<W> {
    fn new(out: W) -> Self {
        Self {
            out,
            empty: true,
            result: Ok(()),
        }
    }

    fn member(&mut self, key: &str, value: &(impl serde::Serialize + ?Sized)) {
        // `otel.name`/`kind`/`status_*` tell the OpenTelemetry layer a span's name, kind and
        // status; it exports them as those, not as attributes. In a log line they only
        // repeated other fields (an RPC's `otel.name` is its `rpc.service` and
        // `rpc.method`), and every RPC span paid for writing them.
        if self.result.is_err() || OTEL_INSTRUCTIONS.contains(&key) {
            return;
        }
        let separator = if self.empty { '{' } else { ',' };
        self.empty = false;
        let mut out = IoToFmt(&mut self.out);
        self.result = (|| {
            out.0.write_char(separator)?;
            serde_json::to_writer(&mut out, key).map_err(|_| fmt::Error)?;
            out.0.write_char(':')?;
            serde_json::to_writer(&mut out, value).map_err(|_| fmt::Error)
        })();
    }

    fn finish(mut self) -> fmt::Result {
        self.result?;
        self.out.write_str(if self.empty { "{}" } else { "}" })
    }
}

impl<W: fmt::Write> Visit for JsonObject<W> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.member(field.name(), &value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.member(field.name(), &value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.member(field.name(), &value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.member(field.name(), &value);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.member(field.name(), value);
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        self.member(field.name(), value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        // As JsonFields: `log.*` fields are the log crate's metadata, and a raw identifier
        // is named without its `r#`. The OpenTelemetry layer's fields before formatting.
        if name.starts_with("log.") || OTEL_INSTRUCTIONS.contains(&name) {
            return;
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.member(name, &format!("{value:?}"));
    }
}

/// serde_json writes to `io::Write`, the span's fields are a `fmt::Write`. serde_json only
/// ever writes whole UTF-8 sequences (it splits strings at the ASCII characters it escapes).
struct IoToFmt<'a, W>(&'a mut W);

impl<W: fmt::Write> std::io::Write for IoToFmt<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = std::str::from_utf8(buf).map_err(std::io::Error::other)?;
        self.0.write_str(text).map_err(std::io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Merges the members of JSON object `more` into JSON object `object` (either may be empty
/// or `{}`): a key already there gets the new value in place, a new key is appended. An
/// import records its property on the RPC span once per item, and appending every time
/// left 100,000 copies in the span (2.5 MB, heaptrack under P3) and in its log line.
fn append(object: &mut String, more: &str) {
    for member in members(more) {
        let key = key_of(member);
        // Most records set a key for the first time: a substring search rules that out
        // without splitting the object.
        let existing = if object.contains(key) {
            members(object).into_iter().find(|m| key_of(m) == key)
        } else {
            None
        };
        match existing {
            Some(old) => {
                // `old` borrows `object`: its range, then the replacement.
                let start = old.as_ptr() as usize - object.as_ptr() as usize;
                let end = start + old.len();
                object.replace_range(start..end, member);
            }
            None => match object.strip_suffix('}') {
                Some(open) if open.len() > 1 => {
                    object.truncate(open.len());
                    object.push(',');
                    object.push_str(member);
                    object.push('}');
                }
                _ => {
                    object.clear();
                    object.push('{');
                    object.push_str(member);
                    object.push('}');
                }
            },
        }
    }
}

/// The top-level members (`"key":value`) of a JSON object, as written by `JsonFields`.
fn members(object: &str) -> Vec<&str> {
    let Some(inner) = object.strip_prefix('{').and_then(|m| m.strip_suffix('}')) else {
        return Vec::new();
    };
    let (mut out, mut start, mut depth) = (Vec::new(), 0, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    // Bytes, not chars: every structural character is ASCII, which never occurs inside a
    // multi-byte UTF-8 sequence.
    for (i, c) in inner.bytes().enumerate() {
        match c {
            _ if escaped => escaped = false,
            b'\\' if in_string => escaped = true,
            b'"' => in_string = !in_string,
            b'{' | b'[' if !in_string => depth += 1,
            b'}' | b']' if !in_string => depth = depth.saturating_sub(1),
            b',' if !in_string && depth == 0 => {
                out.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < inner.len() {
        out.push(&inner[start..]);
    }
    out
}

/// A member's key with its quotes: what comes before the first `:` outside the key string.
fn key_of(member: &str) -> &str {
    let mut escaped = false;
    for (i, c) in member.bytes().enumerate().skip(1) {
        match c {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => return &member[..=i],
            _ => {}
        }
    }
    member
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::Buffer;

    #[test]
    fn objects_are_merged() {
        let cases = [
            ("", r#"{"a":1}"#, r#"{"a":1}"#),
            ("{}", r#"{"a":1}"#, r#"{"a":1}"#),
            (r#"{"a":1}"#, "{}", r#"{"a":1}"#),
            (r#"{"a":1}"#, "", r#"{"a":1}"#),
            (
                r#"{"a":1}"#,
                r#"{"b":"}","c":[2]}"#,
                r#"{"a":1,"b":"}","c":[2]}"#,
            ),
            // A key recorded again keeps its place and takes the new value.
            (r#"{"a":1,"b":2}"#, r#"{"a":3}"#, r#"{"a":3,"b":2}"#),
            (
                r#"{"a":"x","b":2}"#,
                r#"{"b":"y,\"z"}"#,
                r#"{"a":"x","b":"y,\"z"}"#,
            ),
            // Commas, braces and escaped quotes inside values do not split members.
            (
                r#"{"s":"a,\"b:\"c","n":[1,{"m":2}]}"#,
                r#"{"n":0,"t":true}"#,
                r#"{"s":"a,\"b:\"c","n":0,"t":true}"#,
            ),
            // A key that only prefixes another is a different key.
            (r#"{"ab":1}"#, r#"{"a":2}"#, r#"{"ab":1,"a":2}"#),
        ];
        for (object, more, want) in cases {
            let mut got = object.to_string();
            append(&mut got, more);
            assert_eq!(got, want, "{object} + {more}");
        }
    }

    /// The one log line `body` writes, parsed, under the JSON log layer with `fields` as
    /// its span field formatter.
    fn log_line<N>(fields: N, body: impl FnOnce()) -> serde_json::Value
    where
        N: for<'w> FormatFields<'w> + Send + Sync + 'static,
    {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .fmt_fields(fields)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, body);
        let line = buffer.text();
        serde_json::from_str(line.trim()).unwrap()
    }

    /// The fields of a span holding every kind of value, as a log line inside it shows
    /// them, with `fields` as the span's field formatter.
    fn span_in_log_line<N>(fields: N) -> serde_json::Value
    where
        N: for<'w> FormatFields<'w> + Send + Sync + 'static,
    {
        let error = std::io::Error::other("disk \"full\"");
        let log = log_line(fields, || {
            let span = tracing::info_span!(
                "grpc",
                text = "plain",
                escaped = "quote \" backslash \\ newline \n tab \t bell \u{7} nul \0 é 東",
                negative = -42i64,
                big = u64::MAX,
                yes = true,
                float = 0.1f64,
                whole = 2.0f64,
                nan = f64::NAN,
                display = %"shown, as \"text\"",
                debug = ?Some("x"),
                bytes = &b"ab"[..],
                error = &error as &(dyn std::error::Error + 'static),
                r#type = ?1,
                later = tracing::field::Empty,
            );
            span.record("later", "set");
            span.record("negative", 7);
            span.in_scope(|| tracing::info!("inside"));
        });
        log["span"].clone()
    }

    /// Every kind of value a field can hold comes out as tracing-subscriber's own
    /// `JsonFields` writes it, at creation and when recorded later.
    #[test]
    fn fields_are_written_as_json_fields_writes_them() {
        let ours = span_in_log_line(AppendingJsonFields);
        let theirs = span_in_log_line(tracing_subscriber::fmt::format::JsonFields::new());
        assert_eq!(ours, theirs);
        // The comparison means something only if the fields are there.
        assert_eq!(
            ours["escaped"],
            "quote \" backslash \\ newline \n tab \t bell \u{7} nul \0 é 東"
        );
        assert_eq!(ours["negative"], 7);
        assert_eq!(ours["later"], "set");
        assert_eq!(ours["type"], "1");
        assert_eq!(ours.as_object().unwrap().len(), 15, "{ours}");
    }

    /// A log line inside a span shows the span's fields, those given at creation and those
    /// recorded later (the last value of one recorded twice), as one object.
    #[test]
    fn a_log_line_carries_every_field_recorded_on_its_span() {
        let log = log_line(AppendingJsonFields, || {
            let span = tracing::info_span!(
                "grpc",
                otel.name = "/guestloop.profile.v1.GuestProfileService/GetGuest",
                otel.kind = "server",
                rpc.method = "GetGuest",
                property_id = tracing::field::Empty,
                code = tracing::field::Empty,
                otel.status_code = tracing::field::Empty,
                otel.scope = "not an instruction: kept",
            );
            span.record("property_id", "sh-bund");
            span.record("code", 5);
            span.record("code", 0);
            span.record("otel.status_code", "error");
            span.in_scope(|| tracing::warn!(answer = 42, "inside"));
        });
        let (span, line) = (&log["span"], &log);
        assert_eq!(span["rpc.method"], "GetGuest", "{line}");
        assert_eq!(span["property_id"], "sh-bund", "{line}");
        assert_eq!(span["code"], 0, "{line}");
        assert_eq!(span["name"], "grpc", "{line}");
        assert_eq!(log["answer"], 42, "{line}");
        // The OpenTelemetry layer's instructions stay out of the line.
        let mut names: Vec<&String> = span.as_object().unwrap().keys().collect();
        names.sort();
        assert_eq!(
            names,
            ["code", "name", "otel.scope", "property_id", "rpc.method"],
            "{line}"
        );
    }
}

//! How the JSON log layer keeps a span's fields: as one JSON object that fields recorded
//! later are merged into by key, as text. tracing-subscriber's own `JsonFields` parses the
//! object back into a map and serializes it again each time a field is recorded on an open
//! span; every RPC span records three (the property, the trace id, the status code), and
//! in a profile of GetGuest that parse-and-rewrite was work on every call for log lines
//! that are almost never written. Here a recorded field is found by a scan of the object's
//! top-level members and replaced in place (or appended), so the object keeps one member
//! per key however often a key is recorded.

use std::fmt;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FormatFields, FormattedFields};

/// `JsonFields`, with fields recorded later merged as text instead of by re-parsing.
#[derive(Debug, Default, Clone, Copy)]
pub struct AppendingJsonFields;

impl<'w> FormatFields<'w> for AppendingJsonFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        JsonFields::new().format_fields(writer, fields)
    }

    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut more = String::new();
        JsonFields::new().format_fields(Writer::new(&mut more), fields)?;
        append(&mut current.fields, &more);
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
    use std::sync::{Arc, Mutex};

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

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A log line inside a span shows the span's fields, those given at creation and those
    /// recorded later (the last value of one recorded twice), as one object.
    #[test]
    fn a_log_line_carries_every_field_recorded_on_its_span() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .fmt_fields(AppendingJsonFields)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "grpc",
                rpc.method = "GetGuest",
                property_id = tracing::field::Empty,
                code = tracing::field::Empty,
            );
            span.record("property_id", "sh-bund");
            span.record("code", 5);
            span.record("code", 0);
            span.in_scope(|| tracing::warn!(answer = 42, "inside"));
        });
        let line = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let log: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        let span = &log["span"];
        assert_eq!(span["rpc.method"], "GetGuest", "{line}");
        assert_eq!(span["property_id"], "sh-bund", "{line}");
        assert_eq!(span["code"], 0, "{line}");
        assert_eq!(span["name"], "grpc", "{line}");
        assert_eq!(log["answer"], 42, "{line}");
    }
}

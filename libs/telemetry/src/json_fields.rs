//! How the JSON log layer keeps a span's fields: as one JSON object that fields recorded
//! later are appended to. tracing-subscriber's own `JsonFields` parses the object back into
//! a map and serializes it again each time a field is recorded on an open span; every RPC
//! span records three (the property, the trace id, the status code), and in a profile of
//! GetGuest that parse-and-rewrite was work on every call for log lines that are almost
//! never written. A field recorded twice appears twice in the stored object; the log line
//! is built by parsing it, where the later value wins, as before.

use std::fmt;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FormatFields, FormattedFields};

/// `JsonFields`, with fields recorded later appended instead of merged by re-parsing.
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

/// Appends the members of JSON object `more` to JSON object `object` (either may be empty
/// or `{}`).
fn append(object: &mut String, more: &str) {
    let members = more
        .strip_prefix('{')
        .and_then(|m| m.strip_suffix('}'))
        .unwrap_or("");
    if members.is_empty() {
        return;
    }
    match object.strip_suffix('}') {
        Some(open) if open.len() > 1 => {
            object.truncate(open.len());
            object.push(',');
        }
        _ => {
            object.clear();
            object.push('{');
        }
    }
    object.push_str(members);
    object.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn objects_are_appended_to() {
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

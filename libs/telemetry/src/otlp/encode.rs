//! A batch of finished spans written straight into the protobuf bytes of an OTLP
//! `ExportTraceServiceRequest`. The SDK's own exporter first converts every span into
//! OTLP's generated message types (a vector for each id, a string for each name and
//! attribute key, a hash-map lookup of its scope) and then encodes those: 3.5 % of
//! guest-profile's CPU at 100 % export, most of a span's export (guestloop-bench P6,
//! docs/benchmarks). Here the same message is written field by field from `SpanData`,
//! with one buffer per batch.
//!
//! The bytes are what prost writes for the generated types (fields in tag order, proto3
//! defaults left out, minimal varints); `tests.rs` holds the two side by side.

use opentelemetry::trace::{SpanId, Status};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};
use std::time::{SystemTime, UNIX_EPOCH};

/// OTLP's `SpanFlags`: bit 8 says whether the parent's remoteness is known, bit 9 that it is.
const FLAG_HAS_IS_REMOTE: u32 = 0x100;
const FLAG_IS_REMOTE: u32 = 0x200;

/// The process's resource, encoded once: every batch repeats it unchanged.
#[derive(Debug, Default, Clone)]
pub struct EncodedResource {
    /// The body of the `Resource` message (its attributes).
    body: Vec<u8>,
    schema_url: String,
}

impl EncodedResource {
    pub fn new(resource: &Resource) -> Self {
        let mut body = Vec::new();
        for (key, value) in resource.iter() {
            nested(&mut body, 1, |b| key_value(b, key.as_str(), value));
        }
        EncodedResource {
            body,
            schema_url: resource.schema_url().unwrap_or_default().to_string(),
        }
    }
}

/// Appends the `ExportTraceServiceRequest` for `batch` to `out`: one `ResourceSpans`, one
/// `ScopeSpans` per instrumentation scope in the order scopes first appear.
pub fn export_request(batch: &[SpanData], resource: &EncodedResource, out: &mut Vec<u8>) {
    nested(out, 1, |rs| {
        nested(rs, 1, |r| r.extend_from_slice(&resource.body));
        let mut scopes: Vec<&InstrumentationScope> = Vec::new();
        for span in batch {
            if !scopes.contains(&&span.instrumentation_scope) {
                scopes.push(&span.instrumentation_scope);
            }
        }
        for scope in scopes {
            nested(rs, 2, |ss| {
                nested(ss, 1, |s| instrumentation_scope(s, scope));
                for span in batch.iter().filter(|s| &s.instrumentation_scope == scope) {
                    nested(ss, 2, |b| self::span(b, span));
                }
                string(ss, 3, scope.schema_url().unwrap_or_default());
            });
        }
        string(rs, 3, &resource.schema_url);
    });
}

fn instrumentation_scope(buf: &mut Vec<u8>, scope: &InstrumentationScope) {
    string(buf, 1, scope.name());
    string(buf, 2, scope.version().unwrap_or_default());
    for kv in scope.attributes() {
        attribute(buf, 3, kv);
    }
}

fn span(buf: &mut Vec<u8>, span: &SpanData) {
    let context = &span.span_context;
    bytes(buf, 1, &context.trace_id().to_bytes());
    bytes(buf, 2, &context.span_id().to_bytes());
    string(buf, 3, &context.trace_state().header());
    if span.parent_span_id != SpanId::INVALID {
        bytes(buf, 4, &span.parent_span_id.to_bytes());
    }
    string(buf, 5, &span.name);
    // OTLP's SpanKind counts from UNSPECIFIED = 0.
    let kind = match span.span_kind {
        opentelemetry::trace::SpanKind::Internal => 1,
        opentelemetry::trace::SpanKind::Server => 2,
        opentelemetry::trace::SpanKind::Client => 3,
        opentelemetry::trace::SpanKind::Producer => 4,
        opentelemetry::trace::SpanKind::Consumer => 5,
    };
    uint(buf, 6, kind);
    fixed64(buf, 7, nanos(span.start_time));
    fixed64(buf, 8, nanos(span.end_time));
    for kv in &span.attributes {
        attribute(buf, 9, kv);
    }
    uint(buf, 10, u64::from(span.dropped_attributes_count));
    for event in span.events.iter() {
        nested(buf, 11, |e| {
            fixed64(e, 1, nanos(event.timestamp));
            string(e, 2, &event.name);
            for kv in &event.attributes {
                attribute(e, 3, kv);
            }
            uint(e, 4, u64::from(event.dropped_attributes_count));
        });
    }
    uint(buf, 12, u64::from(span.events.dropped_count));
    for link in span.links.iter() {
        nested(buf, 13, |l| {
            let context = &link.span_context;
            bytes(l, 1, &context.trace_id().to_bytes());
            bytes(l, 2, &context.span_id().to_bytes());
            string(l, 3, &context.trace_state().header());
            for kv in &link.attributes {
                attribute(l, 4, kv);
            }
            uint(l, 5, u64::from(link.dropped_attributes_count));
            fixed32(
                l,
                6,
                flags(context.is_remote(), context.trace_flags().to_u8()),
            );
        });
    }
    uint(buf, 14, u64::from(span.links.dropped_count));
    nested(buf, 15, |s| match &span.status {
        Status::Unset => {}
        Status::Ok => uint(s, 3, 1),
        Status::Error { description } => {
            string(s, 2, description);
            uint(s, 3, 2);
        }
    });
    fixed32(
        buf,
        16,
        flags(
            span.parent_span_is_remote,
            span.span_context.trace_flags().to_u8(),
        ),
    );
}

fn flags(parent_is_remote: bool, trace_flags: u8) -> u32 {
    let remote = if parent_is_remote { FLAG_IS_REMOTE } else { 0 };
    u32::from(trace_flags) | FLAG_HAS_IS_REMOTE | remote
}

fn attribute(buf: &mut Vec<u8>, tag: u32, kv: &KeyValue) {
    nested(buf, tag, |b| key_value(b, kv.key.as_str(), &kv.value));
}

fn key_value(buf: &mut Vec<u8>, key: &str, value: &Value) {
    string(buf, 1, key);
    nested(buf, 2, |b| any_value(b, value));
}

/// The body of an `AnyValue`: its one field is written even when it holds its type's
/// default (a oneof member that is set is always on the wire).
fn any_value(buf: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Bool(v) => always_uint(buf, 2, u64::from(*v)),
        Value::I64(v) => always_uint(buf, 3, *v as u64),
        Value::F64(v) => always_fixed64(buf, 4, v.to_bits()),
        Value::String(v) => always_string(buf, 1, v.as_str()),
        Value::Array(array) => nested(buf, 5, |a| match array {
            Array::Bool(vs) => vs.iter().for_each(|v| element(a, Value::Bool(*v))),
            Array::I64(vs) => vs.iter().for_each(|v| element(a, Value::I64(*v))),
            Array::F64(vs) => vs.iter().for_each(|v| element(a, Value::F64(*v))),
            Array::String(vs) => vs.iter().for_each(|v| element(a, Value::String(v.clone()))),
            // A kind of array added to the API after this was written: its text.
            other => element(a, Value::String(other.to_string().into())),
        }),
        // A kind of value added to the API after this was written: its text.
        other => always_string(buf, 1, &other.to_string()),
    }
}

fn element(buf: &mut Vec<u8>, value: Value) {
    nested(buf, 1, |b| any_value(b, &value));
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A length-delimited field whose body `f` appends: the body is written in place and
/// moved right by its length's varint, so no message needs a buffer of its own.
fn nested(buf: &mut Vec<u8>, tag: u32, f: impl FnOnce(&mut Vec<u8>)) {
    encode_key(tag, WireType::LengthDelimited, buf);
    let at = buf.len();
    f(buf);
    let len = buf.len() - at;
    let head = encoded_len_varint(len as u64);
    buf.resize(buf.len() + head, 0);
    buf.copy_within(at..at + len, at + head);
    encode_varint(len as u64, &mut &mut buf[at..at + head]);
}

fn string(buf: &mut Vec<u8>, tag: u32, v: &str) {
    if !v.is_empty() {
        always_string(buf, tag, v);
    }
}

fn always_string(buf: &mut Vec<u8>, tag: u32, v: &str) {
    always_bytes(buf, tag, v.as_bytes());
}

fn bytes(buf: &mut Vec<u8>, tag: u32, v: &[u8]) {
    if !v.is_empty() {
        always_bytes(buf, tag, v);
    }
}

fn always_bytes(buf: &mut Vec<u8>, tag: u32, v: &[u8]) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(v.len() as u64, buf);
    buf.extend_from_slice(v);
}

fn uint(buf: &mut Vec<u8>, tag: u32, v: u64) {
    if v != 0 {
        always_uint(buf, tag, v);
    }
}

fn always_uint(buf: &mut Vec<u8>, tag: u32, v: u64) {
    encode_key(tag, WireType::Varint, buf);
    encode_varint(v, buf);
}

fn fixed64(buf: &mut Vec<u8>, tag: u32, v: u64) {
    if v != 0 {
        always_fixed64(buf, tag, v);
    }
}

fn always_fixed64(buf: &mut Vec<u8>, tag: u32, v: u64) {
    encode_key(tag, WireType::SixtyFourBit, buf);
    buf.extend_from_slice(&v.to_le_bytes());
}

fn fixed32(buf: &mut Vec<u8>, tag: u32, v: u32) {
    if v != 0 {
        encode_key(tag, WireType::ThirtyTwoBit, buf);
        buf.extend_from_slice(&v.to_le_bytes());
    }
}

#[cfg(test)]
mod tests;

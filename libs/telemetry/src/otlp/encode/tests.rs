//! The encoder against OpenTelemetry's own conversion (opentelemetry-proto's transform,
//! what the SDK's OTLP exporter sends) encoded by prost: the same bytes for every kind of
//! span, value and scope.

use super::{EncodedResource, export_request};
use opentelemetry::trace::{
    Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use prost::Message;
use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn at(nanos: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos)
}

fn context(seed: u8, sampled: bool, remote: bool, state: &[(&str, &str)]) -> SpanContext {
    let flags = if sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    SpanContext::new(
        TraceId::from_bytes([seed; 16]),
        SpanId::from_bytes([seed.wrapping_add(1); 8]),
        flags,
        remote,
        TraceState::from_key_value(state.iter().copied()).expect("trace state"),
    )
}

fn scope(name: &'static str) -> InstrumentationScope {
    InstrumentationScope::builder(name).build()
}

/// A plain server span: no parent, sampled, status unset, one string attribute.
fn plain(seed: u8, scope: InstrumentationScope) -> SpanData {
    SpanData {
        span_context: context(seed, true, false, &[]),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Server,
        name: Cow::Borrowed("guest-profile GetGuest"),
        start_time: at(1_765_000_000_123_456_789),
        end_time: at(1_765_000_000_124_000_000),
        attributes: vec![KeyValue::new("rpc.method", "GetGuest")],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: scope,
    }
}

/// Every field set, and every kind of value, defaults among them (false, 0, 0.0, "").
fn full(seed: u8) -> SpanData {
    let mut events = SpanEvents::default();
    events.events = vec![
        Event::new(
            "retry",
            at(1_765_000_000_123_500_000),
            vec![KeyValue::new("attempt", 2_i64)],
            1,
        ),
        Event::new("", UNIX_EPOCH, vec![], 0),
    ];
    events.dropped_count = 3;
    let mut links = SpanLinks::default();
    links.links = vec![
        Link::new(
            context(seed ^ 0x55, true, true, &[("vendor", "x1")]),
            vec![KeyValue::new("why", "outbox")],
            4,
        ),
        Link::with_context(context(seed ^ 0x33, false, false, &[])),
    ];
    links.dropped_count = 5;
    let attributes = vec![
        KeyValue::new("ok", true),
        KeyValue::new("no", false),
        KeyValue::new("n", -42_i64),
        KeyValue::new("zero", 0_i64),
        KeyValue::new("big", i64::MAX),
        KeyValue::new("x", 2.5_f64),
        KeyValue::new("fzero", 0.0_f64),
        KeyValue::new("empty", ""),
        KeyValue::new("property_id", "sh-bund"),
        KeyValue::new("", "a key left empty"),
        KeyValue::new("bools", Value::Array(Array::Bool(vec![true, false]))),
        KeyValue::new("ints", Value::Array(Array::I64(vec![0, -1, 7]))),
        KeyValue::new("floats", Value::Array(Array::F64(vec![0.0, 1.5]))),
        KeyValue::new(
            "strings",
            Value::Array(Array::String(vec![
                StringValue::from(""),
                StringValue::from("二"),
            ])),
        ),
        KeyValue::new("none", Value::Array(Array::I64(vec![]))),
    ];
    SpanData {
        span_context: context(
            seed,
            true,
            true,
            &[("congo", "t61rcWkgMzE"), ("rojo", "00f")],
        ),
        parent_span_id: SpanId::from_bytes([9; 8]),
        parent_span_is_remote: true,
        span_kind: SpanKind::Client,
        name: Cow::Owned(format!("span {seed}")),
        start_time: at(1),
        end_time: at(u64::MAX / 2),
        attributes,
        dropped_attributes_count: 6,
        events,
        links,
        status: Status::error("database unavailable"),
        instrumentation_scope: InstrumentationScope::builder("guestloop")
            .with_version("0.1.0")
            .with_schema_url("https://opentelemetry.io/schemas/1.30.0")
            .with_attributes([KeyValue::new("lib", "tracing")])
            .build(),
    }
}

fn kinds() -> Vec<SpanData> {
    [
        (SpanKind::Internal, Status::Ok),
        (SpanKind::Producer, Status::Unset),
        (SpanKind::Consumer, Status::error("")),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (kind, status))| {
        let mut s = plain(40 + i as u8, scope("kinds"));
        s.span_kind = kind;
        s.status = status;
        s.name = Cow::Borrowed("");
        s.span_context = context(40 + i as u8, false, false, &[]);
        s.parent_span_id = SpanId::from_bytes([1; 8]);
        s
    })
    .collect()
}

fn resource() -> Resource {
    Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", "guest-profile"),
            KeyValue::new("service.namespace", "guestloop"),
            KeyValue::new("k8s.pod.name", "guest-profile-7d9f"),
        ])
        .build()
}

fn reference(batch: &[SpanData], resource: &Resource) -> Vec<u8> {
    let with_schema = ResourceAttributesWithSchema::from(resource);
    ExportTraceServiceRequest {
        resource_spans: group_spans_by_resource_and_scope(batch.to_vec(), &with_schema),
    }
    .encode_to_vec()
}

fn ours(batch: &[SpanData], resource: &Resource) -> Vec<u8> {
    let mut out = Vec::new();
    export_request(batch, &EncodedResource::new(resource), &mut out);
    out
}

#[test]
fn a_batch_encodes_as_opentelemetry_encodes_it() {
    let with_schema_url = Resource::builder_empty()
        .with_schema_url(
            [KeyValue::new("service.name", "metrics")],
            "https://opentelemetry.io/schemas/1.21.0",
        )
        .build();
    let interleaved = vec![
        plain(1, scope("a")),
        full(2),
        plain(3, scope("b")),
        plain(4, scope("a")),
        full(5),
    ];
    let table: Vec<(&str, Vec<SpanData>, Resource)> = vec![
        (
            "one plain span",
            vec![plain(1, scope("guest-profile"))],
            resource(),
        ),
        ("every field and value", vec![full(7)], resource()),
        ("kinds, statuses, empty names", kinds(), resource()),
        (
            "scopes interleaved, grouped in order",
            interleaved,
            resource(),
        ),
        (
            "a resource with a schema url",
            vec![full(8)],
            with_schema_url,
        ),
        (
            "an empty resource",
            vec![plain(9, scope("x"))],
            Resource::builder_empty().build(),
        ),
        ("an empty batch", vec![], resource()),
    ];
    for (case, batch, resource) in table {
        let expected = reference(&batch, &resource);
        let got = ours(&batch, &resource);
        assert_eq!(
            ExportTraceServiceRequest::decode(got.as_slice()).expect(case),
            ExportTraceServiceRequest::decode(expected.as_slice()).expect(case),
            "{case}: the same message"
        );
        assert_eq!(got, expected, "{case}: the same bytes");
    }
}

#[test]
fn a_big_batch_encodes_as_opentelemetry_encodes_it() {
    // Lengths that need two- and three-byte varints at every level.
    let batch: Vec<SpanData> = (0..2_000u32)
        .map(|i| {
            let mut s = if i % 7 == 0 {
                full(i as u8)
            } else {
                plain(i as u8, scope("guest-profile"))
            };
            s.attributes.push(KeyValue::new("i", i64::from(i)));
            s
        })
        .collect();
    let resource = resource();
    assert_eq!(ours(&batch, &resource), reference(&batch, &resource));
}

#[test]
fn a_changed_span_changes_the_bytes() {
    // The comparison above is not vacuous: what differs in a span differs on the wire.
    let resource = resource();
    let base = ours(&[plain(1, scope("a"))], &resource);
    let mut later = plain(1, scope("a"));
    later.end_time += Duration::from_nanos(1);
    let mut remote = plain(1, scope("a"));
    remote.parent_span_is_remote = true;
    let mut other_scope = plain(1, scope("b"));
    other_scope.attributes.clear();
    for (case, span) in [
        ("end time", later),
        ("remote parent", remote),
        ("scope", other_scope),
    ] {
        assert_ne!(ours(&[span], &resource), base, "{case}");
    }
}

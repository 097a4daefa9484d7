//! The layer in the subscriber `init` builds (the same JSON and OpenTelemetry layers, in
//! the same order), with a span processor that sees when each OpenTelemetry span starts and
//! what it ends with, and a layer that counts every `trace_id` record: a test sees the log
//! lines, the exported span, and what each span paid.

use super::*;
use crate::propagation::set_parent_from_traceparent;
use crate::test_support::Buffer;
use crate::{json_layer, otel_layer};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanProcessor};
use std::sync::{Arc, Mutex};
use tracing_subscriber::layer::SubscriberExt;

/// Counts the records of a `trace_id` field, by hand or by the layer under test.
#[derive(Clone, Default)]
struct TraceIdRecords(Arc<Mutex<usize>>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for TraceIdRecords {
    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let span = ctx.span(id).unwrap();
        if let Some(field) = span.metadata().fields().field(TRACE_ID_FIELD)
            && values.contains(&field)
        {
            *self.0.lock().unwrap() += 1;
        }
    }
}

/// The OpenTelemetry spans started so far, and those ended.
#[derive(Debug, Clone, Default)]
struct Spans {
    started: Arc<Mutex<usize>>,
    ended: Arc<Mutex<Vec<SpanData>>>,
}

impl SpanProcessor for Spans {
    fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &opentelemetry::Context) {
        *self.started.lock().unwrap() += 1;
    }
    fn on_end(&self, span: SpanData) {
        self.ended.lock().unwrap().push(span);
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _: std::time::Duration) -> OTelSdkResult {
        Ok(())
    }
}

struct Outcome {
    /// What was logged, one parsed JSON value a line.
    lines: Vec<serde_json::Value>,
    /// How many times a `trace_id` field was recorded.
    records: usize,
    /// OpenTelemetry spans started before the span `body` returned was closed.
    started_while_open: usize,
    /// That span as the exporter gets it.
    exported: SpanData,
}

impl Outcome {
    fn trace_id(&self) -> String {
        self.exported.span_context.trace_id().to_string()
    }

    fn trace_id_attribute(&self) -> Option<String> {
        self.exported
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == TRACE_ID_FIELD)
            .map(|kv| kv.value.to_string())
    }
}

/// Runs `body`, which returns the one span it made, and closes that span.
fn run(body: impl FnOnce() -> tracing::Span) -> Outcome {
    // As `init` sets them: W3C trace context, lines from `info` up.
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let records = TraceIdRecords::default();
    let spans = Spans::default();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(spans.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("info"))
        .with(TraceIdOnFirstLine::default())
        .with(json_layer(move || writer.clone()))
        .with(otel_layer(provider.tracer("test")))
        .with(records.clone());
    let started_while_open = tracing::subscriber::with_default(subscriber, || {
        let span = body();
        let started = *spans.started.lock().unwrap();
        drop(span);
        started
    });
    let mut ended = std::mem::take(&mut *spans.ended.lock().unwrap());
    assert_eq!(ended.len(), 1, "one span exported: {ended:?}");
    let lines = buffer
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let records = *records.0.lock().unwrap();
    Outcome {
        lines,
        records,
        started_while_open,
        exported: ended.remove(0),
    }
}

fn rpc_span() -> tracing::Span {
    tracing::info_span!(
        "grpc",
        rpc.method = "GetGuest",
        trace_id = tracing::field::Empty
    )
}

/// The point of the layer: a call that logs nothing pays nothing for the trace id, and its
/// OpenTelemetry span is built once, when it ends.
#[test]
fn a_span_that_writes_no_line_never_records_its_trace_id() {
    let outcome = run(|| {
        let span = rpc_span();
        span.in_scope(|| tracing::debug!("below the level: not written"));
        span.record("rpc.method", "GetStay");
        span
    });
    assert!(outcome.lines.is_empty(), "{:?}", outcome.lines);
    assert_eq!(outcome.records, 0);
    assert_eq!(outcome.started_while_open, 0, "started before it ended");
    assert_eq!(outcome.trace_id_attribute(), None);
    assert_eq!(outcome.exported.name, "grpc");
}

/// Each case: what the body does inside the span it returns, the trace id every line's span
/// must show (`None`: the exported span's own) and how many lines it writes.
#[test]
fn every_line_of_a_span_carries_its_trace_id_recorded_once() {
    type Body = fn() -> tracing::Span;
    let cases: [(&str, Body, Option<&str>, usize); 5] = [
        (
            "two lines inside the span",
            || {
                let span = rpc_span();
                span.in_scope(|| {
                    tracing::warn!("first");
                    tracing::error!("second");
                });
                span
            },
            None,
            2,
        ),
        (
            "a remote parent's trace",
            || {
                let span = rpc_span();
                set_parent_from_traceparent(
                    &span,
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                );
                span.in_scope(|| tracing::warn!("inside"));
                span
            },
            Some("4bf92f3577b34da6a3ce929d0e0e4736"),
            1,
        ),
        (
            "a line naming the span as its parent, outside its scope",
            || {
                let span = rpc_span();
                tracing::warn!(parent: &span, "explicit parent");
                span
            },
            None,
            1,
        ),
        (
            "a line declared without a parent, inside the span",
            || {
                let span = rpc_span();
                span.in_scope(|| tracing::warn!(parent: None, "no parent"));
                span
            },
            None,
            1,
        ),
        (
            "a field recorded after the first line keeps the trace id",
            || {
                let span = tracing::info_span!(
                    "grpc",
                    trace_id = tracing::field::Empty,
                    code = tracing::field::Empty
                );
                span.in_scope(|| tracing::warn!("before"));
                span.record("code", 5);
                span.in_scope(|| tracing::warn!("after"));
                span
            },
            None,
            2,
        ),
    ];
    for (case, body, want, lines_wanted) in cases {
        let outcome = run(body);
        let own = outcome.trace_id();
        if let Some(want) = want {
            assert_eq!(own, want, "{case}: the exported span's trace");
        }
        assert_eq!(own.len(), 32, "{case}: {own}");
        assert_eq!(
            outcome.lines.len(),
            lines_wanted,
            "{case}: {:?}",
            outcome.lines
        );
        for line in &outcome.lines {
            assert_eq!(line["span"]["trace_id"], own.as_str(), "{case}: {line}");
        }
        assert_eq!(outcome.records, 1, "{case}: recorded {}×", outcome.records);
        assert_eq!(outcome.trace_id_attribute(), Some(own), "{case}");
    }
}

/// A value given by hand, at creation or later, is the span's: never replaced.
#[test]
fn a_trace_id_given_by_hand_is_kept() {
    type Body = fn() -> tracing::Span;
    // (case, body, `trace_id` records: the hand's own, none by the layer)
    let cases: [(&str, Body, usize); 2] = [
        (
            "recorded",
            || {
                let span = rpc_span();
                span.record("trace_id", "given");
                span.in_scope(|| tracing::warn!("inside"));
                span
            },
            1,
        ),
        (
            "at creation",
            || {
                let span = tracing::info_span!("grpc", trace_id = "given");
                span.in_scope(|| tracing::warn!("inside"));
                span
            },
            0,
        ),
    ];
    for (case, body, records) in cases {
        let outcome = run(body);
        assert_eq!(outcome.lines[0]["span"]["trace_id"], "given", "{case}");
        assert_eq!(outcome.records, records, "{case}");
    }
}

#[test]
fn a_span_without_the_field_is_left_as_it_is() {
    let outcome = run(|| {
        let span = tracing::info_span!("job", outbox = 3);
        span.in_scope(|| tracing::warn!("inside"));
        span
    });
    let span = outcome.lines[0]["span"].as_object().unwrap();
    assert!(!span.contains_key(TRACE_ID_FIELD), "{span:?}");
    assert_eq!(span["outbox"], 3);
    assert_eq!(outcome.records, 0);
    assert_eq!(outcome.trace_id_attribute(), None);
}

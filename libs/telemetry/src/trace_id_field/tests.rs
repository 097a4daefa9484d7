//! The layer under the subscriber `init` builds (the JSON log layer with the project's span
//! fields, the OpenTelemetry layer), with a layer beside them that notes every `trace_id`
//! record, so a test sees both the log lines and what each span paid.

use super::*;
use crate::json_fields::AppendingJsonFields;
use crate::propagation::set_parent_from_traceparent;
use crate::test_support::Buffer;
use opentelemetry::trace::TracerProvider as _;
use std::sync::{Arc, Mutex};
use tracing_opentelemetry::OpenTelemetrySpanExt;
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

/// What `body` logged (one parsed JSON value a line), how many `trace_id` records it made,
/// and the trace id of the span `body` returns, as OpenTelemetry knows it.
fn run(body: impl FnOnce() -> tracing::Span) -> (Vec<serde_json::Value>, usize, String) {
    // As `init` sets them: W3C trace context, lines from `info` up.
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let records = TraceIdRecords::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("info"))
        .with(TraceIdOnFirstLine::default())
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .fmt_fields(AppendingJsonFields)
                .with_writer(move || writer.clone()),
        )
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
        .with(records.clone());
    let trace_id = tracing::subscriber::with_default(subscriber, || {
        let span = body();
        span.context().span().span_context().trace_id().to_string()
    });
    let text = buffer.text();
    let lines = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let count = *records.0.lock().unwrap();
    (lines, count, trace_id)
}

fn rpc_span() -> tracing::Span {
    tracing::info_span!(
        "grpc",
        rpc.method = "GetGuest",
        trace_id = tracing::field::Empty
    )
}

#[test]
fn a_span_that_writes_no_line_never_records_its_trace_id() {
    let (lines, records, _) = run(|| {
        let span = rpc_span();
        span.in_scope(|| tracing::debug!("below the level: not written"));
        span
    });
    assert!(lines.is_empty(), "{lines:?}");
    assert_eq!(records, 0);
}

/// Each case: what the body does inside the span it returns, and the trace id every line's
/// span must show (`None`: the span's own, as OpenTelemetry gives it).
#[test]
fn every_line_of_a_span_carries_its_trace_id_recorded_once() {
    let parent = "4bf92f3577b34da6a3ce929d0e0e4736";
    type Body = fn() -> tracing::Span;
    let cases: [(&str, Body, Option<&str>, usize); 4] = [
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
            Some(parent),
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
        let (lines, records, own) = run(body);
        let want = want.unwrap_or(&own);
        assert_eq!(want.len(), 32, "{case}: {want}");
        assert_eq!(lines.len(), lines_wanted, "{case}: {lines:?}");
        for line in &lines {
            assert_eq!(line["span"]["trace_id"], want, "{case}: {line}");
        }
        assert_eq!(records, 1, "{case}: trace_id recorded {records} times");
    }
}

#[test]
fn a_trace_id_recorded_by_hand_is_kept() {
    let (lines, records, _) = run(|| {
        let span = rpc_span();
        span.record("trace_id", "given");
        span.in_scope(|| tracing::warn!("inside"));
        span
    });
    assert_eq!(lines[0]["span"]["trace_id"], "given", "{lines:?}");
    assert_eq!(records, 1);
}

#[test]
fn a_span_without_the_field_is_left_as_it_is() {
    let (lines, records, _) = run(|| {
        let span = tracing::info_span!("job", outbox = 3);
        span.in_scope(|| tracing::warn!("inside"));
        span
    });
    let span = lines[0]["span"].as_object().unwrap();
    assert!(!span.contains_key(TRACE_ID_FIELD), "{span:?}");
    assert_eq!(span["outbox"], 3);
    assert_eq!(records, 0);
}

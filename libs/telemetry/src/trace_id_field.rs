//! Fills a span's `trace_id` field when the first log line is written inside it, instead of
//! on every span. Almost every RPC writes no line at all, yet filling the field at the
//! start of each call cost the trace id's hex text, its record in the JSON log layer, an
//! attribute in the OpenTelemetry layer, and that attribute's bytes in every exported span
//! (which carries its trace id anyway). This layer runs before the JSON layer sees an event:
//! if the event's span declares a `trace_id` field that is still empty, it records the
//! span's trace id there, so the line (and every later line of that span) carries it.
//! The OpenTelemetry span is then started at that line, not at the call's start (it is
//! otherwise built when the call ends; its start time and parent are fixed either way).

use opentelemetry::trace::TraceContextExt;
use std::sync::OnceLock;
use tracing::field::{Field, Value, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Dispatch, Event, Subscriber, dispatcher::WeakDispatch};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The field a span declares (as `tracing::field::Empty`) to have its trace id in logs.
const TRACE_ID_FIELD: &str = "trace_id";

/// Must be layered before the JSON log layer (so the field is filled before the line is
/// written) and beside the OpenTelemetry layer, which knows the trace id.
#[derive(Default)]
pub struct TraceIdOnFirstLine {
    dispatch: OnceLock<WeakDispatch>,
}

/// Marks a span whose `trace_id` field still waits for its first log line.
struct Unfilled;

impl<S> Layer<S> for TraceIdOnFirstLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.dispatch.set(subscriber.downgrade());
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().fields().field(TRACE_ID_FIELD).is_some()
            && !given(attrs)
            && let Some(span) = ctx.span(id)
        {
            span.extensions_mut().insert(Unfilled);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        // Filled by hand or by this layer: later lines carry it already.
        if let Some(span) = ctx.span(id)
            && let Some(field) = span.metadata().fields().field(TRACE_ID_FIELD)
            && values.contains(&field)
        {
            span.extensions_mut().remove::<Unfilled>();
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        // The span whose fields the JSON layer writes into the line: the event's explicit
        // parent, else the current span (also for an event declared without a parent).
        let Some(span) = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current())
        else {
            return;
        };
        let Some(field) = span.metadata().fields().field(TRACE_ID_FIELD) else {
            return;
        };
        // The mark is only read here and cleared by the record (`on_record`): a line written
        // meanwhile on another thread of the same span records the same id again rather
        // than going out without it.
        if span.extensions().get::<Unfilled>().is_none() {
            return;
        }
        let id = span.id();
        let fields = span.metadata().fields();
        // No extensions may be held from here on: reading the OpenTelemetry context and
        // recording both take them.
        drop(span);
        let Some(dispatch) = self.dispatch.get().and_then(WeakDispatch::upgrade) else {
            return;
        };
        let Some(context) = tracing_opentelemetry::get_otel_context(&id, &dispatch) else {
            return;
        };
        let span_context = context.span().span_context().clone();
        if !span_context.is_valid() {
            return;
        }
        let trace_id = span_context.trace_id().to_string();
        let values = [(&field, Some(&trace_id.as_str() as &dyn Value))];
        dispatch.record(&id, &Record::new(&fields.value_set(&values)));
    }
}

/// Whether the span was created with a value in its `trace_id` field (an `Empty` field is
/// not visited).
fn given(attrs: &Attributes<'_>) -> bool {
    struct Given(bool);
    impl Visit for Given {
        fn record_debug(&mut self, field: &Field, _: &dyn std::fmt::Debug) {
            self.0 |= field.name() == TRACE_ID_FIELD;
        }
    }
    let mut visitor = Given(false);
    attrs.record(&mut visitor);
    visitor.0
}

#[cfg(test)]
mod tests;

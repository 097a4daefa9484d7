//! Logs and traces for every Guestloop process: JSON logs to stdout carrying the trace id,
//! spans exported over OTLP/gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and W3C trace
//! context carried across gRPC calls and outbox events.

mod client_layer;
mod json_fields;
mod otlp;
pub mod propagation;
#[cfg(test)]
mod test_support;
mod trace_id_field;

pub use client_layer::{TraceContextLayer, TraceContextService};
use trace_id_field::TraceIdOnFirstLine;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(String),
    #[error("a tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// Flushes buffered spans when dropped; keep it alive for the life of `main`.
#[must_use = "spans are lost unless the guard lives until shutdown"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl std::fmt::Debug for TelemetryGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryGuard")
            .field("exporting", &self.provider.is_some())
            .finish()
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            shutdown_provider(provider);
        }
    }
}

impl TelemetryGuard {
    /// Flushes and stops span export from a blocking thread while this runtime runs on.
    /// Dropping the guard flushes too, but blocks the thread it runs on; on a
    /// current-thread runtime (a one-CPU pod: guestloop_server's scheduler) that is the
    /// thread the exporter's connection runs on, and the flush would wait out its timeout
    /// and lose the last spans.
    pub async fn shutdown(mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = tokio::task::spawn_blocking(move || shutdown_provider(provider)).await;
        }
    }
}

fn shutdown_provider(provider: SdkTracerProvider) {
    let _ = provider.shutdown_with_timeout(std::time::Duration::from_secs(5));
}

/// Runs `work` with telemetry installed ([`init`]), then flushes the spans it made
/// ([`TelemetryGuard::shutdown`]) before returning its result.
pub async fn traced<T, E: From<TelemetryError>>(
    service_name: &str,
    work: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let telemetry = init(service_name)?;
    let result = work.await;
    telemetry.shutdown().await;
    result
}

/// Installs the process-wide subscriber: JSON logs filtered by `RUST_LOG` (default `info`),
/// and an OpenTelemetry layer exporting to `OTEL_EXPORTER_OTLP_ENDPOINT` when it is set.
/// Must run inside a Tokio runtime: the exporter's gRPC channel runs its connection there
/// (the SDK's batch processor calls the exporter from a thread of its own).
pub fn init(service_name: &str) -> Result<TelemetryGuard, TelemetryError> {
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok();
    init_exporting_to(service_name, endpoint.as_deref())
}

/// [`init`] with the OTLP endpoint given rather than read from the environment (`None` or
/// blank: spans are not exported).
pub fn init_exporting_to(
    service_name: &str,
    endpoint: Option<&str>,
) -> Result<TelemetryGuard, TelemetryError> {
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = json_layer(std::io::stdout).boxed();

    // Spans always get W3C trace and span ids (so logs carry a trace id and context
    // propagates); they are exported only when an OTLP endpoint is configured.
    let endpoint = endpoint.filter(|e| !e.trim().is_empty());
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service_name.to_string())
        .build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    let exporting = endpoint.is_some();
    if let Some(endpoint) = endpoint {
        let exporter =
            otlp::OtlpSpanExporter::from_env(endpoint).map_err(TelemetryError::Exporter)?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    let otel = otel_layer(provider.tracer(service_name.to_string())).boxed();
    let provider = exporting.then_some(provider);

    // In this order: the trace id is filled in before the JSON layer writes a line.
    tracing_subscriber::registry()
        .with(filter)
        .with(TraceIdOnFirstLine::default())
        .with(json)
        .with(Some(otel))
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    Ok(TelemetryGuard { provider })
}

/// JSON lines, one object per event, the current span's fields under `"span"`.
fn json_layer<S, W>(writer: W) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(true)
        .fmt_fields(json_fields::AppendingJsonFields)
        .with_writer(writer)
}

/// Source location, thread and busy/idle attributes are left out: an RPC span's name and
/// fields say where it ran, and these eight attributes per span were most of what
/// exporting a span costs (guestloop-bench P6, docs/benchmarks/README.md).
/// No OpenTelemetry context is attached on each span enter: nothing here reads
/// `opentelemetry::Context::current()` (propagation takes the span's own context), and a
/// span is entered on every poll of its future, for a big read once per row.
fn otel_layer<S>(tracer: opentelemetry_sdk::trace::SdkTracer) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_context_activation(false)
}

//! The outermost request layer: a span per call that continues the caller's W3C trace and
//! carries the trace id into every log line, and the per-RPC Prometheus series (rate,
//! errors by gRPC code, latency histogram; `rpc_metrics.rs`). Labels are service, method
//! and code only: never anything about a guest.

use crate::rpc_metrics::{RpcMetrics, split_path};
use futures::future::BoxFuture;
use std::task::{Context, Poll};
use std::time::Instant;
use tracing::Instrument;
use tracing_opentelemetry_ext::set_parent;

mod tracing_opentelemetry_ext {
    pub fn set_parent(span: &tracing::Span, headers: &http::HeaderMap) {
        if let Some(tp) = headers.get("traceparent").and_then(|v| v.to_str().ok()) {
            guestloop_telemetry::propagation::set_parent_from_traceparent(span, tp);
        }
    }
}

#[derive(Debug, Clone)]
pub struct RequestContextLayer {
    service_name: &'static str,
    metrics: RpcMetrics,
}

impl RequestContextLayer {
    /// `served_methods`: the full paths ("/pkg.Service/Method") that get series of their
    /// own on /metrics; calls to any other path are counted as unknown (`rpc_metrics.rs`).
    pub fn new(service_name: &'static str, served_methods: Vec<String>) -> Self {
        Self {
            service_name,
            metrics: RpcMetrics::new(served_methods),
        }
    }
}

impl<S> tower::Layer<S> for RequestContextLayer {
    type Service = RequestContext<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestContext {
            inner,
            service_name: self.service_name,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RequestContext<S> {
    inner: S,
    service_name: &'static str,
    metrics: RpcMetrics,
}

impl<S, B, R> tower::Service<http::Request<B>> for RequestContext<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Send,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let (service, method) = split_path(path);
        let infrastructure = service.starts_with("grpc.");
        let span = if infrastructure {
            tracing::Span::none()
        } else {
            // As `&str`, not `%` (Display): each layer formatted a Display field into a
            // string of its own before writing it.
            let span = tracing::info_span!(
                "grpc",
                otel.name = path,
                otel.kind = "server",
                rpc.system = "grpc",
                rpc.service = service,
                rpc.method = method,
                guestloop.service = self.service_name,
                property_id = tracing::field::Empty,
                // Filled when the call writes its first log line (telemetry's
                // TraceIdOnFirstLine): most calls write none.
                trace_id = tracing::field::Empty,
                rpc.grpc.status_code = tracing::field::Empty,
            );
            set_parent(&span, request.headers());
            span
        };
        let started = Instant::now();
        let series = self.metrics.method(path);
        let future = self.inner.call(request);
        Box::pin(
            async move {
                let result = future.await;
                let code = match &result {
                    Ok(response) => response
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<i32>().ok())
                        .unwrap_or(0),
                    Err(_) => 2,
                };
                tracing::Span::current().record("rpc.grpc.status_code", code);
                series.record(code, started.elapsed());
                result
            }
            .instrument(span),
        )
    }
}

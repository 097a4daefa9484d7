//! A real OTLP/gRPC trace receiver on a local port: services export to it as they would
//! to a collector. It counts spans and, when asked, remembers which services sent spans
//! of which trace (the end-to-end test follows one trace across four services; the
//! benchmark only counts, so its memory stays flat under load).

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
pub struct TraceReceiver {
    /// trace id (hex) → the `service.name`s that sent spans of it; filled only when
    /// started with `keep_traces`.
    pub traces: Arc<Mutex<BTreeMap<String, BTreeSet<String>>>>,
    spans: Arc<AtomicU64>,
    keep_traces: bool,
}

impl std::fmt::Debug for TraceReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceReceiver")
            .field("spans", &self.spans())
            .finish()
    }
}

impl TraceReceiver {
    /// Listens on 127.0.0.1 (a free port) until the runtime ends; returns the receiver and
    /// its address (`OTEL_EXPORTER_OTLP_ENDPOINT=http://{addr}`).
    pub async fn start(keep_traces: bool) -> std::io::Result<(Self, SocketAddr)> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let receiver = Self {
            keep_traces,
            ..Self::default()
        };
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(receiver.clone()))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        Ok((receiver, addr))
    }

    /// Spans received so far.
    pub fn spans(&self) -> u64 {
        self.spans.load(Ordering::Relaxed)
    }
}

#[tonic::async_trait]
impl TraceService for TraceReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let request = request.into_inner();
        let count: usize = request
            .resource_spans
            .iter()
            .flat_map(|rs| rs.scope_spans.iter())
            .map(|ss| ss.spans.len())
            .sum();
        self.spans.fetch_add(count as u64, Ordering::Relaxed);
        if !self.keep_traces {
            return Ok(tonic::Response::new(ExportTraceServiceResponse::default()));
        }
        let mut traces = self.traces.lock().expect("trace map lock");
        for rs in request.resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.as_ref())
                .and_then(|v| match &v.value {
                    Some(any_value::Value::StringValue(s)) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for span in ss.spans {
                    let id: String = span.trace_id.iter().map(|b| format!("{b:02x}")).collect();
                    traces.entry(id).or_default().insert(service.clone());
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

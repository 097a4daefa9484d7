//! A real OTLP/gRPC trace receiver on a local port: services export to it as they would
//! to a collector. It counts spans and, when asked, remembers which services sent spans
//! of which trace (the end-to-end test follows one trace across four services; the
//! benchmark only counts, so its memory stays flat under load).
//!
//! It decodes only what it reads: each span's trace id and each resource's
//! `service.name`, by the OTLP field numbers; protobuf skips the rest of every span
//! without building it. The generated types built every attribute of every span (a
//! string key, a value, their allocations), and in the benchmark that decode ran in the
//! load generator's process, on the same two cores as the service it measures: a cost a
//! collector on its own machine does not put on a service.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::NamedService;

/// The parts of `opentelemetry.proto.*` this receiver reads, by field number.
mod wire {
    /// collector.trace.v1.ExportTraceServiceRequest
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExportRequest {
        #[prost(message, repeated, tag = "1")]
        pub resource_spans: Vec<ResourceSpans>,
    }

    /// collector.trace.v1.ExportTraceServiceResponse (its partial_success left unset).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExportResponse {}

    /// trace.v1.ResourceSpans
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResourceSpans {
        #[prost(message, optional, tag = "1")]
        pub resource: Option<Resource>,
        #[prost(message, repeated, tag = "2")]
        pub scope_spans: Vec<ScopeSpans>,
    }

    /// resource.v1.Resource
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Resource {
        #[prost(message, repeated, tag = "1")]
        pub attributes: Vec<KeyValue>,
    }

    /// common.v1.KeyValue
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct KeyValue {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<AnyValue>,
    }

    /// common.v1.AnyValue, its string case only.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AnyValue {
        #[prost(string, tag = "1")]
        pub string_value: String,
    }

    /// trace.v1.ScopeSpans
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ScopeSpans {
        #[prost(message, repeated, tag = "2")]
        pub spans: Vec<Span>,
    }

    /// trace.v1.Span, its trace id only.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Span {
        #[prost(bytes = "vec", tag = "1")]
        pub trace_id: Vec<u8>,
    }
}

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
                .add_service(receiver.clone())
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        Ok((receiver, addr))
    }

    /// [`start`](Self::start) on a thread and runtime of its own, for the life of the
    /// process: a load generator on a one-thread runtime would otherwise decode every span
    /// on the thread that makes its calls, a cost a collector elsewhere does not put on
    /// the caller.
    pub fn start_on_own_thread(keep_traces: bool) -> std::io::Result<(Self, SocketAddr)> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (started, answer) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("otlp-receiver".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let _ = started.send(Self::start(keep_traces).await);
                    std::future::pending::<()>().await
                })
            })?;
        answer.recv().map_err(std::io::Error::other)?
    }

    /// Spans received so far.
    pub fn spans(&self) -> u64 {
        self.spans.load(Ordering::Relaxed)
    }

    fn export(&self, request: wire::ExportRequest) {
        let count: usize = request
            .resource_spans
            .iter()
            .flat_map(|rs| rs.scope_spans.iter())
            .map(|ss| ss.spans.len())
            .sum();
        self.spans.fetch_add(count as u64, Ordering::Relaxed);
        if !self.keep_traces {
            return;
        }
        let mut traces = self.traces.lock().expect("trace map lock");
        for rs in request.resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.as_ref())
                .map(|v| v.string_value.clone())
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for span in ss.spans {
                    let id: String = span.trace_id.iter().map(|b| format!("{b:02x}")).collect();
                    traces.entry(id).or_default().insert(service.clone());
                }
            }
        }
    }
}

impl NamedService for TraceReceiver {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

/// The one method, as tonic's generated servers route it.
impl<B> Service<http::Request<B>> for TraceReceiver
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != "/opentelemetry.proto.collector.trace.v1.TraceService/Export" {
            return Box::pin(async {
                Ok(tonic::Status::unimplemented("only TraceService/Export").into_http())
            });
        }
        let receiver = self.clone();
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
            Ok(grpc.unary(Export(receiver), req).await)
        })
    }
}

struct Export(TraceReceiver);

impl tonic::server::UnaryService<wire::ExportRequest> for Export {
    type Response = wire::ExportResponse;
    type Future = BoxFuture<tonic::Response<Self::Response>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<wire::ExportRequest>) -> Self::Future {
        self.0.export(request.into_inner());
        Box::pin(async { Ok(tonic::Response::new(wire::ExportResponse {})) })
    }
}

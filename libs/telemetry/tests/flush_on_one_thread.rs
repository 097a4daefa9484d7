//! The spans a process makes just before it exits reach the collector when the process
//! runs on a current-thread runtime (a one-CPU pod), and the flush does not wait out its
//! timeout: the exporter's connection runs on that runtime's only thread, so the flush
//! must not block it. Its own test binary: `init` installs the process-wide subscriber.

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The names of the spans it is sent.
#[derive(Clone, Default)]
struct Collector {
    names: Arc<Mutex<Vec<String>>>,
}

#[async_trait::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans);
        self.names.lock().unwrap().extend(spans.map(|s| s.name));
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[test]
fn the_last_spans_reach_the_collector_from_a_current_thread_runtime() {
    // The collector runs on a runtime of its own, as a real one runs in a process of its own.
    let collector_runtime = tokio::runtime::Runtime::new().unwrap();
    let collector = Collector::default();
    let addr = collector_runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(collector.clone()))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        addr
    });

    let service = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let endpoint = format!("http://{addr}");
    let started = Instant::now();
    service.block_on(async {
        let telemetry =
            guestloop_telemetry::init_exporting_to("flush-test", Some(&endpoint)).unwrap();
        tracing::info_span!("the_last_span").in_scope(|| tracing::info!("exiting"));
        telemetry.shutdown().await;
    });
    let took = started.elapsed();

    let names = collector.names.lock().unwrap().clone();
    assert_eq!(names, ["the_last_span"], "exported spans");
    // The flush gives up after 5 s; a blocked connection would take all of them.
    assert!(took < Duration::from_secs(3), "the flush took {took:?}");
}

//! The exporter against a real OTLP/gRPC receiver (opentelemetry-proto's generated
//! `TraceService` server on a local port), driven as the SDK's batch processor drives it:
//! `export` blocked on from a thread of its own.

use super::{OtlpSpanExporter, add_headers};
use opentelemetry::KeyValue;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkError;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter, SpanLinks};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};
use tonic::metadata::MetadataMap;

/// Records what it is sent; answers each call with the next scripted status (OK when
/// the script has run out).
#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<(MetadataMap, ExportTraceServiceRequest)>>>,
    script: Arc<Mutex<VecDeque<tonic::Code>>>,
}

#[async_trait::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let (metadata, _, body) = request.into_parts();
        self.received.lock().unwrap().push((metadata, body));
        match self.script.lock().unwrap().pop_front() {
            Some(code) => Err(tonic::Status::new(code, "scripted")),
            None => Ok(tonic::Response::new(ExportTraceServiceResponse::default())),
        }
    }
}

async fn receiver(script: &[tonic::Code]) -> (Receiver, SocketAddr) {
    let r = Receiver::default();
    r.script.lock().unwrap().extend(script.iter().copied());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = TraceServiceServer::new(r.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (r, addr)
}

fn span(i: u8) -> SpanData {
    SpanData {
        span_context: SpanContext::new(
            TraceId::from_bytes([i; 16]),
            SpanId::from_bytes([i; 8]),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Server,
        name: "metrics GetKpis".into(),
        start_time: UNIX_EPOCH + Duration::from_secs(1_765_000_000),
        end_time: UNIX_EPOCH + Duration::from_secs(1_765_000_001),
        attributes: vec![KeyValue::new("rpc.method", "GetKpis")],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Ok,
        instrumentation_scope: opentelemetry::InstrumentationScope::builder("metrics").build(),
    }
}

fn resource() -> Resource {
    Resource::builder_empty()
        .with_attributes([KeyValue::new("service.name", "metrics")])
        .build()
}

fn exporter(endpoint: &str, timeout: Duration, headers: &str) -> OtlpSpanExporter {
    let mut e = OtlpSpanExporter::from_env(endpoint).expect("exporter");
    e.timeout = timeout;
    add_headers(&mut e.headers, headers).expect("headers");
    e.set_resource(&resource());
    e
}

/// `export` as the batch processor runs it: blocked on, on a thread of its own.
async fn export(e: &Arc<OtlpSpanExporter>, batch: Vec<SpanData>) -> Result<(), OTelSdkError> {
    let e = e.clone();
    tokio::task::spawn_blocking(move || futures::executor::block_on(e.export(batch)))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_arrives_as_opentelemetry_would_send_it_with_its_headers() {
    let (r, addr) = receiver(&[]).await;
    let e = Arc::new(exporter(
        &format!("http://{addr}"),
        Duration::from_secs(5),
        "authorization=Bearer%20abc, x-tenant = chain-1",
    ));
    let batch: Vec<SpanData> = (1..=3).map(span).collect();
    export(&e, batch.clone()).await.expect("exported");

    let received = r.received.lock().unwrap();
    assert_eq!(received.len(), 1, "one request");
    let (metadata, request) = &received[0];
    let expected = ExportTraceServiceRequest {
        resource_spans: group_spans_by_resource_and_scope(
            batch,
            &ResourceAttributesWithSchema::from(&resource()),
        ),
    };
    assert_eq!(request, &expected);
    assert_eq!(metadata.get("authorization").unwrap(), "Bearer abc");
    assert_eq!(metadata.get("x-tenant").unwrap(), "chain-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_tried_again_and_others_are_not() {
    use tonic::Code::{InvalidArgument, Unavailable};
    let table: [(&str, &[tonic::Code], bool, usize); 3] = [
        (
            "unavailable twice, then OK",
            &[Unavailable, Unavailable],
            true,
            3,
        ),
        ("unavailable every time", &[Unavailable; 4], false, 4),
        ("a bad request", &[InvalidArgument], false, 1),
    ];
    for (case, script, exported, attempts) in table {
        let (r, addr) = receiver(script).await;
        let e = Arc::new(exporter(
            &format!("http://{addr}"),
            Duration::from_secs(5),
            "",
        ));
        let result = export(&e, vec![span(1)]).await;
        assert_eq!(result.is_ok(), exported, "{case}: {result:?}");
        assert_eq!(
            r.received.lock().unwrap().len(),
            attempts,
            "{case}: attempts"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_receiver_fails_within_the_timeout_and_shutdown_stops_it() {
    // A port that was free a moment ago: nothing listens there.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let e = Arc::new(exporter(
        &format!("http://{addr}"),
        Duration::from_millis(500),
        "",
    ));
    let started = Instant::now();
    assert!(export(&e, vec![span(1)]).await.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    assert!(e.shutdown().is_ok());
    assert!(matches!(
        export(&e, vec![span(1)]).await,
        Err(OTelSdkError::AlreadyShutdown)
    ));
    assert!(matches!(e.shutdown(), Err(OTelSdkError::AlreadyShutdown)));
}

#[test]
fn headers_are_parsed_as_otlp_exporters_parse_them() {
    let mut ok = MetadataMap::new();
    add_headers(&mut ok, " a=1 ,B=two%2Cparts,, c = x%3Dy ").unwrap();
    assert_eq!(ok.get("a").unwrap(), "1");
    assert_eq!(ok.get("b").unwrap(), "two,parts");
    assert_eq!(ok.get("c").unwrap(), "x=y");
    for bad in [
        "novalue",
        "bad key=1",
        "k=%zz",
        "k=%4",
        "a=1,authorization Bearer s3cret",
    ] {
        let error = add_headers(&mut MetadataMap::new(), bad).expect_err(bad);
        assert!(!error.contains("s3cret"), "{bad}: {error}");
    }
}

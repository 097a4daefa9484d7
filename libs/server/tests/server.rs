//! The serving stack against a real gRPC service over real HTTP/2: load shedding, deadlines,
//! graceful drain, health, reflection and the /metrics endpoint.

use guestloop_config::{GrpcSettings, Seconds};
use guestloop_proto::events::v1::event_ingest_service_client::EventIngestServiceClient;
use guestloop_proto::events::v1::event_ingest_service_server::{
    EventIngestService, EventIngestServiceServer,
};
use guestloop_proto::events::v1::{DeliverEventsRequest, DeliverEventsResponse, EventEnvelope};
use guestloop_server::{Deadline, Health, Listeners};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::{Code, Request, Response, Status};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

const SERVICE: &str = "guestloop.events.v1.EventIngestService";

/// A real service whose calls take `delay`; an event id "fail" answers INVALID_ARGUMENT.
#[derive(Clone)]
struct SlowIngest {
    delay: Duration,
    seen_deadline: Arc<Mutex<Option<Duration>>>,
}

#[tonic::async_trait]
impl EventIngestService for SlowIngest {
    async fn deliver_events(
        &self,
        request: Request<DeliverEventsRequest>,
    ) -> Result<Response<DeliverEventsResponse>, Status> {
        if let Some(d) = request.extensions().get::<Deadline>() {
            *self.seen_deadline.lock().unwrap() = Some(d.remaining());
        }
        tokio::time::sleep(self.delay).await;
        let events = request.into_inner().events;
        if events.iter().any(|e| e.event_id == "fail") {
            return Err(Status::invalid_argument("fail"));
        }
        Ok(Response::new(DeliverEventsResponse {
            acknowledged_event_ids: events.into_iter().map(|e| e.event_id).collect(),
        }))
    }

    async fn get_guest_erasures(
        &self,
        _request: tonic::Request<guestloop_proto::events::v1::GetGuestErasuresRequest>,
    ) -> Result<tonic::Response<guestloop_proto::events::v1::GetGuestErasuresResponse>, tonic::Status>
    {
        Err(tonic::Status::unimplemented(
            "this test consumer keeps no guest data",
        ))
    }

    async fn export_guest_data(
        &self,
        _request: tonic::Request<guestloop_proto::events::v1::ExportGuestDataRequest>,
    ) -> Result<tonic::Response<guestloop_proto::events::v1::ExportGuestDataResponse>, tonic::Status>
    {
        Err(tonic::Status::unimplemented(
            "this test consumer keeps no guest data",
        ))
    }
}

struct Running {
    addr: String,
    admin: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<Result<(), guestloop_server::ServerError>>,
    seen_deadline: Arc<Mutex<Option<Duration>>>,
}

async fn start(delay: Duration, limit: usize, timeout: Duration) -> Running {
    start_draining(delay, limit, timeout, Duration::ZERO).await
}

/// As [`start`], with `grpc.drain_delay`.
async fn start_draining(
    delay: Duration,
    limit: usize,
    timeout: Duration,
    drain_delay: Duration,
) -> Running {
    let settings = GrpcSettings {
        listen_addr: "127.0.0.1:0".into(),
        request_timeout: Seconds(timeout),
        long_request_timeout: Seconds(Duration::from_secs(3600)),
        concurrency_limit: limit,
        max_message_bytes: 1 << 20,
        shutdown_grace: Seconds(Duration::from_secs(5)),
        drain_delay: Seconds(drain_delay),
        tcp_nodelay: true,
        http2_max_concurrent_streams: 1024,
        http2_adaptive_window: true,
        tls: Default::default(),
    };
    let admin = guestloop_config::AdminSettings {
        listen_addr: "127.0.0.1:0".into(),
    };
    let listeners = Listeners::bind(&settings, &admin).await.unwrap();
    let (addr, admin) = (
        format!("http://{}", listeners.grpc_addr()),
        listeners.admin_addr(),
    );
    let health = Health::new(&[SERVICE]).await;
    health.set_ready(true).await;
    let seen_deadline = Arc::new(Mutex::new(None));
    let service = SlowIngest {
        delay,
        seen_deadline: seen_deadline.clone(),
    };
    let routes = tonic::service::Routes::new(EventIngestServiceServer::new(service));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(async move {
        guestloop_server::serve(listeners, &settings, "test", routes, health, async {
            let _ = rx.await;
        })
        .await
    });
    Running {
        addr,
        admin,
        stop: Some(tx),
        done,
        seen_deadline,
    }
}

fn events(ids: &[&str]) -> DeliverEventsRequest {
    DeliverEventsRequest {
        events: ids
            .iter()
            .map(|id| EventEnvelope {
                event_id: id.to_string(),
                ..Default::default()
            })
            .collect(),
    }
}

async fn client(addr: &str) -> EventIngestServiceClient<tonic::transport::Channel> {
    EventIngestServiceClient::connect(addr.to_string())
        .await
        .unwrap()
}

async fn health(addr: &str, service: &str) -> Result<i32, Status> {
    let channel = tonic::transport::Endpoint::from_shared(addr.to_string())
        .unwrap()
        .connect()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let mut h = HealthClient::new(channel);
    h.check(HealthCheckRequest {
        service: service.into(),
    })
    .await
    .map(|r| r.into_inner().status)
}

#[tokio::test]
async fn sheds_load_beyond_the_concurrency_limit_but_not_health() {
    let s = start(Duration::from_millis(400), 2, Duration::from_secs(10)).await;
    let c = client(&s.addr).await;
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let mut c = c.clone();
            tokio::spawn(async move {
                c.deliver_events(events(&[&format!("e{i}")]))
                    .await
                    .map(|_| ())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        health(&s.addr, "").await.unwrap(),
        ServingStatus::Serving as i32,
        "health is exempt from shedding"
    );
    let mut ok = 0;
    let mut shed = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(()) => ok += 1,
            Err(status) if status.code() == Code::ResourceExhausted => shed += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ok + shed, 8);
    assert!(ok >= 2, "the admitted calls complete: ok={ok}");
    assert!(shed >= 4, "calls beyond the limit are shed: shed={shed}");
}

#[tokio::test]
async fn a_call_past_the_server_limit_answers_deadline_exceeded() {
    let s = start(Duration::from_secs(3), 10, Duration::from_millis(200)).await;
    let started = Instant::now();
    let err = client(&s.addr)
        .await
        .deliver_events(events(&["a"]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn an_oversize_message_answers_resource_exhausted_and_the_server_goes_on() {
    let s = start(Duration::ZERO, 10, Duration::from_secs(10)).await;
    let mut c = client(&s.addr).await;
    // Over tonic's 4 MiB decoding limit, which the service did not raise.
    let huge = "x".repeat(5 << 20);
    let err = c
        .deliver_events(events(&[huge.as_str()]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    // A handler's own refusal keeps its code, and the connection still serves.
    assert_eq!(
        c.deliver_events(events(&["fail"]))
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    c.deliver_events(events(&["ok"])).await.unwrap();
}

/// Sends raw bytes as the request message (what no generated client would send).
#[derive(Debug, Clone, Copy, Default)]
struct RawRequest;

#[derive(Debug, Clone, Copy, Default)]
struct RawEncoder;

impl tonic::codec::Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        buf: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), Status> {
        bytes::BufMut::put_slice(buf, &item);
        Ok(())
    }
}

impl tonic::codec::Codec for RawRequest {
    type Encode = Vec<u8>;
    type Decode = DeliverEventsResponse;
    type Encoder = RawEncoder;
    type Decoder =
        <tonic_prost::ProstCodec<(), DeliverEventsResponse> as tonic::codec::Codec>::Decoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        tonic::codec::Codec::decoder(
            &mut tonic_prost::ProstCodec::<(), DeliverEventsResponse>::default(),
        )
    }
}

/// A DeliverEventsRequest carrying an unknown field of groups nested `depth` deep.
fn nested(depth: usize) -> Vec<u8> {
    const START: u8 = 0x80 | 0x1b; // field 99, wire type 3 (start group): varint 0x31b
    const END: u8 = 0x80 | 0x1c; // field 99, wire type 4 (end group)
    let mut out = Vec::new();
    for _ in 0..depth {
        out.extend_from_slice(&[START, 0x06]);
    }
    for _ in 0..depth {
        out.extend_from_slice(&[END, 0x06]);
    }
    out
}

/// A connected channel to the server under test.
async fn channel(s: &Running) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(s.addr.clone())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_deeply_nested_message_answers_resource_exhausted_and_the_server_goes_on() {
    let s = start(Duration::ZERO, 10, Duration::from_secs(10)).await;
    let path = http::uri::PathAndQuery::from_static(
        "/guestloop.events.v1.EventIngestService/DeliverEvents",
    );
    // Any path, any codec: what the generated client cannot send.
    let mut grpc = tonic::client::Grpc::new(channel(&s).await);
    let mut send = async |body: Vec<u8>| {
        grpc.ready().await.unwrap();
        grpc.unary(Request::new(body), path.clone(), RawRequest)
            .await
    };
    // Nesting within protobuf's usual depth is only an unknown field, skipped.
    send(nested(20)).await.expect("20 levels are taken");
    // Past it (prost stops at 100), the message is refused as too much, not as a fault.
    let err = send(nested(5_000)).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    send(nested(3)).await.expect("the connection still serves");
}

#[tokio::test]
async fn the_client_deadline_wins_and_reaches_the_handler() {
    let s = start(Duration::from_millis(50), 10, Duration::from_secs(30)).await;
    let mut request = Request::new(events(&["a"]));
    request.set_timeout(Duration::from_millis(1500));
    client(&s.addr).await.deliver_events(request).await.unwrap();
    let seen = s
        .seen_deadline
        .lock()
        .unwrap()
        .expect("deadline on the request");
    assert!(
        seen <= Duration::from_millis(1500) && seen > Duration::from_millis(1000),
        "{seen:?}"
    );

    let slow = start(Duration::from_secs(3), 10, Duration::from_secs(30)).await;
    let mut request = Request::new(events(&["b"]));
    request.set_timeout(Duration::from_millis(150));
    let started = Instant::now();
    let err = client(&slow.addr)
        .await
        .deliver_events(request)
        .await
        .unwrap_err();
    assert!(
        matches!(err.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// The Kubernetes rollout case: after SIGTERM the pod says NOT_SERVING at once, but goes on
/// answering new calls (from clients whose endpoints list still has it) for the drain delay,
/// and only then stops listening.
#[tokio::test]
async fn during_the_drain_delay_it_is_not_serving_but_still_answers() {
    let mut s = start_draining(
        Duration::ZERO,
        10,
        Duration::from_secs(10),
        Duration::from_millis(1500),
    )
    .await;
    let mut c = client(&s.addr).await;
    let stopped_at = Instant::now();
    s.stop.take().unwrap().send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        health(&s.addr, "").await.unwrap(),
        ServingStatus::NotServing as i32
    );
    // New calls, on a new connection too, are answered while the delay lasts.
    c.deliver_events(events(&["during"])).await.unwrap();
    client(&s.addr)
        .await
        .deliver_events(events(&["new connection"]))
        .await
        .unwrap();
    assert!(stopped_at.elapsed() < Duration::from_millis(1200));
    tokio::time::timeout(Duration::from_secs(5), s.done)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let stopped_after = stopped_at.elapsed();
    assert!(
        stopped_after >= Duration::from_millis(1500),
        "stopped after {stopped_after:?}, before the drain delay"
    );
}

#[tokio::test]
async fn shutdown_drains_in_flight_calls_then_stops() {
    let mut s = start(Duration::from_millis(600), 10, Duration::from_secs(10)).await;
    let mut c = client(&s.addr).await;
    let in_flight = tokio::spawn(async move { c.deliver_events(events(&["late"])).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.stop.take().unwrap().send(()).unwrap();
    let reply = in_flight
        .await
        .unwrap()
        .expect("the in-flight call completes");
    assert_eq!(reply.into_inner().acknowledged_event_ids, ["late"]);
    tokio::time::timeout(Duration::from_secs(5), s.done)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        health(&s.addr, "").await.is_err(),
        "no longer accepting connections"
    );
}

#[tokio::test]
async fn health_reports_each_name_and_liveness() {
    let s = start(Duration::ZERO, 10, Duration::from_secs(10)).await;
    assert_eq!(
        health(&s.addr, SERVICE).await.unwrap(),
        ServingStatus::Serving as i32
    );
    assert_eq!(
        health(&s.addr, guestloop_server::LIVENESS_SERVICE)
            .await
            .unwrap(),
        ServingStatus::Serving as i32
    );
    assert_eq!(
        health(&s.addr, "no.such.Service").await.unwrap_err().code(),
        Code::NotFound
    );
}

#[tokio::test]
async fn reflection_lists_the_services() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let s = start(Duration::ZERO, 10, Duration::from_secs(10)).await;
    let mut r = ServerReflectionClient::new(channel(&s).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = r
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let reply = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
        panic!("no list")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&SERVICE.to_string()), "{names:?}");
    assert!(
        names.contains(&"grpc.health.v1.Health".to_string()),
        "{names:?}"
    );
    assert!(
        !names.contains(&"guestloop.guestprofile.v1.GuestProfileService".to_string()),
        "only what this process serves is advertised: {names:?}"
    );
}

#[tokio::test]
async fn metrics_endpoint_counts_calls_by_method_and_code() {
    let s = start(Duration::ZERO, 10, Duration::from_secs(10)).await;
    let mut c = client(&s.addr).await;
    c.deliver_events(events(&["ok"])).await.unwrap();
    assert_eq!(
        c.deliver_events(events(&["fail"]))
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    let body = guestloop_testkit::scrape(s.admin).await.unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    let has = |code: &str| {
        body.lines().any(|l| {
            l.starts_with("grpc_server_requests_total")
                && l.contains("method=\"DeliverEvents\"")
                && l.contains(&format!("code=\"{code}\""))
        })
    };
    assert!(has("Ok") && has("InvalidArgument"), "{body}");
    assert!(
        body.contains("grpc_server_request_duration_seconds_bucket"),
        "latency is a histogram"
    );
}

#[tokio::test]
async fn invented_methods_are_counted_as_unknown_not_as_series_of_their_own() {
    let s = start(Duration::ZERO, 10, Duration::from_secs(10)).await;
    let mut grpc = tonic::client::Grpc::new(channel(&s).await);
    // (path, answer): invented services and methods, and a served method that itself
    // answers UNIMPLEMENTED.
    let cases = [
        ("/made.Up/Method0", Code::Unimplemented),
        ("/made.Up/Method1", Code::Unimplemented),
        ("/made.Up/Method2", Code::Unimplemented),
        (&format!("/{SERVICE}/Invented") as &str, Code::Unimplemented),
        (&format!("/{SERVICE}/GetGuestErasures"), Code::Unimplemented),
    ];
    for (path, code) in cases {
        grpc.ready().await.unwrap();
        let answer: Result<tonic::Response<DeliverEventsResponse>, Status> = grpc
            .unary(
                Request::new(events(&["x"])),
                path.parse().unwrap(),
                tonic_prost::ProstCodec::default(),
            )
            .await;
        assert_eq!(answer.unwrap_err().code(), code, "{path}");
    }
    let body = guestloop_testkit::scrape(s.admin).await.unwrap();
    let series = |labels: &str| {
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("grpc_server_requests_total{{{labels}}}")))
            .map(|v| v.trim().to_string())
    };
    assert!(
        !body.contains("made.Up") && !body.contains("Invented"),
        "{body}"
    );
    let unknown = r#"service="unknown",method="unknown",code="Unimplemented""#;
    assert_eq!(series(unknown).as_deref(), Some("4"), "{body}");
    let served = format!(r#"service="{SERVICE}",method="GetGuestErasures",code="Unimplemented""#);
    assert_eq!(series(&served).as_deref(), Some("1"), "{body}");
}

#[tokio::test]
async fn long_running_methods_get_the_long_limit() {
    let settings = GrpcSettings {
        listen_addr: "127.0.0.1:0".into(),
        request_timeout: Seconds(Duration::from_millis(200)),
        long_request_timeout: Seconds(Duration::from_secs(10)),
        concurrency_limit: 10,
        max_message_bytes: 1 << 20,
        shutdown_grace: Seconds(Duration::from_secs(5)),
        drain_delay: Seconds(Duration::ZERO),
        tcp_nodelay: true,
        http2_max_concurrent_streams: 1024,
        http2_adaptive_window: true,
        tls: Default::default(),
    };
    let admin = guestloop_config::AdminSettings {
        listen_addr: "127.0.0.1:0".into(),
    };
    let listeners = Listeners::bind(&settings, &admin).await.unwrap();
    let addr = format!("http://{}", listeners.grpc_addr());
    let health = Health::new(&[SERVICE]).await;
    let service = SlowIngest {
        delay: Duration::from_millis(600),
        seen_deadline: Arc::default(),
    };
    let routes = tonic::service::Routes::new(EventIngestServiceServer::new(service));
    let long = vec![format!("/{SERVICE}/DeliverEvents")];
    tokio::spawn(async move {
        guestloop_server::serve_with(
            listeners,
            &settings,
            "test",
            routes,
            health,
            &long,
            std::future::pending(),
        )
        .await
    });
    let reply = client(&addr).await.deliver_events(events(&["slow"])).await;
    assert!(
        reply.is_ok(),
        "a long-running method outlives the ordinary limit: {reply:?}"
    );
}

//! TLS on the gRPC listener with real certificates (made here by rcgen) and a real tonic
//! client: the listener serves TLS only, mutual TLS refuses clients without a valid
//! certificate from the configured CA, and a renewed certificate is served without a
//! restart.

use guestloop_config::{GrpcSettings, Seconds, TlsSettings};
use guestloop_proto::events::v1::event_ingest_service_server::{
    EventIngestService, EventIngestServiceServer,
};
use guestloop_proto::events::v1::{DeliverEventsRequest, DeliverEventsResponse};
use guestloop_server::{Health, Listeners};
use guestloop_testkit::certs::{Pair, TestCa, Usage};
use std::path::PathBuf;
use std::time::Duration;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tonic::{Request, Response, Status};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

struct Ingest;

#[tonic::async_trait]
impl EventIngestService for Ingest {
    async fn deliver_events(
        &self,
        _: Request<DeliverEventsRequest>,
    ) -> Result<Response<DeliverEventsResponse>, Status> {
        Ok(Response::new(DeliverEventsResponse::default()))
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

/// A scratch directory for one test's PEM files.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("guestloop-tls-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes the server's certificate and key; returns the TLS settings naming them.
fn server_files(dir: &std::path::Path, pair: &Pair, client_ca: Option<&TestCa>) -> TlsSettings {
    // Written beside and renamed, as a renewal tool (or a Kubernetes Secret) does.
    let write = |name: &str, text: &str| {
        let tmp = dir.join(format!("{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, dir.join(name)).unwrap();
    };
    write("tls.crt", &pair.cert_pem);
    write("tls.key", &pair.key_pem);
    if let Some(ca) = client_ca {
        write("client-ca.crt", &ca.pem());
    }
    TlsSettings {
        cert_path: dir.join("tls.crt").display().to_string(),
        key_path: dir.join("tls.key").display().to_string(),
        client_ca_path: client_ca
            .map(|_| dir.join("client-ca.crt").display().to_string())
            .unwrap_or_default(),
        reload_interval: Seconds(Duration::from_millis(100)),
    }
}

fn grpc_settings(tls: TlsSettings) -> GrpcSettings {
    GrpcSettings {
        listen_addr: "127.0.0.1:0".into(),
        request_timeout: Seconds(Duration::from_secs(5)),
        long_request_timeout: Seconds(Duration::from_secs(60)),
        concurrency_limit: 64,
        max_message_bytes: 1 << 20,
        shutdown_grace: Seconds(Duration::from_secs(1)),
        drain_delay: Seconds(Duration::ZERO),
        tcp_nodelay: true,
        http2_max_concurrent_streams: 64,
        http2_adaptive_window: true,
        tls,
    }
}

async fn start(tls: TlsSettings) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let settings = grpc_settings(tls);
    let admin = guestloop_config::AdminSettings {
        listen_addr: "127.0.0.1:0".into(),
    };
    let listeners = Listeners::bind(&settings, &admin).await.unwrap();
    let addr = listeners.grpc_addr();
    let health = Health::new(&["guestloop.events.v1.EventIngestService"]).await;
    health.set_ready(true).await;
    let routes = tonic::service::Routes::new(EventIngestServiceServer::new(Ingest));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        guestloop_server::serve(listeners, &settings, "tls-test", routes, health, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (addr, stop)
}

/// A health check over a fresh TLS connection that trusts `ca`, presenting `identity`.
async fn check_tls(
    addr: std::net::SocketAddr,
    ca: &str,
    identity: Option<&Pair>,
) -> Result<i32, String> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    if let Some(pair) = identity {
        tls = tls.identity(Identity::from_pem(&pair.cert_pem, &pair.key_pem));
    }
    let channel = Endpoint::from_shared(format!("https://127.0.0.1:{}", addr.port()))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .tls_config(tls)
        .map_err(|e| format!("{e:?}"))?
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|r| r.into_inner().status)
        .map_err(|e| format!("call: {e:?}"))
}

const SERVING: i32 = ServingStatus::Serving as i32;

#[tokio::test]
async fn the_listener_speaks_tls_only_with_its_certificate() {
    let ca = TestCa::new("Guestloop test CA");
    let dir = scratch("server");
    let server = ca.issue("localhost", Usage::Server);
    let (addr, _stop) = start(server_files(&dir, &server, None)).await;

    assert_eq!(check_tls(addr, &ca.pem(), None).await, Ok(SERVING));
    // A client that does not trust the issuer refuses the server.
    let other = TestCa::new("Someone else's CA");
    assert!(check_tls(addr, &other.pem(), None).await.is_err());
    // Plaintext HTTP/2 gets no answer from a TLS listener.
    let plain = async {
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(2))
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        HealthClient::new(channel)
            .check(HealthCheckRequest::default())
            .await
            .map_err(|e| e.to_string())
    };
    assert!(plain.await.is_err());
}

#[tokio::test]
async fn mutual_tls_refuses_clients_without_a_valid_certificate_from_the_ca() {
    let server_ca = TestCa::new("Guestloop server CA");
    let client_ca = TestCa::new("Guestloop property-systems CA");
    let stranger_ca = TestCa::new("Not our CA");
    let dir = scratch("mutual");
    let server = server_ca.issue("localhost", Usage::Server);
    let (addr, _stop) = start(server_files(&dir, &server, Some(&client_ca))).await;

    let cases: Vec<(&str, Option<Pair>, bool)> = vec![
        ("no client certificate", None, false),
        (
            "certificate from another CA",
            Some(stranger_ca.issue("pms.sh-bund", Usage::Client)),
            false,
        ),
        (
            "expired certificate from the CA",
            Some(client_ca.issue_expired("pms.sh-bund", Usage::Client)),
            false,
        ),
        (
            "valid certificate from the CA",
            Some(client_ca.issue("pms.sh-bund", Usage::Client)),
            true,
        ),
    ];
    for (case, identity, accepted) in cases {
        let outcome = check_tls(addr, &server_ca.pem(), identity.as_ref()).await;
        if accepted {
            assert_eq!(outcome, Ok(SERVING), "{case}");
        } else {
            assert!(outcome.is_err(), "{case}: {outcome:?}");
        }
    }
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart_and_a_broken_one_is_not() {
    let old_ca = TestCa::new("Guestloop CA 2026");
    let new_ca = TestCa::new("Guestloop CA 2027");
    let dir = scratch("reload");
    let first = old_ca.issue("localhost", Usage::Server);
    let (addr, _stop) = start(server_files(&dir, &first, None)).await;
    assert_eq!(check_tls(addr, &old_ca.pem(), None).await, Ok(SERVING));

    let renewed = new_ca.issue("localhost", Usage::Server);
    server_files(&dir, &renewed, None);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while check_tls(addr, &new_ca.pem(), None).await != Ok(SERVING) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the renewed certificate was not served within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(check_tls(addr, &old_ca.pem(), None).await.is_err());

    // A key that does not match the certificate (a half-finished renewal) is not loaded:
    // the listener keeps serving the last good pair.
    let mismatched = Pair {
        cert_pem: renewed.cert_pem.clone(),
        key_pem: first.key_pem.clone(),
    };
    server_files(&dir, &mismatched, None);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(check_tls(addr, &new_ca.pem(), None).await, Ok(SERVING));
}

#[tokio::test]
async fn a_missing_certificate_file_stops_the_start_naming_the_key() {
    let settings = TlsSettings {
        cert_path: "/nonexistent/tls.crt".into(),
        key_path: "/nonexistent/tls.key".into(),
        ..Default::default()
    };
    let grpc = grpc_settings(settings);
    let admin = guestloop_config::AdminSettings {
        listen_addr: "127.0.0.1:0".into(),
    };
    let listeners = Listeners::bind(&grpc, &admin).await.unwrap();
    let health = Health::new(&["guestloop.events.v1.EventIngestService"]).await;
    let routes = tonic::service::Routes::new(EventIngestServiceServer::new(Ingest));
    let error = guestloop_server::serve(listeners, &grpc, "tls-test", routes, health, async {})
        .await
        .unwrap_err();
    let text = format!("{error}: {:?}", error);
    assert!(text.contains("grpc.tls.cert_path"), "{text}");
}

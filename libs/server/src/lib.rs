//! The one way a Guestloop service serves gRPC: bound listeners in, a shutdown future in
//! (mini-redis style). Every service gets grpc.health.v1 and reflection, the request layers
//! (trace context, per-RPC metrics, deadlines, load shedding), a message size limit,
//! Prometheus `/metrics` on the admin port, and a graceful drain on shutdown.

mod admin;
pub mod alloc;
pub mod cli;
mod context;
mod deadline;
mod gate;
mod health;
mod oversize;
mod refuse;
mod rpc_metrics;
mod runtime;
pub mod scheduler;
mod shed;
mod shutdown;
mod tls;

pub use context::RequestContextLayer;
pub use deadline::{Deadline, DeadlineLayer};
pub use health::{Health, LIVENESS_SERVICE};
pub use runtime::{ServiceRuntime, StartError, migrate_command};
pub use shed::LoadShedLayer;
pub use shutdown::signal;
pub use tls::TlsError;

use guestloop_config::{AdminSettings, GrpcSettings};
use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot bind {what} on {addr}")]
    Bind {
        what: &'static str,
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("gRPC server failed")]
    Transport(#[source] tonic::transport::Error),
    #[error("reflection setup failed")]
    Reflection(#[source] tonic_reflection::server::Error),
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
}

/// The gRPC and admin listeners, bound before serving so tests can ask for port 0 and learn
/// the real ports.
#[derive(Debug)]
pub struct Listeners {
    pub grpc: TcpListener,
    pub admin: TcpListener,
}

impl Listeners {
    pub async fn bind(grpc: &GrpcSettings, admin: &AdminSettings) -> Result<Self, ServerError> {
        let bind = |what: &'static str, addr: String| async move {
            TcpListener::bind(&addr)
                .await
                .map_err(|source| ServerError::Bind { what, addr, source })
        };
        Ok(Self {
            grpc: bind("grpc.listen_addr", grpc.listen_addr.clone()).await?,
            admin: bind("admin.listen_addr", admin.listen_addr.clone()).await?,
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
            .local_addr()
            .expect("bound listener has an address")
    }
}

/// Serves `routes` (the service's own gRPC services, already wrapped in their auth
/// interceptor) until `shutdown` completes, then reports NOT_SERVING, goes on serving for
/// `settings.drain_delay` (while load balancers take it out), stops listening and lets
/// in-flight calls finish for up to `settings.shutdown_grace`.
pub async fn serve(
    listeners: Listeners,
    settings: &GrpcSettings,
    service_name: &'static str,
    routes: tonic::service::Routes,
    health: Health,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    serve_with(
        listeners,
        settings,
        service_name,
        routes,
        health,
        &[],
        shutdown,
    )
    .await
}

/// The services every process serves besides its own (`serve_with`).
const INFRASTRUCTURE_SERVICES: [&str; 3] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// As [`serve`], with the full paths of long-running methods (bulk imports), which get
/// `grpc.long_request_timeout` instead of `grpc.request_timeout`.
pub async fn serve_with(
    listeners: Listeners,
    settings: &GrpcSettings,
    service_name: &'static str,
    routes: tonic::service::Routes,
    health: Health,
    long_running: &[String],
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    // Reflection advertises what this process serves, not every Guestloop API, and speaks
    // both v1 and v1alpha (many clients, grpcio-reflection's among them, know only v1alpha).
    let reflection = || {
        let mut builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(guestloop_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("grpc.health.v1.Health");
        for name in health.service_names() {
            builder = builder.with_service_name(name);
        }
        builder
    };
    let routes = routes
        .add_service(health.server())
        .add_service(reflection().build_v1().map_err(ServerError::Reflection)?)
        .add_service(
            reflection()
                .build_v1alpha()
                .map_err(ServerError::Reflection)?,
        );

    // TLS files are read before anything starts, so a bad one stops the start cleanly.
    let connections = Connections::new(listeners.grpc, settings)?;
    let admin = tokio::spawn(admin::serve(listeners.admin, admin::prometheus()));

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let drain_health = health.clone();
    let drain_delay = settings.drain_delay.as_duration();
    let shutdown = async move {
        shutdown.await;
        tracing::info!(
            drain_delay_ms = drain_delay.as_millis() as u64,
            "shutdown requested: NOT_SERVING; serving on for the drain delay, then draining in-flight calls"
        );
        drain_health.draining().await;
        tokio::time::sleep(drain_delay).await;
        let _ = stop_tx.send(());
    };
    tokio::spawn(shutdown);
    let stopped = async move {
        let _ = stop_rx.await;
    };

    let mut served: Vec<String> = health.service_names().collect();
    served.extend(INFRASTRUCTURE_SERVICES.map(String::from));
    let served_methods = rpc_metrics::methods_of(
        &served,
        &[
            guestloop_proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ],
    );
    let layers = tower::ServiceBuilder::new()
        .layer(RequestContextLayer::new(service_name, served_methods))
        .layer(oversize::OversizeLayer)
        .layer(LoadShedLayer::new(settings.concurrency_limit))
        .layer(gate::DependencyGateLayer::new(health.dependency_down()))
        .layer(
            DeadlineLayer::new(settings.request_timeout.as_duration())
                .with_long_running(settings.long_request_timeout.as_duration(), long_running),
        )
        .into_inner();
    let max_streams = (settings.http2_max_concurrent_streams > 0)
        .then_some(settings.http2_max_concurrent_streams);
    let router = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .http2_adaptive_window(Some(settings.http2_adaptive_window))
        .max_concurrent_streams(max_streams)
        .layer(layers)
        .add_routes(routes);
    let server: std::pin::Pin<
        Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>,
    > = match connections {
        Connections::Plain(incoming) => {
            Box::pin(router.serve_with_incoming_shutdown(incoming, stopped))
        }
        Connections::Tls(incoming) => {
            Box::pin(router.serve_with_incoming_shutdown(incoming, stopped))
        }
    };

    // The drain is bounded: a call that outlives the grace period is cut off.
    let grace = settings.shutdown_grace.as_duration();
    let result = tokio::select! {
        r = server => r.map_err(ServerError::Transport),
        () = async {
            health.wait_draining().await;
            tokio::time::sleep(drain_delay + grace).await;
        } => {
            tracing::warn!(grace_secs = grace.as_secs(), "calls still in flight after the grace period");
            Ok(())
        }
    };
    admin.abort();
    result
}

/// Accepted gRPC connections, plaintext or after their TLS handshake.
enum Connections {
    Plain(
        std::pin::Pin<
            Box<dyn tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> + Send>,
        >,
    ),
    Tls(
        tokio_stream::wrappers::ReceiverStream<
            std::io::Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>,
        >,
    ),
}

impl Connections {
    fn new(listener: TcpListener, settings: &GrpcSettings) -> Result<Self, ServerError> {
        let nodelay = settings.tcp_nodelay;
        let Some(acceptor) = tls::Acceptor::from_settings(&settings.tls)? else {
            let incoming = tokio_stream::StreamExt::map(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                move |conn| {
                    if let Ok(stream) = &conn {
                        let _ = stream.set_nodelay(nodelay);
                    }
                    conn
                },
            );
            return Ok(Self::Plain(Box::pin(incoming)));
        };
        // Handshakes run in their own tasks so one slow client cannot stall the accept loop.
        let (ready, incoming) = tokio::sync::mpsc::channel(128);
        tokio::spawn(async move {
            loop {
                let tcp = match listener.accept().await {
                    Ok((tcp, _)) => tcp,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // The server stopped taking connections: stop accepting them.
                if ready.is_closed() {
                    return;
                }
                let _ = tcp.set_nodelay(nodelay);
                let (acceptor, ready) = (acceptor.clone(), ready.clone());
                tokio::spawn(async move {
                    if let Some(stream) = acceptor.accept(tcp).await {
                        let _ = ready.send(Ok(stream)).await;
                    }
                });
            }
        });
        Ok(Self::Tls(tokio_stream::wrappers::ReceiverStream::new(
            incoming,
        )))
    }
}

//! The Rust client for Guestloop, for hotels' own systems and for the services themselves:
//! typed clients for all five services over one channel type that carries a bearer token
//! and the caller's trace context, with optional TLS, a default deadline, and retries with
//! backoff on UNAVAILABLE.
//!
//! ```no_run
//! # async fn demo() -> Result<(), guestloop_client::ClientError> {
//! let conn = guestloop_client::Connection::builder("http://127.0.0.1:50051")
//!     .token("eyJ...")
//!     .connect_lazy()?;
//! let mut guests = conn.guest_profile();
//! # Ok(()) }
//! ```

mod retry;

pub use retry::{RetryPolicy, with_retry};

use guestloop_proto::{events, feedback, followup, guestprofile, metrics, notification};
use guestloop_telemetry::{TraceContextLayer, TraceContextService};
use std::sync::Arc;
use std::time::Duration;
use tonic::metadata::AsciiMetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid endpoint `{0}`")]
    Endpoint(String),
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Where a bearer token comes from: a fixed string, or a function (service tokens renew).
#[derive(Clone)]
pub enum TokenSource {
    None,
    Static(AsciiMetadataValue),
    Dynamic(Arc<dyn Fn() -> String + Send + Sync>),
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TokenSource::None => "None",
            TokenSource::Static(_) => "Static(..)",
            TokenSource::Dynamic(_) => "Dynamic(..)",
        })
    }
}

/// Adds `authorization: Bearer …` and a default deadline to every call.
#[derive(Debug, Clone)]
pub struct CallInterceptor {
    token: TokenSource,
    timeout: Duration,
}

impl tonic::service::Interceptor for CallInterceptor {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        let value = match &self.token {
            TokenSource::None => None,
            TokenSource::Static(v) => Some(v.clone()),
            TokenSource::Dynamic(f) => format!("Bearer {}", f()).parse().ok(),
        };
        // A token set on the request wins over the connection's: a service asking a peer
        // on behalf of its own caller (notification asking guest-profile whether the
        // caller may see a guest) passes the caller's token on.
        if let Some(v) = value
            && !request.metadata().contains_key("authorization")
        {
            request.metadata_mut().insert("authorization", v);
        }
        // A deadline the caller set on the request wins over the connection default.
        if !request.metadata().contains_key("grpc-timeout") {
            request.set_timeout(self.timeout);
        }
        Ok(request)
    }
}

/// The channel every typed client uses.
pub type AuthedChannel = InterceptedService<TraceContextService<Channel>, CallInterceptor>;

pub type GuestProfileClient =
    guestprofile::v1::guest_profile_service_client::GuestProfileServiceClient<AuthedChannel>;
pub type FeedbackClient =
    feedback::v1::feedback_intake_service_client::FeedbackIntakeServiceClient<AuthedChannel>;
pub type FollowUpClient =
    followup::v1::follow_up_scheduler_service_client::FollowUpSchedulerServiceClient<AuthedChannel>;
pub type NotificationClient =
    notification::v1::notification_service_client::NotificationServiceClient<AuthedChannel>;
pub type MetricsClient = metrics::v1::metrics_service_client::MetricsServiceClient<AuthedChannel>;
pub type EventIngestClient =
    events::v1::event_ingest_service_client::EventIngestServiceClient<AuthedChannel>;

#[derive(Debug, Clone)]
pub struct ConnectionBuilder {
    endpoint: String,
    token: TokenSource,
    timeout: Duration,
    tls: Option<ClientTlsConfig>,
}

impl ConnectionBuilder {
    pub fn token(mut self, token: &str) -> Self {
        self.token = format!("Bearer {token}")
            .parse()
            .map(TokenSource::Static)
            .unwrap_or(TokenSource::None);
        self
    }

    pub fn token_fn(mut self, f: impl Fn() -> String + Send + Sync + 'static) -> Self {
        self.token = TokenSource::Dynamic(Arc::new(f));
        self
    }

    /// Default deadline for calls that set none (10 s unless changed).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// TLS with the platform's web PKI roots (for `https://` endpoints).
    pub fn tls(mut self, config: ClientTlsConfig) -> Self {
        self.tls = Some(config);
        self
    }

    fn endpoint(&self) -> Result<Endpoint, ClientError> {
        let mut endpoint = Endpoint::from_shared(self.endpoint.clone())
            .map_err(|_| ClientError::Endpoint(self.endpoint.clone()))?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30));
        if let Some(tls) = &self.tls {
            endpoint = endpoint.tls_config(tls.clone())?;
        } else if self.endpoint.starts_with("https://") {
            endpoint = endpoint.tls_config(ClientTlsConfig::new().with_webpki_roots())?;
        }
        Ok(endpoint)
    }

    /// Connects on first use and reconnects as needed; never fails for a down server.
    pub fn connect_lazy(self) -> Result<Connection, ClientError> {
        let channel = self.endpoint()?.connect_lazy();
        Ok(self.wrap(channel))
    }

    pub async fn connect(self) -> Result<Connection, ClientError> {
        let channel = self.endpoint()?.connect().await?;
        Ok(self.wrap(channel))
    }

    fn wrap(&self, channel: Channel) -> Connection {
        let traced = tower::Layer::layer(&TraceContextLayer, channel);
        Connection {
            channel: InterceptedService::new(
                traced,
                CallInterceptor {
                    token: self.token.clone(),
                    timeout: self.timeout,
                },
            ),
        }
    }
}

/// A connection to one Guestloop endpoint; cheap to clone, hands out typed clients.
#[derive(Debug, Clone)]
pub struct Connection {
    channel: AuthedChannel,
}

impl Connection {
    pub fn builder(endpoint: impl Into<String>) -> ConnectionBuilder {
        ConnectionBuilder {
            endpoint: endpoint.into(),
            token: TokenSource::None,
            timeout: Duration::from_secs(10),
            tls: None,
        }
    }

    pub fn channel(&self) -> AuthedChannel {
        self.channel.clone()
    }

    pub fn guest_profile(&self) -> GuestProfileClient {
        GuestProfileClient::new(self.channel())
    }

    pub fn feedback(&self) -> FeedbackClient {
        FeedbackClient::new(self.channel())
    }

    pub fn follow_up(&self) -> FollowUpClient {
        FollowUpClient::new(self.channel())
    }

    pub fn notification(&self) -> NotificationClient {
        NotificationClient::new(self.channel())
    }

    pub fn metrics(&self) -> MetricsClient {
        MetricsClient::new(self.channel())
    }

    pub fn event_ingest(&self) -> EventIngestClient {
        EventIngestClient::new(self.channel())
    }
}

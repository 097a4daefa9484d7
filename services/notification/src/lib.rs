//! notification (PRODUCT.md): every message Guestloop sends. Messages are queued durably,
//! one per idempotency key; a delivery worker (safe with several replicas) checks consent
//! and address with guest-profile, quiet hours in the property's time zone, renders the
//! template in the recipient's language, sends through the configured provider, retries with
//! backoff and dead-letters; every status change is a MessageStatusChanged event. It also
//! consumes events (EventIngestService): WeChat feedback keeps the guest's last WeChat
//! interaction, which opens WeChat's 48-hour free-form window (window.rs).

mod api;
mod convert;
mod deliver;
mod domain;
mod error;
mod export;
/// R8: the request and event parsers under random input (tests and fuzz/).
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod guest_merge;
mod ops;
mod providers;
mod retention;
mod settings;
mod state;
mod store;
pub mod templates;
mod window;

pub use error::NotificationError;
pub use settings::{
    ChannelSettings, DeliverySettings, HttpProviderSettings, SERVICE_DEFAULTS, Settings,
    SmtpSettings, StaffMember, WechatMode, default_layers,
};

use guestloop_proto::events::v1::event_ingest_service_server::EventIngestServiceServer;
use guestloop_proto::notification::v1::notification_service_server::NotificationServiceServer;
use guestloop_server::{ServiceRuntime, StartError};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tonic::service::interceptor::InterceptedService;

pub const SERVICE_NAME: &str = "notification";
const GRPC_SERVICES: [&str; 2] = [
    "guestloop.notification.v1.NotificationService",
    // The consumer of FeedbackReceived (WeChat's window) and GuestErased.
    "guestloop.events.v1.EventIngestService",
];

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

fn migrators() -> [&'static sqlx::migrate::Migrator; 4] {
    [
        &guestloop_outbox::MIGRATOR,
        &guestloop_db::guest_directory::MIGRATOR,
        &guestloop_db::retention::MIGRATOR,
        &MIGRATOR,
    ]
}

/// `notification migrate`: applies the schema and exits.
pub async fn migrate(file: Option<&std::path::Path>) -> Result<(), StartError> {
    guestloop_server::migrate_command(&default_layers(), file, &migrators()).await
}

/// The service, built and bound, ready to run.
#[derive(Debug)]
pub struct Application {
    runtime: ServiceRuntime,
    state: Arc<state::State>,
    worker: Option<deliver::Worker>,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        // reqwest is built without a crypto provider; ring is the one (STACK.md).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let templates = templates::Templates::load(&settings.templates).map_err(|(key, why)| {
            StartError::Config(guestloop_config::ConfigError::invalid(key, why))
        })?;
        let mut runtime =
            ServiceRuntime::build(SERVICE_NAME, settings.common, &migrators(), &GRPC_SERVICES)
                .await?;
        runtime.retain(retention::tasks());
        let guest_profile = runtime.peer("guest_profile")?.map(|c| c.guest_profile());
        let state = Arc::new(state::State {
            pool: runtime.pool.clone(),
            chain: Arc::new(runtime.settings.chain.clone()),
            templates,
            delivery: settings.delivery.clone(),
            staff: settings.staff.clone(),
            wechat: window::WechatWindow::new(&settings.channels),
            guests: guest_profile.clone(),
        });
        let worker = if settings.delivery.worker_enabled {
            let providers = providers::Providers::build(
                &settings.providers,
                settings.delivery.send_timeout.as_duration(),
            )
            .map_err(|e| StartError::Config(guestloop_config::ConfigError::Load(e)))?;
            Some(deliver::Worker::new(
                state.clone(),
                providers,
                guest_profile,
            ))
        } else {
            None
        };
        Ok(Self {
            runtime,
            state,
            worker,
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.runtime.listeners.grpc_addr()
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.runtime.listeners.admin_addr()
    }

    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let max = self.runtime.settings.grpc.max_message_bytes;
        let service = NotificationServiceServer::new(api::NotificationApi::new(self.state.clone()))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max);
        let events = EventIngestServiceServer::new(guestloop_outbox::consume::IngestService::new(
            std::sync::Arc::new(api::Ingest {
                state: self.state.clone(),
            }),
        ))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
        let auth = || self.runtime.auth.clone();
        let routes = tonic::service::Routes::new(InterceptedService::new(service, auth()))
            .add_service(InterceptedService::new(events, auth()));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let worker = self.worker.map(|w| tokio::spawn(w.run(stop_rx)));
        let result = self
            .runtime
            .serve(routes, async move {
                shutdown.await;
                let _ = stop_tx.send(true);
            })
            .await;
        if let Some(w) = worker {
            let _ = w.await;
        }
        result
    }
}

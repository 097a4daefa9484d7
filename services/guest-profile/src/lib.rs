//! guest-profile: the chain's guest CRM (PRODUCT.md). Guests and their contacts,
//! preferences and special needs; stays pushed by each hotel's PMS; consent; completeness;
//! duplicate merge; export and erasure; an access log of every read of contact data.

mod access_log;
mod api;
mod completeness;
mod data_services;
mod domain;
mod duplicates;
mod erasure_tracker;
mod error;
mod export_document;
/// R8: the request and event parsers under random input (tests and fuzz/).
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod leak_watch;
mod retention;
mod settings;
mod store;

pub use error::GuestProfileError;
pub use settings::{SERVICE_DEFAULTS, Settings, default_layers};

use guestloop_proto::guestprofile::v1::guest_profile_service_server::GuestProfileServiceServer;
use guestloop_server::{ServiceRuntime, StartError};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

pub const SERVICE_NAME: &str = "guest-profile";
const GRPC_SERVICE: &str = "guestloop.guestprofile.v1.GuestProfileService";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

fn migrators() -> [&'static sqlx::migrate::Migrator; 3] {
    [
        &guestloop_outbox::MIGRATOR,
        &guestloop_db::retention::MIGRATOR,
        &MIGRATOR,
    ]
}

/// `guest-profile migrate`: applies the schema and exits.
pub async fn migrate(file: Option<&std::path::Path>) -> Result<(), StartError> {
    guestloop_server::migrate_command(&default_layers(), file, &migrators()).await
}

/// The service, built and bound, ready to run.
#[derive(Debug)]
pub struct Application {
    runtime: ServiceRuntime,
    state: Arc<api::State>,
    tracker: erasure_tracker::Tracker,
    leak_watch: leak_watch::LeakWatch,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        let mut runtime =
            ServiceRuntime::build(SERVICE_NAME, settings.common, &migrators(), &[GRPC_SERVICE])
                .await?;
        runtime.retain(retention::tasks());
        // The services that receive this outbox's GuestErased events must confirm them.
        let data_services: Vec<data_services::DataService> = runtime
            .subscribers()?
            .into_iter()
            .map(data_services::DataService::of)
            .collect();
        let state = Arc::new(api::State {
            pool: runtime.pool.clone(),
            chain: Arc::new(runtime.settings.chain.clone()),
            standards: Arc::new(runtime.settings.standards.clone()),
            access_log: access_log::AccessLog::start(runtime.pool.clone(), settings.access_log),
            data_services: data_services.clone(),
        });
        let tracker = erasure_tracker::Tracker {
            pool: runtime.pool.clone(),
            confirmers: data_services,
            settings: settings.erasure,
        };
        let leak_watch = leak_watch::LeakWatch {
            pool: runtime.pool.clone(),
            settings: settings.leak,
            notification: runtime.peer("notification")?.map(|c| c.notification()),
        };
        Ok(Self {
            runtime,
            state,
            tracker,
            leak_watch,
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
        let service = GuestProfileServiceServer::new(api::GuestProfileApi::new(self.state))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max);
        let routes =
            tonic::service::Routes::new(tonic::service::interceptor::InterceptedService::new(
                service,
                self.runtime.auth.clone(),
            ));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let tracker = tokio::spawn(self.tracker.run(stop_rx.clone()));
        let leak_watch = tokio::spawn(self.leak_watch.run(stop_rx));
        let result = self
            .runtime
            .serve(routes, async move {
                shutdown.await;
                let _ = stop_tx.send(true);
            })
            .await;
        let _ = tracker.await;
        let _ = leak_watch.await;
        result
    }
}

//! follow-up-scheduler (PRODUCT.md): every clock of the after-care loop. This part (issue 4,
//! item 1) is the durable timers: ScheduleTimer / CancelTimer / GetTimer / ListTimers over
//! a `timers` table in the service's own schema, and a firing worker in every replica that
//! claims due timers with `FOR UPDATE SKIP LOCKED` and a lease (see fire.rs). The after-stay
//! plan, tasks, SLA clocks and the deadline watch are not built yet (UNIMPLEMENTED).

mod api;
mod domain;
mod error;
mod fire;
mod settings;
mod state;
mod store;

pub use error::SchedulerError;
pub use settings::{SERVICE_DEFAULTS, Settings, TimerSettings, default_layers};

use guestloop_proto::followup::v1::follow_up_scheduler_service_server::FollowUpSchedulerServiceServer;
use guestloop_server::{ServiceRuntime, StartError};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

pub const SERVICE_NAME: &str = "follow-up-scheduler";
const GRPC_SERVICE: &str = "guestloop.followup.v1.FollowUpSchedulerService";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

fn migrators() -> [&'static sqlx::migrate::Migrator; 2] {
    [&guestloop_outbox::MIGRATOR, &MIGRATOR]
}

/// `follow-up-scheduler migrate`: applies the schema and exits.
pub async fn migrate(file: Option<&std::path::Path>) -> Result<(), StartError> {
    guestloop_server::migrate_command(&default_layers(), file, &migrators()).await
}

/// The service, built and bound, ready to run.
#[derive(Debug)]
pub struct Application {
    runtime: ServiceRuntime,
    state: Arc<state::State>,
    worker: Option<fire::Worker>,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        let runtime =
            ServiceRuntime::build(SERVICE_NAME, settings.common, &migrators(), &[GRPC_SERVICE])
                .await?;
        let notification = runtime.peer("notification")?.map(|c| c.notification());
        let state = Arc::new(state::State {
            pool: runtime.pool.clone(),
            chain: Arc::new(runtime.settings.chain.clone()),
            timers: settings.timers.clone(),
        });
        let worker = settings
            .timers
            .worker_enabled
            .then(|| fire::Worker::new(state.clone(), notification));
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
        let service = FollowUpSchedulerServiceServer::new(api::SchedulerApi::new(self.state))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max);
        let routes =
            tonic::service::Routes::new(tonic::service::interceptor::InterceptedService::new(
                service,
                self.runtime.auth.clone(),
            ));
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

//! metrics (PRODUCT.md, issue 5): service quality measured against the chain's standards.
//! - The event consumer (ingest.rs, EventIngestService): every event adds to incremental
//!   rollups per property and local day (store/rollups.rs), counted once per thing whatever
//!   the order (store/entities.rs).
//! - KPIs (kpi/): definitions, targets from the standards, minimum samples, confidence
//!   intervals; GetKpis and the league table (api/).
//! - Business gauges on /metrics (gauges.rs); KPI alerts raised and cleared once per
//!   breach, notified to the property managers (alerts.rs).
//!
//! - The daily voice-of-customer report, structured and as HTML, mailed each morning to
//!   the managers of each scope (report/); staff mentions and the monthly service stars.
//! - The improvement board (improvement/): plan-do-check-act items proposed from the
//!   rollups, judged like KPIs, escalated through scheduler timers when overdue.

mod alerts;
mod api;
mod error;
/// R8: the request and event parsers under random input (tests and fuzz/).
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod gauges;
mod guest_merge;
mod improvement;
mod ingest;
mod kpi;
mod ota_replies;
mod report;
mod retention;
mod scopes;
mod settings;
mod state;
mod store;

pub use error::MetricsError;
pub use settings::{
    AlertRule, AlertSettings, DailyReportSettings, ImprovementSettings, KpiSettings,
    SERVICE_DEFAULTS, Settings, default_layers,
};

use guestloop_proto::events::v1::event_ingest_service_server::EventIngestServiceServer;
use guestloop_proto::metrics::v1::metrics_service_server::MetricsServiceServer;
use guestloop_server::{ServiceRuntime, StartError};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tonic::service::interceptor::InterceptedService;

pub const SERVICE_NAME: &str = "metrics";
const GRPC_SERVICES: [&str; 2] = [
    "guestloop.metrics.v1.MetricsService",
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

/// `metrics migrate`: applies the schema and exits.
pub async fn migrate(file: Option<&std::path::Path>) -> Result<(), StartError> {
    guestloop_server::migrate_command(&default_layers(), file, &migrators()).await
}

#[derive(Debug)]
pub struct Application {
    runtime: ServiceRuntime,
    state: Arc<state::State>,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        let mut runtime =
            ServiceRuntime::build(SERVICE_NAME, settings.common, &migrators(), &GRPC_SERVICES)
                .await?;
        runtime.retain(retention::tasks());
        let state = Arc::new(state::State {
            pool: runtime.pool.clone(),
            chain: Arc::new(runtime.settings.chain.clone()),
            standards: Arc::new(runtime.settings.standards.clone()),
            kpis: settings.kpis,
            kpi_alerts: settings.kpi_alerts,
            daily_report: settings.daily_report,
            improvement: settings.improvement,
            follow_up: runtime.peer("follow_up_scheduler")?.map(|c| c.follow_up()),
            improvement_timers: tokio::sync::Notify::new(),
            notification: runtime.peer("notification")?.map(|c| c.notification()),
            scopes_ready: std::sync::atomic::AtomicBool::new(false),
        });
        gauges::register_metrics(&state);
        Ok(Self { runtime, state })
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
        let service = MetricsServiceServer::new(api::MetricsApi::new(self.state.clone()))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max);
        let events = EventIngestServiceServer::new(guestloop_outbox::consume::IngestService::new(
            Arc::new(ingest::Ingest {
                state: self.state.clone(),
            }),
        ))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
        let auth = || self.runtime.auth.clone();
        let routes = tonic::service::Routes::new(InterceptedService::new(service, auth()))
            .add_service(InterceptedService::new(events, auth()));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let scopes = tokio::spawn(scopes::run(self.state.clone(), stop_rx.clone()));
        let gauges = tokio::spawn(gauges::run(self.state.clone(), stop_rx.clone()));
        let alerts = self
            .state
            .kpi_alerts
            .enabled
            .then(|| tokio::spawn(alerts::run(self.state.clone(), stop_rx.clone())));
        let mailer = self
            .state
            .daily_report
            .enabled
            .then(|| tokio::spawn(report::mailer::run(self.state.clone(), stop_rx.clone())));
        let proposer = self.state.improvement.propose.then(|| {
            tokio::spawn(improvement::proposer::run(
                self.state.clone(),
                stop_rx.clone(),
            ))
        });
        let overdue = tokio::spawn(improvement::overdue::run(self.state.clone(), stop_rx));
        let result = self
            .runtime
            .serve(routes, async move {
                shutdown.await;
                let _ = stop_tx.send(true);
            })
            .await;
        let _ = scopes.await;
        let _ = gauges.await;
        let _ = overdue.await;
        for job in [alerts, mailer, proposer].into_iter().flatten() {
            let _ = job.await;
        }
        result
    }
}

//! follow-up-scheduler (PRODUCT.md): every clock of the after-care loop.
//! - Durable timers (`timers`, store/timers.rs) and the firing worker in every replica
//!   (fire.rs: `FOR UPDATE SKIP LOCKED` and a lease, effects keyed by timer generation).
//! - The event consumer (ingest.rs, EventIngestService): stay events drive the after-stay
//!   plan (plan/) and VIP and frequent-guest care (care/), case events the SLA clocks and
//!   the ladder (clocks/).
//! - Follow-up tasks for staff (tasks.rs), staff alerts (alerts.rs).
//! - The API (api/): timers, tasks, case and stay clocks, the deadline watch.

mod alerts;
mod api;
mod care;
mod clocks;
mod domain;
mod error;
mod finish;
mod fire;
/// R8: the request and event parsers under random input (tests and fuzz/).
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod guest_merge;
mod ingest;
mod plan;
mod retention;
mod reviews;
mod settings;
mod state;
mod store;
mod tasks;

pub use error::SchedulerError;
pub use settings::{
    AlertSettings, CareSettings, PlanSettings, PreArrivalLeads, ReviewReplySettings,
    SERVICE_DEFAULTS, Settings, TaskSettings, TimerSettings, default_layers,
};

use guestloop_proto::events::v1::event_ingest_service_server::EventIngestServiceServer;
use guestloop_proto::followup::v1::follow_up_scheduler_service_server::FollowUpSchedulerServiceServer;
use guestloop_server::{ServiceRuntime, StartError};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tonic::service::interceptor::InterceptedService;

pub const SERVICE_NAME: &str = "follow-up-scheduler";
const GRPC_SERVICES: [&str; 2] = [
    "guestloop.followup.v1.FollowUpSchedulerService",
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

/// `follow-up-scheduler migrate`: applies the schema and exits.
pub async fn migrate(file: Option<&std::path::Path>) -> Result<(), StartError> {
    guestloop_server::migrate_command(&default_layers(), file, &migrators()).await
}

/// The service, built and bound, ready to run.
#[derive(Debug)]
pub struct Application {
    runtime: ServiceRuntime,
    state: Arc<state::State>,
    workers: Vec<fire::Worker>,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        let mut runtime =
            ServiceRuntime::build(SERVICE_NAME, settings.common, &migrators(), &GRPC_SERVICES)
                .await?;
        runtime.retain(retention::tasks());
        let peers = state::Peers {
            notification: runtime.peer("notification")?.map(|c| c.notification()),
            guest_profile: runtime.peer("guest_profile")?.map(|c| c.guest_profile()),
            feedback: runtime.peer("feedback_intake")?.map(|c| c.feedback()),
        };
        let state = Arc::new(state::State {
            pool: runtime.pool.clone(),
            chain: Arc::new(runtime.settings.chain.clone()),
            standards: Arc::new(runtime.settings.standards.clone()),
            timers: settings.timers.clone(),
            plan: settings.plan.clone(),
            alerts: settings.alerts.clone(),
            tasks: settings.tasks.clone(),
            care: settings.care.clone(),
            review_replies: settings.review_replies.clone(),
            peers,
            deadline_feed: guestloop_db::feed::ChangeFeed::new(store::DEADLINE_CHANNEL),
        });
        register_metrics(&state.chain);
        let workers = if settings.timers.worker_enabled {
            fire::Worker::replica(state.clone(), settings.timers.workers)
        } else {
            Vec::new()
        };
        Ok(Self {
            runtime,
            state,
            workers,
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
        let service =
            FollowUpSchedulerServiceServer::new(api::SchedulerApi::new(self.state.clone()))
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
        let workers: Vec<_> = self
            .workers
            .into_iter()
            .map(|w| tokio::spawn(w.run(stop_rx.clone())))
            .collect();
        let result = self
            .runtime
            .serve(routes, async move {
                shutdown.await;
                let _ = stop_tx.send(true);
            })
            .await;
        for w in workers {
            let _ = w.await;
        }
        result
    }
}

/// HELP lines for the scheduler's series, and the counters its alerts watch at zero from
/// the start: a series born at its first increment loses that increment to
/// `rate()`/`increase()`, and an absent series cannot page. Breaches are counted per
/// property, so every property of the chain directory starts at zero.
fn register_metrics(chain: &guestloop_config::ChainDirectory) {
    use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(
        "scheduler_timer_lag_seconds",
        Unit::Seconds,
        "How long after its due time a timer finished (fired, skipped or failed)"
    );
    describe_gauge!(
        "scheduler_timers_backlog",
        "Timers due and not yet finished (counted every timers.backlog_interval)"
    );
    describe_gauge!(
        "scheduler_timers_oldest_due_age_seconds",
        "How long ago the oldest due, unfinished timer came due; 0 when none"
    );
    describe_counter!("scheduler_timers_fired_total", "Timers fired, by action");
    describe_counter!(
        "scheduler_timers_skipped_total",
        "Timers skipped (no consent, cancelled aggregate, too late)"
    );
    describe_counter!(
        "scheduler_timers_failed_total",
        "Timers that failed permanently after timers.max_attempts: a follow-up not done"
    );
    describe_counter!(
        "scheduler_timers_late_total",
        "Timers that came due later than their late threshold, by what was decided"
    );
    describe_counter!(
        "scheduler_sla_warnings_total",
        "SLA clocks that reached their warning point"
    );
    describe_counter!(
        "scheduler_sla_breaches_total",
        "SLA clocks (first response, resolution, escalation steps) that passed their deadline, by property"
    );
    describe_counter!(
        "scheduler_escalations_total",
        "Escalation ladder hops confirmed by feedback-intake"
    );
    describe_counter!("scheduler_tasks_created_total", "Follow-up tasks created");
    describe_counter!(
        "scheduler_tasks_completed_total",
        "Follow-up tasks completed"
    );
    describe_counter!(
        "scheduler_tasks_missed_total",
        "Follow-up tasks that passed their due time undone"
    );
    describe_counter!(
        "scheduler_alerts_refused_total",
        "Staff alerts notification refused"
    );
    for name in [
        "scheduler_timers_skipped_total",
        "scheduler_timers_failed_total",
        "scheduler_sla_warnings_total",
        "scheduler_escalations_total",
        "scheduler_tasks_created_total",
        "scheduler_tasks_completed_total",
        "scheduler_tasks_missed_total",
        "scheduler_alerts_refused_total",
    ] {
        counter!(name).increment(0);
    }
    for decision in ["fired_late", "skipped_late", "escalate"] {
        counter!("scheduler_timers_late_total", "decision" => decision).increment(0);
    }
    for p in &chain.properties {
        counter!("scheduler_sla_breaches_total", "property" => p.id.clone()).increment(0);
    }
    // Shown (all buckets at zero) before the first timer finishes.
    let _ = metrics::histogram!("scheduler_timer_lag_seconds");
}

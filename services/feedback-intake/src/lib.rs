//! feedback-intake (PRODUCT.md): every piece of feedback from every channel, and the
//! complaint cases it turns into — category, risk grade, urgency, department, assignee, a
//! lifecycle with an append-only history, the escalation tier, repeats and incidents.
//! It consumes guest-profile's GuestErased and GuestMerged (ingest.rs, EventIngestService):
//! an erased guest's words leave its feedback and cases, a duplicate's move to the survivor
//! (directory.rs), also for feedback that arrives after the event.

mod api;
mod case_ops;
pub mod classify;
mod convert;
mod directory;
mod domain;
mod erasure;
mod error;
mod export;
/// R8: the request and event parsers under random input (tests and fuzz/).
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod guests;
mod ingest;
mod intake;
mod intake_batch;
mod redact;
mod reply;
mod retention;
mod settings;
mod state;
mod store;

pub use error::FeedbackError;
pub use settings::{IntakeSettings, SERVICE_DEFAULTS, Settings, default_layers};

use guestloop_proto::events::v1::event_ingest_service_server::EventIngestServiceServer;
use guestloop_proto::feedback::v1::feedback_intake_service_server::FeedbackIntakeServiceServer;
use guestloop_server::{ServiceRuntime, StartError};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tonic::service::interceptor::InterceptedService;

pub const SERVICE_NAME: &str = "feedback-intake";
const GRPC_SERVICE: &str = "guestloop.feedback.v1.FeedbackIntakeService";
const GRPC_SERVICES: [&str; 2] = [GRPC_SERVICE, "guestloop.events.v1.EventIngestService"];

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

fn migrators() -> [&'static sqlx::migrate::Migrator; 3] {
    [
        &guestloop_outbox::MIGRATOR,
        &guestloop_db::retention::MIGRATOR,
        &MIGRATOR,
    ]
}

/// `feedback-intake migrate`: applies the schema and exits.
pub async fn migrate(file: Option<&std::path::Path>) -> Result<(), StartError> {
    guestloop_server::migrate_command(&default_layers(), file, &migrators()).await
}

/// The service, built and bound, ready to run.
#[derive(Debug)]
pub struct Application {
    runtime: ServiceRuntime,
    state: Arc<state::State>,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        let classifier = classify::Classifier::new(&settings.classifier)
            .map_err(|e| StartError::Config(guestloop_config::ConfigError::Load(e)))?;
        let mut runtime =
            ServiceRuntime::build(SERVICE_NAME, settings.common, &migrators(), &GRPC_SERVICES)
                .await?;
        // A day of OTA reviews streams for longer than an ordinary call may take.
        runtime.long_running = vec![format!("/{GRPC_SERVICE}/ImportFeedback")];
        runtime.retain(retention::tasks());
        let guest_profile = runtime.peer("guest_profile")?.map(|c| c.guest_profile());
        let state = Arc::new(state::State {
            pool: runtime.pool.clone(),
            chain: Arc::new(runtime.settings.chain.clone()),
            standards: Arc::new(runtime.settings.standards.clone()),
            intake: settings.intake,
            ota_replies: settings.ota_replies,
            classifier,
            guests: guests::GuestDirectory::new(guest_profile),
            case_feed: crate::store::cases::case_feed(),
            group: guestloop_db::group::GroupCommit::start(
                "group_commit",
                runtime.pool.clone(),
                settings.group_commit,
            ),
            batch: intake_batch::IntakeBatch::start(
                "submit",
                runtime.pool.clone(),
                settings.batch_write,
            ),
            import_batch: intake_batch::IntakeBatch::start(
                "import",
                runtime.pool.clone(),
                settings.import_write,
            ),
            retention: runtime.settings.retention.clone(),
        });
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
        let service = FeedbackIntakeServiceServer::new(api::FeedbackApi::new(self.state.clone()))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max);
        // guest-profile's relay delivers here; IngestService admits service tokens only.
        let events = EventIngestServiceServer::new(guestloop_outbox::consume::IngestService::new(
            Arc::new(ingest::Ingest { state: self.state }),
        ))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
        let auth = || self.runtime.auth.clone();
        let routes = tonic::service::Routes::new(InterceptedService::new(service, auth()))
            .add_service(InterceptedService::new(events, auth()));
        self.runtime.serve(routes, shutdown).await
    }
}

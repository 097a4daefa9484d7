//! The consumer side of `guestloop.events.v1.EventIngestService`, the same in every service
//! that consumes events: only service tokens may deliver; events are applied in the order
//! given, each continuing the trace of the request that caused it; an event without a valid
//! id is acknowledged and dropped (it could never apply); the first event that cannot be
//! applied stops the batch, and the relay delivers it and what follows again later. What an
//! event does is the service's [`Consumer`], which applies it together with its inbox row
//! (inbox.rs) in one transaction, so a redelivery changes nothing. The same service answers
//! guest-profile's question which guests' erasures it has applied (GetGuestErasures), from
//! the record each consumer writes with the erasure.

use guestloop_proto::events::v1::event_ingest_service_server::EventIngestService;
use guestloop_proto::events::v1::{
    DeliverEventsRequest, DeliverEventsResponse, EventEnvelope, ExportGuestDataRequest,
    ExportGuestDataResponse, GetGuestErasuresRequest, GetGuestErasuresResponse, GuestErasure,
};
use std::sync::Arc;
use tonic::{Request, Response, Status};
use tracing::Instrument;
use uuid::Uuid;

/// What a service does with one event.
#[tonic::async_trait]
pub trait Consumer: Send + Sync + 'static {
    /// Applies the event (with its inbox row, in one transaction). An error means it was
    /// not applied and must be delivered again.
    async fn apply(&self, id: Uuid, event: &EventEnvelope) -> Result<(), String>;

    /// Which of `guest_ids` this service has erased (applied their GuestErased), and when.
    async fn erased(
        &self,
        guest_ids: Vec<String>,
    ) -> Result<Vec<(String, chrono::DateTime<chrono::Utc>)>, String>;

    /// What this service holds about `guest_ids` in the properties the exporting caller
    /// sees (`None`: the whole chain), for a subject-access export. A service whose data
    /// is all derived from other services' (metrics) keeps the default: nothing.
    async fn export(
        &self,
        _guest_ids: Vec<String>,
        _visible: Option<Vec<String>>,
    ) -> Result<ExportGuestDataResponse, String> {
        Ok(ExportGuestDataResponse::default())
    }
}

/// The most guest ids one GetGuestErasures or ExportGuestData may name.
pub const MAX_GUEST_IDS: usize = 1000;

/// The EventIngestService of a service, over its consumer.
pub struct IngestService<C> {
    consumer: Arc<C>,
}

impl<C> IngestService<C> {
    pub fn new(consumer: Arc<C>) -> Self {
        Self { consumer }
    }
}

#[tonic::async_trait]
impl<C: Consumer> EventIngestService for IngestService<C> {
    async fn deliver_events(
        &self,
        request: Request<DeliverEventsRequest>,
    ) -> Result<Response<DeliverEventsResponse>, Status> {
        service_caller(&request)?;
        match deliver(self.consumer.as_ref(), request.into_inner().events).await {
            Ok(acknowledged_event_ids) => Ok(Response::new(DeliverEventsResponse {
                acknowledged_event_ids,
            })),
            // Not even the first event applied: an error, so the relay backs off.
            Err(e) => Err(Status::unavailable(format!("event not applied: {e}"))),
        }
    }

    async fn get_guest_erasures(
        &self,
        request: Request<GetGuestErasuresRequest>,
    ) -> Result<Response<GetGuestErasuresResponse>, Status> {
        service_caller(&request)?;
        let ids = request.into_inner().guest_ids;
        bounded(&ids)?;
        let erased = self
            .consumer
            .erased(ids)
            .await
            .map_err(|e| Status::unavailable(format!("erasures not readable: {e}")))?;
        Ok(Response::new(GetGuestErasuresResponse {
            erased: erased
                .into_iter()
                .map(|(guest_id, at)| GuestErasure {
                    guest_id,
                    erase_time: Some(prost_types::Timestamp {
                        seconds: at.timestamp(),
                        nanos: at.timestamp_subsec_nanos() as i32,
                    }),
                })
                .collect(),
        }))
    }

    async fn export_guest_data(
        &self,
        request: Request<ExportGuestDataRequest>,
    ) -> Result<Response<ExportGuestDataResponse>, Status> {
        service_caller(&request)?;
        let r = request.into_inner();
        bounded(&r.guest_ids)?;
        let visible = (!r.visible_property_ids.is_empty()).then_some(r.visible_property_ids);
        self.consumer
            .export(r.guest_ids, visible)
            .await
            .map(Response::new)
            .map_err(|e| Status::unavailable(format!("guest data not readable: {e}")))
    }
}

/// At most [`MAX_GUEST_IDS`] ids, or INVALID_ARGUMENT naming `guest_ids`.
fn bounded(ids: &[String]) -> Result<(), Status> {
    if ids.len() > MAX_GUEST_IDS {
        return Err(guestloop_errors::invalid_argument(
            &guestloop_errors::FieldViolations::single(
                "guest_ids",
                format!("at most {MAX_GUEST_IDS} ids per call"),
            ),
        ));
    }
    Ok(())
}

/// Events and erasure questions come from other services only.
fn service_caller<T>(request: &Request<T>) -> Result<(), Status> {
    let principal = guestloop_auth::principal(request)?;
    if principal.role != guestloop_auth::Role::Service {
        return Err(Status::permission_denied(
            "the event ingest service is for service callers only",
        ));
    }
    Ok(())
}

/// Applies `events` in order; returns the ids acknowledged (applied now or before), or the
/// error of the first event when none could be.
pub async fn deliver(
    consumer: &impl Consumer,
    events: Vec<EventEnvelope>,
) -> Result<Vec<String>, String> {
    let mut acknowledged = Vec::with_capacity(events.len());
    for env in events {
        let Ok(id) = Uuid::parse_str(&env.event_id) else {
            tracing::warn!(source = %env.source, "event without a valid id dropped");
            acknowledged.push(env.event_id);
            continue;
        };
        let span = tracing::info_span!("apply_event", event_id = %id, source = %env.source);
        if !env.traceparent.is_empty() {
            guestloop_telemetry::propagation::set_parent_from_traceparent(&span, &env.traceparent);
        }
        match consumer.apply(id, &env).instrument(span).await {
            Ok(()) => {
                metrics::counter!("guestloop_events_applied_total", "source" => env.source.clone())
                    .increment(1);
                acknowledged.push(env.event_id);
            }
            Err(e) => {
                metrics::counter!("guestloop_events_failed_total", "source" => env.source.clone())
                    .increment(1);
                tracing::warn!(event_id = %id, source = %env.source, error = %e,
                    "event not applied; the rest of the batch waits for redelivery");
                if acknowledged.is_empty() {
                    return Err(e);
                }
                break;
            }
        }
    }
    Ok(acknowledged)
}

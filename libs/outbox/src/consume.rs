//! The consumer side of `guestloop.events.v1.EventIngestService`, the same in every service
//! that consumes events: only service tokens may deliver; events are applied in the order
//! given, each continuing the trace of the request that caused it; an event without a valid
//! id is acknowledged and dropped (it could never apply); the first event that cannot be
//! applied stops the batch, and the relay delivers it and what follows again later. What an
//! event does is the service's [`Consumer`], which applies it together with its inbox row
//! (inbox.rs) in one transaction, so a redelivery changes nothing.

use guestloop_proto::events::v1::event_ingest_service_server::EventIngestService;
use guestloop_proto::events::v1::{DeliverEventsRequest, DeliverEventsResponse, EventEnvelope};
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
}

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
        let principal = guestloop_auth::principal(&request)?;
        if principal.role != guestloop_auth::Role::Service {
            return Err(Status::permission_denied(
                "events are delivered by service callers only",
            ));
        }
        match deliver(self.consumer.as_ref(), request.into_inner().events).await {
            Ok(acknowledged_event_ids) => Ok(Response::new(DeliverEventsResponse {
                acknowledged_event_ids,
            })),
            // Not even the first event applied: an error, so the relay backs off.
            Err(e) => Err(Status::unavailable(format!("event not applied: {e}"))),
        }
    }
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

//! guestloop.events.v1.EventIngestService: the other services' outbox relays deliver here.
//! Only service tokens may call it; the work is ingest.rs.

use crate::error::MetricsError;
use crate::state::{Caller, State};
use guestloop_auth::Role;
use guestloop_proto::events::v1 as ev;
use guestloop_proto::events::v1::event_ingest_service_server::EventIngestService;
use std::sync::Arc;
use tonic::{Request, Response, Status};

#[derive(Debug, Clone)]
pub struct EventsApi {
    state: Arc<State>,
}

impl EventsApi {
    pub fn new(state: Arc<State>) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl EventIngestService for EventsApi {
    async fn deliver_events(
        &self,
        request: Request<ev::DeliverEventsRequest>,
    ) -> Result<Response<ev::DeliverEventsResponse>, Status> {
        let caller = Caller::new(&request)?;
        if caller.principal.role != Role::Service {
            return Err(MetricsError::PermissionDenied("only services deliver events").into());
        }
        let events = request.into_inner().events;
        let acknowledged_event_ids = crate::ingest::deliver(&self.state, events).await;
        Ok(Response::new(ev::DeliverEventsResponse {
            acknowledged_event_ids,
        }))
    }
}

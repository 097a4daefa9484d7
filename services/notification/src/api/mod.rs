//! The gRPC surface of notification. Each RPC identifies the caller, parses its request,
//! and hands over to a handler; errors map to a status in one place (error.rs). The event
//! consumer (EventIngestService) is in events.rs.

pub(crate) mod events;
mod messages;
mod staff;
mod templates;

pub use events::Ingest;

use crate::state::{Caller, State};
use guestloop_proto::notification::v1 as pb;
use guestloop_proto::notification::v1::notification_service_server::NotificationService;
use std::sync::Arc;
use tonic::{Request, Response, Status};

#[derive(Debug, Clone)]
pub struct NotificationApi {
    state: Arc<State>,
}

impl NotificationApi {
    pub fn new(state: Arc<State>) -> Self {
        Self { state }
    }
}

macro_rules! rpc {
    ($self:ident, $request:ident, $handler:path) => {{
        let caller = Caller::new(&$self.state, &$request)?;
        $handler(&$self.state, &caller, $request.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }};
}

type R<T> = std::result::Result<Response<T>, Status>;

#[tonic::async_trait]
impl NotificationService for NotificationApi {
    async fn send_message(
        &self,
        request: Request<pb::SendMessageRequest>,
    ) -> R<pb::SendMessageResponse> {
        rpc!(self, request, messages::send)
    }
    async fn get_message(
        &self,
        request: Request<pb::GetMessageRequest>,
    ) -> R<pb::GetMessageResponse> {
        rpc!(self, request, messages::get)
    }
    async fn list_messages(
        &self,
        request: Request<pb::ListMessagesRequest>,
    ) -> R<pb::ListMessagesResponse> {
        rpc!(self, request, messages::list)
    }
    async fn cancel_message(
        &self,
        request: Request<pb::CancelMessageRequest>,
    ) -> R<pb::CancelMessageResponse> {
        rpc!(self, request, messages::cancel)
    }
    async fn retry_dead_letter(
        &self,
        request: Request<pb::RetryDeadLetterRequest>,
    ) -> R<pb::RetryDeadLetterResponse> {
        rpc!(self, request, messages::retry_dead_letter)
    }
    async fn record_delivery_receipt(
        &self,
        request: Request<pb::RecordDeliveryReceiptRequest>,
    ) -> R<pb::RecordDeliveryReceiptResponse> {
        rpc!(self, request, messages::receipt)
    }
    async fn list_templates(
        &self,
        request: Request<pb::ListTemplatesRequest>,
    ) -> R<pb::ListTemplatesResponse> {
        rpc!(self, request, templates::list)
    }
    async fn preview_template(
        &self,
        request: Request<pb::PreviewTemplateRequest>,
    ) -> R<pb::PreviewTemplateResponse> {
        rpc!(self, request, templates::preview)
    }
    async fn list_staff(&self, request: Request<pb::ListStaffRequest>) -> R<pb::ListStaffResponse> {
        rpc!(self, request, staff::list)
    }
}

//! The gRPC surface of follow-up-scheduler. Each RPC identifies the caller, parses its
//! request and hands over to a handler; errors map to a status in one place (error.rs).
//! guestloop.events.v1.EventIngestService, through which the other services' outboxes
//! deliver their events, is guestloop_outbox's IngestService over ingest.rs.

mod clocks;
pub(crate) mod export;
mod tasks;
mod timers;
mod watch;

use crate::state::{Caller, State};
use guestloop_proto::followup::v1 as pb;
use guestloop_proto::followup::v1::follow_up_scheduler_service_server::FollowUpSchedulerService;
use std::sync::Arc;
use tonic::{Request, Response, Status};

#[derive(Debug, Clone)]
pub struct SchedulerApi {
    state: Arc<State>,
}

impl SchedulerApi {
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
impl FollowUpSchedulerService for SchedulerApi {
    async fn schedule_timer(
        &self,
        request: Request<pb::ScheduleTimerRequest>,
    ) -> R<pb::ScheduleTimerResponse> {
        rpc!(self, request, timers::schedule)
    }
    async fn cancel_timer(
        &self,
        request: Request<pb::CancelTimerRequest>,
    ) -> R<pb::CancelTimerResponse> {
        rpc!(self, request, timers::cancel)
    }
    async fn get_timer(&self, request: Request<pb::GetTimerRequest>) -> R<pb::GetTimerResponse> {
        rpc!(self, request, timers::get)
    }
    async fn list_timers(
        &self,
        request: Request<pb::ListTimersRequest>,
    ) -> R<pb::ListTimersResponse> {
        rpc!(self, request, timers::list)
    }
    async fn create_task(
        &self,
        request: Request<pb::CreateTaskRequest>,
    ) -> R<pb::CreateTaskResponse> {
        rpc!(self, request, tasks::create)
    }
    async fn get_task(&self, request: Request<pb::GetTaskRequest>) -> R<pb::GetTaskResponse> {
        rpc!(self, request, tasks::get)
    }
    async fn assign_task(
        &self,
        request: Request<pb::AssignTaskRequest>,
    ) -> R<pb::AssignTaskResponse> {
        rpc!(self, request, tasks::assign)
    }
    async fn complete_task(
        &self,
        request: Request<pb::CompleteTaskRequest>,
    ) -> R<pb::CompleteTaskResponse> {
        rpc!(self, request, tasks::complete)
    }
    async fn cancel_task(
        &self,
        request: Request<pb::CancelTaskRequest>,
    ) -> R<pb::CancelTaskResponse> {
        rpc!(self, request, tasks::cancel)
    }
    async fn list_tasks(&self, request: Request<pb::ListTasksRequest>) -> R<pb::ListTasksResponse> {
        rpc!(self, request, tasks::list)
    }
    async fn get_case_clocks(
        &self,
        request: Request<pb::GetCaseClocksRequest>,
    ) -> R<pb::GetCaseClocksResponse> {
        rpc!(self, request, clocks::case_clocks)
    }
    async fn get_stay_clocks(
        &self,
        request: Request<pb::GetStayClocksRequest>,
    ) -> R<pb::GetStayClocksResponse> {
        rpc!(self, request, clocks::stay_clocks)
    }
    type WatchDeadlinesStream = watch::DeadlineStream;
    async fn watch_deadlines(
        &self,
        request: Request<pb::WatchDeadlinesRequest>,
    ) -> R<Self::WatchDeadlinesStream> {
        let caller = Caller::new(&self.state, &request)?;
        watch::start(self.state.clone(), caller, request.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }
}

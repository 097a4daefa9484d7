//! The gRPC surface of follow-up-scheduler. Each RPC identifies the caller, parses its
//! request and hands over to a handler; errors map to a status in one place (error.rs).
//! Only the timer RPCs are implemented; tasks, clocks and the deadline watch answer
//! UNIMPLEMENTED until their part of issue 4 lands.

mod timers;

use crate::error::SchedulerError;
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

fn not_yet<T>(what: &'static str) -> R<T> {
    Err(SchedulerError::Unimplemented(what).into())
}

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
    async fn create_task(&self, _: Request<pb::CreateTaskRequest>) -> R<pb::CreateTaskResponse> {
        not_yet("follow-up tasks")
    }
    async fn get_task(&self, _: Request<pb::GetTaskRequest>) -> R<pb::GetTaskResponse> {
        not_yet("follow-up tasks")
    }
    async fn assign_task(&self, _: Request<pb::AssignTaskRequest>) -> R<pb::AssignTaskResponse> {
        not_yet("follow-up tasks")
    }
    async fn complete_task(
        &self,
        _: Request<pb::CompleteTaskRequest>,
    ) -> R<pb::CompleteTaskResponse> {
        not_yet("follow-up tasks")
    }
    async fn cancel_task(&self, _: Request<pb::CancelTaskRequest>) -> R<pb::CancelTaskResponse> {
        not_yet("follow-up tasks")
    }
    async fn list_tasks(&self, _: Request<pb::ListTasksRequest>) -> R<pb::ListTasksResponse> {
        not_yet("follow-up tasks")
    }
    async fn get_case_clocks(
        &self,
        _: Request<pb::GetCaseClocksRequest>,
    ) -> R<pb::GetCaseClocksResponse> {
        not_yet("SLA clocks")
    }
    async fn get_stay_clocks(
        &self,
        _: Request<pb::GetStayClocksRequest>,
    ) -> R<pb::GetStayClocksResponse> {
        not_yet("the after-stay plan")
    }
    type WatchDeadlinesStream = tonic::codegen::BoxStream<pb::WatchDeadlinesResponse>;
    async fn watch_deadlines(
        &self,
        _: Request<pb::WatchDeadlinesRequest>,
    ) -> R<Self::WatchDeadlinesStream> {
        not_yet("the deadline watch")
    }
}

//! The gRPC surface of feedback-intake. Each RPC identifies the caller, parses its request,
//! and hands over to a handler; errors map to a status in one place (error.rs).

mod cases;
mod filters;
mod import;
mod incidents;
mod intake;
mod replies;
mod watch;

use crate::state::{Caller, State};
use guestloop_proto::feedback::v1 as pb;
use guestloop_proto::feedback::v1::feedback_intake_service_server::FeedbackIntakeService;
use std::sync::Arc;
use tonic::{Request, Response, Status, Streaming};

#[derive(Debug, Clone)]
pub struct FeedbackApi {
    state: Arc<State>,
}

impl FeedbackApi {
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
impl FeedbackIntakeService for FeedbackApi {
    async fn submit_feedback(
        &self,
        request: Request<pb::SubmitFeedbackRequest>,
    ) -> R<pb::SubmitFeedbackResponse> {
        rpc!(self, request, intake::submit)
    }
    async fn import_feedback(
        &self,
        request: Request<Streaming<pb::ImportFeedbackRequest>>,
    ) -> R<pb::ImportFeedbackResponse> {
        let caller = Caller::new(&self.state, &request)?;
        import::import(&self.state, &caller, request.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }
    async fn get_feedback(
        &self,
        request: Request<pb::GetFeedbackRequest>,
    ) -> R<pb::GetFeedbackResponse> {
        rpc!(self, request, intake::get)
    }
    async fn list_feedback(
        &self,
        request: Request<pb::ListFeedbackRequest>,
    ) -> R<pb::ListFeedbackResponse> {
        rpc!(self, request, intake::list)
    }
    async fn search_feedback(
        &self,
        request: Request<pb::SearchFeedbackRequest>,
    ) -> R<pb::SearchFeedbackResponse> {
        rpc!(self, request, intake::search)
    }
    async fn record_feedback_reply(
        &self,
        request: Request<pb::RecordFeedbackReplyRequest>,
    ) -> R<pb::RecordFeedbackReplyResponse> {
        rpc!(self, request, intake::reply)
    }
    async fn get_review_reply(
        &self,
        request: Request<pb::GetReviewReplyRequest>,
    ) -> R<pb::GetReviewReplyResponse> {
        rpc!(self, request, replies::get)
    }
    async fn draft_review_reply(
        &self,
        request: Request<pb::DraftReviewReplyRequest>,
    ) -> R<pb::DraftReviewReplyResponse> {
        rpc!(self, request, replies::draft)
    }
    async fn approve_review_reply(
        &self,
        request: Request<pb::ApproveReviewReplyRequest>,
    ) -> R<pb::ApproveReviewReplyResponse> {
        rpc!(self, request, replies::approve)
    }
    async fn record_review_reply_posted(
        &self,
        request: Request<pb::RecordReviewReplyPostedRequest>,
    ) -> R<pb::RecordReviewReplyPostedResponse> {
        rpc!(self, request, replies::posted)
    }
    async fn list_review_replies(
        &self,
        request: Request<pb::ListReviewRepliesRequest>,
    ) -> R<pb::ListReviewRepliesResponse> {
        rpc!(self, request, replies::list)
    }
    async fn open_case(&self, request: Request<pb::OpenCaseRequest>) -> R<pb::OpenCaseResponse> {
        rpc!(self, request, cases::open)
    }
    async fn get_case(&self, request: Request<pb::GetCaseRequest>) -> R<pb::GetCaseResponse> {
        rpc!(self, request, cases::get)
    }
    async fn list_cases(&self, request: Request<pb::ListCasesRequest>) -> R<pb::ListCasesResponse> {
        rpc!(self, request, cases::list)
    }
    async fn search_cases(
        &self,
        request: Request<pb::SearchCasesRequest>,
    ) -> R<pb::SearchCasesResponse> {
        rpc!(self, request, cases::search)
    }
    async fn transition_case(
        &self,
        request: Request<pb::TransitionCaseRequest>,
    ) -> R<pb::TransitionCaseResponse> {
        rpc!(self, request, cases::transition)
    }
    async fn assign_case(
        &self,
        request: Request<pb::AssignCaseRequest>,
    ) -> R<pb::AssignCaseResponse> {
        rpc!(self, request, cases::assign)
    }
    async fn set_case_grade(
        &self,
        request: Request<pb::SetCaseGradeRequest>,
    ) -> R<pb::SetCaseGradeResponse> {
        rpc!(self, request, cases::set_grade)
    }
    async fn reclassify_case(
        &self,
        request: Request<pb::ReclassifyCaseRequest>,
    ) -> R<pb::ReclassifyCaseResponse> {
        rpc!(self, request, cases::reclassify)
    }
    async fn record_case_action(
        &self,
        request: Request<pb::RecordCaseActionRequest>,
    ) -> R<pb::RecordCaseActionResponse> {
        rpc!(self, request, cases::record_action)
    }
    async fn escalate_case(
        &self,
        request: Request<pb::EscalateCaseRequest>,
    ) -> R<pb::EscalateCaseResponse> {
        rpc!(self, request, cases::escalate)
    }
    async fn attach_feedback(
        &self,
        request: Request<pb::AttachFeedbackRequest>,
    ) -> R<pb::AttachFeedbackResponse> {
        rpc!(self, request, cases::attach)
    }
    async fn list_case_events(
        &self,
        request: Request<pb::ListCaseEventsRequest>,
    ) -> R<pb::ListCaseEventsResponse> {
        rpc!(self, request, cases::events)
    }
    async fn create_incident(
        &self,
        request: Request<pb::CreateIncidentRequest>,
    ) -> R<pb::CreateIncidentResponse> {
        rpc!(self, request, incidents::create)
    }
    async fn link_cases_to_incident(
        &self,
        request: Request<pb::LinkCasesToIncidentRequest>,
    ) -> R<pb::LinkCasesToIncidentResponse> {
        rpc!(self, request, incidents::link)
    }
    async fn get_incident(
        &self,
        request: Request<pb::GetIncidentRequest>,
    ) -> R<pb::GetIncidentResponse> {
        rpc!(self, request, incidents::get)
    }
    async fn list_incidents(
        &self,
        request: Request<pb::ListIncidentsRequest>,
    ) -> R<pb::ListIncidentsResponse> {
        rpc!(self, request, incidents::list)
    }

    type WatchCaseQueueStream = watch::CaseQueueStream;

    async fn watch_case_queue(
        &self,
        request: Request<pb::WatchCaseQueueRequest>,
    ) -> R<Self::WatchCaseQueueStream> {
        let caller = Caller::new(&self.state, &request)?;
        watch::start(self.state.clone(), caller, request.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }
}

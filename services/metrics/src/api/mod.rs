//! The gRPC surface of metrics: MetricsService (kpis.rs, league.rs, alerts.rs, report.rs,
//! mentions.rs, improvement.rs) (EventIngestService is guestloop_outbox's, over ingest.rs). Errors map to a status in one
//! place (error.rs).

mod alerts;
mod improvement;
pub(crate) mod kpis;
pub mod league;
mod mentions;
mod report;
pub mod scope;

use crate::state::{Caller, State};
use guestloop_proto::metrics::v1 as pb;
use guestloop_proto::metrics::v1::metrics_service_server::MetricsService;
use std::sync::Arc;
use tonic::{Request, Response, Status};

#[derive(Debug, Clone)]
pub struct MetricsApi {
    state: Arc<State>,
}

impl MetricsApi {
    pub fn new(state: Arc<State>) -> Self {
        Self { state }
    }
}

type R<T> = std::result::Result<Response<T>, Status>;

macro_rules! rpc {
    ($self:ident, $request:ident, $handler:path) => {{
        let caller = Caller::new(&$request)?;
        $handler(&$self.state, &caller, $request.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }};
}

#[tonic::async_trait]
impl MetricsService for MetricsApi {
    async fn get_kpis(&self, request: Request<pb::GetKpisRequest>) -> R<pb::GetKpisResponse> {
        rpc!(self, request, kpis::get)
    }
    async fn get_league_table(
        &self,
        request: Request<pb::GetLeagueTableRequest>,
    ) -> R<pb::GetLeagueTableResponse> {
        rpc!(self, request, league::get)
    }
    async fn get_voice_of_customer_report(
        &self,
        request: Request<pb::GetVoiceOfCustomerReportRequest>,
    ) -> R<pb::GetVoiceOfCustomerReportResponse> {
        rpc!(self, request, report::get)
    }
    async fn render_voice_of_customer_report(
        &self,
        request: Request<pb::RenderVoiceOfCustomerReportRequest>,
    ) -> R<pb::RenderVoiceOfCustomerReportResponse> {
        rpc!(self, request, report::render)
    }
    async fn list_alerts(
        &self,
        request: Request<pb::ListAlertsRequest>,
    ) -> R<pb::ListAlertsResponse> {
        rpc!(self, request, alerts::list)
    }
    async fn list_staff_mentions(
        &self,
        request: Request<pb::ListStaffMentionsRequest>,
    ) -> R<pb::ListStaffMentionsResponse> {
        rpc!(self, request, mentions::list)
    }
    async fn create_improvement_item(
        &self,
        request: Request<pb::CreateImprovementItemRequest>,
    ) -> R<pb::CreateImprovementItemResponse> {
        rpc!(self, request, improvement::create)
    }
    async fn get_improvement_item(
        &self,
        request: Request<pb::GetImprovementItemRequest>,
    ) -> R<pb::GetImprovementItemResponse> {
        rpc!(self, request, improvement::get)
    }
    async fn list_improvement_items(
        &self,
        request: Request<pb::ListImprovementItemsRequest>,
    ) -> R<pb::ListImprovementItemsResponse> {
        rpc!(self, request, improvement::list)
    }
    async fn advance_improvement_item(
        &self,
        request: Request<pb::AdvanceImprovementItemRequest>,
    ) -> R<pb::AdvanceImprovementItemResponse> {
        rpc!(self, request, improvement::advance)
    }
    async fn link_improvement_cases(
        &self,
        request: Request<pb::LinkImprovementCasesRequest>,
    ) -> R<pb::LinkImprovementCasesResponse> {
        rpc!(self, request, improvement::link)
    }
}

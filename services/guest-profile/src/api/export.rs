//! ExportGuest, the subject-access export (issue 11): what guest-profile holds (profile,
//! stays in the caller's scope, consent history, merges, the access log) and each other
//! data service's share (EventIngestService.ExportGuestData, asked concurrently with the
//! merge chain's ids and the caller's properties), as one JSON document and one HTML page
//! in the guest's language (crate::export_document). The export is itself a read of
//! contact data and is written to the access log. A service that cannot answer is named in
//! `gaps` rather than failing the whole export.

use super::{Caller, State, convert, guest_id};
use crate::data_services::DataService;
use crate::error::Result;
use crate::store::{privacy as store, stays as stay_store};
use guestloop_proto::events::v1::{ExportGuestDataRequest, ExportGuestDataResponse};
use guestloop_proto::guestprofile::v1 as pb;
use std::time::Duration;
use uuid::Uuid;

const CALL_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn export(
    state: &State,
    caller: &Caller,
    req: pb::ExportGuestRequest,
) -> Result<pb::ExportGuestResponse> {
    let id = guest_id("guest_id", &req.guest_id)?;
    let mut tx = state.pool.begin().await?;
    let (guest, _) = state.visible_guest(&mut tx, caller, id, false).await?;
    let ids = store::merged_ids(&mut *tx, guest.id).await?;
    // The export is itself a read of contact data: log it first so it appears in the export.
    state.log_access(&mut tx, caller, &[guest.id]).await?;
    // Stays are objects of their property: a caller gets those of the properties in scope
    // (head office the complete history), as ListStays and GetStay answer.
    let stays = stay_store::all_for_guest(&mut *tx, guest.id, caller.visible()).await?;
    let consents = store::consent_history(&mut *tx, guest.id).await?;
    let merges = store::merges_of(&mut *tx, &ids).await?;
    let access = store::access_log(&mut *tx, &ids, 0, 10_000).await?;
    tx.commit().await?;
    let mut response = pb::ExportGuestResponse {
        guest: Some(convert::guest(&guest)),
        stays: stays.iter().map(convert::stay).collect(),
        consent_history: consents.iter().map(convert::consent).collect(),
        merges: merges.iter().map(convert::merge).collect(),
        access_log: access.iter().map(convert::access).collect(),
        export_time: Some(convert::timestamp(chrono::Utc::now())),
        ..Default::default()
    };
    let (shares, gaps) = gather(&state.data_services, &ids, caller.visible()).await;
    response.gaps = gaps;
    let language = guest.profile.language.clone().unwrap_or_default();
    let (json, html) = {
        let document = crate::export_document::Document {
            profile: &response,
            shares: &shares,
        };
        (document.json(), document.html(&language))
    };
    response.json_document = json;
    response.html_document = html;
    Ok(response)
}

/// Each data service's share, asked concurrently; those that could not answer as gaps.
async fn gather(
    services: &[DataService],
    ids: &[Uuid],
    visible: Option<&[String]>,
) -> (Vec<(String, ExportGuestDataResponse)>, Vec<pb::ExportGap>) {
    let request = ExportGuestDataRequest {
        guest_ids: ids.iter().map(Uuid::to_string).collect(),
        visible_property_ids: visible.map(<[String]>::to_vec).unwrap_or_default(),
    };
    let answers = futures::future::join_all(services.iter().map(|s| {
        let mut call = tonic::Request::new(request.clone());
        call.set_timeout(CALL_TIMEOUT);
        let mut client = s.client.clone();
        async move { (s.service.clone(), client.export_guest_data(call).await) }
    }))
    .await;
    let mut shares = Vec::new();
    let mut gaps = Vec::new();
    for (service, answer) in answers {
        match answer {
            Ok(r) => shares.push((service, r.into_inner())),
            Err(status) => {
                tracing::warn!(%service, code = ?status.code(), "export: a service's share is missing");
                gaps.push(pb::ExportGap {
                    service,
                    reason: format!("{:?}: {}", status.code(), status.message()),
                });
            }
        }
    }
    (shares, gaps)
}

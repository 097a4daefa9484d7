//! Erasure receipts: EraseGuest's erasure read back per service (GetErasure), and the
//! data-protection officer's work list (ListErasures). The tracker that moves each
//! service's part from pending to done or failed is crate::erasure_tracker.

use super::{Caller, State, page};
use crate::error::{GuestProfileError, Result, invalid};
use crate::store::erasures::{self as store, Erasure};
use guestloop_proto::guestprofile::v1 as pb;
use uuid::Uuid;

pub async fn get(
    state: &State,
    caller: &Caller,
    req: pb::GetErasureRequest,
) -> Result<pb::GetErasureResponse> {
    let id =
        guestloop_errors::parse::uuid(&req.erasure_id).map_err(|e| invalid("erasure_id", e))?;
    if !caller.principal.role.is_manager() {
        return Err(GuestProfileError::PermissionDenied(
            "erasures are for managers",
        ));
    }
    let mut conn = state.pool.acquire().await?;
    let Some(erasure) = store::get_many(&mut conn, &[id]).await?.pop() else {
        return Err(GuestProfileError::NotFound("erasure"));
    };
    // Visible to whoever may see the guest (its stays' properties), as EraseGuest was.
    state
        .visible_guest(&mut conn, caller, erasure.row.guest_id, false)
        .await
        .map_err(|e| match e {
            GuestProfileError::NotFound(_) => GuestProfileError::NotFound("erasure"),
            other => other,
        })?;
    Ok(pb::GetErasureResponse {
        erasure: Some(to_pb(&erasure)),
    })
}

pub async fn list(
    state: &State,
    caller: &Caller,
    req: pb::ListErasuresRequest,
) -> Result<pb::ListErasuresResponse> {
    let wanted = guestloop_errors::parse::known_enum::<pb::ErasureState>(req.state)
        .map_err(|e| invalid("state", e))?;
    let page = page(req.page)?;
    if caller.principal.role != guestloop_auth::Role::HeadOffice {
        return Err(GuestProfileError::PermissionDenied(
            "the list of erasures is for head office",
        ));
    }
    let state_filter = match wanted {
        pb::ErasureState::Unspecified => None,
        s => Some(s as i16),
    };
    let mut conn = state.pool.acquire().await?;
    let erasures = store::list(
        &mut conn,
        state_filter,
        page.after.map(|c| (c.t, c.id)),
        page.size,
    )
    .await?;
    let next_page_token = page.next_token(&erasures, |e| guestloop_db::page::Cursor {
        t: e.row.request_time,
        id: e.row.id,
    });
    Ok(pb::ListErasuresResponse {
        erasures: erasures.iter().map(to_pb).collect(),
        next_page_token,
    })
}

/// The erasure's overall state: done once complete, failed while any part is.
fn overall(e: &Erasure) -> pb::ErasureState {
    if e.row.complete_time.is_some() {
        pb::ErasureState::Done
    } else if e.services.iter().any(|s| s.state == store::FAILED) {
        pb::ErasureState::Failed
    } else {
        pb::ErasureState::Pending
    }
}

fn part_state(state: i16) -> pb::ErasureState {
    match state {
        store::PENDING => pb::ErasureState::Pending,
        store::DONE => pb::ErasureState::Done,
        store::FAILED => pb::ErasureState::Failed,
        _ => pb::ErasureState::Unspecified,
    }
}

pub fn to_pb(e: &Erasure) -> pb::Erasure {
    let ts = super::convert::timestamp;
    pb::Erasure {
        erasure_id: e.row.id.to_string(),
        guest_id: e.row.guest_id.to_string(),
        erased_guest_ids: e.row.erased_guest_ids.iter().map(Uuid::to_string).collect(),
        reason: e.row.reason.clone(),
        requested_by: e.row.requested_by.clone(),
        requested_by_role: e.row.requested_by_role.clone(),
        request_time: Some(ts(e.row.request_time)),
        state: overall(e) as i32,
        complete_time: e.row.complete_time.map(ts),
        services: e
            .services
            .iter()
            .map(|s| pb::ServiceErasure {
                service: s.service.clone(),
                state: part_state(s.state) as i32,
                erase_time: s.erase_time.map(ts),
                last_check_time: s.last_check_time.map(ts),
                detail: s.detail.clone(),
            })
            .collect(),
    }
}

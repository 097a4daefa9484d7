//! ListContactReads (issue 11, leak reporting): who read the contact data of a property's
//! guests in a window, per reader, with the unusual-volume alerts raised for them.

use super::{Caller, State, convert};
use crate::error::{GuestProfileError, Result};
use crate::store::contact_reads as store;
use guestloop_errors::FieldViolations;
use guestloop_proto::guestprofile::v1 as pb;

/// The longest window one call may ask about.
const MAX_DAYS: i64 = 31;

pub async fn list(
    state: &State,
    caller: &Caller,
    req: pb::ListContactReadsRequest,
) -> Result<pb::ListContactReadsResponse> {
    let mut v = FieldViolations::new();
    if req.property_id.trim().is_empty() {
        v.add("property_id", "is required");
    } else if state.chain.property(&req.property_id).is_none() {
        v.add(
            "property_id",
            format!("`{}` is not a property of the chain", req.property_id),
        );
    }
    let range = req.time_range.unwrap_or_default();
    let from = guestloop_proto::time::instant(&range.start_time);
    let to = guestloop_proto::time::instant(&range.end_time);
    if from.is_none() {
        v.add("time_range.start_time", "is required");
    }
    if to.is_none() {
        v.add("time_range.end_time", "is required");
    }
    if let (Some(f), Some(t)) = (from, to) {
        if t <= f {
            v.add("time_range.end_time", "must be after start_time");
        } else if t - f > chrono::Duration::days(MAX_DAYS) {
            v.add("time_range", format!("may span at most {MAX_DAYS} days"));
        }
    }
    let (from, to) = v.into_result(|| (from.unwrap_or_default(), to.unwrap_or_default()))?;
    if !caller.principal.role.is_manager() {
        return Err(GuestProfileError::PermissionDenied(
            "the contact-read report is for managers",
        ));
    }
    if !caller.can_see_property(&state.chain, &req.property_id) {
        return Err(GuestProfileError::NotFound("property"));
    }
    let mut conn = state.pool.acquire().await?;
    let readers = store::readers(&mut *conn, &req.property_id, from, to).await?;
    let accessors: Vec<String> = readers.iter().map(|r| r.accessor.clone()).collect();
    let alerts = store::alerts_for(&mut *conn, &accessors, from, to).await?;
    let ts = convert::timestamp;
    Ok(pb::ListContactReadsResponse {
        readers: readers
            .iter()
            .map(|r| pb::ContactReader {
                accessor: r.accessor.clone(),
                accessor_role: r.accessor_role.clone(),
                reads: r.reads,
                guests: r.guests,
                first_read_time: Some(ts(r.first_read_time)),
                last_read_time: Some(ts(r.last_read_time)),
            })
            .collect(),
        alerts: alerts
            .iter()
            .map(|a| pb::ContactReadAlert {
                alert_id: a.id.to_string(),
                accessor: a.accessor.clone(),
                accessor_role: a.accessor_role.clone(),
                window_start_time: Some(ts(a.window_start_time)),
                reads: a.reads,
                guests: a.guests,
                raise_time: Some(ts(a.raise_time)),
            })
            .collect(),
    })
}

//! ListStaffMentions: staff named in feedback in a scope and date range, most praise first.

use super::scope;
use crate::error::{Result, invalid};
use crate::state::{Caller, State};
use crate::store::mentions;
use guestloop_db::page::{BoundOffset, binding_of};
use guestloop_proto::metrics::v1 as pb;
use prost::Message;

pub async fn list(
    state: &State,
    caller: &Caller,
    req: pb::ListStaffMentionsRequest,
) -> Result<pb::ListStaffMentionsResponse> {
    let r = scope::resolve(state, caller, req.scope.as_ref(), "scope")?;
    let (from, to) = scope::range(req.date_range.as_ref(), "date_range", 400)?;
    let binding = binding_of(
        &[
            r.scope.encode_to_vec(),
            req.date_range.unwrap_or_default().encode_to_vec(),
        ]
        .concat(),
    );
    let p = req.page.unwrap_or_default();
    let (size, offset) =
        BoundOffset::parse(p.page_size, &p.page_token, binding).map_err(|(k, e)| invalid(k, e))?;
    let rows = mentions::list(&state.pool, &r.properties, from, to, size, offset).await?;
    let next_page_token = BoundOffset::next_token(size, offset, rows.len(), binding);
    Ok(pb::ListStaffMentionsResponse {
        staff: rows
            .into_iter()
            .map(|m| pb::StaffMentionCount {
                staff_id: m.staff_id,
                staff_name: m.staff_name,
                property_id: m.property_id,
                department: i32::from(m.department),
                praise_count: m.praise,
                complaint_count: m.complaint,
            })
            .collect(),
        next_page_token,
    })
}

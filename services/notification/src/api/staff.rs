//! ListStaff: the staff directory without personal data, for services that address staff
//! one by one (metrics' daily report goes to every manager, each in their own language).

use crate::domain::parse_role;
use crate::error::{NotificationError, Result, invalid};
use crate::state::{Caller, State};
use guestloop_proto::notification::v1::{self as pb, StaffRole};

pub async fn list(
    state: &State,
    caller: &Caller,
    req: pb::ListStaffRequest,
) -> Result<pb::ListStaffResponse> {
    if !caller.is_service() {
        return Err(NotificationError::PermissionDenied(
            "the staff directory is for service callers only",
        ));
    }
    let mut wanted = Vec::with_capacity(req.roles.len());
    for (i, r) in req.roles.iter().enumerate() {
        match StaffRole::try_from(*r) {
            Ok(role) if role != StaffRole::Unspecified => wanted.push(role),
            _ => return Err(invalid(&format!("roles[{i}]"), "is not a staff role")),
        }
    }
    if wanted.is_empty() {
        return Err(invalid("roles", "name at least one role"));
    }
    let staff = state
        .staff
        .iter()
        .filter_map(|m| {
            let roles: Vec<StaffRole> = m.roles.iter().filter_map(|r| parse_role(r)).collect();
            if !roles.iter().any(|r| wanted.contains(r)) {
                return None;
            }
            let property = state.chain.property(&m.property_id);
            let language = if m.language.is_empty() {
                property
                    .map(|p| p.default_language.clone())
                    .unwrap_or_default()
            } else {
                m.language.clone()
            };
            Some(pb::StaffMember {
                staff_id: m.staff_id.clone(),
                property_id: m.property_id.clone(),
                region_id: property.map(|p| p.region.clone()).unwrap_or_default(),
                roles: roles.into_iter().map(|r| r as i32).collect(),
                language,
            })
        })
        .collect();
    Ok(pb::ListStaffResponse { staff })
}

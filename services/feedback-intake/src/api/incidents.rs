//! Incidents: one cause (an air-conditioning failure), many cases, handled once.

use super::cases::visible_case;
use crate::case_ops::{Actor, new_event, record};
use crate::convert;
use crate::domain::submission::time;
use crate::error::{FeedbackError, Result, invalid};
use crate::state::{Caller, State};
use crate::store::incidents::{self as store, IncidentRow};
use chrono::Utc;
use guestloop_errors::FieldViolations;
use guestloop_errors::parse::{known_enum, optional_text, required_text, uuid};
use guestloop_proto::common::v1::Department;
use guestloop_proto::events::v1::{CaseLinkedToIncident, event_envelope::Payload};
use guestloop_proto::feedback::v1 as pb;
use sqlx::PgConnection;
use uuid::Uuid;

async fn visible_incident(
    state: &State,
    caller: &Caller,
    conn: &mut PgConnection,
    id: &str,
) -> Result<IncidentRow> {
    let id = uuid(id).map_err(|e| invalid("incident_id", e))?;
    let row = store::get(&mut *conn, id)
        .await?
        .ok_or(FeedbackError::NotFound("incident"))?;
    if !caller.sees(state, &row.property_id) {
        return Err(FeedbackError::NotFound("incident"));
    }
    Ok(row)
}

/// Links each case (of the incident's property) to the incident.
async fn link_cases(
    state: &State,
    caller: &Caller,
    conn: &mut PgConnection,
    incident: &IncidentRow,
    ids: &[String],
) -> Result<Vec<pb::Case>> {
    if ids.len() > 500 {
        return Err(invalid("case_ids", "at most 500 cases at once"));
    }
    let mut out = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let mut case = visible_case(state, caller, conn, id, true)
            .await
            .map_err(|e| match e {
                FeedbackError::Invalid(_) => invalid(&format!("case_ids[{i}]"), "is not a case id"),
                other => other,
            })?;
        if case.property_id != incident.property_id {
            return Err(invalid(
                &format!("case_ids[{i}]"),
                "is a case of another property",
            ));
        }
        if case.incident_id != Some(incident.id) {
            case.incident_id = Some(incident.id);
            let mut event = new_event(
                &case,
                pb::CaseEventKind::LinkedToIncident,
                &Actor::of(caller),
                Utc::now(),
            );
            event.incident_id = incident.id.to_string();
            let incident_id = incident.id.to_string();
            let (linked, _) = record(conn, case, event, None, |c| {
                Some(Payload::CaseLinkedToIncident(CaseLinkedToIncident {
                    case: Some(convert::facts(c)),
                    incident_id,
                }))
            })
            .await?;
            case = linked;
        }
        let fids = crate::store::feedback::ids_of_case(&mut *conn, case.id).await?;
        out.push(convert::case(&case, &fids));
    }
    Ok(out)
}

pub async fn create(
    state: &State,
    caller: &Caller,
    req: pb::CreateIncidentRequest,
) -> Result<pb::CreateIncidentResponse> {
    let mut v = FieldViolations::new();
    let Some(i) = req.incident else {
        return Err(invalid("incident", "is required"));
    };
    let property_id = v.check("incident.property_id", required_text(&i.property_id, 64));
    let title = v.check("incident.title", required_text(&i.title, 200));
    let description = v
        .check("incident.description", optional_text(&i.description, 4000))
        .flatten();
    let category = v.check("incident.category", known_enum::<pb::Category>(i.category));
    let department = v.check(
        "incident.department",
        known_enum::<Department>(i.department),
    );
    let start_time = time("incident.start_time", i.start_time, &mut v);
    let resolve_time = time("incident.resolve_time", i.resolve_time, &mut v);
    let key = v
        .check("idempotency_key", optional_text(&req.idempotency_key, 128))
        .flatten();
    if !v.is_empty() {
        return Err(v.into());
    }
    let property_id = property_id.expect("checked");
    state.writable_property(caller, "incident.property_id", &property_id)?;
    let mut tx = state.pool.begin().await?;
    if let Some(k) = &key
        && let Some(id) = store::by_idempotency(&mut *tx, &property_id, k).await?
    {
        let row = store::get(&mut *tx, id)
            .await?
            .ok_or(FeedbackError::NotFound("incident"))?;
        return Ok(pb::CreateIncidentResponse {
            incident: Some(convert::incident(&row)),
        });
    }
    let row = IncidentRow {
        id: Uuid::now_v7(),
        property_id,
        title: title.expect("checked"),
        description: description.unwrap_or_default(),
        category: category.map_or(0, |c| c as i16),
        department: department.map_or(0, |d| d as i16),
        start_time,
        resolve_time,
        created_by: caller.subject().to_string(),
        create_time: Utc::now(),
        case_count: 0,
    };
    let id = store::insert(&mut tx, &row, key.as_deref())
        .await?
        .ok_or_else(|| {
            FeedbackError::FailedPrecondition(
                "an incident with this idempotency key was created concurrently; retry".into(),
            )
        })?;
    link_cases(state, caller, &mut tx, &row, &req.case_ids).await?;
    let row = store::get(&mut *tx, id)
        .await?
        .ok_or(FeedbackError::NotFound("incident"))?;
    tx.commit().await?;
    Ok(pb::CreateIncidentResponse {
        incident: Some(convert::incident(&row)),
    })
}

pub async fn link(
    state: &State,
    caller: &Caller,
    req: pb::LinkCasesToIncidentRequest,
) -> Result<pb::LinkCasesToIncidentResponse> {
    if req.case_ids.is_empty() {
        return Err(invalid("case_ids", "is required"));
    }
    let mut tx = state.pool.begin().await?;
    let incident = visible_incident(state, caller, &mut tx, &req.incident_id).await?;
    let cases = link_cases(state, caller, &mut tx, &incident, &req.case_ids).await?;
    let incident = store::get(&mut *tx, incident.id)
        .await?
        .ok_or(FeedbackError::NotFound("incident"))?;
    tx.commit().await?;
    Ok(pb::LinkCasesToIncidentResponse {
        incident: Some(convert::incident(&incident)),
        cases,
    })
}

pub async fn get(
    state: &State,
    caller: &Caller,
    req: pb::GetIncidentRequest,
) -> Result<pb::GetIncidentResponse> {
    let mut conn = state.pool.acquire().await?;
    let row = visible_incident(state, caller, &mut conn, &req.incident_id).await?;
    Ok(pb::GetIncidentResponse {
        incident: Some(convert::incident(&row)),
    })
}

pub async fn list(
    state: &State,
    caller: &Caller,
    req: pb::ListIncidentsRequest,
) -> Result<pb::ListIncidentsResponse> {
    let p = req.page.unwrap_or_default();
    let page = guestloop_db::page::Page::parse(p.page_size, &p.page_token)
        .map_err(|(k, e)| invalid(k, e))?;
    let mut ids = state.scope(caller, &[], "");
    // Checked like every other id: a NUL byte reached PostgreSQL, which answered with an
    // error, and the caller got INTERNAL (R8, found by tests/tests/request_decoding.rs).
    if let Some(property) =
        optional_text(&req.property_id, 64).map_err(|e| invalid("property_id", e))?
    {
        ids = Some(match ids {
            Some(v) => v.into_iter().filter(|x| *x == property).collect(),
            None => vec![property],
        });
    }
    let rows = store::list(&state.pool, ids.as_deref(), req.open_only, page).await?;
    let next_page_token = page.next_token(&rows, |r| guestloop_db::page::Cursor {
        t: r.create_time,
        id: r.id,
    });
    Ok(pb::ListIncidentsResponse {
        incidents: rows.iter().map(convert::incident).collect(),
        next_page_token,
    })
}

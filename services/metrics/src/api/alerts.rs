//! ListAlerts: KPI alerts of the caller's scope (or a narrower one), newest raised first.

use super::scope;
use crate::alerts::{AlertRow, alert};
use crate::error::{Result, invalid};
use crate::state::{Caller, State};
use guestloop_db::page::{Cursor, Page};
use guestloop_proto::metrics::v1::{self as pb, AlertState, Kpi};
use sqlx::QueryBuilder;

pub async fn list(
    state: &State,
    caller: &Caller,
    req: pb::ListAlertsRequest,
) -> Result<pb::ListAlertsResponse> {
    let properties: Vec<String> = match &req.scope {
        Some(s) => scope::resolve(state, caller, Some(s), "scope")?.properties,
        None => match caller.principal.visible_properties(&state.chain) {
            Some(v) => v,
            None => state
                .chain
                .properties
                .iter()
                .map(|p| p.id.clone())
                .collect(),
        },
    };
    let mut states = Vec::new();
    for (i, s) in req.states.iter().enumerate() {
        match AlertState::try_from(*s) {
            Ok(AlertState::Unspecified) | Err(_) => {
                return Err(invalid(
                    &format!("states[{i}]"),
                    format!("{s} is not an alert state"),
                ));
            }
            Ok(s) => states.push(s as i16),
        }
    }
    let mut kpis = Vec::new();
    for (i, k) in req.kpis.iter().enumerate() {
        match Kpi::try_from(*k) {
            Ok(Kpi::Unspecified) | Err(_) => {
                return Err(invalid(&format!("kpis[{i}]"), format!("{k} is not a KPI")));
            }
            Ok(k) => kpis.push(k as i16),
        }
    }
    let page_req = req.page.unwrap_or_default();
    let page = Page::parse(page_req.page_size, &page_req.page_token)
        .map_err(|(f, why)| invalid(f, why))?;
    let range = req.raise_time_range.unwrap_or_default();
    let t = |x: &Option<prost_types::Timestamp>| {
        x.as_ref()
            .and_then(|x| chrono::DateTime::from_timestamp(x.seconds, x.nanos.max(0) as u32))
    };
    let mut q = QueryBuilder::new(
        "SELECT id, kpi, scope_level, scope_id, window_days, state, raise_value, raise_time,
            clear_value, clear_time, raise_message_id, clear_message_id
         FROM alerts WHERE scope_level = 1 AND scope_id = ANY(",
    );
    q.push_bind(properties).push(")");
    if !states.is_empty() {
        q.push(" AND state = ANY(").push_bind(states).push(")");
    }
    if !kpis.is_empty() {
        q.push(" AND kpi = ANY(").push_bind(kpis).push(")");
    }
    if let Some(from) = t(&range.start_time) {
        q.push(" AND raise_time >= ").push_bind(from);
    }
    if let Some(to) = t(&range.end_time) {
        q.push(" AND raise_time < ").push_bind(to);
    }
    if let Some(c) = page.after {
        q.push(" AND (raise_time, id) < (")
            .push_bind(c.t)
            .push(", ")
            .push_bind(c.id)
            .push(")");
    }
    q.push(" ORDER BY raise_time DESC, id DESC LIMIT ")
        .push_bind(page.size);
    let rows: Vec<AlertRow> = q.build_query_as().fetch_all(&state.pool).await?;
    let next_page_token = page.next_token(&rows, |r| Cursor {
        t: r.raise_time,
        id: r.id,
    });
    Ok(pb::ListAlertsResponse {
        alerts: rows.iter().map(alert).collect(),
        next_page_token,
    })
}

//! GetCaseClocks and GetStayClocks: what is due when, what fired, what is late. Case clocks
//! are rows of their own; a stay's clocks are its plan timers seen as clocks.

use super::tasks::task;
use crate::domain::{to_duration_ms, to_timestamp};
use crate::error::{Result, SchedulerError, invalid};
use crate::state::{Caller, State};
use crate::store::clocks::{self as store, ClockRow, HopRow};
use crate::store::tasks::{self as tasks_store, Filter};
use crate::store::timers::{self as timers, TimerRow};
use chrono::Utc;
use guestloop_errors::parse;
use guestloop_proto::followup::v1::{self as pb, ClockKind, ClockState, TimerPurpose};

pub fn clock(c: &ClockRow, timer_ids: Vec<String>) -> pb::Clock {
    let until = c.stop_time.unwrap_or_else(Utc::now);
    let paused_now = c
        .paused_since
        .map(|s| (until - s).num_milliseconds().max(0))
        .unwrap_or(0);
    let elapsed = (until - c.start_time).num_milliseconds() - c.paused_ms - paused_now;
    pb::Clock {
        clock_id: c.id.to_string(),
        kind: i32::from(c.kind),
        state: i32::from(c.state),
        property_id: c.property_id.clone(),
        case_id: c.case_id.clone(),
        escalation_tier: i32::from(c.tier),
        urgency: i32::from(c.urgency),
        start_time: Some(to_timestamp(c.start_time)),
        due_time: Some(to_timestamp(c.due_time)),
        target_duration: Some(to_duration_ms(c.target_ms)),
        warn_time: c.warn_time.map(to_timestamp),
        warned: c.warned,
        stop_time: c.stop_time.map(to_timestamp),
        breach_time: c.breach_time.map(to_timestamp),
        paused_duration: Some(to_duration_ms(c.paused_ms + paused_now)),
        elapsed_duration: Some(to_duration_ms(elapsed.max(0))),
        timer_ids,
        ..Default::default()
    }
}

fn hop(h: &HopRow) -> pb::EscalationHop {
    pb::EscalationHop {
        case_id: h.case_id.clone(),
        from_tier: i32::from(h.from_tier),
        to_tier: i32::from(h.to_tier),
        clock_id: h.clock_id.to_string(),
        hop_time: Some(to_timestamp(h.hop_time)),
        idempotency_key: h.idempotency_key.clone(),
        confirmed: h.confirmed,
        message_id: h.message_id.clone(),
    }
}

/// A plan timer as the stay clock it stands for.
pub fn stay_clock(t: &TimerRow) -> Option<pb::Clock> {
    let kind = match TimerPurpose::try_from(i32::from(t.purpose)).ok()? {
        TimerPurpose::SatisfactionContact => ClockKind::SatisfactionContact,
        TimerPurpose::SurveyReminder => ClockKind::SurveyReminder,
        TimerPurpose::PostStayFollowUp => ClockKind::PostStayFollowUp,
        _ => return None,
    };
    let state = match t.state {
        timers::PENDING | timers::RUNNING => ClockState::Running,
        timers::FIRED => ClockState::Fired,
        timers::SKIPPED => ClockState::Skipped,
        timers::CANCELLED => ClockState::Cancelled,
        _ => ClockState::Breached,
    };
    Some(pb::Clock {
        clock_id: t.id.to_string(),
        kind: kind as i32,
        state: state as i32,
        property_id: t.property_id.clone(),
        stay_id: t.stay_id.clone(),
        guest_id: t.guest_id.clone(),
        start_time: Some(to_timestamp(t.create_time)),
        due_time: Some(to_timestamp(t.due_time)),
        stop_time: t.fire_time.map(to_timestamp),
        breach_time: (t.late || t.state == timers::FAILED)
            .then(|| to_timestamp(t.fire_time.unwrap_or(t.due_time))),
        skip_reason: if t.state == timers::FAILED {
            t.last_error.clone()
        } else {
            t.skip_reason.clone()
        },
        timer_ids: vec![t.id.to_string()],
        message_id: t.message_id.clone(),
        ..Default::default()
    })
}

fn id(field: &str, value: &str) -> Result<String> {
    parse::required_text(value, 100).map_err(|e| invalid(field, e))
}

pub async fn case_clocks(
    state: &State,
    caller: &Caller,
    req: pb::GetCaseClocksRequest,
) -> Result<pb::GetCaseClocksResponse> {
    let case_id = id("case_id", &req.case_id)?;
    let Some(case) = store::case(&state.pool, &case_id).await? else {
        return Err(SchedulerError::NotFound("case"));
    };
    if !caller.sees(state, &case.property_id) {
        return Err(SchedulerError::NotFound("case"));
    }
    let rows = store::of_case(&state.pool, &case_id).await?;
    let filter = timers::Filter {
        case_id: Some(case_id.clone()),
        ..Default::default()
    };
    let case_timers = timers::list(&state.pool, &filter, None, 500).await?;
    let clocks = rows
        .iter()
        .map(|c| {
            let ids = case_timers
                .iter()
                .filter(|t| t.clock_id == Some(c.id))
                .map(|t| t.id.to_string())
                .collect();
            clock(c, ids)
        })
        .collect();
    let hops = store::hops(&state.pool, &case_id).await?;
    let tasks = tasks_store::list(
        &state.pool,
        &Filter {
            case_id: Some(case_id),
            // Only the case's own property's tasks, whatever case id others wrote on theirs.
            property_id: Some(case.property_id.clone()),
            visible: caller.visible.clone(),
            ..Default::default()
        },
        None,
        500,
    )
    .await?;
    Ok(pb::GetCaseClocksResponse {
        clocks,
        hops: hops.iter().map(hop).collect(),
        tasks: tasks.iter().map(task).collect(),
    })
}

pub async fn stay_clocks(
    state: &State,
    caller: &Caller,
    req: pb::GetStayClocksRequest,
) -> Result<pb::GetStayClocksResponse> {
    let stay_id = id("stay_id", &req.stay_id)?;
    let filter = timers::Filter {
        stay_id: Some(stay_id.clone()),
        visible: caller.visible.clone(),
        ..Default::default()
    };
    let rows = timers::list(&state.pool, &filter, None, 100).await?;
    let tasks = tasks_store::list(
        &state.pool,
        &Filter {
            stay_id: Some(stay_id),
            visible: caller.visible.clone(),
            ..Default::default()
        },
        None,
        500,
    )
    .await?;
    if rows.is_empty() && tasks.is_empty() {
        return Err(SchedulerError::NotFound("stay"));
    }
    Ok(pb::GetStayClocksResponse {
        clocks: rows.iter().filter_map(stay_clock).collect(),
        tasks: tasks.iter().map(task).collect(),
    })
}

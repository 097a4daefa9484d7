//! ScheduleTimer, CancelTimer, GetTimer and ListTimers. A timer outside the caller's scope
//! answers NOT_FOUND, as does scheduling one for a property outside it.

use crate::domain::{self, timestamp, to_duration_ms, to_timestamp};
use crate::error::{Result, SchedulerError, invalid};
use crate::state::{Caller, State};
use crate::store::timers::{self as store, Filter, TimerRow, Upsert};
use guestloop_db::page::{Cursor, Page};
use guestloop_errors::{FieldViolations, parse};
use guestloop_proto::followup::v1::{self as pb, ScheduleOutcome, TimerPurpose, TimerState};
use prost::Message;

pub fn timer(r: &TimerRow) -> pb::Timer {
    let lateness = r.fire_time.map(|f| (f - r.due_time).num_milliseconds());
    pb::Timer {
        timer_id: r.id.to_string(),
        key: r.key.clone(),
        purpose: i32::from(r.purpose),
        property_id: r.property_id.clone(),
        guest_id: r.guest_id.clone(),
        stay_id: r.stay_id.clone(),
        case_id: r.case_id.clone(),
        due_time: Some(to_timestamp(r.due_time)),
        late_policy: i32::from(r.late_policy),
        late_threshold: Some(to_duration_ms(r.late_threshold_ms)),
        action: r
            .action
            .as_deref()
            .map(|a| pb::TimerAction::decode(a).unwrap_or_default()),
        state: i32::from(r.state),
        generation: r.generation,
        fire_time: r.fire_time.map(to_timestamp),
        lateness: lateness.map(to_duration_ms),
        late: r.late,
        skip_reason: r.skip_reason.clone(),
        attempt_count: r.attempt_count,
        last_error: r.last_error.clone(),
        message_id: r.message_id.clone(),
        task_id: String::new(),
        create_time: Some(to_timestamp(r.create_time)),
        update_time: Some(to_timestamp(r.update_time)),
    }
}

pub async fn schedule(
    state: &State,
    caller: &Caller,
    req: pb::ScheduleTimerRequest,
) -> Result<pb::ScheduleTimerResponse> {
    let new = domain::parse_schedule(
        req,
        &state.chain,
        state.timers.default_late_threshold.as_duration(),
    )?;
    if !caller.sees(state, &new.property_id) {
        return Err(SchedulerError::NotFound("property"));
    }
    tracing::Span::current().record("property_id", new.property_id.as_str());
    let mut tx = state.pool.begin().await?;
    let (row, outcome) = match store::upsert(&mut tx, &new, false).await? {
        Upsert::Created(row) => (row, ScheduleOutcome::Created),
        Upsert::Replaced(row) => (row, ScheduleOutcome::Replaced),
        Upsert::Unchanged(row) => (row, ScheduleOutcome::Unchanged),
        Upsert::Done(row) => (row, ScheduleOutcome::AlreadyDone),
        Upsert::Running => {
            return Err(SchedulerError::FailedPrecondition(
                "the timer is firing and can no longer be replaced".into(),
            ));
        }
        Upsert::OtherProperty(existing) if !caller.sees(state, &existing.property_id) => {
            // The key belongs to another property's timer: reveal nothing about it.
            return Err(invalid("timer.key", "is already used by another timer"));
        }
        Upsert::OtherProperty(_) => {
            return Err(invalid(
                "timer.property_id",
                "differs from the property of the timer with this key",
            ));
        }
    };
    tx.commit().await?;
    Ok(pb::ScheduleTimerResponse {
        timer: Some(timer(&row)),
        outcome: outcome as i32,
    })
}

/// The timer named by id or key, if the caller sees it.
async fn find(state: &State, caller: &Caller, id: &str, key: &str) -> Result<TimerRow> {
    let row = match (id.trim().is_empty(), key.trim().is_empty()) {
        (false, _) => {
            let id = parse::uuid(id).map_err(|e| invalid("timer_id", e))?;
            store::by_id(&state.pool, id).await?
        }
        (true, false) => {
            // Checked like CancelTimer's key: a NUL byte reached PostgreSQL and the caller
            // got INTERNAL (R8, found by tests/tests/request_decoding.rs).
            let key = parse::required_text(key, domain::MAX_KEY).map_err(|e| invalid("key", e))?;
            store::by_key(&state.pool, &key).await?
        }
        (true, true) => return Err(invalid("key", "one of key or timer_id is required")),
    };
    match row {
        Some(r) if caller.sees(state, &r.property_id) => Ok(r),
        _ => Err(SchedulerError::NotFound("timer")),
    }
}

pub async fn get(
    state: &State,
    caller: &Caller,
    req: pb::GetTimerRequest,
) -> Result<pb::GetTimerResponse> {
    let row = find(state, caller, &req.timer_id, &req.key).await?;
    Ok(pb::GetTimerResponse {
        timer: Some(timer(&row)),
    })
}

pub async fn cancel(
    state: &State,
    caller: &Caller,
    req: pb::CancelTimerRequest,
) -> Result<pb::CancelTimerResponse> {
    let mut v = FieldViolations::new();
    let key = v.check("key", parse::required_text(&req.key, domain::MAX_KEY));
    v.check("reason", parse::optional_text(&req.reason, 500));
    let key = v.into_result(|| key.expect("checked"))?;
    let mut tx = state.pool.begin().await?;
    let Some(row) = store::lock_by_key(&mut tx, &key).await? else {
        return Ok(pb::CancelTimerResponse {
            timer: None,
            cancelled: false,
        });
    };
    if !caller.sees(state, &row.property_id) {
        // Another property's timer answers as a missing one.
        return Ok(pb::CancelTimerResponse {
            timer: None,
            cancelled: false,
        });
    }
    if row.state != store::PENDING {
        return Ok(pb::CancelTimerResponse {
            timer: Some(timer(&row)),
            cancelled: false,
        });
    }
    let row = store::cancel(&mut tx, row.id).await?;
    tx.commit().await?;
    Ok(pb::CancelTimerResponse {
        timer: Some(timer(&row)),
        cancelled: true,
    })
}

pub async fn list(
    state: &State,
    caller: &Caller,
    req: pb::ListTimersRequest,
) -> Result<pb::ListTimersResponse> {
    let mut v = FieldViolations::new();
    let mut text = |field: &str, value: &str, max: usize| -> Option<String> {
        v.check(field, parse::optional_text(value, max)).flatten()
    };
    let property_id = text("property_id", &req.property_id, 100);
    let case_id = text("case_id", &req.case_id, 100);
    let stay_id = text("stay_id", &req.stay_id, 100);
    let guest_id = text("guest_id", &req.guest_id, 100);
    let key_prefix = text("key_prefix", &req.key_prefix, domain::MAX_KEY);
    if let Some(p) = &property_id
        && state.chain.property(p).is_none()
    {
        v.add("property_id", "is not a property of the chain");
    }
    let mut states = Vec::new();
    for (i, s) in req.states.iter().enumerate() {
        match TimerState::try_from(*s) {
            Ok(TimerState::Unspecified) | Err(_) => {
                v.add(format!("states[{i}]"), format!("{s} is not a timer state"))
            }
            Ok(st) => states.push(st as i16),
        }
    }
    let mut purposes = Vec::new();
    for (i, p) in req.purposes.iter().enumerate() {
        match TimerPurpose::try_from(*p) {
            Ok(TimerPurpose::Unspecified) | Err(_) => v.add(
                format!("purposes[{i}]"),
                format!("{p} is not a timer purpose"),
            ),
            Ok(pu) => purposes.push(pu as i16),
        }
    }
    let range = req.due_time_range.unwrap_or_default();
    let due_from = range
        .start_time
        .as_ref()
        .and_then(|t| v.check("due_time_range.start_time", timestamp(t)));
    let due_until = range
        .end_time
        .as_ref()
        .and_then(|t| v.check("due_time_range.end_time", timestamp(t)));
    let page_req = req.page.unwrap_or_default();
    let page = match Page::parse(page_req.page_size, &page_req.page_token) {
        Ok(p) => Some(p),
        Err((field, why)) => {
            v.add(field, why);
            None
        }
    };
    let page = v.into_result(|| page.expect("parsed"))?;
    if let Some(p) = &property_id
        && !caller.sees(state, p)
    {
        return Err(SchedulerError::NotFound("property"));
    }
    let filter = Filter {
        property_id,
        visible: caller.visible.clone(),
        states,
        purposes,
        case_id,
        stay_id,
        guest_id,
        key_prefix,
        due_from,
        due_until,
        late_only: req.late_only,
    };
    let rows = store::list(&state.pool, &filter, page.after, page.size).await?;
    let next_page_token = page.next_token(&rows, |r| Cursor {
        t: r.due_time,
        id: r.id,
    });
    Ok(pb::ListTimersResponse {
        timers: rows.iter().map(timer).collect(),
        next_page_token,
    })
}

//! CreateTask, GetTask, AssignTask, CompleteTask, CancelTask and ListTasks. A task outside
//! the caller's scope answers NOT_FOUND; moves its status does not allow answer
//! FAILED_PRECONDITION.

use crate::domain::{timestamp, to_timestamp};
use crate::error::{Result, SchedulerError, invalid};
use crate::state::{Caller, State};
use crate::store::tasks::{self as store, Filter, TaskRow};
use crate::tasks::{self, Completion};
use chrono::Utc;
use guestloop_db::page::{Cursor, Page};
use guestloop_errors::{FieldViolations, parse};
use guestloop_proto::common::v1::{ContactChannel, Department, Urgency};
use guestloop_proto::followup::v1::{self as pb, TaskKind, TaskOutcome, TaskStatus};

pub fn task(t: &TaskRow) -> pb::FollowUpTask {
    pb::FollowUpTask {
        task_id: t.id.to_string(),
        kind: i32::from(t.kind),
        property_id: t.property_id.clone(),
        guest_id: t.guest_id.clone(),
        stay_id: t.stay_id.clone(),
        case_id: t.case_id.clone(),
        title: t.title.clone(),
        instructions: t.instructions.clone(),
        department: i32::from(t.department),
        assignee_id: t.assignee_id.clone(),
        urgency: i32::from(t.urgency),
        due_time: Some(to_timestamp(t.due_time)),
        status: i32::from(t.status),
        outcome: i32::from(t.outcome),
        outcome_note: t.outcome_note.clone(),
        contact_channel: i32::from(t.contact_channel),
        complete_time: t.complete_time.map(to_timestamp),
        completed_by: t.completed_by.clone(),
        miss_time: t.miss_time.map(to_timestamp),
        late: t.late,
        timer_id: t.timer_id.map(|i| i.to_string()).unwrap_or_default(),
        created_by: t.created_by.clone(),
        create_time: Some(to_timestamp(t.create_time)),
        update_time: Some(to_timestamp(t.update_time)),
    }
}

/// A known, specified value of enum `E`, or a violation naming `field`.
fn known<E: TryFrom<i32> + Into<i32> + Copy>(
    v: &mut FieldViolations,
    field: &str,
    value: i32,
    required: bool,
) -> Option<E> {
    match E::try_from(value) {
        Ok(_) if value == 0 && required => {
            v.add(field, "is required");
            None
        }
        Ok(e) => Some(e),
        Err(_) => {
            v.add(field, format!("{value} is not a known value"));
            None
        }
    }
}

pub async fn create(
    state: &State,
    caller: &Caller,
    req: pb::CreateTaskRequest,
) -> Result<pb::CreateTaskResponse> {
    let Some(t) = req.task else {
        return Err(invalid("task", "is required"));
    };
    let mut v = FieldViolations::new();
    let key = v
        .check(
            "idempotency_key",
            parse::optional_text(&req.idempotency_key, 200),
        )
        .flatten();
    let property_id = v.check(
        "task.property_id",
        parse::required_text(&t.property_id, 100),
    );
    if let Some(p) = &property_id
        && state.chain.property(p).is_none()
    {
        v.add("task.property_id", "is not a property of the chain");
    }
    let title = v.check("task.title", parse::required_text(&t.title, 200));
    let instructions = v
        .check(
            "task.instructions",
            parse::optional_text(&t.instructions, 2000),
        )
        .flatten();
    let mut id = |field: &str, value: &str| {
        v.check(field, parse::optional_text(value, 100))
            .flatten()
            .unwrap_or_default()
    };
    let guest_id = id("task.guest_id", &t.guest_id);
    let stay_id = id("task.stay_id", &t.stay_id);
    let case_id = id("task.case_id", &t.case_id);
    let assignee_id = id("task.assignee_id", &t.assignee_id);
    let kind = known::<TaskKind>(&mut v, "task.kind", t.kind, true);
    let department = known::<Department>(&mut v, "task.department", t.department, false);
    let urgency = known::<Urgency>(&mut v, "task.urgency", t.urgency, false);
    let due_time = match &t.due_time {
        None => {
            v.add("task.due_time", "is required");
            None
        }
        Some(ts) => v
            .check("task.due_time", timestamp(ts))
            .map(crate::domain::micros),
    };
    v.into_result(|| ())?;
    let property_id = property_id.expect("checked");
    if !caller.sees(state, &property_id) {
        return Err(SchedulerError::NotFound("property"));
    }
    // A task about a case belongs to the case's property (a case not seen yet is taken on
    // trust: its events may still be on their way).
    if !case_id.is_empty()
        && crate::store::clocks::case(&state.pool, &case_id)
            .await?
            .is_some_and(|c| c.property_id != property_id)
    {
        return Err(SchedulerError::NotFound("case"));
    }
    let now = Utc::now();
    let row = TaskRow {
        kind: kind.expect("checked") as i16,
        property_id,
        guest_id,
        stay_id,
        case_id,
        title: title.expect("checked"),
        instructions: instructions.unwrap_or_default(),
        department: department.map(|d| d as i16).unwrap_or(0),
        assignee_id,
        urgency: urgency.map(|u| u as i16).unwrap_or(0),
        due_time: due_time.expect("checked"),
        ..TaskRow::open(caller.principal.subject.clone(), now)
    };
    let key = key.map(|k| format!("api:{}:{k}", row.property_id));
    let mut tx = state.pool.begin().await?;
    let (row, created) = tasks::create(&mut tx, state, &row, key.as_deref()).await?;
    tx.commit().await?;
    Ok(pb::CreateTaskResponse {
        task: Some(task(&row)),
        created,
    })
}

async fn find(state: &State, caller: &Caller, id: &str) -> Result<TaskRow> {
    let id = parse::uuid(id).map_err(|e| invalid("task_id", e))?;
    match store::get(&state.pool, id).await? {
        Some(t) if caller.sees(state, &t.property_id) => Ok(t),
        _ => Err(SchedulerError::NotFound("task")),
    }
}

/// The task locked for a change, if the caller sees it.
async fn lock(
    conn: &mut sqlx::PgConnection,
    state: &State,
    caller: &Caller,
    id: &str,
) -> Result<TaskRow> {
    let id = parse::uuid(id).map_err(|e| invalid("task_id", e))?;
    match store::lock(conn, id).await? {
        Some(t) if caller.sees(state, &t.property_id) => Ok(t),
        _ => Err(SchedulerError::NotFound("task")),
    }
}

pub async fn get(
    state: &State,
    caller: &Caller,
    req: pb::GetTaskRequest,
) -> Result<pb::GetTaskResponse> {
    let t = find(state, caller, &req.task_id).await?;
    Ok(pb::GetTaskResponse {
        task: Some(task(&t)),
    })
}

pub async fn assign(
    state: &State,
    caller: &Caller,
    req: pb::AssignTaskRequest,
) -> Result<pb::AssignTaskResponse> {
    let mut v = FieldViolations::new();
    let assignee = v
        .check("assignee_id", parse::optional_text(&req.assignee_id, 100))
        .flatten()
        .unwrap_or_default();
    let department = known::<Department>(&mut v, "department", req.department, false);
    v.into_result(|| ())?;
    let mut tx = state.pool.begin().await?;
    let t = lock(&mut tx, state, caller, &req.task_id).await?;
    if !matches!(t.status, store::OPEN | store::MISSED) {
        return Err(SchedulerError::FailedPrecondition(
            "only an open or missed task can be assigned".into(),
        ));
    }
    let department = department
        .filter(|d| *d != Department::Unspecified)
        .map(|d| d as i16);
    let t = tasks::assign(&mut tx, t, assignee, department).await?;
    tx.commit().await?;
    Ok(pb::AssignTaskResponse {
        task: Some(task(&t)),
    })
}

pub async fn complete(
    state: &State,
    caller: &Caller,
    req: pb::CompleteTaskRequest,
) -> Result<pb::CompleteTaskResponse> {
    let mut v = FieldViolations::new();
    let outcome = known::<TaskOutcome>(&mut v, "outcome", req.outcome, true);
    let channel = known::<ContactChannel>(&mut v, "contact_channel", req.contact_channel, false);
    let note = v
        .check(
            "outcome_note",
            parse::optional_text(&req.outcome_note, 2000),
        )
        .flatten()
        .unwrap_or_default();
    let now = Utc::now();
    let time = match &req.complete_time {
        None => Some(now),
        Some(ts) => match timestamp(ts) {
            Ok(t) if t > now + chrono::Duration::seconds(5) => {
                v.add("complete_time", "must not be in the future");
                None
            }
            Ok(t) => Some(crate::domain::micros(t)),
            Err(e) => {
                v.add("complete_time", e);
                None
            }
        },
    };
    v.into_result(|| ())?;
    let outcome = outcome.expect("checked") as i16;
    let mut tx = state.pool.begin().await?;
    let t = lock(&mut tx, state, caller, &req.task_id).await?;
    let t = match t.status {
        store::COMPLETED if t.outcome == outcome => t,
        store::COMPLETED => {
            return Err(SchedulerError::FailedPrecondition(
                "the task was completed with another outcome".into(),
            ));
        }
        store::CANCELLED => {
            return Err(SchedulerError::FailedPrecondition(
                "the task was cancelled".into(),
            ));
        }
        _ => {
            let c = Completion {
                outcome,
                note,
                channel: channel.map(|c| c as i16).unwrap_or(0),
                time: time.expect("checked"),
                by: caller.principal.subject.clone(),
            };
            tasks::complete(&mut tx, t, c).await?
        }
    };
    tx.commit().await?;
    Ok(pb::CompleteTaskResponse {
        task: Some(task(&t)),
    })
}

pub async fn cancel(
    state: &State,
    caller: &Caller,
    req: pb::CancelTaskRequest,
) -> Result<pb::CancelTaskResponse> {
    let reason = parse::optional_text(&req.reason, 500)
        .map_err(|e| invalid("reason", e))?
        .unwrap_or_default();
    let mut tx = state.pool.begin().await?;
    let t = lock(&mut tx, state, caller, &req.task_id).await?;
    let t = match t.status {
        store::CANCELLED => t,
        store::OPEN | store::MISSED => tasks::cancel(&mut tx, t, reason).await?,
        _ => {
            return Err(SchedulerError::FailedPrecondition(
                "a completed task cannot be cancelled".into(),
            ));
        }
    };
    tx.commit().await?;
    Ok(pb::CancelTaskResponse {
        task: Some(task(&t)),
    })
}

pub async fn list(
    state: &State,
    caller: &Caller,
    req: pb::ListTasksRequest,
) -> Result<pb::ListTasksResponse> {
    let mut v = FieldViolations::new();
    let mut text = |field: &str, value: &str| -> Option<String> {
        v.check(field, parse::optional_text(value, 100)).flatten()
    };
    let property_id = text("property_id", &req.property_id);
    let assignee_id = text("assignee_id", &req.assignee_id);
    let case_id = text("case_id", &req.case_id);
    let stay_id = text("stay_id", &req.stay_id);
    let guest_id = text("guest_id", &req.guest_id);
    if let Some(p) = &property_id
        && state.chain.property(p).is_none()
    {
        v.add("property_id", "is not a property of the chain");
    }
    let statuses = req
        .statuses
        .iter()
        .enumerate()
        .filter_map(|(i, s)| known::<TaskStatus>(&mut v, &format!("statuses[{i}]"), *s, true))
        .map(|s| s as i16)
        .collect();
    let kinds = req
        .kinds
        .iter()
        .enumerate()
        .filter_map(|(i, k)| known::<TaskKind>(&mut v, &format!("kinds[{i}]"), *k, true))
        .map(|k| k as i16)
        .collect();
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
        assignee_id,
        statuses,
        kinds,
        case_id,
        stay_id,
        guest_id,
        due_from,
        due_until,
        overdue_only: req.overdue_only,
    };
    let rows = store::list(&state.pool, &filter, page.after, page.size).await?;
    let next_page_token = page.next_token(&rows, |r| Cursor {
        t: r.due_time,
        id: r.id,
    });
    Ok(pb::ListTasksResponse {
        tasks: rows.iter().map(task).collect(),
        next_page_token,
    })
}

//! Follow-up tasks for staff (issue 4, part 3): what creating, completing, missing and
//! cancelling one does, shared by the API and the firing worker. Each change is one
//! transaction with its outbox event (FollowUpTask*: metrics counts completion rates from
//! them) and a note to the deadline watches. An open task becomes MISSED through its own
//! timer (`task/<id>/due`, at due_time + tasks.miss_grace), so a missed task is noticed
//! even if nobody looks.

use crate::domain::{NewTimer, micros, to_timestamp};
use crate::state::State;
use crate::store::tasks::{self as store, TaskRow};
use crate::store::timers;
use chrono::{DateTime, Duration, Utc};
use guestloop_proto::events::v1::{self as ev, event_envelope::Payload};
use guestloop_proto::followup::v1::{LatePolicy, TimerPurpose};
use sqlx::PgConnection;

pub const SOURCE: &str = crate::SERVICE_NAME;

fn due_key(t: &TaskRow) -> String {
    format!("task/{}/due", t.id)
}

async fn emit(conn: &mut PgConnection, t: &TaskRow, payload: Payload) -> Result<(), sqlx::Error> {
    guestloop_outbox::enqueue(
        conn,
        SOURCE,
        guestloop_outbox::NewEvent {
            aggregate_type: "task",
            aggregate_id: t.id.to_string(),
            property_id: t.property_id.clone(),
            payload,
        },
    )
    .await?;
    crate::store::deadline_changed(conn, &t.property_id, "task", t.id).await
}

/// Creates the task (or answers with the one created under the same key) and arms its
/// due timer. `true` when this call created it.
pub async fn create(
    conn: &mut PgConnection,
    state: &State,
    task: &TaskRow,
    key: Option<&str>,
) -> Result<(TaskRow, bool), sqlx::Error> {
    let Some(row) = store::insert(conn, task, key).await? else {
        let existing = store::by_key(&mut *conn, key.unwrap_or_default())
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        return Ok((existing, false));
    };
    let grace = Duration::from_std(state.tasks.miss_grace.as_duration()).unwrap_or_default();
    timers::upsert(
        conn,
        &NewTimer {
            key: due_key(&row),
            purpose: TimerPurpose::TaskDue,
            property_id: row.property_id.clone(),
            guest_id: row.guest_id.clone(),
            stay_id: row.stay_id.clone(),
            case_id: row.case_id.clone(),
            due_time: micros(row.due_time + grace),
            // Marking a task missed late is still right.
            late_policy: LatePolicy::Fire,
            late_threshold_ms: state
                .timers
                .default_late_threshold
                .as_duration()
                .as_millis() as i64,
            action: None,
            clock_id: None,
            task_id: Some(row.id),
        },
        false,
    )
    .await?;
    metrics::counter!("scheduler_tasks_created_total").increment(1);
    emit(
        conn,
        &row,
        Payload::FollowUpTaskCreated(ev::FollowUpTaskCreated {
            task_id: row.id.to_string(),
            kind: i32::from(row.kind),
            property_id: row.property_id.clone(),
            guest_id: row.guest_id.clone(),
            stay_id: row.stay_id.clone(),
            case_id: row.case_id.clone(),
            department: i32::from(row.department),
            urgency: i32::from(row.urgency),
            due_time: Some(to_timestamp(row.due_time)),
            create_time: Some(to_timestamp(row.create_time)),
        }),
    )
    .await?;
    Ok((row, true))
}

pub struct Completion {
    pub outcome: i16,
    pub note: String,
    pub channel: i16,
    pub time: DateTime<Utc>,
    pub by: String,
}

/// Completes an open or missed task (a missed one completes late).
pub async fn complete(
    conn: &mut PgConnection,
    mut t: TaskRow,
    c: Completion,
) -> Result<TaskRow, sqlx::Error> {
    t.status = store::COMPLETED;
    t.outcome = c.outcome;
    t.outcome_note = c.note;
    t.contact_channel = c.channel;
    t.complete_time = Some(c.time);
    t.completed_by = c.by;
    t.late = c.time > t.due_time;
    let t = store::save(conn, &t).await?;
    timers::cancel_key(conn, &due_key(&t)).await?;
    metrics::counter!("scheduler_tasks_completed_total").increment(1);
    emit(
        conn,
        &t,
        Payload::FollowUpTaskCompleted(ev::FollowUpTaskCompleted {
            task_id: t.id.to_string(),
            kind: i32::from(t.kind),
            property_id: t.property_id.clone(),
            guest_id: t.guest_id.clone(),
            stay_id: t.stay_id.clone(),
            case_id: t.case_id.clone(),
            due_time: Some(to_timestamp(t.due_time)),
            complete_time: Some(to_timestamp(c.time)),
            outcome: i32::from(t.outcome),
            late: t.late,
            contact_channel: i32::from(t.contact_channel),
        }),
    )
    .await?;
    Ok(t)
}

/// An open task past its due time and grace: MISSED. Anything else is left alone.
pub async fn miss(
    conn: &mut PgConnection,
    task_id: uuid::Uuid,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let Some(mut t) = store::lock(conn, task_id).await? else {
        return Ok(());
    };
    if t.status != store::OPEN {
        return Ok(());
    }
    t.status = store::MISSED;
    t.miss_time = Some(now);
    let t = store::save(conn, &t).await?;
    metrics::counter!("scheduler_tasks_missed_total").increment(1);
    emit(
        conn,
        &t,
        Payload::FollowUpTaskMissed(ev::FollowUpTaskMissed {
            task_id: t.id.to_string(),
            kind: i32::from(t.kind),
            property_id: t.property_id.clone(),
            guest_id: t.guest_id.clone(),
            stay_id: t.stay_id.clone(),
            case_id: t.case_id.clone(),
            due_time: Some(to_timestamp(t.due_time)),
            miss_time: Some(to_timestamp(now)),
        }),
    )
    .await
}

pub async fn cancel(
    conn: &mut PgConnection,
    mut t: TaskRow,
    reason: String,
) -> Result<TaskRow, sqlx::Error> {
    t.status = store::CANCELLED;
    let t = store::save(conn, &t).await?;
    timers::cancel_key(conn, &due_key(&t)).await?;
    emit(
        conn,
        &t,
        Payload::FollowUpTaskCancelled(ev::FollowUpTaskCancelled {
            task_id: t.id.to_string(),
            kind: i32::from(t.kind),
            property_id: t.property_id.clone(),
            due_time: Some(to_timestamp(t.due_time)),
            cancel_time: Some(to_timestamp(Utc::now())),
            reason,
        }),
    )
    .await?;
    Ok(t)
}

/// An erased guest (GuestErased): their open tasks are cancelled with reason
/// `guest_erased` (the watches and metrics hear of it, as of any cancellation), and the
/// words staff wrote about them on every task are replaced. The tasks themselves stay, so
/// completion rates and counts do not change.
pub async fn erase_guest(conn: &mut PgConnection, guest_id: &str) -> Result<(), sqlx::Error> {
    for t in store::lock_open_of_guest(conn, guest_id).await? {
        cancel(conn, t, "guest_erased".into()).await?;
    }
    store::erase_text_of_guest(conn, guest_id).await?;
    Ok(())
}

/// Reassigned: the watches hear of it.
pub async fn assign(
    conn: &mut PgConnection,
    mut t: TaskRow,
    assignee_id: String,
    department: Option<i16>,
) -> Result<TaskRow, sqlx::Error> {
    t.assignee_id = assignee_id;
    if let Some(d) = department {
        t.department = d;
    }
    let t = store::save(conn, &t).await?;
    crate::store::deadline_changed(conn, &t.property_id, "task", t.id).await?;
    Ok(t)
}

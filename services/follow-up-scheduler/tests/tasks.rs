//! Follow-up tasks over real gRPC and a real PostgreSQL: create (idempotent, with its outbox
//! event), validation, property scope, completion (late or not, idempotent per outcome),
//! MISSED through the task's own timer, assignment, cancellation, and CreateTask timers
//! fired by racing replicas making exactly one task each.

mod common;

use chrono::{DateTime, Utc};
use common::*;
use guestloop_proto::events::v1::{EventEnvelope, event_envelope::Payload};
use guestloop_proto::followup::v1 as pb;
use guestloop_testkit::grpc::{assert_code, assert_invalid};
use guestloop_testkit::keys;
use pb::{TaskOutcome, TaskStatus, TimerState as S};
use prost::Message;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tonic::Code;

const WAIT: Duration = Duration::from_secs(15);

fn to_utc(t: Option<prost_types::Timestamp>) -> DateTime<Utc> {
    let t = t.expect("timestamp");
    DateTime::from_timestamp(t.seconds, t.nanos as u32).expect("valid timestamp")
}

fn new_task(property: &str, due: DateTime<Utc>) -> pb::FollowUpTask {
    pb::FollowUpTask {
        kind: pb::TaskKind::ComplaintCallback as i32,
        property_id: property.into(),
        title: format!("Call guest back #{}", next()),
        guest_id: format!("guest-{}", next()),
        due_time: Some(ts(due)),
        ..Default::default()
    }
}

async fn create(
    client: &mut guestloop_client::FollowUpClient,
    task: pb::FollowUpTask,
    key: &str,
) -> pb::CreateTaskResponse {
    client
        .create_task(pb::CreateTaskRequest {
            task: Some(task),
            idempotency_key: key.into(),
        })
        .await
        .unwrap_or_else(|s| panic!("create task: {s:?}"))
        .into_inner()
}

/// The (event_type, payload) of every outbox event about the task, oldest first.
async fn task_events(app: &TestApp, task_id: &str) -> Vec<(String, Payload)> {
    let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT event_type, envelope FROM outbox
         WHERE aggregate_type = 'task' AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(task_id)
    .fetch_all(&app.pool)
    .await
    .expect("outbox");
    rows.into_iter()
        .map(|(t, bytes)| {
            let env = EventEnvelope::decode(bytes.as_slice()).expect("envelope decodes");
            assert_eq!(env.source, "follow-up-scheduler");
            assert_eq!(env.aggregate_id, task_id);
            (t, env.payload.expect("payload"))
        })
        .collect()
}

async fn task_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM tasks")
        .fetch_one(&app.pool)
        .await
        .expect("count")
}

async fn get_task(
    client: &mut guestloop_client::FollowUpClient,
    task_id: &str,
) -> Result<pb::FollowUpTask, tonic::Status> {
    client
        .get_task(pb::GetTaskRequest {
            task_id: task_id.into(),
        })
        .await
        .map(|r| r.into_inner().task.expect("task"))
}

fn complete_req(task_id: &str, outcome: TaskOutcome) -> pb::CompleteTaskRequest {
    pb::CompleteTaskRequest {
        task_id: task_id.into(),
        outcome: outcome as i32,
        outcome_note: "spoke to the guest".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn create_task_is_idempotent_and_emits_its_event() {
    let app = TestApp::spawn(false).await;
    let mut staff = app.staff("sh-bund");
    let due = in_ms(3_600_000);
    let task = new_task("sh-bund", due);
    let first = create(&mut staff, task.clone(), "callback-1").await;
    assert!(first.created);
    let t = first.task.expect("task");
    assert_eq!(t.status, TaskStatus::Open as i32);
    assert_eq!(t.property_id, "sh-bund");
    assert_eq!(t.title, task.title);
    assert_eq!(t.created_by, "test-user");
    assert!(t.timer_id.is_empty(), "not made by a timer");
    assert_eq!(
        to_utc(t.due_time).timestamp_micros(),
        due.timestamp_micros()
    );

    // The same key again answers with the first task; nothing new is written.
    let mut retry = task.clone();
    retry.title = "a different title".into();
    let again = create(&mut staff, retry, "callback-1").await;
    assert!(!again.created);
    let a = again.task.expect("task");
    assert_eq!(a.task_id, t.task_id);
    assert_eq!(a.title, task.title);
    assert_eq!(task_count(&app).await, 1);

    // Its event, once.
    let events = task_events(&app, &t.task_id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let (event_type, payload) = &events[0];
    assert_eq!(event_type, "follow_up_task_created");
    let Payload::FollowUpTaskCreated(e) = payload else {
        panic!("expected FollowUpTaskCreated, got {payload:?}");
    };
    assert_eq!(e.task_id, t.task_id);
    assert_eq!(e.property_id, "sh-bund");
    assert_eq!(e.kind, pb::TaskKind::ComplaintCallback as i32);
    assert_eq!(e.guest_id, task.guest_id);

    // Its due timer is armed at due_time + miss_grace (1 h by default).
    let timer = app.get(&format!("task/{}/due", t.task_id)).await;
    assert_eq!(timer.state, S::Pending as i32);
    assert_eq!(timer.purpose, pb::TimerPurpose::TaskDue as i32);
    let grace = to_utc(timer.due_time) - to_utc(t.due_time);
    assert_eq!(grace, chrono::Duration::hours(1));

    // Another key makes another task.
    let other = create(&mut staff, task, "callback-2").await;
    assert!(other.created);
    assert_ne!(other.task.unwrap().task_id, t.task_id);
    assert_eq!(task_count(&app).await, 2);
}

#[tokio::test]
async fn bad_tasks_are_refused_and_nothing_is_written() {
    let app = TestApp::spawn(false).await;
    let mut staff = app.staff("sh-bund");
    let before = task_count(&app).await;
    let status = staff
        .create_task(pb::CreateTaskRequest {
            task: Some(pb::FollowUpTask::default()),
            idempotency_key: String::new(),
        })
        .await
        .expect_err("an empty task is refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let fields = violated_fields(&status);
    for field in [
        "task.kind",
        "task.title",
        "task.due_time",
        "task.property_id",
    ] {
        assert!(
            fields.iter().any(|f| f == field),
            "{field} not named: {fields:?}"
        );
    }
    // Each on its own, too.
    let good = new_task("sh-bund", in_ms(60_000));
    let mut no_title = good.clone();
    no_title.title = "   ".into();
    let mut bad_kind = good.clone();
    bad_kind.kind = 999;
    let mut unknown_property = good.clone();
    unknown_property.property_id = "nowhere".into();
    for (task, field) in [
        (no_title, "task.title"),
        (bad_kind, "task.kind"),
        (unknown_property, "task.property_id"),
    ] {
        assert_invalid(
            staff
                .create_task(pb::CreateTaskRequest {
                    task: Some(task),
                    idempotency_key: String::new(),
                })
                .await,
            field,
        );
    }
    // Outside the caller's scope: as if the property did not exist.
    assert_code(
        staff
            .create_task(pb::CreateTaskRequest {
                task: Some(new_task("hz-lake", in_ms(60_000))),
                idempotency_key: String::new(),
            })
            .await,
        Code::NotFound,
    );
    assert_eq!(task_count(&app).await, before);
    let timers: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM timers")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(timers, 0);
    let outbox: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(outbox, 0);
}

#[tokio::test]
async fn tasks_of_another_property_are_not_found() {
    let app = TestApp::spawn(false).await;
    let mut bund = app.staff("sh-bund");
    let mut lake = app.staff("hz-lake");
    let mine = create(&mut bund, new_task("sh-bund", in_ms(3_600_000)), "")
        .await
        .task
        .unwrap();
    let theirs = create(&mut lake, new_task("hz-lake", in_ms(3_600_000)), "")
        .await
        .task
        .unwrap();

    assert_code(get_task(&mut lake, &mine.task_id).await, Code::NotFound);
    assert_code(
        lake.complete_task(complete_req(&mine.task_id, TaskOutcome::GuestSatisfied))
            .await,
        Code::NotFound,
    );
    assert_code(
        lake.cancel_task(pb::CancelTaskRequest {
            task_id: mine.task_id.clone(),
            reason: String::new(),
        })
        .await,
        Code::NotFound,
    );
    assert_code(
        lake.assign_task(pb::AssignTaskRequest {
            task_id: mine.task_id.clone(),
            assignee_id: "intruder".into(),
            department: 0,
        })
        .await,
        Code::NotFound,
    );
    // Untouched by the refused calls.
    let still = get_task(&mut bund, &mine.task_id).await.unwrap();
    assert_eq!(still.status, TaskStatus::Open as i32);
    assert!(still.assignee_id.is_empty());

    let list = |mut c: guestloop_client::FollowUpClient, property: &str| {
        let property = property.to_string();
        async move {
            c.list_tasks(pb::ListTasksRequest {
                property_id: property,
                ..Default::default()
            })
            .await
            .map(|r| r.into_inner().tasks)
        }
    };
    let seen = list(app.staff("sh-bund"), "").await.unwrap();
    assert_eq!(
        seen.iter().map(|t| &t.task_id).collect::<Vec<_>>(),
        vec![&mine.task_id]
    );
    assert_code(list(app.staff("sh-bund"), "hz-lake").await, Code::NotFound);
    let all = list(app.head_office(), "").await.unwrap();
    let ids: Vec<_> = all.iter().map(|t| t.task_id.clone()).collect();
    assert!(ids.contains(&mine.task_id) && ids.contains(&theirs.task_id));
    let regional = list(app.client(&keys().regional("south")), "")
        .await
        .unwrap();
    assert!(regional.is_empty(), "{regional:?}");
}

#[tokio::test]
async fn completing_a_task_records_who_and_is_idempotent_per_outcome() {
    let app = TestApp::spawn(false).await;
    let mut staff = app.staff("sh-bund");
    let t = create(&mut staff, new_task("sh-bund", in_ms(3_600_000)), "")
        .await
        .task
        .unwrap();

    // Not in the future.
    let mut future = complete_req(&t.task_id, TaskOutcome::GuestSatisfied);
    future.complete_time = Some(ts(in_ms(3_600_000)));
    assert_invalid(staff.complete_task(future).await, "complete_time");
    assert_invalid(
        staff
            .complete_task(complete_req(&t.task_id, TaskOutcome::Unspecified))
            .await,
        "outcome",
    );
    assert_eq!(
        get_task(&mut staff, &t.task_id).await.unwrap().status,
        TaskStatus::Open as i32
    );

    let done = staff
        .complete_task(complete_req(&t.task_id, TaskOutcome::GuestSatisfied))
        .await
        .expect("complete")
        .into_inner()
        .task
        .unwrap();
    assert_eq!(done.status, TaskStatus::Completed as i32);
    assert_eq!(done.outcome, TaskOutcome::GuestSatisfied as i32);
    assert_eq!(done.outcome_note, "spoke to the guest");
    assert_eq!(done.completed_by, "test-user");
    assert!(!done.late, "completed before its due time");
    assert!(done.complete_time.is_some());
    // Its due timer is no longer needed.
    let timer = app.get(&format!("task/{}/due", t.task_id)).await;
    assert_eq!(timer.state, S::Cancelled as i32);

    // The same completion again answers with the task, unchanged.
    let again = staff
        .complete_task(complete_req(&t.task_id, TaskOutcome::GuestSatisfied))
        .await
        .expect("complete again")
        .into_inner()
        .task
        .unwrap();
    assert_eq!(again.status, TaskStatus::Completed as i32);
    assert_eq!(again.complete_time, done.complete_time);
    // Another outcome contradicts it.
    assert_code(
        staff
            .complete_task(complete_req(&t.task_id, TaskOutcome::GuestUnreachable))
            .await,
        Code::FailedPrecondition,
    );
    // A completed task is not cancelled or reassigned.
    assert_code(
        staff
            .cancel_task(pb::CancelTaskRequest {
                task_id: t.task_id.clone(),
                reason: String::new(),
            })
            .await,
        Code::FailedPrecondition,
    );
    let events: Vec<String> = task_events(&app, &t.task_id)
        .await
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(
        events,
        ["follow_up_task_created", "follow_up_task_completed"],
        "one completion event"
    );
}

#[tokio::test]
async fn an_open_task_past_its_grace_is_missed_and_may_still_be_completed_late() {
    let mut app = TestApp::spawn(false).await;
    app.start(true, "[tasks]\nmiss_grace = \"1s\"\n").await;
    app.stop(0).await;
    let mut staff = app.staff("hk-harbour");
    let due = in_ms(1_000);
    let t = create(&mut staff, new_task("hk-harbour", due), "")
        .await
        .task
        .unwrap();
    let started = Instant::now();
    let missed = loop {
        let now = get_task(&mut staff, &t.task_id).await.unwrap();
        if now.status != TaskStatus::Open as i32 {
            break now;
        }
        assert!(started.elapsed() < WAIT, "never missed: {now:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("missed after {:?}", started.elapsed());
    assert_eq!(missed.status, TaskStatus::Missed as i32);
    let miss_time = to_utc(missed.miss_time);
    assert!(
        miss_time >= due + chrono::Duration::milliseconds(999),
        "not before due + grace: {miss_time} vs {due}"
    );
    let timer = app.get(&format!("task/{}/due", t.task_id)).await;
    assert_eq!(timer.state, S::Fired as i32);
    assert_eq!(app.firings(&timer.timer_id).await, 1);
    let events = task_events(&app, &t.task_id).await;
    let missed_events: Vec<_> = events
        .iter()
        .filter_map(|(ty, p)| match p {
            Payload::FollowUpTaskMissed(m) => Some((ty, m)),
            _ => None,
        })
        .collect();
    assert_eq!(missed_events.len(), 1, "{events:?}");
    assert_eq!(missed_events[0].0, "follow_up_task_missed");
    assert_eq!(missed_events[0].1.task_id, t.task_id);
    assert_eq!(
        missed_events[0].1.miss_time.map(|t| t.seconds),
        missed.miss_time.map(|t| t.seconds)
    );

    // A missed task can still be done: late.
    let done = staff
        .complete_task(complete_req(&t.task_id, TaskOutcome::IssueResolved))
        .await
        .expect("complete a missed task")
        .into_inner()
        .task
        .unwrap();
    assert_eq!(done.status, TaskStatus::Completed as i32);
    assert!(done.late);
    assert_eq!(done.miss_time, missed.miss_time, "the miss is remembered");
    let completed = task_events(&app, &t.task_id)
        .await
        .into_iter()
        .find_map(|(_, p)| match p {
            Payload::FollowUpTaskCompleted(c) => Some(c),
            _ => None,
        })
        .expect("completion event");
    assert!(completed.late);
}

#[tokio::test]
async fn assigning_and_cancelling_a_task() {
    let app = TestApp::spawn(false).await;
    let mut staff = app.staff("sz-bay");
    let t = create(&mut staff, new_task("sz-bay", in_ms(3_600_000)), "")
        .await
        .task
        .unwrap();
    let assigned = staff
        .assign_task(pb::AssignTaskRequest {
            task_id: t.task_id.clone(),
            assignee_id: "staff-42".into(),
            department: 0,
        })
        .await
        .expect("assign")
        .into_inner()
        .task
        .unwrap();
    assert_eq!(assigned.assignee_id, "staff-42");
    assert_eq!(assigned.status, TaskStatus::Open as i32);
    assert_eq!(
        get_task(&mut staff, &t.task_id).await.unwrap().assignee_id,
        "staff-42"
    );
    let by_assignee = staff
        .list_tasks(pb::ListTasksRequest {
            assignee_id: "staff-42".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .tasks;
    assert_eq!(by_assignee.len(), 1);

    let cancelled = staff
        .cancel_task(pb::CancelTaskRequest {
            task_id: t.task_id.clone(),
            reason: "guest asked not to be called".into(),
        })
        .await
        .expect("cancel")
        .into_inner()
        .task
        .unwrap();
    assert_eq!(cancelled.status, TaskStatus::Cancelled as i32);
    let timer = app.get(&format!("task/{}/due", t.task_id)).await;
    assert_eq!(timer.state, S::Cancelled as i32);
    // Cancelling again answers the task; completing or assigning it is refused.
    let again = staff
        .cancel_task(pb::CancelTaskRequest {
            task_id: t.task_id.clone(),
            reason: String::new(),
        })
        .await
        .expect("cancel again")
        .into_inner()
        .task
        .unwrap();
    assert_eq!(again.status, TaskStatus::Cancelled as i32);
    assert_code(
        staff
            .complete_task(complete_req(&t.task_id, TaskOutcome::GuestSatisfied))
            .await,
        Code::FailedPrecondition,
    );
    assert_code(
        staff
            .assign_task(pb::AssignTaskRequest {
                task_id: t.task_id.clone(),
                assignee_id: "staff-7".into(),
                department: 0,
            })
            .await,
        Code::FailedPrecondition,
    );
    let events: Vec<String> = task_events(&app, &t.task_id)
        .await
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(
        events,
        ["follow_up_task_created", "follow_up_task_cancelled"]
    );
}

fn create_task_timer(k: &str, property: &str, due: DateTime<Utc>) -> pb::Timer {
    let mut t = timer(k, property, due);
    t.action = Some(pb::TimerAction {
        action: Some(pb::timer_action::Action::CreateTask(pb::CreateTaskAction {
            kind: pb::TaskKind::SatisfactionCall as i32,
            title: format!("Call about {k}"),
            due_after: Some(secs(60.0)),
            ..Default::default()
        })),
    });
    t
}

#[tokio::test]
async fn a_create_task_timer_makes_exactly_one_task_even_with_racing_replicas() {
    let mut app = TestApp::spawn(true).await;
    app.start(true, "").await;
    const N: usize = 10;
    let due = in_ms(1_000);
    let mut keys = Vec::new();
    for _ in 0..N {
        let k = key("satisfaction_call");
        app.schedule(create_task_timer(&k, "hz-lake", due)).await;
        keys.push(k);
    }
    let mut timers = HashMap::new();
    for k in &keys {
        let t = app.wait_for(k, &[S::Fired, S::Failed], WAIT).await;
        assert_eq!(t.state, S::Fired as i32, "{}", t.last_error);
        timers.insert(t.timer_id.clone(), t);
    }
    // Anything still in flight settles.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tasks = app
        .staff("hz-lake")
        .list_tasks(pb::ListTasksRequest {
            property_id: "hz-lake".into(),
            page: Some(guestloop_proto::common::v1::PageRequest {
                page_size: 100,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .tasks;
    assert_eq!(tasks.len(), N, "exactly one task per timer: {tasks:#?}");
    let mut per_timer: HashMap<&str, usize> = HashMap::new();
    for t in &tasks {
        *per_timer.entry(t.timer_id.as_str()).or_default() += 1;
        let timer = timers
            .get(&t.timer_id)
            .unwrap_or_else(|| panic!("task {} names an unknown timer {}", t.task_id, t.timer_id));
        assert_eq!(t.status, TaskStatus::Open as i32);
        assert_eq!(t.kind, pb::TaskKind::SatisfactionCall as i32);
        assert_eq!(t.title, format!("Call about {}", timer.key));
        assert_eq!(t.created_by, "follow-up-scheduler");
        // Due 60 s after the firing.
        let after = to_utc(t.due_time) - to_utc(timer.fire_time);
        assert!(
            (after.num_milliseconds() - 60_000).abs() < 2_000,
            "due {after:?} after the firing"
        );
    }
    assert_eq!(per_timer.len(), N, "0 duplicates: {per_timer:?}");
    assert!(per_timer.values().all(|n| *n == 1));
    for id in timers.keys() {
        assert_eq!(app.firings(id).await, 1);
    }
    let created_events: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM outbox WHERE event_type = 'follow_up_task_created'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(created_events, N as i64);
}

//! The access matrix of follow-up-scheduler. sh-bund holds timers, follow-up tasks, a
//! case's SLA clocks and a stay's after-stay plan. Every RPC (enumerated from the published
//! descriptor, so a new RPC fails this test until it has a row) is called by every caller:
//! outsiders (hz-lake's staff and manager in the same region, hk-harbour's staff, the south
//! regional manager) are refused with NOT_FOUND (INVALID_ARGUMENT for a key another property
//! owns; PERMISSION_DENIED for event delivery by a non-service), their lists and watches show
//! nothing of sh-bund, and the schema is byte-for-byte what it was; insiders (sh-bund's staff
//! and manager, staff of two properties, the east regional manager, head office, a service)
//! see and work it. Without a trusted token every RPC is UNAUTHENTICATED and changes nothing.

mod common;
#[path = "authorization/world.rs"]
mod world;

use chrono::{Duration as Span, Utc};
use common::*;
use guestloop_auth::Role;
use guestloop_client::{EventIngestClient, FollowUpClient};
use guestloop_proto::events::v1 as ev;
use guestloop_proto::followup::v1 as pb;
use guestloop_testkit::authz::{
    Answer, Expect, Policy, Who, answer, connection, run_table, snapshot,
};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio_stream::StreamExt;
use tonic::{Code, Status};
use world::{World, case_closed, create_task, deliver, task_at, world};

#[derive(Debug, Clone, Copy)]
enum Call {
    ScheduleTimer,
    ScheduleTimerWithItsKeyElsewhere,
    CancelTimer,
    GetTimerById,
    GetTimerByKey,
    ListTimersByKeyPrefix,
    ListTimersOfShBund,
    ListTimersOfStay,
    CreateTask,
    CreateTaskForItsCaseElsewhere,
    GetTask,
    AssignTask,
    CompleteTask,
    CancelTask,
    ListTasksOfCase,
    ListTasksOfShBund,
    GetCaseClocks,
    GetStayClocks,
    WatchShBund,
    WatchOwnProperty,
    DeliverEvents,
}

const NOT_FOUND: Policy = Policy::Scoped(Code::NotFound);

/// The matrix: every row is called by every caller.
const TABLE: &[(Call, &str, Policy)] = &[
    (Call::ScheduleTimer, "ScheduleTimer", NOT_FOUND),
    // The key is chain-wide: refused without a word about whose it is.
    (
        Call::ScheduleTimerWithItsKeyElsewhere,
        "ScheduleTimer",
        Policy::Scoped(Code::InvalidArgument),
    ),
    // Another property's timer answers as a missing one: OK, nothing cancelled.
    (Call::CancelTimer, "CancelTimer", Policy::Filtered),
    (Call::GetTimerById, "GetTimer", NOT_FOUND),
    (Call::GetTimerByKey, "GetTimer", NOT_FOUND),
    (Call::ListTimersByKeyPrefix, "ListTimers", Policy::Filtered),
    (Call::ListTimersOfShBund, "ListTimers", NOT_FOUND),
    (Call::ListTimersOfStay, "ListTimers", Policy::Filtered),
    (Call::CreateTask, "CreateTask", NOT_FOUND),
    (Call::CreateTaskForItsCaseElsewhere, "CreateTask", NOT_FOUND),
    (Call::GetTask, "GetTask", NOT_FOUND),
    (Call::AssignTask, "AssignTask", NOT_FOUND),
    (Call::CompleteTask, "CompleteTask", NOT_FOUND),
    (Call::CancelTask, "CancelTask", NOT_FOUND),
    (Call::ListTasksOfCase, "ListTasks", Policy::Filtered),
    (Call::ListTasksOfShBund, "ListTasks", NOT_FOUND),
    (Call::GetCaseClocks, "GetCaseClocks", NOT_FOUND),
    (Call::GetStayClocks, "GetStayClocks", NOT_FOUND),
    (Call::WatchShBund, "WatchDeadlines", NOT_FOUND),
    (Call::WatchOwnProperty, "WatchDeadlines", Policy::Filtered),
    (
        Call::DeliverEvents,
        "DeliverEvents",
        Policy::Only(Role::Service),
    ),
];

struct Clients {
    api: FollowUpClient,
    events: EventIngestClient,
}

fn clients(app: &TestApp, who: &Who) -> Clients {
    let conn = connection(app.addr(), who);
    Clients {
        api: conn.follow_up(),
        events: conn.event_ingest(),
    }
}

/// The watch's snapshot, up to SNAPSHOT_COMPLETE.
async fn watch(c: &mut FollowUpClient, property: &str, want: &str) -> Result<Answer, Status> {
    let mut stream = c
        .watch_deadlines(pb::WatchDeadlinesRequest {
            property_id: property.into(),
            include_tasks: true,
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut text = String::new();
    loop {
        let r = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("the snapshot within 5 s")
            .expect("the stream stays open")?;
        text.push_str(&format!("{r:?}\n"));
        if r.change == pb::DeadlineChange::SnapshotComplete as i32 {
            return Ok(Answer {
                text,
                want: want.into(),
            });
        }
    }
}

async fn call(c: &mut Clients, w: &World, who: &Who, what: Call) -> Result<Answer, Status> {
    let api = &mut c.api;
    let all = Some(guestloop_proto::common::v1::PageRequest {
        page_size: 500,
        page_token: String::new(),
    });
    let timer_id = w.timer.timer_id.as_str();
    match what {
        Call::ScheduleTimer => {
            let t = pb::Timer {
                generation: 0,
                state: 0,
                ..w.timer.clone()
            };
            answer(
                api.schedule_timer(pb::ScheduleTimerRequest { timer: Some(t) })
                    .await,
                timer_id,
            )
        }
        Call::ScheduleTimerWithItsKeyElsewhere => {
            let t = timer(&w.timer.key, who.own, Utc::now() + Span::hours(1));
            answer(
                api.schedule_timer(pb::ScheduleTimerRequest { timer: Some(t) })
                    .await,
                timer_id,
            )
        }
        Call::CancelTimer => {
            let req = pb::CancelTimerRequest {
                key: w.spare_timer.key.clone(),
                reason: "mine now".into(),
            };
            answer(api.cancel_timer(req).await, &w.spare_timer.timer_id)
        }
        Call::GetTimerById => {
            let req = pb::GetTimerRequest {
                timer_id: timer_id.into(),
                key: String::new(),
            };
            answer(api.get_timer(req).await, timer_id)
        }
        Call::GetTimerByKey => {
            let req = pb::GetTimerRequest {
                key: w.timer.key.clone(),
                timer_id: String::new(),
            };
            answer(api.get_timer(req).await, timer_id)
        }
        Call::ListTimersByKeyPrefix => {
            let req = pb::ListTimersRequest {
                key_prefix: w.prefix.clone(),
                page: all,
                ..Default::default()
            };
            answer(api.list_timers(req).await, timer_id)
        }
        Call::ListTimersOfShBund => {
            let req = pb::ListTimersRequest {
                property_id: "sh-bund".into(),
                page: all,
                ..Default::default()
            };
            answer(api.list_timers(req).await, timer_id)
        }
        Call::ListTimersOfStay => {
            let req = pb::ListTimersRequest {
                stay_id: w.stay_id.clone(),
                ..Default::default()
            };
            answer(api.list_timers(req).await, &w.stay_id)
        }
        Call::CreateTask => {
            let req = pb::CreateTaskRequest {
                task: Some(task_at("sh-bund", "")),
                idempotency_key: String::new(),
            };
            answer(api.create_task(req).await, "sh-bund")
        }
        Call::CreateTaskForItsCaseElsewhere => {
            let req = pb::CreateTaskRequest {
                task: Some(task_at(who.own, &w.case_id)),
                idempotency_key: String::new(),
            };
            answer(api.create_task(req).await, &w.case_id)
        }
        Call::GetTask => {
            let req = pb::GetTaskRequest {
                task_id: w.task.task_id.clone(),
            };
            answer(api.get_task(req).await, &w.task.task_id)
        }
        Call::AssignTask => {
            let req = pb::AssignTaskRequest {
                task_id: w.task.task_id.clone(),
                assignee_id: "s-intruder".into(),
                department: 0,
            };
            answer(api.assign_task(req).await, &w.task.task_id)
        }
        Call::CompleteTask => {
            let req = pb::CompleteTaskRequest {
                task_id: w.task.task_id.clone(),
                outcome: pb::TaskOutcome::IssueResolved as i32,
                ..Default::default()
            };
            answer(api.complete_task(req).await, &w.task.task_id)
        }
        Call::CancelTask => {
            let req = pb::CancelTaskRequest {
                task_id: w.spare_task.task_id.clone(),
                reason: "x".into(),
            };
            answer(api.cancel_task(req).await, &w.spare_task.task_id)
        }
        Call::ListTasksOfCase => {
            let req = pb::ListTasksRequest {
                case_id: w.case_id.clone(),
                ..Default::default()
            };
            answer(api.list_tasks(req).await, &w.task.task_id)
        }
        Call::ListTasksOfShBund => {
            let req = pb::ListTasksRequest {
                property_id: "sh-bund".into(),
                page: all,
                ..Default::default()
            };
            answer(api.list_tasks(req).await, &w.task.task_id)
        }
        Call::GetCaseClocks => {
            let req = pb::GetCaseClocksRequest {
                case_id: w.case_id.clone(),
            };
            answer(api.get_case_clocks(req).await, &w.task.task_id)
        }
        Call::GetStayClocks => {
            let req = pb::GetStayClocksRequest {
                stay_id: w.stay_id.clone(),
            };
            answer(api.get_stay_clocks(req).await, &w.guest_id)
        }
        Call::WatchShBund => watch(api, "sh-bund", &w.case_id).await,
        Call::WatchOwnProperty => watch(api, who.own, &w.case_id).await,
        Call::DeliverEvents => {
            let event = case_closed(&w.case_id);
            let id = event.event_id.clone();
            let req = ev::DeliverEventsRequest {
                events: vec![event],
            };
            answer(c.events.deliver_events(req).await, &id)
        }
    }
}

/// Runs every row as `who` on `w`; returns how many cells were checked.
async fn run_rows(app: &TestApp, w: &World, who: &Who, expect: impl Fn(Policy) -> Expect) -> usize {
    let mut c = clients(app, who);
    run_table(who, TABLE, &w.secrets(), expect, async |what| {
        call(&mut c, w, who, what).await
    })
    .await
}

#[tokio::test]
async fn the_matrix_calls_every_rpc() {
    let called: BTreeSet<&str> = TABLE.iter().map(|(_, rpc, _)| *rpc).collect();
    guestloop_testkit::authz::assert_covers(
        &called,
        "guestloop.followup.v1",
        "FollowUpSchedulerService",
    );
}

#[tokio::test]
async fn outsiders_neither_see_nor_change_sh_bunds_clocks() {
    let app = TestApp::spawn(false).await;
    let w = world(&app).await;
    let before = snapshot(&app.pool).await;
    let mut cells = 0;
    for who in guestloop_testkit::authz::outsiders() {
        cells += run_rows(&app, &w, &who, |p| p.expect(&who)).await;
        assert_eq!(
            snapshot(&app.pool).await,
            before,
            "{}: the schema is unchanged",
            who.name
        );
    }
    eprintln!("outsiders: {cells} cells");
}

#[tokio::test]
async fn insiders_see_and_work_sh_bunds_clocks() {
    let app = TestApp::spawn(false).await;
    let mut cells = 0;
    for who in guestloop_testkit::authz::insiders() {
        let w = world(&app).await;
        cells += run_rows(&app, &w, &who, |p| p.expect(&who)).await;
        // The writes took effect (the rows above only saw their answers).
        let task = app
            .head_office()
            .get_task(pb::GetTaskRequest {
                task_id: w.task.task_id.clone(),
            })
            .await;
        assert_eq!(
            task.unwrap().into_inner().task.unwrap().status,
            pb::TaskStatus::Completed as i32,
            "{}",
            who.name
        );
    }
    eprintln!("insiders: {cells} cells");
}

#[tokio::test]
async fn without_a_trusted_token_nothing_answers_and_nothing_changes() {
    let app = TestApp::spawn(false).await;
    let w = world(&app).await;
    let before = snapshot(&app.pool).await;
    for who in guestloop_testkit::authz::strangers() {
        run_rows(&app, &w, &who, |_| Expect::Refused(Code::Unauthenticated)).await;
    }
    assert_eq!(snapshot(&app.pool).await, before);
}

/// Reads a live watch until `until` shows up (5 s at most), then for `quiet` more; returns
/// everything it delivered after the snapshot.
async fn listen(
    stream: &mut tonic::Streaming<pb::WatchDeadlinesResponse>,
    until: &str,
    quiet: Duration,
) -> String {
    let mut heard = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut end: Option<tokio::time::Instant> = None;
    loop {
        let stop = end.unwrap_or(deadline);
        match tokio::time::timeout_at(stop, stream.next()).await {
            Ok(Some(r)) => heard.push_str(&format!("{:?}\n", r.expect("no error"))),
            Ok(None) => panic!("the watch ended"),
            Err(_) if end.is_some() => return heard,
            Err(_) => panic!("never heard {until}: {heard}"),
        }
        if end.is_none() && heard.contains(until) {
            end = Some(tokio::time::Instant::now() + quiet);
        }
    }
}

#[tokio::test]
async fn a_watch_outside_the_scope_hears_nothing_of_sh_bund() {
    let app = TestApp::spawn(false).await;
    let mut watches = Vec::new();
    for who in guestloop_testkit::authz::outsiders()
        .into_iter()
        .chain(guestloop_testkit::authz::insiders())
    {
        let mut c = clients(&app, &who).api;
        let mut stream = c
            .watch_deadlines(pb::WatchDeadlinesRequest {
                property_id: who.own.into(),
                include_tasks: true,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|s| panic!("{}: {s:?}", who.name))
            .into_inner();
        let first = stream.next().await.expect("open").expect("no error");
        assert_eq!(
            first.change,
            pb::DeadlineChange::SnapshotComplete as i32,
            "{}",
            who.name
        );
        watches.push((who, stream));
    }
    // sh-bund changes first; then each outsider's own property, which tells their watch
    // that everything before it has been seen.
    let w = world(&app).await;
    deliver(&app, vec![case_closed(&w.case_id)]).await;
    let mut own = std::collections::HashMap::new();
    for p in ["hz-lake", "hk-harbour", "sz-bay"] {
        own.insert(p, create_task(&app, task_at(p, "")).await.task_id);
    }
    for (who, mut stream) in watches {
        if who.inside {
            let heard = listen(&mut stream, &w.task.task_id, Duration::ZERO).await;
            assert!(heard.contains(&w.case_id), "{}: {heard}", who.name);
        } else {
            let heard = listen(&mut stream, &own[who.own], Duration::from_millis(300)).await;
            for secret in w.secrets() {
                assert!(
                    !heard.contains(&secret),
                    "{}: the watch leaked {secret}: {heard}",
                    who.name
                );
            }
        }
    }
}

//! SLA clocks from case events, seen through WatchDeadlines: a case opened with a 2-second
//! first response is added, warned at 80 %, breached; resolving removes its resolution
//! clock (met); a redelivered or stale event changes nothing; tasks come and go too.

mod common;

use chrono::{Duration as Span, Utc};
use common::*;
use guestloop_proto::events::v1 as ev;
use guestloop_proto::feedback::v1 as fb;
use guestloop_proto::followup::v1 as pb;
use pb::DeadlineChange as C;
use std::time::Duration;
use tokio_stream::StreamExt;

fn facts(case_id: &str, status: fb::CaseStatus, version: i64) -> ev::CaseFacts {
    let now = Utc::now();
    ev::CaseFacts {
        case_id: case_id.into(),
        reference: "SH-BUND-2026-000042".into(),
        property_id: "sh-bund".into(),
        status: status as i32,
        escalation_tier: fb::EscalationTier::FrontLine as i32,
        urgency: 2,
        department: 1,
        open_time: Some(ts(now)),
        first_response_due_time: Some(ts(now + Span::seconds(2))),
        resolution_due_time: Some(ts(now + Span::seconds(600))),
        version,
        ..Default::default()
    }
}

fn envelope(payload: ev::event_envelope::Payload) -> ev::EventEnvelope {
    ev::EventEnvelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        source: "feedback-intake".into(),
        aggregate_type: "case".into(),
        property_id: "sh-bund".into(),
        occur_time: Some(ts(Utc::now())),
        payload: Some(payload),
        ..Default::default()
    }
}

async fn next(
    stream: &mut tonic::Streaming<pb::WatchDeadlinesResponse>,
) -> pb::WatchDeadlinesResponse {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("a change within 10 s")
        .expect("stream open")
        .expect("no error")
}

fn clock_of(r: &pb::WatchDeadlinesResponse) -> pb::Clock {
    match &r.deadline {
        Some(pb::watch_deadlines_response::Deadline::Clock(c)) => c.clone(),
        other => panic!("expected a clock, got {other:?}"),
    }
}

#[tokio::test]
async fn case_clocks_are_added_warned_breached_and_removed_live() {
    let app = TestApp::spawn(true).await;
    let mut watch = app
        .staff("sh-bund")
        .watch_deadlines(pb::WatchDeadlinesRequest {
            property_id: "sh-bund".into(),
            include_tasks: true,
            ..Default::default()
        })
        .await
        .expect("watch")
        .into_inner();
    assert_eq!(next(&mut watch).await.change, C::SnapshotComplete as i32);

    let case_id = uuid::Uuid::now_v7().to_string();
    let opened = envelope(ev::event_envelope::Payload::CaseOpened(ev::CaseOpened {
        case: Some(facts(&case_id, fb::CaseStatus::Received, 1)),
        feedback_id: String::new(),
    }));
    let mut events = app.events(&service_token());
    let acked = events
        .deliver_events(ev::DeliverEventsRequest {
            events: vec![opened.clone()],
        })
        .await
        .unwrap()
        .into_inner()
        .acknowledged_event_ids;
    assert_eq!(acked, vec![opened.event_id.clone()]);

    let mut added = Vec::new();
    for _ in 0..2 {
        let r = next(&mut watch).await;
        assert_eq!(r.change, C::Added as i32, "{r:?}");
        added.push(clock_of(&r).kind);
    }
    added.sort();
    assert_eq!(
        added,
        vec![
            pb::ClockKind::FirstResponse as i32,
            pb::ClockKind::Resolution as i32
        ]
    );
    let warned = next(&mut watch).await;
    assert_eq!(warned.change, C::Warned as i32, "{warned:?}");
    assert_eq!(clock_of(&warned).kind, pb::ClockKind::FirstResponse as i32);
    let breached = next(&mut watch).await;
    assert_eq!(breached.change, C::Breached as i32, "{breached:?}");
    let fr = clock_of(&breached);
    assert_eq!(fr.state, pb::ClockState::Breached as i32);

    // Redelivered: acknowledged, applied once (no new change on the watch).
    let again = events
        .deliver_events(ev::DeliverEventsRequest {
            events: vec![opened.clone()],
        })
        .await
        .unwrap()
        .into_inner()
        .acknowledged_event_ids;
    assert_eq!(again, vec![opened.event_id.clone()]);

    // Resolved (version 2): the resolution clock stops in time and leaves the watch.
    let mut resolved = facts(&case_id, fb::CaseStatus::Resolved, 2);
    resolved.resolve_time = Some(ts(Utc::now()));
    let resolved_event = envelope(ev::event_envelope::Payload::CaseStatusChanged(
        ev::CaseStatusChanged {
            case: Some(resolved),
            to_status: fb::CaseStatus::Resolved as i32,
            ..Default::default()
        },
    ));
    events
        .deliver_events(ev::DeliverEventsRequest {
            events: vec![resolved_event],
        })
        .await
        .unwrap();
    let removed = next(&mut watch).await;
    assert_eq!(removed.change, C::Removed as i32, "{removed:?}");
    let res = clock_of(&removed);
    assert_eq!(res.kind, pb::ClockKind::Resolution as i32);
    assert_eq!(res.state, pb::ClockState::Met as i32);

    // A stale event (version 1 again, new id) changes nothing.
    let stale = envelope(ev::event_envelope::Payload::CaseStatusChanged(
        ev::CaseStatusChanged {
            case: Some(facts(&case_id, fb::CaseStatus::InProgress, 1)),
            ..Default::default()
        },
    ));
    events
        .deliver_events(ev::DeliverEventsRequest {
            events: vec![stale],
        })
        .await
        .unwrap();
    let clocks = app
        .head_office()
        .get_case_clocks(pb::GetCaseClocksRequest {
            case_id: case_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let state = |k: pb::ClockKind| {
        clocks
            .clocks
            .iter()
            .find(|c| c.kind == k as i32)
            .map(|c| (c.state, c.warned, c.stop_time.is_some()))
            .unwrap()
    };
    assert_eq!(
        state(pb::ClockKind::FirstResponse),
        (pb::ClockState::Breached as i32, true, true)
    );
    assert_eq!(
        state(pb::ClockKind::Resolution),
        (pb::ClockState::Met as i32, false, true)
    );
    assert!(clocks.hops.is_empty(), "no feedback-intake peer: no hop");

    // Another property's staff sees neither the case's clocks nor its watch.
    let other = app
        .staff("hk-harbour")
        .get_case_clocks(pb::GetCaseClocksRequest {
            case_id: case_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(other.code(), tonic::Code::NotFound);
    let denied = app
        .staff("hk-harbour")
        .watch_deadlines(pb::WatchDeadlinesRequest {
            property_id: "sh-bund".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::NotFound);
    // A task of another property cannot be hung on this case.
    let foreign = app
        .staff("hk-harbour")
        .create_task(pb::CreateTaskRequest {
            task: Some(pb::FollowUpTask {
                kind: pb::TaskKind::ComplaintCallback as i32,
                property_id: "hk-harbour".into(),
                case_id: case_id.clone(),
                title: "Not ours".into(),
                due_time: Some(ts(Utc::now() + Span::minutes(30))),
                ..Default::default()
            }),
            idempotency_key: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), tonic::Code::NotFound);

    // A task due within the horizon is added, and removed when completed.
    let task = app
        .staff("sh-bund")
        .create_task(pb::CreateTaskRequest {
            task: Some(pb::FollowUpTask {
                kind: pb::TaskKind::ComplaintCallback as i32,
                property_id: "sh-bund".into(),
                title: "Call the guest back".into(),
                due_time: Some(ts(Utc::now() + Span::minutes(30))),
                ..Default::default()
            }),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap();
    let r = next(&mut watch).await;
    assert_eq!(r.change, C::Added as i32);
    assert!(matches!(
        r.deadline,
        Some(pb::watch_deadlines_response::Deadline::Task(_))
    ));
    app.staff("sh-bund")
        .complete_task(pb::CompleteTaskRequest {
            task_id: task.task_id,
            outcome: pb::TaskOutcome::GuestSatisfied as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    let r = next(&mut watch).await;
    assert_eq!(r.change, C::Removed as i32, "{r:?}");
}

#[tokio::test]
async fn a_stays_plan_is_added_to_the_watch_and_removed_when_the_stay_is_cancelled() {
    let app = TestApp::spawn(false).await;
    let mut watch = app
        .staff("sh-bund")
        .watch_deadlines(pb::WatchDeadlinesRequest {
            property_id: "sh-bund".into(),
            horizon: Some(prost_types::Duration {
                seconds: 10 * 86_400,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .expect("watch")
        .into_inner();
    assert_eq!(next(&mut watch).await.change, C::SnapshotComplete as i32);
    let stay_id = uuid::Uuid::now_v7().to_string();
    let guest_id = uuid::Uuid::now_v7().to_string();
    let stay = |payload| ev::EventEnvelope {
        aggregate_type: "stay".into(),
        source: "guest-profile".into(),
        ..envelope(payload)
    };
    let checked_out = stay(ev::event_envelope::Payload::StayCheckedOut(
        ev::StayCheckedOut {
            stay_id: stay_id.clone(),
            guest_id: guest_id.clone(),
            property_id: "sh-bund".into(),
            checked_out_time: Some(ts(Utc::now())),
            ..Default::default()
        },
    ));
    let mut events = app.events(&service_token());
    events
        .deliver_events(ev::DeliverEventsRequest {
            events: vec![checked_out],
        })
        .await
        .unwrap();
    let mut kinds = Vec::new();
    for _ in 0..3 {
        let r = next(&mut watch).await;
        assert_eq!(r.change, C::Added as i32, "{r:?}");
        let c = clock_of(&r);
        assert_eq!(c.stay_id, stay_id);
        kinds.push(c.kind);
    }
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            pb::ClockKind::SatisfactionContact as i32,
            pb::ClockKind::SurveyReminder as i32,
            pb::ClockKind::PostStayFollowUp as i32
        ]
    );
    let cancelled = stay(ev::event_envelope::Payload::StayCancelled(
        ev::StayCancelled {
            stay_id: stay_id.clone(),
            guest_id,
            property_id: "sh-bund".into(),
        },
    ));
    events
        .deliver_events(ev::DeliverEventsRequest {
            events: vec![cancelled],
        })
        .await
        .unwrap();
    for _ in 0..3 {
        let r = next(&mut watch).await;
        assert_eq!(r.change, C::Removed as i32, "{r:?}");
        assert_eq!(clock_of(&r).state, pb::ClockState::Cancelled as i32);
    }
}

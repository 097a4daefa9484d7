//! sh-bund's world for the sweep: timers, follow-up tasks, a case with its SLA clocks and
//! a checked-out stay with its plan, made as the API and the producers' relays make them.

use crate::common::*;
use chrono::{Duration as Span, Utc};
use guestloop_proto::events::v1::{self as ev, event_envelope::Payload};
use guestloop_proto::feedback::v1 as fb;
use guestloop_proto::followup::v1 as pb;

/// What sh-bund holds. Insiders each get their own, since their calls change it.
pub struct World {
    pub prefix: String,
    pub timer: pb::Timer,
    /// For CancelTimer.
    pub spare_timer: pb::Timer,
    /// For AssignTask and CompleteTask.
    pub task: pb::FollowUpTask,
    /// For CancelTask.
    pub spare_task: pb::FollowUpTask,
    pub case_id: String,
    pub stay_id: String,
    pub guest_id: String,
}

impl World {
    /// What must never reach an outsider, in an answer or an error.
    pub fn secrets(&self) -> Vec<String> {
        vec![
            self.timer.timer_id.clone(),
            self.timer.key.clone(),
            self.spare_timer.timer_id.clone(),
            self.task.task_id.clone(),
            self.spare_task.task_id.clone(),
            self.case_id.clone(),
            self.stay_id.clone(),
            self.guest_id.clone(),
            "sh-bund".into(),
            "room 1208".into(),
        ]
    }
}

fn uid() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn envelope(aggregate: &str, id: &str, payload: Payload) -> ev::EventEnvelope {
    ev::EventEnvelope {
        event_id: uid(),
        source: "feedback-intake".into(),
        aggregate_type: aggregate.into(),
        aggregate_id: id.into(),
        sequence: 1,
        occur_time: Some(ts(Utc::now())),
        property_id: "sh-bund".into(),
        payload: Some(payload),
        ..Default::default()
    }
}

fn case_facts(case_id: &str, status: fb::CaseStatus, version: i64) -> ev::CaseFacts {
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
        first_response_due_time: Some(ts(now + Span::minutes(30))),
        resolution_due_time: Some(ts(now + Span::hours(48))),
        version,
        ..Default::default()
    }
}

pub fn case_closed(case_id: &str) -> ev::EventEnvelope {
    envelope(
        "case",
        case_id,
        Payload::CaseStatusChanged(ev::CaseStatusChanged {
            case: Some(case_facts(case_id, fb::CaseStatus::Closed, 2)),
            to_status: fb::CaseStatus::Closed as i32,
            ..Default::default()
        }),
    )
}

pub async fn deliver(app: &TestApp, events: Vec<ev::EventEnvelope>) {
    let n = events.len();
    let acked = app
        .events(&service_token())
        .deliver_events(ev::DeliverEventsRequest { events })
        .await
        .expect("delivered")
        .into_inner()
        .acknowledged_event_ids;
    assert_eq!(acked.len(), n);
}

pub fn task_at(property: &str, case_id: &str) -> pb::FollowUpTask {
    pb::FollowUpTask {
        kind: pb::TaskKind::ComplaintCallback as i32,
        property_id: property.into(),
        case_id: case_id.into(),
        title: match property {
            "sh-bund" => "Call Mrs Gao in room 1208 about the noise".into(),
            _ => "Call our own guest back".into(),
        },
        due_time: Some(ts(Utc::now() + Span::hours(2))),
        ..Default::default()
    }
}

pub async fn create_task(app: &TestApp, task: pb::FollowUpTask) -> pb::FollowUpTask {
    app.head_office()
        .create_task(pb::CreateTaskRequest {
            task: Some(task),
            idempotency_key: String::new(),
        })
        .await
        .expect("task")
        .into_inner()
        .task
        .expect("task")
}

pub async fn world(app: &TestApp) -> World {
    let prefix = format!("auth/{}-{}/", std::process::id(), next());
    let due = Utc::now() + Span::hours(1);
    let main = app
        .schedule(timer(&format!("{prefix}call"), "sh-bund", due))
        .await;
    let spare = app
        .schedule(timer(&format!("{prefix}spare"), "sh-bund", due))
        .await;
    let (case_id, stay_id, guest_id) = (uid(), uid(), uid());
    let checked_out = Utc::now() - Span::hours(1);
    let mut stay = envelope(
        "stay",
        &stay_id,
        Payload::StayCheckedOut(ev::StayCheckedOut {
            stay_id: stay_id.clone(),
            guest_id: guest_id.clone(),
            property_id: "sh-bund".into(),
            checked_out_time: Some(ts(checked_out)),
            ..Default::default()
        }),
    );
    stay.source = "guest-profile".into();
    let opened = envelope(
        "case",
        &case_id,
        Payload::CaseOpened(ev::CaseOpened {
            case: Some(case_facts(&case_id, fb::CaseStatus::Received, 1)),
            feedback_id: String::new(),
        }),
    );
    deliver(app, vec![stay, opened]).await;
    World {
        prefix,
        timer: main.timer.expect("timer"),
        spare_timer: spare.timer.expect("timer"),
        task: create_task(app, task_at("sh-bund", &case_id)).await,
        spare_task: create_task(app, task_at("sh-bund", &case_id)).await,
        case_id,
        stay_id,
        guest_id,
    }
}

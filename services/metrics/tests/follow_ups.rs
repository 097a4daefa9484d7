//! The follow-up completion rate counts the follow-ups owed to guests: a VIP's pre-arrival
//! care (scheduler task kind VIP_CARE: an upgrade, a welcome gift) is not one, so neither
//! its creation, its completion nor its cancellation moves the rate.

mod common;

use chrono::Utc;
use common::*;
use guestloop_proto::events::v1 as ev;
use guestloop_proto::events::v1::event_envelope::Payload;
use guestloop_proto::followup::v1::TaskKind;
use guestloop_proto::metrics::v1::Kpi;

/// What became of a task after it was created.
#[derive(Clone, Copy)]
enum End {
    Open,
    OnTime,
    Late,
    Cancelled,
}

#[tokio::test]
async fn vip_care_tasks_are_not_follow_ups() {
    let app = TestApp::spawn("").await;
    let due = Utc::now();
    // (kind, what became of it): of the follow-ups, one on time out of three (the cancelled
    // one leaves the denominator); none of the VIP care counts.
    let tasks = [
        (TaskKind::SatisfactionCall, End::OnTime),
        (TaskKind::ComplaintCallback, End::Open),
        (TaskKind::ServiceRecovery, End::Late),
        (TaskKind::PostStayFollowUp, End::Cancelled),
        (TaskKind::VipCare, End::OnTime),
        (TaskKind::VipCare, End::OnTime),
        (TaskKind::VipCare, End::Open),
        (TaskKind::VipCare, End::Cancelled),
    ];
    let mut events = Vec::new();
    for (kind, end) in tasks {
        let task = new_id("task");
        let emit = |p: Payload| envelope("follow-up-scheduler", "task", &task, "sh-bund", due, p);
        let kind = kind as i32;
        events.push(emit(Payload::FollowUpTaskCreated(
            ev::FollowUpTaskCreated {
                task_id: task.clone(),
                kind,
                property_id: "sh-bund".into(),
                due_time: Some(ts(due)),
                create_time: Some(ts(due - chrono::Duration::days(2))),
                ..Default::default()
            },
        )));
        match end {
            End::Open => {}
            End::OnTime | End::Late => events.push(emit(Payload::FollowUpTaskCompleted(
                ev::FollowUpTaskCompleted {
                    task_id: task.clone(),
                    kind,
                    property_id: "sh-bund".into(),
                    due_time: Some(ts(due)),
                    complete_time: Some(ts(due)),
                    late: matches!(end, End::Late),
                    ..Default::default()
                },
            ))),
            End::Cancelled => events.push(emit(Payload::FollowUpTaskCancelled(
                ev::FollowUpTaskCancelled {
                    task_id: task.clone(),
                    kind,
                    property_id: "sh-bund".into(),
                    due_time: Some(ts(due)),
                    cancel_time: Some(ts(due)),
                    reason: "stay_cancelled".into(),
                },
            ))),
        }
    }
    app.deliver(events).await;
    let day = local_day("sh-bund", due);
    let r = app
        .kpis(&mut app.head_office(), property("sh-bund"), day, day, false)
        .await;
    let v = total(&r, Kpi::FollowUpCompletionRate);
    assert_eq!((v.numerator, v.denominator), (1, 3), "{v:?}");
}

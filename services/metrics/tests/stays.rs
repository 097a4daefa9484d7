//! A check-out undone and redone at the PMS (a second StayCheckedOut for the same stay,
//! with a new event id) counts the stay once. A VIP's satisfaction contact is the duty
//! manager's call: a completed call that reached the guest within 48 h counts as contacted.

mod common;

use chrono::Utc;
use common::*;
use guestloop_proto::events::v1 as ev;
use guestloop_proto::events::v1::event_envelope::Payload;
use guestloop_proto::metrics::v1::Kpi;

#[tokio::test]
async fn a_redone_check_out_counts_the_stay_once() {
    let app = TestApp::spawn("").await;
    let stay = new_id("stay");
    let checked_out = |complete: bool| {
        let now = Utc::now();
        envelope(
            "guest-profile",
            "stay",
            &stay,
            "sh-bund",
            now,
            Payload::StayCheckedOut(ev::StayCheckedOut {
                stay_id: stay.clone(),
                guest_id: "guest-1".into(),
                property_id: "sh-bund".into(),
                checked_out_time: Some(ts(now)),
                profile_complete: complete,
                ..Default::default()
            }),
        )
    };
    app.deliver(vec![checked_out(false), checked_out(true)])
        .await;
    let day = local_day("sh-bund", Utc::now());
    let r = app
        .kpis(&mut app.head_office(), property("sh-bund"), day, day, false)
        .await;
    let stays = total(&r, Kpi::ComplaintsPer100Stays);
    assert_eq!(
        stays.denominator, 1,
        "one stay, however often it checked out"
    );
    let profiles = total(&r, Kpi::ProfileCompleteness);
    assert_eq!(
        (profiles.numerator, profiles.denominator),
        (0, 1),
        "as at its first check-out"
    );
}

#[tokio::test]
async fn a_vips_satisfaction_call_counts_as_the_contact() {
    use guestloop_proto::followup::v1::{TaskKind, TaskOutcome};
    let app = TestApp::spawn("").await;
    let checkout = Utc::now() - chrono::Duration::hours(60);
    // (hours after check-out the call was completed, its outcome, kind): counted?
    let calls = [
        (
            2,
            TaskOutcome::GuestSatisfied,
            TaskKind::SatisfactionCall,
            true,
        ),
        (
            3,
            TaskOutcome::GuestUnreachable,
            TaskKind::SatisfactionCall,
            false,
        ),
        (
            50,
            TaskOutcome::GuestSatisfied,
            TaskKind::SatisfactionCall,
            false,
        ),
        (2, TaskOutcome::GuestSatisfied, TaskKind::VipCare, false),
    ];
    let mut events = Vec::new();
    for (hours, outcome, kind, _) in calls {
        let stay = new_id("stay");
        events.push(envelope(
            "guest-profile",
            "stay",
            &stay,
            "sh-bund",
            checkout,
            Payload::StayCheckedOut(ev::StayCheckedOut {
                stay_id: stay.clone(),
                guest_id: new_id("guest"),
                property_id: "sh-bund".into(),
                checked_out_time: Some(ts(checkout)),
                ..Default::default()
            }),
        ));
        let done = checkout + chrono::Duration::hours(hours);
        let task = new_id("task");
        events.push(envelope(
            "follow-up-scheduler",
            "task",
            &task,
            "sh-bund",
            done,
            Payload::FollowUpTaskCompleted(ev::FollowUpTaskCompleted {
                task_id: task.clone(),
                kind: kind as i32,
                property_id: "sh-bund".into(),
                stay_id: stay,
                due_time: Some(ts(checkout + chrono::Duration::hours(48))),
                complete_time: Some(ts(done)),
                outcome: outcome as i32,
                ..Default::default()
            }),
        ));
    }
    app.deliver(events).await;
    let day = local_day("sh-bund", checkout);
    let r = app
        .kpis(&mut app.head_office(), property("sh-bund"), day, day, false)
        .await;
    let contact = total(&r, Kpi::SatisfactionContactWithin48hRate);
    let want = calls.iter().filter(|c| c.3).count() as i64;
    assert_eq!((contact.numerator, contact.denominator), (want, 4));
}

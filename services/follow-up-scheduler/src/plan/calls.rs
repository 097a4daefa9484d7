//! A VIP's after-stay contacts as calls by the duty manager (issue 13): with
//! `[care] vip_contact_by_duty_manager`, a VIP tier's satisfaction contact and 7-day
//! follow-up are timers that create a task for the property and alert its duty manager
//! (CreateTaskAction with `notify_role`), instead of sending the survey and follow-up
//! templates; no survey reminder follows. The timers keep the plan's keys and times, so a
//! corrected check-out re-anchors them as it does the messages.

use super::CheckOut;
use chrono::Duration;
use guestloop_proto::common::v1::{Department, Urgency};
use guestloop_proto::followup::v1::{self as pb, TaskKind, timer_action};
use guestloop_proto::notification::v1::StaffRole;
use prost::Message;

/// The encoded CreateTaskAction of one call, due `due_after` after the timer fires.
pub fn action(c: &CheckOut, kind: TaskKind, due_after: Duration) -> Vec<u8> {
    let (title, what) = match kind {
        TaskKind::SatisfactionCall => (
            "Duty manager: satisfaction call to a VIP guest after their stay",
            "Ask how the stay was and record the outcome: the VIP's satisfaction contact within \
             48 h of check-out, in place of the survey message.",
        ),
        _ => (
            "Duty manager: follow-up call to a VIP guest a week after their stay",
            "Thank the guest for their stay and ask whether anything is still open: the VIP's \
             7-day follow-up, in place of the follow-up message.",
        ),
    };
    pb::TimerAction {
        action: Some(timer_action::Action::CreateTask(pb::CreateTaskAction {
            kind: kind as i32,
            title: title.into(),
            instructions: format!("{what}\nStay: {}", c.stay_dates),
            department: Department::FrontOffice as i32,
            assignee_id: String::new(),
            urgency: Urgency::Normal as i32,
            due_after: Some(crate::domain::to_duration_ms(
                due_after.num_milliseconds().max(1000),
            )),
            notify_role: StaffRole::DutyManager as i32,
        })),
    }
    .encode_to_vec()
}

//! Staff alerts the scheduler sends through notification: SLA warnings, escalations to the
//! new owner, missed timers for the duty manager, task reminders. Outside a property's
//! working hours notification hands them to the duty manager when `alerts.on_duty_fallback`
//! is on (issue 4, part 5). Every alert carries an idempotency key derived from the timer
//! that caused it, so a retried firing alerts once.

use crate::state::State;
use chrono::{DateTime, Utc};
use guestloop_proto::common::v1::Urgency;
use guestloop_proto::feedback::v1::EscalationTier;
use guestloop_proto::notification::v1::{self as notify, MessageKind, StaffRole};
use tonic::Code;

/// Sent (message id, empty when notification is not configured), or try again later.
pub enum Sent {
    Ok(String),
    Retry(String),
}

/// Who owns a case at `tier`: the assignee (else the front desk) on the front line, then
/// the customer-service manager, the department head, the general manager.
pub fn owner(
    property_id: &str,
    tier: i16,
    department: i16,
    assignee_id: &str,
    on_duty_fallback: bool,
) -> notify::StaffRecipient {
    let mut r = notify::StaffRecipient {
        property_id: property_id.to_string(),
        on_duty_fallback,
        ..Default::default()
    };
    match EscalationTier::try_from(i32::from(tier)).unwrap_or_default() {
        EscalationTier::CustomerServiceManager => r.role = StaffRole::CustomerServiceManager as i32,
        EscalationTier::DepartmentHead => {
            r.role = StaffRole::DepartmentHead as i32;
            r.department = i32::from(department);
        }
        EscalationTier::GeneralManager => r.role = StaffRole::GeneralManager as i32,
        _ if !assignee_id.is_empty() => r.staff_id = assignee_id.to_string(),
        _ => r.role = StaffRole::FrontDesk as i32,
    }
    r
}

pub fn tier_label(tier: i16) -> &'static str {
    match EscalationTier::try_from(i32::from(tier)).unwrap_or_default() {
        EscalationTier::CustomerServiceManager => "the customer-service manager",
        EscalationTier::DepartmentHead => "the department head",
        EscalationTier::GeneralManager => "the general manager",
        _ => "the front line",
    }
}

/// `t` in the property's local time, for an alert's text.
pub fn local_time(state: &State, property_id: &str, t: DateTime<Utc>) -> String {
    let tz: chrono_tz::Tz = state
        .chain
        .property(property_id)
        .and_then(|p| p.time_zone.parse().ok())
        .unwrap_or(chrono_tz::UTC);
    t.with_timezone(&tz)
        .format("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

pub struct Alert<'a> {
    pub key: String,
    pub kind: MessageKind,
    pub to: notify::StaffRecipient,
    pub urgency: Urgency,
    pub case_id: &'a str,
    pub task_id: &'a str,
    pub variables: Vec<(&'static str, String)>,
}

pub async fn send(state: &State, a: Alert<'_>) -> Sent {
    let Some(client) = &state.peers.notification else {
        tracing::warn!(kind = ?a.kind, "peers.notification is not set: staff alert not sent");
        return Sent::Ok(String::new());
    };
    let property_id = a.to.property_id.clone();
    let request = notify::SendMessageRequest {
        idempotency_key: a.key,
        message: Some(notify::MessageSpec {
            recipient: Some(notify::Recipient {
                kind: Some(notify::recipient::Kind::Staff(a.to)),
            }),
            kind: a.kind as i32,
            variables: a
                .variables
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            urgency: a.urgency as i32,
            property_id,
            case_id: a.case_id.to_string(),
            task_id: a.task_id.to_string(),
            ..Default::default()
        }),
    };
    let mut client = client.clone();
    let call = client.send_message(request);
    match tokio::time::timeout(state.timers.action_timeout.as_duration(), call).await {
        Err(_) => Sent::Retry("notification: timed out".into()),
        Ok(Ok(r)) => Sent::Ok(
            r.into_inner()
                .message
                .map(|m| m.message_id)
                .unwrap_or_default(),
        ),
        Ok(Err(s)) if permanent(s.code()) => {
            // A refused alert must not hold up the breach it reports; it is logged and
            // counted, and the breach event still reaches metrics.
            metrics::counter!("scheduler_alerts_refused_total").increment(1);
            tracing::warn!(code = ?s.code(), "notification refused a staff alert");
            Sent::Ok(String::new())
        }
        Ok(Err(s)) => Sent::Retry(format!("notification: {:?}", s.code())),
    }
}

pub fn permanent(code: Code) -> bool {
    matches!(
        code,
        Code::InvalidArgument
            | Code::NotFound
            | Code::PermissionDenied
            | Code::FailedPrecondition
            | Code::Unauthenticated
            | Code::Unimplemented
    )
}

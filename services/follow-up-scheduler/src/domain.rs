//! Requests parsed into domain types: a ScheduleTimer request becomes a NewTimer whose every
//! field is checked (violations name the request's fields).

use chrono::{DateTime, Utc};
use guestloop_config::ChainDirectory;
use guestloop_errors::{FieldViolations, parse};
use guestloop_proto::followup::v1::{self as pb, LatePolicy, TimerPurpose, timer_action};
pub use guestloop_proto::time::to_timestamp;
use prost::Message;

/// A timer to create or to replace the pending one with the same key.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTimer {
    pub key: String,
    pub purpose: TimerPurpose,
    pub property_id: String,
    pub guest_id: String,
    pub stay_id: String,
    pub case_id: String,
    /// Truncated to microseconds (what the database keeps).
    pub due_time: DateTime<Utc>,
    pub late_policy: LatePolicy,
    pub late_threshold_ms: i64,
    /// The encoded TimerAction; `None` for timers the scheduler keeps for itself.
    pub action: Option<Vec<u8>>,
    /// The clock or task a timer the scheduler keeps for itself belongs to.
    pub clock_id: Option<uuid::Uuid>,
    pub task_id: Option<uuid::Uuid>,
}

pub const MAX_KEY: usize = 200;

/// Key prefixes of the timers the scheduler keeps for itself.
pub const RESERVED_PREFIXES: [&str; 5] = ["stay/", "case/", "task/", "guest/", "review/"];

/// A request's or an event's instant, with a reason when it is none: years 1 to 9999 only
/// (`guestloop_proto::time::FIRST_SECOND`, why there).
pub fn timestamp(t: &prost_types::Timestamp) -> Result<DateTime<Utc>, String> {
    if !(0..1_000_000_000).contains(&t.nanos) {
        return Err("is not a valid timestamp".into());
    }
    guestloop_proto::time::from_timestamp(t)
        .ok_or_else(|| "is out of range (years 1 to 9999)".into())
}

pub fn to_duration_ms(ms: i64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// An event's calendar date, if it is a real one.
pub fn date(d: &guestloop_proto::common::v1::Date) -> Option<chrono::NaiveDate> {
    chrono::NaiveDate::from_ymd_opt(
        d.year,
        u32::try_from(d.month).ok()?,
        u32::try_from(d.day).ok()?,
    )
}

pub fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

pub fn parse_schedule(
    req: pb::ScheduleTimerRequest,
    chain: &ChainDirectory,
    default_late_threshold: std::time::Duration,
) -> Result<NewTimer, FieldViolations> {
    let mut v = FieldViolations::new();
    let Some(t) = req.timer else {
        return Err(FieldViolations::single("timer", "is required"));
    };
    let key = v.check("timer.key", parse::required_text(&t.key, MAX_KEY));
    if let Some(k) = &key
        && RESERVED_PREFIXES.iter().any(|p| k.starts_with(p))
    {
        // The scheduler's own plans, clocks and tasks live there; a caller's timer in that
        // namespace could pre-empt a guest's survey or probe for another property's stays.
        v.add(
            "timer.key",
            "stay/, case/, task/, guest/ and review/ keys are the scheduler's own",
        );
    }
    let property_id = v.check(
        "timer.property_id",
        parse::required_text(&t.property_id, 100),
    );
    if let Some(p) = &property_id
        && chain.property(p).is_none()
    {
        v.add("timer.property_id", "is not a property of the chain");
    }
    let purpose = match TimerPurpose::try_from(t.purpose) {
        Ok(TimerPurpose::Unspecified) => {
            v.add("timer.purpose", "is required");
            None
        }
        Ok(p) => Some(p),
        Err(_) => {
            v.add(
                "timer.purpose",
                format!("{} is not a timer purpose", t.purpose),
            );
            None
        }
    };
    let mut id = |field: &str, value: &str| -> String {
        v.check(field, parse::optional_text(value, 100))
            .flatten()
            .unwrap_or_default()
    };
    let guest_id = id("timer.guest_id", &t.guest_id);
    let stay_id = id("timer.stay_id", &t.stay_id);
    let case_id = id("timer.case_id", &t.case_id);
    let due_time = match &t.due_time {
        None => {
            v.add("timer.due_time", "is required");
            None
        }
        Some(ts) => v.check("timer.due_time", timestamp(ts)).map(micros),
    };
    let late_policy = match LatePolicy::try_from(t.late_policy) {
        // A late escalation is better than none: unspecified means FIRE.
        Ok(LatePolicy::Unspecified) => Some(LatePolicy::Fire),
        Ok(p) => Some(p),
        Err(_) => {
            v.add(
                "timer.late_policy",
                format!("{} is not a late policy", t.late_policy),
            );
            None
        }
    };
    let late_threshold_ms = match &t.late_threshold {
        None => Some(default_late_threshold.as_millis() as i64),
        Some(d) if d.seconds < 0 || d.nanos < 0 || (d.seconds == 0 && d.nanos == 0) => {
            v.add("timer.late_threshold", "must be positive");
            None
        }
        Some(d) if d.seconds > 366 * 86_400 => {
            v.add("timer.late_threshold", "must be at most a year");
            None
        }
        Some(d) => Some(d.seconds * 1000 + i64::from(d.nanos) / 1_000_000),
    };
    let action = match &t.action {
        None => None,
        Some(a) => {
            match &a.action {
                None => v.add("timer.action.action", "one of the actions is required"),
                Some(timer_action::Action::SendMessage(s)) => match &s.message {
                    None => v.add("timer.action.send_message.message", "is required"),
                    Some(m) => {
                        if !m.property_id.is_empty()
                            && property_id.as_deref().is_some_and(|p| p != m.property_id)
                        {
                            v.add(
                                "timer.action.send_message.message.property_id",
                                "must be the timer's property",
                            );
                        }
                    }
                },
                Some(timer_action::Action::CreateTask(_)) => {}
                Some(timer_action::Action::EscalateCase(e)) => {
                    if e.case_id.trim().is_empty() {
                        v.add("timer.action.escalate_case.case_id", "is required");
                    }
                }
            }
            Some(a.encode_to_vec())
        }
    };
    v.into_result(|| NewTimer {
        key: key.expect("checked"),
        purpose: purpose.expect("checked"),
        property_id: property_id.expect("checked"),
        guest_id,
        stay_id,
        case_id,
        due_time: due_time.expect("checked"),
        late_policy: late_policy.expect("checked"),
        late_threshold_ms: late_threshold_ms.expect("checked"),
        action,
        clock_id: None,
        task_id: None,
    })
}

/// What the worker does with a claimed timer, given how late it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LateDecision {
    /// On time (within its late threshold): run the action.
    OnTime,
    /// Late under FIRE: run the action, marked late.
    FireLate,
    /// Late under SKIP: do not run it; SKIPPED with reason "late".
    Skip,
    /// Late under ESCALATE: do not run it (a person decides); SKIPPED with reason
    /// "late: for the duty manager". The alert itself is not sent yet.
    Escalate,
}

pub fn late_decision(lateness_ms: i64, threshold_ms: i64, policy: LatePolicy) -> LateDecision {
    if lateness_ms <= threshold_ms {
        return LateDecision::OnTime;
    }
    match policy {
        LatePolicy::Skip => LateDecision::Skip,
        LatePolicy::Escalate => LateDecision::Escalate,
        LatePolicy::Fire | LatePolicy::Unspecified => LateDecision::FireLate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_policy_applies_only_beyond_the_threshold() {
        assert_eq!(
            late_decision(1000, 1000, LatePolicy::Skip),
            LateDecision::OnTime
        );
        assert_eq!(
            late_decision(1001, 1000, LatePolicy::Skip),
            LateDecision::Skip
        );
        assert_eq!(
            late_decision(1001, 1000, LatePolicy::Fire),
            LateDecision::FireLate
        );
        assert_eq!(
            late_decision(5000, 1000, LatePolicy::Escalate),
            LateDecision::Escalate
        );
    }

    #[test]
    fn durations_convert_both_ways() {
        let d = to_duration_ms(1500);
        assert_eq!((d.seconds, d.nanos), (1, 500_000_000));
    }
}

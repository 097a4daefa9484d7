//! Parsing list filters into store filters, limited to the caller's scope.

use crate::error::Result;
use crate::state::{Caller, State};
use crate::store::{cases, feedback};
use guestloop_errors::FieldViolations;
use guestloop_errors::parse::{known_enum, optional_text, uuid};
use guestloop_proto::common::v1::{Department, TimeRange, Urgency};
use guestloop_proto::feedback::v1 as pb;

fn enums<E: TryFrom<i32>>(field: &str, values: &[i32], v: &mut FieldViolations) -> Vec<i16> {
    values
        .iter()
        .enumerate()
        .filter_map(|(i, x)| {
            v.check(
                &format!("{field}[{i}]"),
                known_enum::<E>(*x).map(|_| *x as i16),
            )
        })
        .collect()
}

fn range(
    field: &str,
    r: Option<TimeRange>,
    v: &mut FieldViolations,
) -> (
    Option<chrono::DateTime<chrono::Utc>>,
    Option<chrono::DateTime<chrono::Utc>>,
) {
    let Some(r) = r else { return (None, None) };
    let from = r
        .start_time
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32));
    let to = r
        .end_time
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32));
    if let (Some(a), Some(b)) = (from, to)
        && b < a
    {
        v.add(format!("{field}.end_time"), "is before start_time");
    }
    (from, to)
}

fn opt_uuid(field: &str, s: &str, v: &mut FieldViolations) -> Option<uuid::Uuid> {
    if s.trim().is_empty() {
        None
    } else {
        v.check(field, uuid(s))
    }
}

pub fn feedback(
    state: &State,
    caller: &Caller,
    f: &pb::FeedbackFilter,
) -> Result<feedback::Filter> {
    let mut v = FieldViolations::new();
    let (from, to) = range("filter.receive_time_range", f.receive_time_range, &mut v);
    let out = feedback::Filter {
        properties: state.scope(caller, &f.property_ids, &f.region_id),
        channels: enums::<pb::FeedbackChannel>("filter.channels", &f.channels, &mut v),
        categories: enums::<pb::Category>("filter.categories", &f.categories, &mut v),
        sentiments: enums::<pb::Sentiment>("filter.sentiments", &f.sentiments, &mut v),
        guest_id: opt_uuid("filter.guest_id", &f.guest_id, &mut v),
        stay_id: opt_uuid("filter.stay_id", &f.stay_id, &mut v),
        from,
        to,
        has_case: f.has_case,
        replied: f.replied,
        low_score: f.low_score,
        ota_sites: enums::<pb::OtaSite>("filter.ota_sites", &f.ota_sites, &mut v),
        language: v
            .check("filter.language", optional_text(&f.language, 8))
            .flatten(),
        staff_id: v
            .check("filter.staff_id", optional_text(&f.staff_id, 64))
            .flatten(),
        query: None,
    };
    v.into_result(|| out).map_err(Into::into)
}

pub fn case(state: &State, caller: &Caller, f: &pb::CaseFilter) -> Result<cases::Filter> {
    let mut v = FieldViolations::new();
    let (from, to) = range("filter.open_time_range", f.open_time_range, &mut v);
    let out = cases::Filter {
        properties: state.scope(caller, &f.property_ids, &f.region_id),
        statuses: enums::<pb::CaseStatus>("filter.statuses", &f.statuses, &mut v),
        categories: enums::<pb::Category>("filter.categories", &f.categories, &mut v),
        channels: enums::<pb::FeedbackChannel>("filter.channels", &f.channels, &mut v),
        grades: enums::<pb::RiskGrade>("filter.risk_grades", &f.risk_grades, &mut v),
        urgencies: enums::<Urgency>("filter.urgencies", &f.urgencies, &mut v),
        departments: enums::<Department>("filter.departments", &f.departments, &mut v),
        tiers: enums::<pb::EscalationTier>("filter.escalation_tiers", &f.escalation_tiers, &mut v),
        assignee_id: v
            .check("filter.assignee_id", optional_text(&f.assignee_id, 64))
            .flatten(),
        unassigned: f.unassigned,
        overdue: f.overdue,
        repeat: f.repeat,
        incident_id: opt_uuid("filter.incident_id", &f.incident_id, &mut v),
        guest_id: opt_uuid("filter.guest_id", &f.guest_id, &mut v),
        from,
        to,
        query: None,
    };
    v.into_result(|| out).map_err(Into::into)
}

//! Stored rows to API and event messages.

use crate::store::cases::CaseRow;
use crate::store::decode_list;
use crate::store::feedback::FeedbackRow;
use crate::store::incidents::IncidentRow;
use chrono::{DateTime, Utc};
use guestloop_proto::common::v1::Money;
use guestloop_proto::events::v1::CaseFacts;
use guestloop_proto::feedback::v1 as pb;
use prost::Message;
use uuid::Uuid;

pub fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

fn opt_id(id: Option<Uuid>) -> String {
    id.map(|i| i.to_string()).unwrap_or_default()
}

pub fn feedback(r: &FeedbackRow) -> pb::Feedback {
    pb::Feedback {
        feedback_id: r.id.to_string(),
        property_id: r.property_id.clone(),
        channel: i32::from(r.channel),
        source: r.source.clone(),
        external_id: r.external_id.clone().unwrap_or_default(),
        guest_id: opt_id(r.guest_id),
        guest_match: i32::from(r.guest_match),
        stay_id: opt_id(r.stay_id),
        receive_time: Some(ts(r.receive_time)),
        language: r.language.clone(),
        text: r.text.clone(),
        category: i32::from(r.category),
        category_source: i32::from(r.category_source),
        sentiment: i32::from(r.sentiment),
        sentiment_source: i32::from(r.sentiment_source),
        staff_mentions: r
            .staff_mentions
            .as_deref()
            .map(decode_list)
            .unwrap_or_default(),
        ota_review: r
            .ota_review
            .as_deref()
            .and_then(|b| pb::OtaReview::decode(b).ok()),
        survey: r
            .survey
            .as_deref()
            .and_then(|b| pb::SurveyAnswers::decode(b).ok()),
        tags: r.tags.clone(),
        case_id: opt_id(r.case_id),
        reply_time: r.reply_time.map(ts),
        submitted_by: r.submitted_by.clone(),
        create_time: Some(ts(r.create_time)),
        update_time: Some(ts(r.update_time)),
    }
}

pub fn money(totals: &std::collections::BTreeMap<String, i64>) -> Vec<Money> {
    totals
        .iter()
        .map(|(c, a)| Money {
            currency_code: c.clone(),
            amount_minor: *a,
        })
        .collect()
}

/// Whether a due time has passed before what it asks for.
pub fn overdue(c: &CaseRow, now: DateTime<Utc>) -> bool {
    let open = !matches!(
        pb::CaseStatus::try_from(i32::from(c.status)),
        Ok(pb::CaseStatus::Resolved | pb::CaseStatus::Closed)
    );
    (c.acknowledge_time.is_none() && c.first_response_due < now)
        || (open && c.paused_since.is_none() && c.resolution_due < now)
}

pub fn case(c: &CaseRow, feedback_ids: &[Uuid]) -> pb::Case {
    pb::Case {
        case_id: c.id.to_string(),
        reference: c.reference.clone(),
        property_id: c.property_id.clone(),
        feedback_ids: feedback_ids.iter().map(Uuid::to_string).collect(),
        guest_id: opt_id(c.guest_id),
        stay_id: opt_id(c.stay_id),
        channel: i32::from(c.channel),
        title: c.title.clone(),
        description: c.description.clone(),
        category: i32::from(c.category),
        risk_grade: i32::from(c.risk_grade),
        grade_overridden: c.grade_overridden,
        grade_reason: c.grade_reason.clone(),
        urgency: i32::from(c.urgency),
        department: i32::from(c.department),
        assignee_id: c.assignee_id.clone().unwrap_or_default(),
        status: i32::from(c.status),
        escalation_tier: i32::from(c.escalation_tier),
        open_reason: i32::from(c.open_reason),
        repeat: c.repeat,
        repeat_of_case_ids: c.repeat_of.iter().map(Uuid::to_string).collect(),
        incident_id: opt_id(c.incident_id),
        guest_tier: i32::from(c.guest_tier),
        first_response_due_time: Some(ts(c.first_response_due)),
        resolution_due_time: Some(ts(c.resolution_due)),
        overdue: overdue(c, Utc::now()),
        open_time: Some(ts(c.open_time)),
        acknowledge_time: c.acknowledge_time.map(ts),
        resolve_time: c.resolve_time.map(ts),
        close_time: c.close_time.map(ts),
        reopen_count: c.reopen_count,
        compensation_total: money(&c.compensation.0),
        update_time: Some(ts(c.update_time)),
        version: c.version,
    }
}

/// The facts every case event carries: no free text, no contact data.
pub fn facts(c: &CaseRow) -> CaseFacts {
    CaseFacts {
        case_id: c.id.to_string(),
        reference: c.reference.clone(),
        property_id: c.property_id.clone(),
        guest_id: opt_id(c.guest_id),
        stay_id: opt_id(c.stay_id),
        origin_feedback_id: c.origin_feedback_id.to_string(),
        channel: i32::from(c.channel),
        category: i32::from(c.category),
        risk_grade: i32::from(c.risk_grade),
        urgency: i32::from(c.urgency),
        department: i32::from(c.department),
        status: i32::from(c.status),
        escalation_tier: i32::from(c.escalation_tier),
        assignee_id: c.assignee_id.clone().unwrap_or_default(),
        open_reason: i32::from(c.open_reason),
        repeat: c.repeat,
        incident_id: opt_id(c.incident_id),
        guest_tier: i32::from(c.guest_tier),
        open_time: Some(ts(c.open_time)),
        first_response_due_time: Some(ts(c.first_response_due)),
        resolution_due_time: Some(ts(c.resolution_due)),
        acknowledge_time: c.acknowledge_time.map(ts),
        resolve_time: c.resolve_time.map(ts),
        close_time: c.close_time.map(ts),
        reopen_count: c.reopen_count,
        compensation_total: money(&c.compensation.0),
        version: c.version,
    }
}

pub fn incident(i: &IncidentRow) -> pb::Incident {
    pb::Incident {
        incident_id: i.id.to_string(),
        property_id: i.property_id.clone(),
        title: i.title.clone(),
        description: i.description.clone(),
        category: i32::from(i.category),
        department: i32::from(i.department),
        start_time: i.start_time.map(ts),
        resolve_time: i.resolve_time.map(ts),
        case_count: i.case_count as i32,
        created_by: i.created_by.clone(),
        create_time: Some(ts(i.create_time)),
    }
}

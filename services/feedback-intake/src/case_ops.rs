//! Opening a case and recording every later change the same way: the case row rewritten
//! with its version raised, one case event appended, one outbox event for the other
//! services, and a notification for queue watchers — all in the caller's transaction.

use crate::convert;
use crate::domain::rules;
use crate::domain::submission::CaseInput;
use crate::error::Result;
use crate::state::{Caller, State};
use crate::store::cases::{self as store, CaseRow};
use crate::store::events;
use crate::store::feedback::FeedbackRow;
use chrono::{DateTime, Utc};
use guestloop_outbox::NewEvent;
use guestloop_proto::common::v1::{Department, Urgency};
use guestloop_proto::events::v1::{CaseOpened, event_envelope::Payload};
use guestloop_proto::feedback::v1 as pb;
use guestloop_proto::guestprofile::v1::Tier;
use sqlx::PgConnection;
use uuid::Uuid;

pub const SOURCE: &str = "feedback-intake";

/// Who made a change: a caller, or the intake rules.
#[derive(Debug, Clone)]
pub struct Actor {
    pub subject: String,
    pub role: String,
}

impl Actor {
    pub fn of(caller: &Caller) -> Self {
        Self {
            subject: caller.subject().to_string(),
            role: caller.role().to_string(),
        }
    }
}

fn title_from(text: &str, reason: pb::CaseOpenReason) -> String {
    let t: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(80)
        .collect();
    if !t.is_empty() {
        return t;
    }
    match reason {
        pb::CaseOpenReason::LowSurveyScore => "Low survey score".into(),
        pb::CaseOpenReason::NegativeReview => "Negative review".into(),
        _ => "Complaint".into(),
    }
}

/// Opens case `id` for `feedback` and links it.
#[allow(clippy::too_many_arguments)]
pub async fn open(
    conn: &mut PgConnection,
    state: &State,
    id: Uuid,
    actor: &Actor,
    feedback: &FeedbackRow,
    input: CaseInput,
    reason: pb::CaseOpenReason,
    tier: Tier,
) -> Result<CaseRow> {
    let standards = state.standards_at(&feedback.property_id);
    let category = input
        .category
        .or_else(|| pb::Category::try_from(i32::from(feedback.category)).ok())
        .filter(|c| *c != pb::Category::Unspecified)
        .unwrap_or(pb::Category::Other);
    let channel = pb::FeedbackChannel::try_from(i32::from(feedback.channel))
        .unwrap_or(pb::FeedbackChannel::Unspecified);
    let words = format!(
        "{} {}",
        feedback.text,
        input.description.as_deref().unwrap_or("")
    );
    let urgency = input
        .urgency
        .unwrap_or_else(|| rules::default_urgency(category, channel, &words));
    let department = input
        .department
        .unwrap_or_else(|| rules::default_department(category));
    let open_time = feedback.receive_time;
    let repeat_of = match feedback.guest_id {
        Some(g) => {
            let window =
                chrono::Duration::from_std(standards.repeat_complaint_window.as_duration())
                    .unwrap_or_default();
            store::earlier_of_guest(
                &mut *conn,
                g,
                category as i16,
                open_time - window,
                open_time,
            )
            .await?
        }
        None => Vec::new(),
    };
    let (grade, grade_reason) = rules::grade(
        category,
        urgency,
        &words,
        state.chain.is_vip(tier as i32),
        repeat_of.len(),
    );
    // Negative feedback and high-risk cases start with the customer-service manager.
    let negative = !matches!(
        reason,
        pb::CaseOpenReason::Complaint | pb::CaseOpenReason::Staff
    );
    let escalation_tier = if negative || grade == pb::RiskGrade::High {
        pb::EscalationTier::CustomerServiceManager
    } else {
        pb::EscalationTier::FrontLine
    };
    let first_response = if matches!(urgency, Urgency::Urgent | Urgency::Emergency) {
        standards.first_response_urgent
    } else {
        standards.first_response_normal
    };
    let dur = |s: guestloop_config::Seconds| {
        chrono::Duration::from_std(s.as_duration()).unwrap_or_default()
    };
    // A complaint from the hotel's old log is recorded as it was handled: closed at its
    // resolve time, so the scheduler stops its clocks where they stood and alerts nobody.
    let past = input.past.clone();
    let row = CaseRow {
        id,
        reference: store::next_reference(conn, &feedback.property_id, open_time).await?,
        property_id: feedback.property_id.clone(),
        origin_feedback_id: feedback.id,
        guest_id: feedback.guest_id,
        stay_id: feedback.stay_id,
        channel: feedback.channel,
        title: input
            .title
            .unwrap_or_else(|| title_from(&feedback.text, reason)),
        description: input.description.unwrap_or_default(),
        category: category as i16,
        risk_grade: grade as i16,
        grade_overridden: false,
        grade_reason,
        urgency: urgency as i16,
        department: department as i16,
        assignee_id: input.assignee_id,
        status: if past.is_some() {
            pb::CaseStatus::Closed as i16
        } else {
            pb::CaseStatus::Received as i16
        },
        escalation_tier: escalation_tier as i16,
        open_reason: reason as i16,
        repeat: !repeat_of.is_empty(),
        repeat_of,
        incident_id: None,
        guest_tier: tier as i16,
        open_time,
        first_response_due: open_time + dur(first_response),
        resolution_due: open_time + dur(standards.resolution),
        paused_since: None,
        acknowledge_time: past.as_ref().map(|p| p.acknowledge_time),
        resolve_time: past.as_ref().map(|p| p.resolve_time),
        close_time: past.as_ref().map(|p| p.resolve_time),
        reopen_count: 0,
        compensation: sqlx::types::Json(Default::default()),
        version: 1,
        update_time: Utc::now(),
    };
    // A case opened by a record already past the case-note period (a historical import)
    // keeps no words, as the retention job would leave it.
    let row = crate::retention::expire_case_on_arrival(state, row);
    let row = store::insert(conn, &row).await?;
    crate::store::feedback::set_case(conn, feedback.id, row.id).await?;
    let mut event = new_event(&row, pb::CaseEventKind::Opened, actor, Utc::now());
    event.feedback_id = feedback.id.to_string();
    event.to_status = row.status.into();
    event.risk_grade = row.risk_grade.into();
    event.category = row.category.into();
    event.urgency = row.urgency.into();
    event.department = row.department.into();
    event.to_tier = row.escalation_tier.into();
    event.reason = row.grade_reason.clone();
    if let Some(p) = &past
        && !crate::retention::case_notes_expired(state, &row.property_id, row.open_time)
    {
        event.note = p.resolution.clone().unwrap_or_default();
    }
    events::append(conn, &event, None).await?;
    emit(
        conn,
        &row,
        Payload::CaseOpened(CaseOpened {
            case: Some(convert::facts(&row)),
            feedback_id: feedback.id.to_string(),
        }),
    )
    .await?;
    store::notify_change(conn, &row.property_id, row.id).await?;
    Ok(row)
}

/// A case event for `case` at its current version.
pub fn new_event(
    case: &CaseRow,
    kind: pb::CaseEventKind,
    actor: &Actor,
    at: DateTime<Utc>,
) -> pb::CaseEvent {
    pb::CaseEvent {
        case_event_id: Uuid::now_v7().to_string(),
        case_id: case.id.to_string(),
        sequence: case.version,
        kind: kind as i32,
        actor: actor.subject.clone(),
        actor_role: actor.role.clone(),
        event_time: Some(convert::ts(at)),
        ..Default::default()
    }
}

/// Records a change already made to `case` in memory: raises the version, writes the row,
/// appends `event` (its sequence set here), emits `payload` built from the new facts, and
/// tells queue watchers.
pub async fn record(
    conn: &mut PgConnection,
    mut case: CaseRow,
    mut event: pb::CaseEvent,
    idempotency_key: Option<&str>,
    payload: impl FnOnce(&CaseRow) -> Option<Payload>,
) -> Result<(CaseRow, pb::CaseEvent)> {
    case.version += 1;
    event.sequence = case.version;
    let case = store::update(conn, &case).await?;
    events::append(conn, &event, idempotency_key).await?;
    if let Some(p) = payload(&case) {
        emit(conn, &case, p).await?;
    }
    store::notify_change(conn, &case.property_id, case.id).await?;
    Ok((case, event))
}

pub async fn emit(conn: &mut PgConnection, case: &CaseRow, payload: Payload) -> Result<()> {
    guestloop_outbox::enqueue(
        conn,
        SOURCE,
        NewEvent {
            aggregate_type: "case",
            aggregate_id: case.id.to_string(),
            property_id: case.property_id.clone(),
            payload,
        },
    )
    .await?;
    Ok(())
}

pub fn status(c: &CaseRow) -> pb::CaseStatus {
    pb::CaseStatus::try_from(i32::from(c.status)).unwrap_or(pb::CaseStatus::Unspecified)
}

pub fn tier(c: &CaseRow) -> pb::EscalationTier {
    pb::EscalationTier::try_from(i32::from(c.escalation_tier))
        .unwrap_or(pb::EscalationTier::Unspecified)
}

pub fn department(c: &CaseRow) -> Department {
    Department::try_from(i32::from(c.department)).unwrap_or(Department::Unspecified)
}

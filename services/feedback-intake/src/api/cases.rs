//! Case RPCs: open by hand, read, list, search, and every change of a case's life. Each
//! change locks the case, checks `expected_version`, and goes through `case_ops::record`.

use super::filters;
use super::intake::{emit_replied, visible_feedback};
use crate::case_ops::{self, Actor, department, new_event, record, status, tier};
use crate::convert;
use crate::domain::lifecycle::{can_move, is_open, next_tier};
use crate::domain::rules;
use crate::domain::submission::case_input;
use crate::error::{FeedbackError, Result, invalid};
use crate::state::{Caller, State};
use crate::store::cases::{self as store, CaseRow, Order};
use crate::store::{events, feedback as feedback_store};
use chrono::Utc;
use guestloop_auth::Role;
use guestloop_db::page::BoundOffset;
use guestloop_errors::FieldViolations;
use guestloop_errors::parse::{known_enum, optional_text, required_text};
use guestloop_proto::common::v1::{ContactChannel, Department, Urgency};
use guestloop_proto::events::v1::{
    CaseActionRecorded, CaseAssigned, CaseEscalated, CaseRegraded, CaseStatusChanged,
    event_envelope::Payload,
};
use guestloop_proto::feedback::v1 as pb;
use guestloop_proto::guestprofile::v1::Tier;
use prost::Message;
use sqlx::PgConnection;
use uuid::Uuid;

/// The case, if the caller may see it; NOT_FOUND otherwise.
pub async fn visible_case(
    state: &State,
    caller: &Caller,
    conn: &mut PgConnection,
    id: &str,
    for_update: bool,
) -> Result<CaseRow> {
    let id = required_text(id, 64).map_err(|e| invalid("case_id", e))?;
    let case = store::get(&mut *conn, &id, for_update)
        .await?
        .ok_or(FeedbackError::NotFound("case"))?;
    if !caller.sees(state, &case.property_id) {
        return Err(FeedbackError::NotFound("case"));
    }
    tracing::Span::current().record("property_id", case.property_id.as_str());
    Ok(case)
}

async fn message(conn: &mut PgConnection, case: &CaseRow) -> Result<pb::Case> {
    let ids = feedback_store::ids_of_case(conn, case.id).await?;
    Ok(convert::case(case, &ids))
}

fn check_version(case: &CaseRow, expected: i64) -> Result<()> {
    if expected != 0 && expected != case.version {
        return Err(FeedbackError::Aborted {
            expected,
            actual: case.version,
        });
    }
    Ok(())
}

fn specified<E: TryFrom<i32> + PartialEq + Copy>(
    value: i32,
    unspecified: E,
) -> std::result::Result<Option<E>, String> {
    let e: E = known_enum(value)?;
    Ok((e != unspecified).then_some(e))
}

fn compensation(c: Option<pb::Compensation>, v: &mut FieldViolations) -> Option<pb::Compensation> {
    let c = c?;
    v.check(
        "compensation.kind",
        specified(c.kind, pb::CompensationKind::Unspecified)
            .and_then(|k| k.ok_or_else(|| "is required".to_string())),
    );
    v.check(
        "compensation.description",
        optional_text(&c.description, 500),
    );
    if let Some(m) = &c.value {
        if m.currency_code.len() != 3 || !m.currency_code.chars().all(|ch| ch.is_ascii_uppercase())
        {
            v.add(
                "compensation.value.currency_code",
                "is not an ISO 4217 code",
            );
        }
        if m.amount_minor < 0 {
            v.add("compensation.value.amount_minor", "must not be negative");
        }
    }
    Some(c)
}

fn add_compensation(case: &mut CaseRow, c: &Option<pb::Compensation>) {
    if let Some(m) = c.as_ref().and_then(|c| c.value.as_ref()) {
        *case
            .compensation
            .0
            .entry(m.currency_code.clone())
            .or_insert(0) += m.amount_minor;
    }
}

pub async fn open(
    state: &State,
    caller: &Caller,
    req: pb::OpenCaseRequest,
) -> Result<pb::OpenCaseResponse> {
    let mut v = FieldViolations::new();
    let input = case_input(req.details.unwrap_or_default(), "details", &mut v);
    if input.past.is_some() {
        v.add(
            "details.past",
            "only ImportFeedback records a complaint handled in the past",
        );
    }
    v.check("idempotency_key", optional_text(&req.idempotency_key, 128));
    if !v.is_empty() {
        return Err(v.into());
    }
    let mut tx = state.pool.begin().await?;
    let fb = visible_feedback(
        state,
        caller,
        "feedback_id",
        &req.feedback_id,
        true,
        &mut tx,
    )
    .await?;
    if let Some(existing) = fb.case_id {
        let case = store::get(&mut *tx, &existing.to_string(), false)
            .await?
            .ok_or(FeedbackError::NotFound("case"))?;
        let msg = message(&mut tx, &case).await?;
        return Ok(pb::OpenCaseResponse {
            case: Some(msg),
            created: false,
        });
    }
    let tier = Tier::try_from(i32::from(fb.guest_tier)).unwrap_or(Tier::Unspecified);
    let case = case_ops::open(
        &mut tx,
        state,
        Uuid::now_v7(),
        &Actor::of(caller),
        &fb,
        input,
        pb::CaseOpenReason::Staff,
        tier,
    )
    .await?;
    let msg = message(&mut tx, &case).await?;
    tx.commit().await?;
    Ok(pb::OpenCaseResponse {
        case: Some(msg),
        created: true,
    })
}

pub async fn get(
    state: &State,
    caller: &Caller,
    req: pb::GetCaseRequest,
) -> Result<pb::GetCaseResponse> {
    let mut conn = state.pool.acquire().await?;
    let case = visible_case(state, caller, &mut conn, &req.case_id, false).await?;
    Ok(pb::GetCaseResponse {
        case: Some(message(&mut conn, &case).await?),
    })
}

async fn page_of(
    state: &State,
    caller: &Caller,
    filter: Option<pb::CaseFilter>,
    order: Order,
    query: Option<String>,
    page: Option<guestloop_proto::common::v1::PageRequest>,
) -> Result<(Vec<pb::Case>, String)> {
    let filter = filter.unwrap_or_default();
    let binding = guestloop_db::page::binding_of(
        &[
            filter.encode_to_vec(),
            format!("{order:?}").into_bytes(),
            query.clone().unwrap_or_default().into_bytes(),
        ]
        .concat(),
    );
    let mut f = filters::case(state, caller, &filter)?;
    f.query = query;
    let p = page.unwrap_or_default();
    let (size, offset) =
        BoundOffset::parse(p.page_size, &p.page_token, binding).map_err(|(k, e)| invalid(k, e))?;
    let mut conn = state.pool.acquire().await?;
    let rows = store::list(&mut *conn, &f, order, size, offset).await?;
    let mut cases = Vec::with_capacity(rows.len());
    for r in &rows {
        cases.push(message(&mut conn, r).await?);
    }
    Ok((
        cases,
        BoundOffset::next_token(size, offset, rows.len(), binding),
    ))
}

pub async fn list(
    state: &State,
    caller: &Caller,
    req: pb::ListCasesRequest,
) -> Result<pb::ListCasesResponse> {
    let order =
        match known_enum::<pb::CaseOrder>(req.order_by).map_err(|e| invalid("order_by", e))? {
            pb::CaseOrder::Unspecified | pb::CaseOrder::OpenTimeDesc => Order::OpenTimeDesc,
            pb::CaseOrder::OpenTimeAsc => Order::OpenTimeAsc,
            pb::CaseOrder::DueTimeAsc => Order::DueTimeAsc,
            pb::CaseOrder::UpdateTimeDesc => Order::UpdateTimeDesc,
            pb::CaseOrder::Priority => Order::Priority,
        };
    let (cases, next_page_token) =
        page_of(state, caller, req.filter, order, None, req.page).await?;
    Ok(pb::ListCasesResponse {
        cases,
        next_page_token,
    })
}

pub async fn search(
    state: &State,
    caller: &Caller,
    req: pb::SearchCasesRequest,
) -> Result<pb::SearchCasesResponse> {
    let query = required_text(&req.query, 200).map_err(|e| invalid("query", e))?;
    let (cases, next_page_token) = page_of(
        state,
        caller,
        req.filter,
        Order::Relevance,
        Some(query),
        req.page,
    )
    .await?;
    Ok(pb::SearchCasesResponse {
        cases,
        next_page_token,
    })
}

/// Answers an idempotent retry with the case and the event the first call appended.
async fn replayed(
    conn: &mut PgConnection,
    case: &CaseRow,
    key: Option<&str>,
) -> Result<Option<(pb::Case, pb::CaseEvent)>> {
    let Some(key) = key else { return Ok(None) };
    match events::by_idempotency(&mut *conn, case.id, key).await? {
        Some(event) => Ok(Some((message(conn, case).await?, event))),
        None => Ok(None),
    }
}

pub async fn transition(
    state: &State,
    caller: &Caller,
    req: pb::TransitionCaseRequest,
) -> Result<pb::TransitionCaseResponse> {
    let mut v = FieldViolations::new();
    let to = v.check(
        "to_status",
        specified(req.to_status, pb::CaseStatus::Unspecified)
            .and_then(|s| s.ok_or_else(|| "is required".to_string())),
    );
    let reason = v.check("reason", optional_text(&req.reason, 500)).flatten();
    let note = v.check("note", optional_text(&req.note, 4000)).flatten();
    let channel = v.check(
        "contact_channel",
        known_enum::<ContactChannel>(req.contact_channel),
    );
    let comp = compensation(req.compensation, &mut v);
    let key = v
        .check("idempotency_key", optional_text(&req.idempotency_key, 128))
        .flatten();
    if to == Some(pb::CaseStatus::Reopened) && reason.is_none() {
        v.add("reason", "is required to reopen a case");
    }
    if to == Some(pb::CaseStatus::Closed) && reason.is_none() && !req.guest_contacted {
        v.add(
            "reason",
            "is required to close a case without the guest's confirmation",
        );
    }
    if !v.is_empty() {
        return Err(v.into());
    }
    let to = to.expect("checked");
    let mut tx = state.pool.begin().await?;
    let mut case = visible_case(state, caller, &mut tx, &req.case_id, true).await?;
    if let Some((case, event)) = replayed(&mut tx, &case, key.as_deref()).await? {
        return Ok(pb::TransitionCaseResponse {
            case: Some(case),
            event: Some(event),
        });
    }
    check_version(&case, req.expected_version)?;
    let from = status(&case);
    if !can_move(from, to) {
        return Err(FeedbackError::FailedPrecondition(format!(
            "a case cannot move from {} to {}",
            from.as_str_name(),
            to.as_str_name()
        )));
    }
    let now = Utc::now();
    // Leaving WAITING_FOR_GUEST: the resolution clock moves on by the time spent waiting.
    if let Some(since) = case.paused_since.take() {
        case.resolution_due += now - since;
    }
    match to {
        pb::CaseStatus::Acknowledged => {
            case.acknowledge_time.get_or_insert(now);
        }
        pb::CaseStatus::WaitingForGuest => case.paused_since = Some(now),
        pb::CaseStatus::Resolved => case.resolve_time = Some(now),
        pb::CaseStatus::Closed => case.close_time = Some(now),
        pb::CaseStatus::Reopened => {
            case.reopen_count += 1;
            let resolution = state
                .standards_at(&case.property_id)
                .resolution
                .as_duration();
            case.resolution_due = now + chrono::Duration::from_std(resolution).unwrap_or_default();
        }
        _ => {}
    }
    case.status = to as i16;
    add_compensation(&mut case, &comp);
    let actor = Actor::of(caller);
    let mut event = new_event(&case, pb::CaseEventKind::StatusChanged, &actor, now);
    event.from_status = from as i32;
    event.to_status = to as i32;
    event.reason = reason.unwrap_or_default();
    event.note = note.unwrap_or_default();
    event.guest_contacted = req.guest_contacted;
    event.contact_channel = channel.map_or(0, |c| c as i32);
    event.compensation = comp.clone();
    let (case, event) = record(&mut tx, case, event, key.as_deref(), |c| {
        Some(Payload::CaseStatusChanged(CaseStatusChanged {
            case: Some(convert::facts(c)),
            from_status: from as i32,
            to_status: to as i32,
            change_time: Some(convert::ts(now)),
            guest_contacted: req.guest_contacted,
            compensation_kind: comp.as_ref().map_or(0, |c| c.kind),
            compensation_value: comp.as_ref().and_then(|c| c.value.clone()),
            actor_role: actor.role.clone(),
        }))
    })
    .await?;
    // The first response answers the case's feedback.
    if to == pb::CaseStatus::Acknowledged {
        for id in feedback_store::unreplied_of_case(&mut *tx, case.id).await? {
            let (row, first) = feedback_store::set_reply(&mut tx, id, now).await?;
            if first {
                emit_replied(&mut tx, &row, pb::FeedbackReplyKind::Unspecified).await?;
            }
        }
    }
    let msg = message(&mut tx, &case).await?;
    tx.commit().await?;
    Ok(pb::TransitionCaseResponse {
        case: Some(msg),
        event: Some(event),
    })
}

pub async fn assign(
    state: &State,
    caller: &Caller,
    req: pb::AssignCaseRequest,
) -> Result<pb::AssignCaseResponse> {
    let mut v = FieldViolations::new();
    let assignee = v
        .check("assignee_id", optional_text(&req.assignee_id, 64))
        .flatten();
    let dept = v
        .check(
            "department",
            specified(req.department, Department::Unspecified),
        )
        .flatten();
    let reason = v.check("reason", optional_text(&req.reason, 500)).flatten();
    if !v.is_empty() {
        return Err(v.into());
    }
    let mut tx = state.pool.begin().await?;
    let mut case = visible_case(state, caller, &mut tx, &req.case_id, true).await?;
    check_version(&case, req.expected_version)?;
    let (previous_assignee, previous_department) = (case.assignee_id.clone(), department(&case));
    case.assignee_id = assignee.clone();
    if let Some(d) = dept {
        case.department = d as i16;
    }
    let now = Utc::now();
    let mut event = new_event(&case, pb::CaseEventKind::Assigned, &Actor::of(caller), now);
    event.previous_assignee_id = previous_assignee.clone().unwrap_or_default();
    event.assignee_id = assignee.unwrap_or_default();
    event.previous_department = previous_department as i32;
    event.department = i32::from(case.department);
    event.reason = reason.unwrap_or_default();
    let (case, event) = record(&mut tx, case, event, None, |c| {
        Some(Payload::CaseAssigned(CaseAssigned {
            case: Some(convert::facts(c)),
            previous_assignee_id: previous_assignee.unwrap_or_default(),
            previous_department: previous_department as i32,
            assign_time: Some(convert::ts(now)),
        }))
    })
    .await?;
    let msg = message(&mut tx, &case).await?;
    tx.commit().await?;
    Ok(pb::AssignCaseResponse {
        case: Some(msg),
        event: Some(event),
    })
}

fn regraded(
    c: &CaseRow,
    prev: (i32, i32, i32),
    by_staff: bool,
    at: chrono::DateTime<Utc>,
) -> Option<Payload> {
    Some(Payload::CaseRegraded(CaseRegraded {
        case: Some(convert::facts(c)),
        previous_risk_grade: prev.0,
        previous_category: prev.1,
        previous_urgency: prev.2,
        by_staff,
        regrade_time: Some(convert::ts(at)),
    }))
}

/// The rules' grade of the case as it stands (its category, urgency, guest tier and
/// repeats) on the words they graded when it opened (case_ops::open): the guest's text and
/// staff's description, not the title staff may have typed.
async fn rules_grade(
    state: &State,
    conn: &mut PgConnection,
    case: &CaseRow,
) -> Result<(pb::RiskGrade, String)> {
    let category = pb::Category::try_from(i32::from(case.category)).unwrap_or(pb::Category::Other);
    let urgency = Urgency::try_from(i32::from(case.urgency)).unwrap_or(Urgency::Normal);
    let origin = feedback_store::get(&mut *conn, case.origin_feedback_id, false).await?;
    let text = format!(
        "{} {}",
        origin.map(|f| f.text).unwrap_or_default(),
        case.description
    );
    Ok(rules::grade(
        category,
        urgency,
        &text,
        state.chain.is_vip(i32::from(case.guest_tier)),
        case.repeat_of.len(),
    ))
}

pub async fn set_grade(
    state: &State,
    caller: &Caller,
    req: pb::SetCaseGradeRequest,
) -> Result<pb::SetCaseGradeResponse> {
    let mut v = FieldViolations::new();
    let reason = v.check("reason", required_text(&req.reason, 500));
    let grade = if req.clear_override {
        None
    } else {
        v.check(
            "risk_grade",
            specified(req.risk_grade, pb::RiskGrade::Unspecified)
                .and_then(|g| g.ok_or_else(|| "is required".to_string())),
        )
    };
    if !v.is_empty() {
        return Err(v.into());
    }
    let mut tx = state.pool.begin().await?;
    let mut case = visible_case(state, caller, &mut tx, &req.case_id, true).await?;
    check_version(&case, req.expected_version)?;
    let prev = (
        i32::from(case.risk_grade),
        i32::from(case.category),
        i32::from(case.urgency),
    );
    let reason = reason.expect("checked");
    match grade {
        Some(g) => {
            case.risk_grade = g as i16;
            case.grade_overridden = true;
            case.grade_reason = format!("set by staff: {reason}");
        }
        None => {
            let (g, why) = rules_grade(state, &mut tx, &case).await?;
            case.risk_grade = g as i16;
            case.grade_overridden = false;
            case.grade_reason = why;
        }
    }
    let now = Utc::now();
    let mut event = new_event(&case, pb::CaseEventKind::GradeSet, &Actor::of(caller), now);
    event.previous_risk_grade = prev.0;
    event.risk_grade = i32::from(case.risk_grade);
    event.reason = reason;
    let (case, event) =
        record(&mut tx, case, event, None, |c| regraded(c, prev, true, now)).await?;
    let msg = message(&mut tx, &case).await?;
    tx.commit().await?;
    Ok(pb::SetCaseGradeResponse {
        case: Some(msg),
        event: Some(event),
    })
}

pub async fn reclassify(
    state: &State,
    caller: &Caller,
    req: pb::ReclassifyCaseRequest,
) -> Result<pb::ReclassifyCaseResponse> {
    let mut v = FieldViolations::new();
    let reason = v.check("reason", required_text(&req.reason, 500));
    let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
    if paths.is_empty() {
        v.add(
            "update_mask",
            "name at least one of category, urgency, department",
        );
    }
    let mut category = None;
    let mut urgency = None;
    let mut dept = None;
    for (i, p) in paths.iter().enumerate() {
        match p.as_str() {
            "category" => {
                category = v.check(
                    "category",
                    specified(req.category, pb::Category::Unspecified)
                        .and_then(|c| c.ok_or_else(|| "is required".to_string())),
                )
            }
            "urgency" => {
                urgency = v.check(
                    "urgency",
                    specified(req.urgency, Urgency::Unspecified)
                        .and_then(|c| c.ok_or_else(|| "is required".to_string())),
                )
            }
            "department" => {
                dept = v.check(
                    "department",
                    specified(req.department, Department::Unspecified)
                        .and_then(|c| c.ok_or_else(|| "is required".to_string())),
                )
            }
            other => v.add(
                format!("update_mask.paths[{i}]"),
                format!("`{other}` is not one of category, urgency, department"),
            ),
        }
    }
    if !v.is_empty() {
        return Err(v.into());
    }
    let mut tx = state.pool.begin().await?;
    let mut case = visible_case(state, caller, &mut tx, &req.case_id, true).await?;
    check_version(&case, req.expected_version)?;
    let prev = (
        i32::from(case.risk_grade),
        i32::from(case.category),
        i32::from(case.urgency),
    );
    let prev_dept = i32::from(case.department);
    if let Some(c) = category {
        case.category = c as i16;
    }
    if let Some(d) = dept {
        case.department = d as i16;
    }
    if let Some(u) = urgency {
        case.urgency = u as i16;
        // A changed urgency re-times the first response, unless it already happened.
        if case.acknowledge_time.is_none() {
            let s = state.standards_at(&case.property_id);
            let d = if matches!(u, Urgency::Urgent | Urgency::Emergency) {
                s.first_response_urgent
            } else {
                s.first_response_normal
            };
            case.first_response_due =
                case.open_time + chrono::Duration::from_std(d.as_duration()).unwrap_or_default();
        }
    }
    // The rules grade on category and urgency: a grade they set follows the change; one
    // staff set by hand stays.
    if !case.grade_overridden {
        let (g, why) = rules_grade(state, &mut tx, &case).await?;
        case.risk_grade = g as i16;
        case.grade_reason = why;
    }
    let now = Utc::now();
    let mut event = new_event(
        &case,
        pb::CaseEventKind::Reclassified,
        &Actor::of(caller),
        now,
    );
    event.previous_category = prev.1;
    event.category = i32::from(case.category);
    event.previous_urgency = prev.2;
    event.urgency = i32::from(case.urgency);
    event.previous_department = prev_dept;
    event.department = i32::from(case.department);
    event.previous_risk_grade = prev.0;
    event.risk_grade = i32::from(case.risk_grade);
    event.reason = reason.expect("checked");
    let (case, event) =
        record(&mut tx, case, event, None, |c| regraded(c, prev, true, now)).await?;
    let msg = message(&mut tx, &case).await?;
    tx.commit().await?;
    Ok(pb::ReclassifyCaseResponse {
        case: Some(msg),
        event: Some(event),
    })
}

pub async fn record_action(
    state: &State,
    caller: &Caller,
    req: pb::RecordCaseActionRequest,
) -> Result<pb::RecordCaseActionResponse> {
    let mut v = FieldViolations::new();
    let note = v.check("note", optional_text(&req.note, 4000)).flatten();
    let channel = v.check(
        "contact_channel",
        known_enum::<ContactChannel>(req.contact_channel),
    );
    let comp = compensation(req.compensation, &mut v);
    let key = v
        .check("idempotency_key", optional_text(&req.idempotency_key, 128))
        .flatten();
    if note.is_none() && !req.guest_contacted && comp.is_none() {
        v.add("note", "record a note, a guest contact or compensation");
    }
    if !v.is_empty() {
        return Err(v.into());
    }
    let mut tx = state.pool.begin().await?;
    let mut case = visible_case(state, caller, &mut tx, &req.case_id, true).await?;
    if let Some((case, event)) = replayed(&mut tx, &case, key.as_deref()).await? {
        return Ok(pb::RecordCaseActionResponse {
            case: Some(case),
            event: Some(event),
        });
    }
    add_compensation(&mut case, &comp);
    let now = Utc::now();
    let mut event = new_event(
        &case,
        pb::CaseEventKind::ActionRecorded,
        &Actor::of(caller),
        now,
    );
    event.note = note.unwrap_or_default();
    event.guest_contacted = req.guest_contacted;
    event.contact_channel = channel.map_or(0, |c| c as i32);
    event.compensation = comp.clone();
    let notable = req.guest_contacted || comp.is_some();
    let (case, event) = record(&mut tx, case, event, key.as_deref(), |c| {
        notable.then(|| {
            Payload::CaseActionRecorded(CaseActionRecorded {
                case: Some(convert::facts(c)),
                guest_contacted: req.guest_contacted,
                compensation_kind: comp.as_ref().map_or(0, |c| c.kind),
                compensation_value: comp.as_ref().and_then(|c| c.value.clone()),
                action_time: Some(convert::ts(now)),
            })
        })
    })
    .await?;
    let msg = message(&mut tx, &case).await?;
    tx.commit().await?;
    Ok(pb::RecordCaseActionResponse {
        case: Some(msg),
        event: Some(event),
    })
}

pub async fn escalate(
    state: &State,
    caller: &Caller,
    req: pb::EscalateCaseRequest,
) -> Result<pb::EscalateCaseResponse> {
    let mut v = FieldViolations::new();
    let to = v
        .check(
            "to_tier",
            specified(req.to_tier, pb::EscalationTier::Unspecified),
        )
        .flatten();
    let trigger = v.check(
        "trigger",
        specified(req.trigger, pb::EscalationTrigger::Unspecified)
            .and_then(|t| t.ok_or_else(|| "is required".to_string())),
    );
    let reason = v.check("reason", optional_text(&req.reason, 500)).flatten();
    let key = v
        .check("idempotency_key", optional_text(&req.idempotency_key, 128))
        .flatten();
    let clock = v
        .check("clock_id", optional_text(&req.clock_id, 128))
        .flatten();
    if trigger == Some(pb::EscalationTrigger::Manager) && reason.is_none() {
        v.add("reason", "is required when a manager escalates");
    }
    let role = caller.principal.role;
    if role == Role::Service && key.is_none() {
        v.add("idempotency_key", "is required for service callers");
    }
    if !v.is_empty() {
        return Err(v.into());
    }
    if role == Role::PropertyStaff {
        return Err(FeedbackError::PermissionDenied(
            "escalation is for managers and the scheduler",
        ));
    }
    let trigger = trigger.expect("checked");
    let mut tx = state.pool.begin().await?;
    let mut case = visible_case(state, caller, &mut tx, &req.case_id, true).await?;
    if let Some((case, event)) = replayed(&mut tx, &case, key.as_deref()).await? {
        return Ok(pb::EscalateCaseResponse {
            case: Some(case),
            event: Some(event),
            escalated: false,
        });
    }
    let from = tier(&case);
    let target = to.or_else(|| next_tier(from));
    let moves_up = target.is_some_and(|t| (t as i32) > (from as i32));
    if !is_open(status(&case)) || !moves_up {
        let msg = message(&mut tx, &case).await?;
        return Ok(pb::EscalateCaseResponse {
            case: Some(msg),
            event: None,
            escalated: false,
        });
    }
    let target = target.expect("checked");
    case.escalation_tier = target as i16;
    let now = Utc::now();
    let mut event = new_event(&case, pb::CaseEventKind::Escalated, &Actor::of(caller), now);
    event.from_tier = from as i32;
    event.to_tier = target as i32;
    event.escalation_trigger = trigger as i32;
    event.reason = reason.unwrap_or_default();
    event.note = clock
        .clone()
        .map(|c| format!("clock {c}"))
        .unwrap_or_default();
    let (case, event) = record(&mut tx, case, event, key.as_deref(), |c| {
        Some(Payload::CaseEscalated(CaseEscalated {
            case: Some(convert::facts(c)),
            from_tier: from as i32,
            to_tier: target as i32,
            trigger: trigger as i32,
            escalate_time: Some(convert::ts(now)),
            clock_id: clock.unwrap_or_default(),
        }))
    })
    .await?;
    let msg = message(&mut tx, &case).await?;
    tx.commit().await?;
    Ok(pb::EscalateCaseResponse {
        case: Some(msg),
        event: Some(event),
        escalated: true,
    })
}

pub async fn attach(
    state: &State,
    caller: &Caller,
    req: pb::AttachFeedbackRequest,
) -> Result<pb::AttachFeedbackResponse> {
    let mut tx = state.pool.begin().await?;
    let case = visible_case(state, caller, &mut tx, &req.case_id, true).await?;
    let fb = visible_feedback(
        state,
        caller,
        "feedback_id",
        &req.feedback_id,
        true,
        &mut tx,
    )
    .await?;
    if fb.property_id != case.property_id {
        return Err(FeedbackError::FailedPrecondition(
            "the feedback belongs to another property".into(),
        ));
    }
    match fb.case_id {
        Some(id) if id == case.id => {
            let msg = message(&mut tx, &case).await?;
            return Ok(pb::AttachFeedbackResponse {
                case: Some(msg),
                event: None,
            });
        }
        Some(_) => {
            return Err(FeedbackError::FailedPrecondition(
                "the feedback already belongs to another case".into(),
            ));
        }
        None => {}
    }
    feedback_store::set_case(&mut tx, fb.id, case.id).await?;
    let mut event = new_event(
        &case,
        pb::CaseEventKind::FeedbackAttached,
        &Actor::of(caller),
        Utc::now(),
    );
    event.feedback_id = fb.id.to_string();
    let (case, event) = record(&mut tx, case, event, None, |_| None).await?;
    let msg = message(&mut tx, &case).await?;
    tx.commit().await?;
    Ok(pb::AttachFeedbackResponse {
        case: Some(msg),
        event: Some(event),
    })
}

pub async fn events(
    state: &State,
    caller: &Caller,
    req: pb::ListCaseEventsRequest,
) -> Result<pb::ListCaseEventsResponse> {
    let p = req.page.unwrap_or_default();
    let size = guestloop_db::page::Page::parse(p.page_size, "")
        .map_err(|(k, e)| invalid(k, e))?
        .size;
    let after: i64 = if p.page_token.is_empty() {
        0
    } else {
        p.page_token
            .parse()
            .map_err(|_| invalid("page.page_token", "is not a token this server issued"))?
    };
    let mut conn = state.pool.acquire().await?;
    let case = visible_case(state, caller, &mut conn, &req.case_id, false).await?;
    let list = events::list(&mut *conn, case.id, after, size).await?;
    let next_page_token = match list.last() {
        Some(last) if list.len() as i64 >= size => last.sequence.to_string(),
        _ => String::new(),
    };
    Ok(pb::ListCaseEventsResponse {
        events: list,
        next_page_token,
    })
}

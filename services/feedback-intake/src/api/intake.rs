//! Feedback RPCs: submit, get, list, search, and recording a reply (bulk import: import.rs).

use super::filters;
use crate::case_ops::SOURCE;
use crate::convert;
use crate::domain::submission::{Submission, time};
use crate::error::{FeedbackError, Result, invalid};
use crate::intake::{self, Arrival, Outcome};
use crate::state::{Caller, State};
use crate::store::feedback::{self as store, FeedbackRow};
use guestloop_db::page::BoundOffset;
use guestloop_errors::FieldViolations;
use guestloop_errors::parse::{known_enum, optional_text, uuid};
use guestloop_outbox::NewEvent;
use guestloop_proto::events::v1::{FeedbackReplied, event_envelope::Payload};
use guestloop_proto::feedback::v1 as pb;
use prost::Message;
use std::sync::Arc;

async fn case_message(state: &State, case: &crate::store::cases::CaseRow) -> Result<pb::Case> {
    let ids = store::ids_of_case(&state.pool, case.id).await?;
    Ok(convert::case(case, &ids))
}

async fn respond(state: &State, o: Outcome) -> Result<pb::SubmitFeedbackResponse> {
    let case = match &o.case {
        Some(c) => Some(case_message(state, c).await?),
        None => None,
    };
    Ok(pb::SubmitFeedbackResponse {
        feedback: Some(convert::feedback(&o.feedback)),
        created: o.created,
        case,
    })
}

pub async fn submit(
    state: &Arc<State>,
    caller: &Caller,
    req: pb::SubmitFeedbackRequest,
) -> Result<pb::SubmitFeedbackResponse> {
    let s = Submission::parse(
        req.feedback,
        req.guest,
        &req.idempotency_key,
        req.complaint,
        &state.intake,
    )?;
    if s.complaint.as_ref().is_some_and(|c| c.past.is_some()) {
        return Err(crate::error::invalid(
            "complaint.past",
            "only ImportFeedback records a complaint handled in the past",
        ));
    }
    let outcome = intake::submit(state, caller, Box::new(s), Arrival::Single).await?;
    respond(state, outcome).await
}

/// The feedback, if the caller may see it.
pub async fn visible_feedback(
    state: &State,
    caller: &Caller,
    field: &str,
    id: &str,
    for_update: bool,
    conn: &mut sqlx::PgConnection,
) -> Result<FeedbackRow> {
    let id = uuid(id).map_err(|e| invalid(field, e))?;
    let row = store::get(conn, id, for_update)
        .await?
        .ok_or(FeedbackError::NotFound("feedback"))?;
    if !caller.sees(state, &row.property_id) {
        return Err(FeedbackError::NotFound("feedback"));
    }
    tracing::Span::current().record("property_id", row.property_id.as_str());
    Ok(row)
}

pub async fn get(
    state: &State,
    caller: &Caller,
    req: pb::GetFeedbackRequest,
) -> Result<pb::GetFeedbackResponse> {
    let mut conn = state.pool.acquire().await?;
    let row = visible_feedback(
        state,
        caller,
        "feedback_id",
        &req.feedback_id,
        false,
        &mut conn,
    )
    .await?;
    Ok(pb::GetFeedbackResponse {
        feedback: Some(convert::feedback(&row)),
    })
}

async fn page_of(
    state: &State,
    caller: &Caller,
    filter: Option<pb::FeedbackFilter>,
    query: Option<String>,
    page: Option<guestloop_proto::common::v1::PageRequest>,
) -> Result<(Vec<pb::Feedback>, String)> {
    let filter = filter.unwrap_or_default();
    let binding = guestloop_db::page::binding_of(
        &[
            filter.encode_to_vec(),
            query.clone().unwrap_or_default().into_bytes(),
        ]
        .concat(),
    );
    let mut f = filters::feedback(state, caller, &filter)?;
    f.query = query;
    let p = page.unwrap_or_default();
    let (size, offset) =
        BoundOffset::parse(p.page_size, &p.page_token, binding).map_err(|(k, e)| invalid(k, e))?;
    let rows = store::list(&state.pool, &f, size, offset).await?;
    let next = BoundOffset::next_token(size, offset, rows.len(), binding);
    Ok((rows.iter().map(convert::feedback).collect(), next))
}

pub async fn list(
    state: &State,
    caller: &Caller,
    req: pb::ListFeedbackRequest,
) -> Result<pb::ListFeedbackResponse> {
    let (items, next_page_token) = page_of(state, caller, req.filter, None, req.page).await?;
    Ok(pb::ListFeedbackResponse {
        items,
        next_page_token,
    })
}

pub async fn search(
    state: &State,
    caller: &Caller,
    req: pb::SearchFeedbackRequest,
) -> Result<pb::SearchFeedbackResponse> {
    let query =
        guestloop_errors::parse::required_text(&req.query, 200).map_err(|e| invalid("query", e))?;
    let (items, next_page_token) =
        page_of(state, caller, req.filter, Some(query), req.page).await?;
    Ok(pb::SearchFeedbackResponse {
        items,
        next_page_token,
    })
}

pub async fn reply(
    state: &State,
    caller: &Caller,
    req: pb::RecordFeedbackReplyRequest,
) -> Result<pb::RecordFeedbackReplyResponse> {
    let mut v = FieldViolations::new();
    let kind = v.check(
        "kind",
        known_enum::<pb::FeedbackReplyKind>(req.kind).and_then(|k| {
            if k == pb::FeedbackReplyKind::Unspecified {
                Err("is required".into())
            } else {
                Ok(k)
            }
        }),
    );
    v.check("note", optional_text(&req.note, 2000));
    let at = time("reply_time", req.reply_time, &mut v).unwrap_or_else(chrono::Utc::now);
    if !v.is_empty() {
        return Err(v.into());
    }
    let kind = kind.expect("checked");
    let mut tx = state.pool.begin().await?;
    let row = visible_feedback(
        state,
        caller,
        "feedback_id",
        &req.feedback_id,
        true,
        &mut tx,
    )
    .await?;
    if kind == pb::FeedbackReplyKind::OtaReply {
        let Some(mut review) = row
            .ota_review
            .as_deref()
            .and_then(|b| pb::OtaReview::decode(b).ok())
        else {
            return Err(invalid(
                "kind",
                "an OTA reply needs feedback from an OTA review",
            ));
        };
        review.reply_status = pb::OtaReplyStatus::Published as i32;
        store::set_ota_review(&mut tx, row.id, review.encode_to_vec()).await?;
    }
    let (row, first) = store::set_reply(&mut tx, row.id, at).await?;
    if first {
        emit_replied(&mut tx, &row, kind).await?;
    }
    tx.commit().await?;
    Ok(pb::RecordFeedbackReplyResponse {
        feedback: Some(convert::feedback(&row)),
    })
}

/// The first answer to a piece of feedback, for the response rate.
pub async fn emit_replied(
    conn: &mut sqlx::PgConnection,
    row: &FeedbackRow,
    kind: pb::FeedbackReplyKind,
) -> Result<()> {
    emit_reply_event(conn, row, replied(row, kind)).await
}

/// FeedbackReplied for `row` answered by `kind` at its first reply time. An OTA reply
/// recorded here counts in the site's reply rate (no deadline).
pub fn replied(row: &FeedbackRow, kind: pb::FeedbackReplyKind) -> FeedbackReplied {
    FeedbackReplied {
        feedback_id: row.id.to_string(),
        property_id: row.property_id.clone(),
        channel: i32::from(row.channel),
        receive_time: Some(convert::ts(row.receive_time)),
        reply_time: row.reply_time.map(convert::ts),
        kind: kind as i32,
        ota_site: if kind == pb::FeedbackReplyKind::OtaReply {
            row.ota_review
                .as_deref()
                .and_then(|b| pb::OtaReview::decode(b).ok())
                .map_or(0, |r| r.site)
        } else {
            0
        },
        reply_due_time: None,
    }
}

/// Writes `event` to the outbox as the feedback's.
pub async fn emit_reply_event(
    conn: &mut sqlx::PgConnection,
    row: &FeedbackRow,
    event: FeedbackReplied,
) -> Result<()> {
    guestloop_outbox::enqueue(
        conn,
        SOURCE,
        NewEvent {
            aggregate_type: "feedback",
            aggregate_id: row.id.to_string(),
            property_id: row.property_id.clone(),
            payload: Payload::FeedbackReplied(event),
        },
    )
    .await?;
    Ok(())
}

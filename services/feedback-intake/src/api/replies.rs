//! OTA review reply RPCs: get (with the suggestion), draft, approve (managers), record
//! the reply as posted on the site, and the property's reply queue. The rules are reply/mod.rs; each change holds the
//! review's feedback row FOR UPDATE, so changes to one reply are ordered.

use super::intake::visible_feedback;
use crate::convert;
use crate::domain::submission::time;
use crate::error::{FeedbackError, Result, invalid};
use crate::reply::queue::{self, QueueFilter};
use crate::reply::{self, Review};
use crate::state::{Caller, State};
use crate::store::feedback::{self as feedback_store, FeedbackRow};
use crate::store::replies::{self as store, ReplyRow};
use chrono::Utc;
use guestloop_db::page::BoundOffset;
use guestloop_errors::FieldViolations;
use guestloop_errors::parse::{optional_text, required_text};
use guestloop_proto::events::v1::FeedbackReplied;
use guestloop_proto::feedback::v1 as pb;
use guestloop_proto::feedback::v1::ReviewReplyState as St;
use prost::Message;
use sqlx::PgConnection;

/// The longest reply text accepted (the sites' own limits are around this).
const MAX_REPLY_CHARS: usize = 4000;

fn state_of(row: Option<&ReplyRow>) -> St {
    row.and_then(|r| St::try_from(i32::from(r.state)).ok())
        .unwrap_or(St::Suggested)
}

fn message(fb: &FeedbackRow, review: &Review, row: Option<&ReplyRow>) -> pb::ReviewReply {
    let due = row.map_or(review.due_time, |r| r.due_time);
    let post_time = row.and_then(|r| r.post_time);
    let opt = |s: Option<&String>| s.cloned().unwrap_or_default();
    pb::ReviewReply {
        feedback_id: fb.id.to_string(),
        property_id: fb.property_id.clone(),
        site: review.site as i32,
        state: state_of(row) as i32,
        needs_approval: row.map_or(review.negative, |r| r.needs_approval),
        due_time: Some(convert::ts(due)),
        overdue: post_time.unwrap_or_else(Utc::now) > due,
        language: fb.language.clone(),
        suggested_text: reply::templates::suggest(review),
        text: row.map(|r| r.text.clone()).unwrap_or_default(),
        drafted_by: opt(row.and_then(|r| r.drafted_by.as_ref())),
        draft_time: row.and_then(|r| r.draft_time).map(convert::ts),
        approved_by: opt(row.and_then(|r| r.approved_by.as_ref())),
        approve_time: row.and_then(|r| r.approve_time).map(convert::ts),
        posted_by: opt(row.and_then(|r| r.posted_by.as_ref())),
        post_time: post_time.map(convert::ts),
    }
}

/// A review's reply as stored, or a fresh one (SUGGESTED, due from today's settings).
fn or_new(fb: &FeedbackRow, review: &Review, row: Option<ReplyRow>) -> ReplyRow {
    row.unwrap_or_else(|| ReplyRow {
        feedback_id: fb.id,
        property_id: fb.property_id.clone(),
        site: review.site as i16,
        state: St::Suggested as i16,
        needs_approval: review.negative,
        due_time: review.due_time,
        text: String::new(),
        drafted_by: None,
        draft_time: None,
        approved_by: None,
        approve_time: None,
        posted_by: None,
        post_time: None,
    })
}

/// The review, its feedback row and its reply row, read in `conn` (FOR UPDATE when
/// `for_update`).
async fn load(
    state: &State,
    caller: &Caller,
    feedback_id: &str,
    for_update: bool,
    conn: &mut PgConnection,
) -> Result<(FeedbackRow, Review, Option<ReplyRow>)> {
    let fb = visible_feedback(state, caller, "feedback_id", feedback_id, for_update, conn).await?;
    let review = Review::of(&fb, &state.intake, &state.ota_replies)?;
    let row = store::get(conn, fb.id).await?;
    Ok((fb, review, row))
}

pub async fn get(
    state: &State,
    caller: &Caller,
    req: pb::GetReviewReplyRequest,
) -> Result<pb::GetReviewReplyResponse> {
    let mut conn = state.pool.acquire().await?;
    let (fb, review, row) = load(state, caller, &req.feedback_id, false, &mut conn).await?;
    Ok(pb::GetReviewReplyResponse {
        reply: Some(message(&fb, &review, row.as_ref())),
    })
}

pub async fn draft(
    state: &State,
    caller: &Caller,
    req: pb::DraftReviewReplyRequest,
) -> Result<pb::DraftReviewReplyResponse> {
    let text = required_text(&req.text, MAX_REPLY_CHARS).map_err(|e| invalid("text", e))?;
    let mut tx = state.pool.begin().await?;
    let (fb, review, row) = load(state, caller, &req.feedback_id, true, &mut tx).await?;
    let mut r = or_new(&fb, &review, row);
    let manager = caller.principal.role.is_manager();
    let next = reply::after_draft(state_of(Some(&r)), r.needs_approval, manager)?;
    let now = Utc::now();
    r.state = next as i16;
    r.text = text;
    r.drafted_by = Some(caller.subject().to_string());
    r.draft_time = Some(now);
    // A new text needs approving again, unless a manager wrote it; one that needs no
    // approval is ready at once.
    let approved = r.needs_approval && manager;
    r.approved_by = approved.then(|| caller.subject().to_string());
    r.approve_time = approved.then_some(now);
    store::put(&mut tx, &r).await?;
    tx.commit().await?;
    Ok(pb::DraftReviewReplyResponse {
        reply: Some(message(&fb, &review, Some(&r))),
    })
}

pub async fn approve(
    state: &State,
    caller: &Caller,
    req: pb::ApproveReviewReplyRequest,
) -> Result<pb::ApproveReviewReplyResponse> {
    let mut tx = state.pool.begin().await?;
    let (fb, review, row) = load(state, caller, &req.feedback_id, true, &mut tx).await?;
    let mut r = or_new(&fb, &review, row);
    let next = reply::after_approval(state_of(Some(&r)), caller.principal.role.is_manager())?;
    r.state = next as i16;
    r.approved_by = Some(caller.subject().to_string());
    r.approve_time = Some(Utc::now());
    store::put(&mut tx, &r).await?;
    tx.commit().await?;
    Ok(pb::ApproveReviewReplyResponse {
        reply: Some(message(&fb, &review, Some(&r))),
    })
}

pub async fn posted(
    state: &State,
    caller: &Caller,
    req: pb::RecordReviewReplyPostedRequest,
) -> Result<pb::RecordReviewReplyPostedResponse> {
    let mut v = FieldViolations::new();
    let given = v
        .check("text", optional_text(&req.text, MAX_REPLY_CHARS))
        .flatten()
        .unwrap_or_default();
    let at = time("post_time", req.post_time, &mut v);
    if !v.is_empty() {
        return Err(v.into());
    }
    let mut tx = state.pool.begin().await?;
    let (fb, review, row) = load(state, caller, &req.feedback_id, true, &mut tx).await?;
    let mut r = or_new(&fb, &review, row);
    if state_of(Some(&r)) == St::Posted {
        // A retry: the reply as first posted.
        tx.commit().await?;
        return Ok(pb::RecordReviewReplyPostedResponse {
            reply: Some(message(&fb, &review, Some(&r))),
            feedback: Some(convert::feedback(&fb)),
        });
    }
    let at = at.unwrap_or_else(Utc::now);
    if at < fb.receive_time {
        return Err(invalid("post_time", "is before the review was received"));
    }
    r.text = reply::posted_text(state_of(Some(&r)), r.needs_approval, &r.text, &given)?;
    r.state = St::Posted as i16;
    r.posted_by = Some(caller.subject().to_string());
    r.post_time = Some(at);
    store::put(&mut tx, &r).await?;
    let fb = answer_review(&mut tx, &fb, &review, &r).await?;
    tx.commit().await?;
    Ok(pb::RecordReviewReplyPostedResponse {
        reply: Some(message(&fb, &review, Some(&r))),
        feedback: Some(convert::feedback(&fb)),
    })
}

/// The review is answered: reply status PUBLISHED, the feedback's reply time (if it had
/// none), and a FeedbackReplied with the site and deadline for metrics — unless an OTA
/// reply was recorded before (RecordFeedbackReply), which metrics has counted already.
async fn answer_review(
    conn: &mut PgConnection,
    fb: &FeedbackRow,
    review: &Review,
    r: &ReplyRow,
) -> Result<FeedbackRow> {
    let at = r.post_time.unwrap_or_else(Utc::now);
    if let Some(mut blob) = fb
        .ota_review
        .as_deref()
        .and_then(|b| pb::OtaReview::decode(b).ok())
    {
        blob.reply_status = pb::OtaReplyStatus::Published as i32;
        feedback_store::set_ota_review(conn, fb.id, blob.encode_to_vec()).await?;
    }
    let (row, _first) = feedback_store::set_reply(conn, fb.id, at).await?;
    if review.reply_published {
        return Ok(row);
    }
    let event = FeedbackReplied {
        reply_time: Some(convert::ts(at)),
        ota_site: review.site as i32,
        reply_due_time: Some(convert::ts(r.due_time)),
        ..super::intake::replied(&row, pb::FeedbackReplyKind::OtaReply)
    };
    super::intake::emit_reply_event(conn, &row, event).await?;
    Ok(row)
}

/// The reply queue: the property's reviews, the reply due first. Reviews without a reply
/// row come from the feedback table (LEFT JOIN) as SUGGESTED with today's deadline, as
/// GetReviewReply shows them; a review already answered on the site (or needing no reply)
/// before anyone drafted here is not in the queue.
pub async fn list(
    state: &State,
    caller: &Caller,
    mut req: pb::ListReviewRepliesRequest,
) -> Result<pb::ListReviewRepliesResponse> {
    let filter = QueueFilter::try_from(&req)?;
    let page = req.page.take().unwrap_or_default();
    // Bound to everything but the page: another filter's token is refused.
    let binding = guestloop_db::page::binding_of(&req.encode_to_vec());
    let (size, offset) = BoundOffset::parse(page.page_size, &page.page_token, binding)
        .map_err(|(k, e)| invalid(k, e))?;
    if state.chain.property(&filter.property_id).is_none()
        || !caller.sees(state, &filter.property_id)
    {
        return Err(FeedbackError::NotFound("property"));
    }
    tracing::Span::current().record("property_id", filter.property_id.as_str());
    let now = Utc::now();
    let received_before = filter
        .overdue_only
        .then(|| now - queue::shortest_within(&state.ota_replies));
    let rows = store::queue(
        &state.pool,
        &filter.property_id,
        pb::FeedbackChannel::OtaReview as i16,
        &filter.stored_states(),
        received_before,
        now - chrono::Duration::days(i64::from(state.ota_replies.queue_days)),
    )
    .await?;
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let reply = row.reply();
        let fb = row.feedback;
        // A row of the OTA channel always holds its review; one that does not is no
        // review to answer.
        let Ok(review) = Review::of(&fb, &state.intake, &state.ota_replies) else {
            continue;
        };
        let site_review = fb
            .ota_review
            .as_deref()
            .and_then(|b| pb::OtaReview::decode(b).ok())
            .unwrap_or_default();
        let settled = [
            pb::OtaReplyStatus::Published,
            pb::OtaReplyStatus::NotRequired,
        ]
        .map(|s| s as i32)
        .contains(&site_review.reply_status);
        if reply.is_none() && settled {
            continue;
        }
        let due = queue::Due {
            feedback_id: fb.id,
            due_time: reply.as_ref().map_or(review.due_time, |r| r.due_time),
            post_time: reply.as_ref().and_then(|r| r.post_time),
        };
        items.push((due, (fb, review, reply, site_review)));
    }
    let chosen = queue::select(items, filter.overdue_only, now, offset, size);
    let next_page_token = BoundOffset::next_token(size, offset, chosen.len(), binding);
    let entries = chosen
        .into_iter()
        .map(|(_, (fb, review, reply, r))| pb::ReviewReplyQueueEntry {
            reply: Some(message(&fb, &review, reply.as_ref())),
            site_name: r.site_name,
            rating: r.rating,
            rating_scale: r.rating_scale,
            review_id: r.review_id,
            review_url: r.review_url,
            receive_time: Some(convert::ts(fb.receive_time)),
        })
        .collect();
    Ok(pb::ListReviewRepliesResponse {
        entries,
        next_page_token,
    })
}

//! OTA review replies (review_replies): read one, write one whole. Callers hold the
//! review's feedback row FOR UPDATE, which orders changes to its reply.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReplyRow {
    pub feedback_id: Uuid,
    pub property_id: String,
    pub site: i16,
    pub state: i16,
    pub needs_approval: bool,
    pub due_time: DateTime<Utc>,
    pub text: String,
    pub drafted_by: Option<String>,
    pub draft_time: Option<DateTime<Utc>>,
    pub approved_by: Option<String>,
    pub approve_time: Option<DateTime<Utc>>,
    pub posted_by: Option<String>,
    pub post_time: Option<DateTime<Utc>>,
}

pub async fn get(
    conn: &mut PgConnection,
    feedback_id: Uuid,
) -> Result<Option<ReplyRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT feedback_id, property_id, site, state, needs_approval, due_time, text, drafted_by,
                draft_time, approved_by, approve_time, posted_by, post_time
           FROM review_replies WHERE feedback_id = $1",
    )
    .bind(feedback_id)
    .fetch_optional(conn)
    .await
}

pub async fn put(conn: &mut PgConnection, r: &ReplyRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO review_replies (feedback_id, property_id, site, state, needs_approval,
                due_time, text, drafted_by, draft_time, approved_by, approve_time, posted_by,
                post_time)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (feedback_id) DO UPDATE SET
                state = EXCLUDED.state, needs_approval = EXCLUDED.needs_approval,
                text = EXCLUDED.text, drafted_by = EXCLUDED.drafted_by,
                draft_time = EXCLUDED.draft_time, approved_by = EXCLUDED.approved_by,
                approve_time = EXCLUDED.approve_time, posted_by = EXCLUDED.posted_by,
                post_time = EXCLUDED.post_time, update_time = now()",
    )
    .bind(r.feedback_id)
    .bind(&r.property_id)
    .bind(r.site)
    .bind(r.state)
    .bind(r.needs_approval)
    .bind(r.due_time)
    .bind(&r.text)
    .bind(&r.drafted_by)
    .bind(r.draft_time)
    .bind(&r.approved_by)
    .bind(r.approve_time)
    .bind(&r.posted_by)
    .bind(r.post_time)
    .execute(conn)
    .await?;
    Ok(())
}

/// Erasure and retention of reviews: their replies' texts go with the guest's words.
pub async fn blank(
    conn: &mut PgConnection,
    feedback_ids: &[Uuid],
    marker: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE review_replies SET text = $2, update_time = now()
          WHERE feedback_id = ANY($1) AND text <> ''",
    )
    .bind(feedback_ids)
    .bind(marker)
    .execute(conn)
    .await?;
    Ok(())
}

/// A review of the reply queue: its feedback row and its reply row, if one was written.
#[derive(Debug, sqlx::FromRow)]
pub struct QueueRow {
    #[sqlx(flatten)]
    pub feedback: crate::store::feedback::FeedbackRow,
    pub r_feedback_id: Option<Uuid>,
    pub r_site: Option<i16>,
    pub r_state: Option<i16>,
    pub r_needs_approval: Option<bool>,
    pub r_due_time: Option<DateTime<Utc>>,
    pub r_text: Option<String>,
    pub r_drafted_by: Option<String>,
    pub r_draft_time: Option<DateTime<Utc>>,
    pub r_approved_by: Option<String>,
    pub r_approve_time: Option<DateTime<Utc>>,
    pub r_posted_by: Option<String>,
    pub r_post_time: Option<DateTime<Utc>>,
}

impl QueueRow {
    /// The reply row, when the review has one.
    pub fn reply(&self) -> Option<ReplyRow> {
        let fb = &self.feedback;
        Some(ReplyRow {
            feedback_id: self.r_feedback_id?,
            property_id: fb.property_id.clone(),
            site: self.r_site?,
            state: self.r_state?,
            needs_approval: self.r_needs_approval?,
            due_time: self.r_due_time?,
            text: self.r_text.clone()?,
            drafted_by: self.r_drafted_by.clone(),
            draft_time: self.r_draft_time,
            approved_by: self.r_approved_by.clone(),
            approve_time: self.r_approve_time,
            posted_by: self.r_posted_by.clone(),
            post_time: self.r_post_time,
        })
    }
}

/// A property's OTA reviews with their reply rows, in any order (the due time of a review
/// without a row depends on its rating, inside the review's encoded blob, so the caller
/// computes it and sorts). From the feedback table, because a review has no reply row
/// until somebody drafts for it: a review without one is SUGGESTED (`states` holding 1).
/// `unreplied_received_before` drops reviews without a row received later (a reply due
/// no sooner than the shortest deadline cannot be overdue yet). Only reviews received
/// since `received_since` (the queue's horizon, on the property-and-time index), so what
/// is read grows with the horizon, not with the property's history.
pub async fn queue<'e>(
    exec: impl sqlx::PgExecutor<'e>,
    property_id: &str,
    channel: i16,
    states: &[i16],
    unreplied_received_before: Option<DateTime<Utc>>,
    received_since: DateTime<Utc>,
) -> Result<Vec<QueueRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT f.*, r.feedback_id AS r_feedback_id, r.site AS r_site, r.state AS r_state,
                r.needs_approval AS r_needs_approval, r.due_time AS r_due_time,
                r.text AS r_text, r.drafted_by AS r_drafted_by, r.draft_time AS r_draft_time,
                r.approved_by AS r_approved_by, r.approve_time AS r_approve_time,
                r.posted_by AS r_posted_by, r.post_time AS r_post_time
           FROM feedback f LEFT JOIN review_replies r ON r.feedback_id = f.id
          WHERE f.property_id = $1 AND f.channel = $2
            AND (cardinality($3::smallint[]) = 0 OR COALESCE(r.state, 1) = ANY($3))
            AND ($4::timestamptz IS NULL OR r.feedback_id IS NOT NULL OR f.receive_time < $4)
            AND f.receive_time >= $5",
    )
    .bind(property_id)
    .bind(channel)
    .bind(states)
    .bind(unreplied_received_before)
    .bind(received_since)
    .fetch_all(exec)
    .await
}

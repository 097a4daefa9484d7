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

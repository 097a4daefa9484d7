//! feedback-intake's retention (issue 11, guestloop_db::retention runs it): feedback older
//! than the property's `retention.feedback_text` loses the guest's words as an erasure
//! would (text, survey text answers, OTA title and reviewer, staff names as written, tags,
//! and the excerpt in this service's outbox copy) but keeps its guest link, category and
//! scores; cases older than `retention.case_notes` (from their open time) lose their
//! titles, descriptions, grade reasons and history notes. Both walk the property's records
//! in time order from the job's mark.

use crate::store::directory::{self as store, FeedbackBlobs};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use guestloop_db::retention::{Sweep, Swept, Task};
use sqlx::PgConnection;
use uuid::Uuid;

pub fn tasks() -> Vec<Task> {
    vec![
        Task {
            name: "feedback_text",
            period: |p| p.feedback_text,
            per_property: true,
            sweep: feedback_text,
        },
        Task {
            name: "case_notes",
            period: |p| p.case_notes,
            per_property: true,
            sweep: case_notes,
        },
    ]
}

/// A feedback item's id, receive time and word-holding blobs.
type DatedBlobs = (
    Uuid,
    DateTime<Utc>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
);

/// The mark as (time, id); a key that is not a UUID (never written by these sweeps) counts
/// as the start.
fn after(s: &Sweep) -> (Option<DateTime<Utc>>, Option<Uuid>) {
    match &s.after {
        Some((t, key)) => (Some(*t), Uuid::parse_str(key).ok()),
        None => (None, None),
    }
}

fn feedback_text<'c>(
    conn: &'c mut PgConnection,
    s: &'c Sweep,
) -> BoxFuture<'c, Result<Swept, sqlx::Error>> {
    Box::pin(async move {
        let (t, id) = after(s);
        let rows: Vec<DatedBlobs> = sqlx::query_as(
            "SELECT id, receive_time, ota_review, survey, staff_mentions FROM feedback
                  WHERE property_id = $1 AND receive_time < $2
                    AND ($3::timestamptz IS NULL OR (receive_time, id) > ($3, $4::uuid))
                  ORDER BY receive_time, id LIMIT $5 FOR UPDATE",
        )
        .bind(&s.scope)
        .bind(s.cutoff)
        .bind(t)
        .bind(id)
        .bind(s.batch)
        .fetch_all(&mut *conn)
        .await?;
        let Some(last) = rows.last().map(|r| (r.1, r.0.to_string())) else {
            return Ok(None);
        };
        let blobs: Vec<FeedbackBlobs> = rows
            .into_iter()
            .map(|(id, _, ota, survey, staff)| (id, ota, survey, staff))
            .collect();
        let ids = store::blank_feedback(conn, &blobs, false).await?;
        store::erase_outbox(conn, &ids).await?;
        Ok(Some((last, ids.len() as u64)))
    })
}

fn case_notes<'c>(
    conn: &'c mut PgConnection,
    s: &'c Sweep,
) -> BoxFuture<'c, Result<Swept, sqlx::Error>> {
    Box::pin(async move {
        let (t, id) = after(s);
        // FOR UPDATE: staff's changes read the case FOR UPDATE too; one under way finishes
        // first and its words are blanked here.
        let rows: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(
            "SELECT id, open_time FROM cases
              WHERE property_id = $1 AND open_time < $2
                AND ($3::timestamptz IS NULL OR (open_time, id) > ($3, $4::uuid))
              ORDER BY open_time, id LIMIT $5 FOR UPDATE",
        )
        .bind(&s.scope)
        .bind(s.cutoff)
        .bind(t)
        .bind(id)
        .bind(s.batch)
        .fetch_all(&mut *conn)
        .await?;
        let Some(last) = rows.last().map(|r| (r.1, r.0.to_string())) else {
            return Ok(None);
        };
        let ids: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
        store::blank_cases(conn, &ids).await?;
        Ok(Some((last, ids.len() as u64)))
    })
}

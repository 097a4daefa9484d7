//! metrics' retention (issue 11, guestloop_db::retention runs it): report quotes (excerpts
//! of guests' words, copies of feedback-intake's) received more than the property's
//! `retention.feedback_text` ago are deleted, as feedback-intake blanks its own; the
//! rollups hold no words and stay.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use guestloop_db::retention::{Sweep, Swept, Task};
use sqlx::PgConnection;

pub fn tasks() -> Vec<Task> {
    vec![Task {
        name: "report_quotes",
        period: |p| p.feedback_text,
        per_property: true,
        sweep: quotes,
    }]
}

fn quotes<'c>(
    conn: &'c mut PgConnection,
    s: &'c Sweep,
) -> BoxFuture<'c, Result<Swept, sqlx::Error>> {
    Box::pin(async move {
        // Deleted rows are not seen again: each batch takes the oldest left.
        let rows: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
            "DELETE FROM quotes WHERE feedback_id IN (
                 SELECT feedback_id FROM quotes WHERE property_id = $1 AND receive_time < $2
                  ORDER BY receive_time, feedback_id LIMIT $3)
             RETURNING feedback_id, receive_time",
        )
        .bind(&s.scope)
        .bind(s.cutoff)
        .bind(s.batch)
        .fetch_all(&mut *conn)
        .await?;
        let Some(last) = rows.iter().max_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0))) else {
            return Ok(None);
        };
        Ok(Some(((last.1, last.0.clone()), rows.len() as u64)))
    })
}

//! notification's retention (issue 11, guestloop_db::retention runs it): messages older
//! than the property's `retention.message_variables` (from their creation) lose the
//! template variables they were sent with; bodies are never stored. Messages still on
//! their way (pending, sending, retrying) are left alone.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use guestloop_db::retention::{Sweep, Swept, Task};
use sqlx::PgConnection;
use uuid::Uuid;

pub fn tasks() -> Vec<Task> {
    vec![Task {
        name: "message_variables",
        period: |p| p.message_variables,
        per_property: true,
        sweep: message_variables,
    }]
}

fn message_variables<'c>(
    conn: &'c mut PgConnection,
    s: &'c Sweep,
) -> BoxFuture<'c, Result<Swept, sqlx::Error>> {
    Box::pin(async move {
        let (t, id) = s.after_uuid();
        let rows: Vec<(Uuid, DateTime<Utc>, bool)> = sqlx::query_as(
            "SELECT id, create_time, status NOT IN (1, 2, 5) FROM messages
              WHERE property_id = $1 AND create_time < $2
                AND ($3::timestamptz IS NULL OR (create_time, id) > ($3, $4::uuid))
              ORDER BY create_time, id LIMIT $5",
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
        let finished: Vec<Uuid> = rows.iter().filter(|r| r.2).map(|r| r.0).collect();
        let changed = crate::store::messages::blank_variables(conn, &finished).await?;
        Ok(Some((last, changed)))
    })
}

//! The scheduler's retention (issue 11, guestloop_db::retention runs it): follow-up tasks
//! due more than the property's `retention.case_notes` ago lose what staff wrote about the
//! guest (title, instructions, outcome note), as on erasure; kind, times, status and
//! outcome stay for the counts. Open tasks are left alone.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use guestloop_db::retention::{Sweep, Swept, Task};
use sqlx::PgConnection;
use uuid::Uuid;

pub fn tasks() -> Vec<Task> {
    vec![Task {
        name: "task_notes",
        period: |p| p.case_notes,
        per_property: true,
        sweep: task_notes,
    }]
}

fn task_notes<'c>(
    conn: &'c mut PgConnection,
    s: &'c Sweep,
) -> BoxFuture<'c, Result<Swept, sqlx::Error>> {
    Box::pin(async move {
        let (t, id) = s.after_uuid();
        let rows: Vec<(Uuid, DateTime<Utc>, bool)> = sqlx::query_as(
            "SELECT id, due_time, status <> $6 FROM tasks
              WHERE property_id = $1 AND due_time < $2
                AND ($3::timestamptz IS NULL OR (due_time, id) > ($3, $4::uuid))
              ORDER BY due_time, id LIMIT $5 FOR UPDATE",
        )
        .bind(&s.scope)
        .bind(s.cutoff)
        .bind(t)
        .bind(id)
        .bind(s.batch)
        .bind(crate::store::tasks::OPEN)
        .fetch_all(&mut *conn)
        .await?;
        let Some(last) = rows.last().map(|r| (r.1, r.0.to_string())) else {
            return Ok(None);
        };
        let closed: Vec<Uuid> = rows.iter().filter(|r| r.2).map(|r| r.0).collect();
        let changed = crate::store::tasks::erase_text(conn, &closed).await?;
        Ok(Some((last, changed)))
    })
}

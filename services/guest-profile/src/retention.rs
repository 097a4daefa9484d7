//! guest-profile's retention (issue 11, guestloop_db::retention runs it): access-log rows
//! older than `retention.access_log` (chain-wide; the log is the chain's accountability
//! record) are deleted, oldest first. Profiles themselves are kept until erased: a guest's
//! profile is the relationship, not a record that ages.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use guestloop_db::retention::{Sweep, Swept, Task};
use sqlx::PgConnection;

pub fn tasks() -> Vec<Task> {
    vec![Task {
        name: "access_log",
        period: |p| p.access_log,
        per_property: false,
        sweep: access_log,
    }]
}

fn access_log<'c>(
    conn: &'c mut PgConnection,
    s: &'c Sweep,
) -> BoxFuture<'c, Result<Swept, sqlx::Error>> {
    Box::pin(async move {
        // Rows are numbered in the order they were written, so the oldest are the lowest
        // ids: each batch deletes from the front (deleted rows are not seen again).
        let rows: Vec<(i64, DateTime<Utc>)> = sqlx::query_as(
            "DELETE FROM access_log WHERE id IN (
                 SELECT id FROM access_log WHERE access_time < $1 ORDER BY id LIMIT $2)
             RETURNING id, access_time",
        )
        .bind(s.cutoff)
        .bind(s.batch)
        .fetch_all(&mut *conn)
        .await?;
        let Some(last) = rows.iter().max_by_key(|r| r.0) else {
            return Ok(None);
        };
        Ok(Some(((last.1, last.0.to_string()), rows.len() as u64)))
    })
}

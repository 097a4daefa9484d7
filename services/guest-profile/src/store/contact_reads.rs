//! Leak reporting over the access log (migrations/1002): who read a property's guests'
//! contacts in a window, and the unusual-volume alerts the detector raises.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReaderRow {
    pub accessor: String,
    pub accessor_role: String,
    pub reads: i64,
    pub guests: i64,
    pub first_read_time: DateTime<Utc>,
    pub last_read_time: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AlertRow {
    pub id: Uuid,
    pub accessor: String,
    pub accessor_role: String,
    pub window_start_time: DateTime<Utc>,
    pub reads: i64,
    pub guests: i64,
    pub raise_time: DateTime<Utc>,
}

/// The readers of the contacts of `property`'s guests (home guests and guests with a stay
/// there) in [from, to), most reads first; at most 1000.
pub async fn readers<'e>(
    exec: impl PgExecutor<'e>,
    property: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<ReaderRow>, sqlx::Error> {
    sqlx::query_as(
        "WITH guests_of AS (
             SELECT id FROM guests WHERE home_property_id = $1
             UNION SELECT guest_id FROM stays WHERE property_id = $1)
         SELECT a.accessor, a.accessor_role, COUNT(*) AS reads,
                COUNT(DISTINCT a.guest_id) AS guests,
                MIN(a.access_time) AS first_read_time, MAX(a.access_time) AS last_read_time
           FROM access_log a
          WHERE a.access_time >= $2 AND a.access_time < $3
            AND a.guest_id IN (SELECT id FROM guests_of)
          GROUP BY a.accessor, a.accessor_role
          ORDER BY reads DESC, a.accessor LIMIT 1000",
    )
    .bind(property)
    .bind(from)
    .bind(to)
    .fetch_all(exec)
    .await
}

/// The alerts raised for `accessors` whose window overlaps [from, to).
pub async fn alerts_for<'e>(
    exec: impl PgExecutor<'e>,
    accessors: &[String],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<AlertRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, accessor, accessor_role, window_start_time, reads, guests, raise_time
           FROM contact_read_alerts
          WHERE accessor = ANY($1) AND window_start_time < $3 AND raise_time >= $2
          ORDER BY raise_time, id",
    )
    .bind(accessors)
    .bind(from)
    .bind(to)
    .fetch_all(exec)
    .await
}

/// Raises an alert for every reader other than a service that read more than `threshold`
/// contacts in the last `window`, once per reader and window-long bucket (replicas running
/// this at once raise each alert once). Returns the new alerts.
pub async fn raise_bursts<'e>(
    exec: impl PgExecutor<'e>,
    window: std::time::Duration,
    threshold: i64,
) -> Result<Vec<AlertRow>, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO contact_read_alerts
                (id, accessor, accessor_role, window_start_time, reads, guests)
         SELECT gen_random_uuid(), a.accessor, a.accessor_role,
                to_timestamp(floor(extract(epoch FROM now()) / $1) * $1),
                COUNT(*), COUNT(DISTINCT a.guest_id)
           FROM access_log a
          WHERE a.access_time >= now() - make_interval(secs => $1)
            AND a.accessor_role <> 'service'
          GROUP BY a.accessor, a.accessor_role
         HAVING COUNT(*) > $2
         ON CONFLICT (accessor, window_start_time) DO NOTHING
         RETURNING id, accessor, accessor_role, window_start_time, reads, guests, raise_time",
    )
    .bind(window.as_secs_f64())
    .bind(threshold)
    .fetch_all(exec)
    .await
}

/// Alerts of the last day not yet accepted by notification, oldest first.
pub async fn unnotified<'e>(exec: impl PgExecutor<'e>) -> Result<Vec<AlertRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, accessor, accessor_role, window_start_time, reads, guests, raise_time
           FROM contact_read_alerts
          WHERE notify_time IS NULL AND raise_time > now() - interval '1 day'
          ORDER BY raise_time, id LIMIT 100",
    )
    .fetch_all(exec)
    .await
}

/// The home properties of the guests `accessor` read since `since`, most read first (at
/// most `limit`): whose managers hear of an alert.
pub async fn properties_read<'e>(
    exec: impl PgExecutor<'e>,
    accessor: &str,
    since: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT g.home_property_id FROM access_log a JOIN guests g ON g.id = a.guest_id
          WHERE a.accessor = $1 AND a.access_time >= $2
          GROUP BY g.home_property_id ORDER BY COUNT(*) DESC, g.home_property_id LIMIT $3",
    )
    .bind(accessor)
    .bind(since)
    .bind(limit)
    .fetch_all(exec)
    .await
}

pub async fn mark_notified<'e>(exec: impl PgExecutor<'e>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE contact_read_alerts SET notify_time = now() WHERE id = $1")
        .bind(id)
        .execute(exec)
        .await?;
    Ok(())
}

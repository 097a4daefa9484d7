//! The consumer side: remember which events were applied, in the same transaction as their
//! effect, so a redelivered event is acknowledged without being applied twice.

use sqlx::PgConnection;
use uuid::Uuid;

/// Records `event_id` as applied. Returns `false` when it already was: skip the effect, but
/// still acknowledge the event.
pub async fn mark_applied(
    conn: &mut PgConnection,
    event_id: Uuid,
    source: &str,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO inbox (event_id, source) VALUES ($1, $2) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event_id)
    .bind(source)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

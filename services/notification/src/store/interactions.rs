//! The guest's last WeChat interaction (table `wechat_interactions`). Events may arrive
//! late or out of order, so a write only ever moves the time forward (GREATEST); an
//! erased guest's row is deleted and none is written for it again (`erased_guests`); a
//! merged-away guest's row joins its survivor's.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};

/// Records an interaction at `at`; an older one than what is stored changes nothing, and
/// nothing is recorded for an erased guest (nor for an id merged into one).
pub async fn record(
    conn: &mut PgConnection,
    guest_id: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO wechat_interactions (guest_id, last_interaction_time)
         SELECT $1, $2
          WHERE NOT EXISTS (SELECT 1 FROM erased_guests
                             WHERE guest_id IN ($1, guest_survivor($1)))
         ON CONFLICT (guest_id) DO UPDATE
         SET last_interaction_time = GREATEST(wechat_interactions.last_interaction_time,
                                              EXCLUDED.last_interaction_time),
             update_time = now()",
    )
    .bind(guest_id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The guest's last WeChat interaction, if any is known. A merged-away id reads its
/// survivor's (a message asked for the duplicate goes to the survivor's WeChat).
pub async fn last(
    db: impl PgExecutor<'_>,
    guest_id: &str,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT last_interaction_time FROM wechat_interactions
          WHERE guest_id = guest_survivor($1)",
    )
    .bind(guest_id)
    .fetch_optional(db)
    .await
}

/// Forgets the guest (GuestErased) and remembers that it was erased, so a later
/// interaction of it records nothing.
pub async fn erase(conn: &mut PgConnection, guest_id: &str) -> Result<u64, sqlx::Error> {
    sqlx::query("INSERT INTO erased_guests (guest_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(guest_id)
        .execute(&mut *conn)
        .await?;
    Ok(
        sqlx::query("DELETE FROM wechat_interactions WHERE guest_id = $1")
            .bind(guest_id)
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

/// The interaction of `from` joins `to`'s (GuestMerged): the later of the two stays.
/// Returns 1 when `from` had one.
pub async fn move_guest(conn: &mut PgConnection, from: &str, to: &str) -> Result<u64, sqlx::Error> {
    let moved: Option<DateTime<Utc>> = sqlx::query_scalar(
        "DELETE FROM wechat_interactions WHERE guest_id = $1 RETURNING last_interaction_time",
    )
    .bind(from)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(at) = moved else {
        return Ok(0);
    };
    record(conn, to, at).await?;
    Ok(1)
}

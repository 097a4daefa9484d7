//! Gives committed events their place in the delivery order (migrations/3). Writers insert
//! events without a position, so their commits never wait on each other; the relay calls
//! [`sequence`] before it reads, and each call numbers every committed, unpositioned event
//! after all the positions handed out before, in id order. Calls are serialised by the
//! schema's outbox lock (a call that finds it taken leaves the work to the holder), so
//! positions only grow and a reader never sees a gap fill in behind its cursor.

use sqlx::PgPool;

/// At most this many events are numbered per call, so one call stays short however large
/// the backlog (the relay calls again while there is more).
const MAX_PER_CALL: i64 = 10_000;

/// Numbers the committed events that have no position yet; returns how many it numbered
/// (0 also when another replica is numbering right now).
pub async fn sequence(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let ours: bool = sqlx::query_scalar(
        "SELECT pg_try_advisory_xact_lock(hashtextextended('guestloop.outbox:' || current_schema(), 0))",
    )
    .fetch_one(&mut *tx)
    .await?;
    if !ours {
        return Ok(0);
    }
    // A new statement, so a new snapshot: it sees every position committed by the caller
    // that held the lock before.
    let numbered = sqlx::query(
        "UPDATE outbox o SET position = b.base + s.rn
           FROM (SELECT id, row_number() OVER (ORDER BY id) AS rn
                   FROM outbox WHERE position IS NULL ORDER BY id LIMIT $1) s,
                (SELECT COALESCE(max(position), 0) AS base FROM outbox) b
          WHERE o.id = s.id",
    )
    .bind(MAX_PER_CALL)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(numbered)
}

//! The guest directory a service keeps of guest-profile's merges (issue 11), for services
//! whose guest ids are `text`: table `guest_merges (duplicate_guest_id text PRIMARY KEY,
//! survivor_guest_id text NOT NULL, ...)` and function `guest_survivor(text)`, which takes
//! the directory lock SHARED and follows the chain; both come from [`MIGRATOR`], which each
//! such service applies with its own migrations (its triggers on its own tables call the
//! function). The merge consumer takes the
//! lock EXCLUSIVE first: every writer that resolved a guest before is committed and
//! visible to its re-pointing, and every later one waits and then sees the merge.
//! (feedback-intake keeps UUID ids, erasures too and its own look-up,
//! `guest_directory_hits()`, but takes the same lock through [`lock_exclusive`].)

use sqlx::PgConnection;

/// The directory's table and functions (libs/db/guest_directory_migrations), applied in the
/// schema of every service that follows merges by guest-id text: pass it to
/// [`crate::migrate`] beside the service's own migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./guest_directory_migrations");

/// The key `guest_survivor()` takes shared, per schema: advisory locks are database-wide,
/// and several services' schemas may share one database.
const LOCK: &str = "SELECT pg_advisory_xact_lock(hashtextextended('guestloop.guest_directory:' || current_schema(), 0))";

/// Takes the directory lock exclusively until the transaction ends. Must come first in the
/// transaction: a writer holding it shared never waits for a row lock of ours.
pub async fn lock_exclusive(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query(LOCK).execute(conn).await?;
    Ok(())
}

/// Remembers duplicate -> survivor. A duplicate is merged once; a conflicting second
/// survivor would be guest-profile's bug, and the first one stays. `Id` is the schema's
/// guest-id type: `&str` where ids are text, `Uuid` in feedback-intake.
pub async fn record_merge<Id>(
    conn: &mut PgConnection,
    survivor: Id,
    duplicate: Id,
) -> Result<(), sqlx::Error>
where
    Id: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send,
{
    sqlx::query(
        "INSERT INTO guest_merges (duplicate_guest_id, survivor_guest_id) VALUES ($1, $2)
         ON CONFLICT DO NOTHING",
    )
    .bind(duplicate)
    .bind(survivor)
    .execute(conn)
    .await?;
    Ok(())
}

/// Where `guest`'s chain of merges ends (itself when never merged, '' for ''); takes the
/// directory lock shared for the rest of the transaction.
pub async fn survivor(conn: &mut PgConnection, guest: &str) -> Result<String, sqlx::Error> {
    sqlx::query_scalar("SELECT guest_survivor($1)")
        .bind(guest)
        .fetch_one(conn)
        .await
}

/// Every row of `table` naming `from` names `to` now (`also_set`: more assignments for the
/// same UPDATE, e.g. `update_time = now()`, or ""). The rows moved.
pub async fn repoint(
    conn: &mut PgConnection,
    table: &str,
    also_set: &str,
    from: &str,
    to: &str,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {table} SET guest_id = $2{also_set} WHERE guest_id = $1"
    )))
    .bind(from)
    .bind(to)
    .execute(conn)
    .await?
    .rows_affected())
}

/// Which of `ids` this schema's `erased_guests` table holds, with their erase times: the
/// guests whose GuestErased the service has applied (every consumer writes that row in the
/// erasure's own transaction). `Id` is the schema's guest-id type, as in [`record_merge`].
pub async fn erased_among<Id>(
    pool: &sqlx::PgPool,
    ids: Vec<Id>,
) -> Result<Vec<(Id, chrono::DateTime<chrono::Utc>)>, sqlx::Error>
where
    Id: for<'r> sqlx::Decode<'r, sqlx::Postgres>
        + for<'q> sqlx::Encode<'q, sqlx::Postgres>
        + sqlx::Type<sqlx::Postgres>
        + sqlx::postgres::PgHasArrayType
        + Send
        + Unpin,
{
    sqlx::query_as("SELECT guest_id, erase_time FROM erased_guests WHERE guest_id = ANY($1)")
        .bind(ids)
        .fetch_all(pool)
        .await
}

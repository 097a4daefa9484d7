//! The re-pointing of the scheduler's rows from a merged-away guest to its survivor. The
//! directory itself (merges, the lock, resolving chains) is guestloop_db::guest_directory
//! (the triggers that use it: migrations/1005); why and in which order is decided in guest_merge.rs.

pub use guestloop_db::guest_directory::{lock_exclusive, record_merge, survivor};
use guestloop_proto::followup::v1::TimerPurpose;
use sqlx::PgConnection;

/// What re-pointing changed, per table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    pub timers: u64,
    pub tasks: u64,
    pub cases: u64,
}

/// Every timer, task and case of `from` now names `to`. Keys and idempotency keys stay as
/// they are: they identify a row (and the effects it already had), not its guest.
pub async fn move_guest(
    conn: &mut PgConnection,
    from: &str,
    to: &str,
) -> Result<Moved, sqlx::Error> {
    let mut moved = Moved::default();
    for (table, count) in [
        ("timers", &mut moved.timers),
        ("tasks", &mut moved.tasks),
        ("cases", &mut moved.cases),
    ] {
        *count = guestloop_db::guest_directory::repoint(
            &mut *conn,
            table,
            ", update_time = now()",
            from,
            to,
        )
        .await?;
    }
    Ok(moved)
}

/// One birthday greeting per guest and year: of `guest`'s birthday timers of one year, the
/// one that already ran, else the guest's own key (`guest/<guest>/birthday/<year>`, the one
/// a later check-out replaces), else the oldest, is kept; the other PENDING ones are
/// cancelled as 'merged'. Returns how many.
pub async fn dedupe_birthdays(conn: &mut PgConnection, guest: &str) -> Result<u64, sqlx::Error> {
    dedupe_yearly(conn, guest, TimerPurpose::BirthdayCare, "birthday").await
}

/// One anniversary greeting per guest and year, as [`dedupe_birthdays`]
/// (`guest/<guest>/anniversary/<year>`).
pub async fn dedupe_anniversaries(
    conn: &mut PgConnection,
    guest: &str,
) -> Result<u64, sqlx::Error> {
    dedupe_yearly(conn, guest, TimerPurpose::AnniversaryCare, "anniversary").await
}

async fn dedupe_yearly(
    conn: &mut PgConnection,
    guest: &str,
    purpose: TimerPurpose,
    what: &str,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "WITH ranked AS (
             SELECT id, state, row_number() OVER (
                        PARTITION BY split_part(key, '/', 4)
                        ORDER BY state <> 1 DESC,
                                 key = 'guest/' || $1 || '/' || $3 || '/' || split_part(key, '/', 4) DESC,
                                 id) AS n
               FROM timers
              WHERE guest_id = $1 AND purpose = $2 AND state IN (1, 2, 3))
         UPDATE timers t SET state = 5, skip_reason = 'merged', update_time = now()
           FROM ranked r
          WHERE t.id = r.id AND r.n > 1 AND r.state = 1",
    )
    .bind(guest)
    .bind(purpose as i16)
    .bind(what)
    .execute(conn)
    .await?
    .rows_affected())
}

/// Remembers that `guest` was erased here (GetGuestErasures answers from it; case facts
/// naming the guest that arrive later are stored without the id) and drops the id from the
/// copies of case facts.
pub async fn record_erased(conn: &mut PgConnection, guest: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO erased_guests (guest_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(guest)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE cases SET guest_id = '', update_time = now() WHERE guest_id = $1")
        .bind(guest)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Whether any of these guest ids was erased here.
pub async fn any_erased(conn: &mut PgConnection, ids: &[&str]) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM erased_guests WHERE guest_id = ANY($1))")
        .bind(ids)
        .fetch_one(conn)
        .await
}

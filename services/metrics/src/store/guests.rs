//! The re-pointing of metrics' per-guest state from a merged-away guest to its survivor.
//! The directory itself (merges, the lock, resolving chains) is
//! guestloop_db::guest_directory (the triggers that use it: migrations/1007); why and in which order is decided
//! in guest_merge.rs.

use sqlx::PgConnection;

/// What re-pointing changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    pub stays: u64,
    pub quotes: u64,
}

/// Every checked-out stay and quote of `from` now names `to`.
pub async fn move_guest(
    conn: &mut PgConnection,
    from: &str,
    to: &str,
) -> Result<Moved, sqlx::Error> {
    let mut moved = Moved::default();
    for (table, count) in [
        ("stay_state", &mut moved.stays),
        ("quotes", &mut moved.quotes),
    ] {
        *count = guestloop_db::guest_directory::repoint(&mut *conn, table, "", from, to).await?;
    }
    Ok(moved)
}

/// Whether any of `ids` was erased.
pub async fn any_erased(conn: &mut PgConnection, ids: &[&str]) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM erased_guests WHERE guest_id = ANY($1))")
        .bind(ids)
        .fetch_one(conn)
        .await
}

//! guest-profile's GuestMerged (issue 11): the per-guest state metrics keeps (checked-out
//! stays, which decide whether a VIP "stayed before"; quotes, which an erasure removes)
//! belongs to the survivor from now on.
//!
//! KPIs do not change because of a merge: rollups are counted per event on the day the
//! event names and are never rewritten, and no KPI counts distinct guests. What changes is
//! what later events decide: a VIP check-out of the survivor (or of the duplicate, arriving
//! late) counts as a return when either profile checked out within the year, so the two
//! are one guest from the merge on; check-outs counted before stay as counted.
//!
//! Any order, applied once:
//! - the merge is applied in one transaction with its inbox row (ingest.rs; a redelivery
//!   finds the row and changes nothing), remembered in `guest_merges` and followed through
//!   chains (d -> s, s -> t in either order: everything ends on t);
//! - rows naming the duplicate written AFTER the merge (its check-out or feedback delivered
//!   late, a previous-release pod) are re-pointed as they are written by the triggers of
//!   migrations/1007 and libs/db/guest_directory_migrations, and look-ups resolve the id they are given (stayed_before, the
//!   erased check of quotes); a directory lock (shared by writers, exclusive here) makes
//!   every writer either commit before this moves rows or see the merge;
//! - an erasure of any profile of the chain erases the survivor's words (guest-profile
//!   erases a survivor together with what was merged into it), whichever came first.

use crate::store::entities;
use crate::store::guests::{self as store, Moved};
use guestloop_db::guest_directory as directory;
use sqlx::PgConnection;

/// A parsed GuestMerged (shared by every consumer).
pub use guestloop_outbox::guest_merge::GuestMerge as Merge;

/// Records the merge and moves the duplicate's state to where its chain now ends. The
/// caller holds the directory lock exclusively (directory::lock_exclusive, first thing in
/// the transaction) and has marked the event applied.
pub async fn apply(conn: &mut PgConnection, m: &Merge) -> Result<Moved, sqlx::Error> {
    directory::record_merge(&mut *conn, &m.survivor, &m.duplicate).await?;
    // The survivor may itself have been merged away already (s -> t arrived first).
    let last = directory::survivor(&mut *conn, &m.duplicate).await?;
    let moved = store::move_guest(&mut *conn, &m.duplicate, &last).await?;
    if store::any_erased(&mut *conn, &[&m.duplicate, &m.survivor, &last]).await? {
        entities::erase_guest(&mut *conn, &last).await?;
    }
    Ok(moved)
}

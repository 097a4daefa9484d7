//! guest-profile's GuestMerged (issue 11): the duplicate's timers, tasks and case facts
//! belong to the survivor from now on, so per-guest decisions (one survey per
//! `survey_min_interval`, one birthday greeting a year) see one guest.
//!
//! Any order, applied once:
//! - the merge is applied in one transaction with its inbox row (a redelivery finds the row
//!   and changes nothing), remembered in `guest_merges` and followed through chains
//!   (d -> s, s -> t in either order: everything ends on t);
//! - rows naming the duplicate written AFTER the merge (its stay's check-out delivered
//!   late, a case event, an API call, a previous-release pod) are re-pointed as they are
//!   written, by the triggers of migrations/1005; a directory lock (shared by writers,
//!   exclusive here) makes every writer either commit before this re-points or see the
//!   merge;
//! - timer keys and idempotency keys are not rewritten: they name a row and the effects it
//!   already had (`timer:<id>:<generation>`), not its guest. Birthday keys do carry a guest
//!   id (and so do anniversary keys), so the survivor could end up with two greetings for
//!   one year: all but one are cancelled ('merged') here and after every check-out.

use crate::store::guests::{self as store, Moved};
use sqlx::PgConnection;

/// A parsed GuestMerged (shared by every consumer).
pub use guestloop_outbox::guest_merge::GuestMerge as Merge;

/// Records the merge and moves the duplicate's rows to where its chain now ends. The
/// caller holds the directory lock exclusively (store::lock_exclusive, first thing in the
/// transaction) and has marked the event applied.
pub async fn apply(conn: &mut PgConnection, m: &Merge) -> Result<Moved, sqlx::Error> {
    store::record_merge(&mut *conn, &m.survivor, &m.duplicate).await?;
    // The survivor may itself have been merged away already (t -> ... arrived first).
    let last = store::survivor(&mut *conn, &m.duplicate).await?;
    let moved = store::move_guest(&mut *conn, &m.duplicate, &last).await?;
    store::dedupe_birthdays(&mut *conn, &last).await?;
    store::dedupe_anniversaries(&mut *conn, &last).await?;
    Ok(moved)
}

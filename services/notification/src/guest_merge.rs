//! guest-profile's GuestMerged (issue 11): the duplicate's messages and its WeChat
//! interactions (the 48-hour free-form window) belong to the survivor from now on.
//!
//! Any order, applied once:
//! - the merge is applied in one transaction with its inbox row (api/events.rs; a
//!   redelivery finds the row and changes nothing), remembered in `guest_merges` and
//!   followed through chains (d -> s, s -> t in either order: everything ends on t);
//! - rows naming the duplicate written AFTER the merge (a message asked for it, its WeChat
//!   interaction delivered late, a previous-release pod) are re-pointed as they are written
//!   by the triggers of migrations/1005, and the window is read through the chain
//!   (store/interactions.rs::last), so a send naming the duplicate sees the survivor's
//!   window; a directory lock (shared by writers, exclusive here) makes every writer either
//!   commit before this moves rows or see the merge;
//! - the survivor's window is the later of the two interactions; messages keep their ids
//!   and idempotency keys (a retried send still finds its message), only their guest
//!   changes.

use crate::store::{interactions, messages};
use guestloop_db::guest_directory as directory;
use sqlx::PgConnection;

/// A parsed GuestMerged (shared by every consumer).
pub use guestloop_outbox::guest_merge::GuestMerge as Merge;

/// What a merge moved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    pub messages: u64,
    pub interactions: u64,
}

/// Records the merge and moves the duplicate's rows to where its chain now ends. The
/// caller holds the directory lock exclusively (directory::lock_exclusive, first thing in
/// the transaction) and has marked the event applied.
pub async fn apply(conn: &mut PgConnection, m: &Merge) -> Result<Moved, sqlx::Error> {
    directory::record_merge(&mut *conn, &m.survivor, &m.duplicate).await?;
    // The survivor may itself have been merged away already (s -> t arrived first).
    let last = directory::survivor(&mut *conn, &m.duplicate).await?;
    Ok(Moved {
        messages: messages::move_guest(&mut *conn, &m.duplicate, &last).await?,
        interactions: interactions::move_guest(&mut *conn, &m.duplicate, &last).await?,
    })
}

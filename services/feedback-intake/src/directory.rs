//! Keeping feedback and cases in line with guest-profile's merges and erasures (issue 11),
//! whatever order things arrive in. Two tables remember what guest-profile said
//! (store/directory.rs): merges (duplicate -> survivor) and erased guests. A guest's records
//! are *settled* by following its chain of merges to the last survivor, moving every
//! record of the chain there, and, when any profile in the chain was erased, erasing them
//! (guest-profile erases a survivor together with everything merged into it, so one erased
//! id means the whole chain is being erased).
//!
//! Settling is idempotent and is done:
//! - by the event consumer (ingest.rs), for the guest an event names, under the directory
//!   lock held exclusively: every writer that stored a link to a guest before is committed
//!   and visible;
//! - by intake, for a submission whose guest the directory already knows (a merged-away id
//!   guest-profile answered with before its merge committed, feedback for an erased guest
//!   arriving late, a retry): writers hold the lock shared and look the guest up after it
//!   is granted, so every change committed before is seen, and every later one waits for
//!   the writer's commit and then settles its rows.
//!
//! The lock is one per schema: an event stalls intake of guests' feedback only while it
//! waits for the transactions in flight and settles one guest (merges and erasures are
//! head-office actions, rare). A writer that already holds row locks when it first asks
//! (a later call of a group commit) may find an event queued ahead of it; PostgreSQL's
//! deadlock check resolves such a wait by reordering the queue, not by failing either.
//! Previous-release pods (rolling upgrade) neither ask nor consume: feedback they store
//! for such a guest during the overlap is settled the next time this release settles that
//! guest (its next event, or its next feedback taken in here), not before.

use crate::error::Result;
use crate::store::directory as store;
use sqlx::PgConnection;
use uuid::Uuid;

/// What settling changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Settled {
    /// Feedback items re-pointed to a survivor.
    pub feedback_moved: u64,
    pub cases_moved: usize,
    pub feedback_erased: usize,
    pub cases_erased: usize,
}

/// Brings every record of `guest`'s chain of merges to its last survivor and, if the chain
/// was erased, erases them. Queue watchers hear of every case it changed.
pub async fn settle(conn: &mut PgConnection, guest: Uuid) -> Result<Settled> {
    let chain = store::chain(&mut *conn, guest).await?;
    let Some(&(last, _)) = chain.last() else {
        return Ok(Settled::default());
    };
    let erased = chain.iter().any(|(_, e)| *e);
    let merged_away: Vec<Uuid> = chain
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| *id != last)
        .collect();
    let mut settled = Settled::default();
    let mut touched = Vec::new();
    if !merged_away.is_empty() {
        let (feedback, cases) = store::move_guest(&mut *conn, &merged_away, last).await?;
        settled.feedback_moved = feedback;
        settled.cases_moved = cases.len();
        touched.extend(cases);
    }
    if erased {
        let feedback = store::erase_feedback(&mut *conn, last).await?;
        store::erase_outbox(&mut *conn, &feedback).await?;
        let cases = store::erase_cases(&mut *conn, last).await?;
        settled.feedback_erased = feedback.len();
        settled.cases_erased = cases.len();
        touched.extend(cases);
    }
    touched.sort();
    touched.dedup();
    for (property_id, case_id) in touched {
        crate::store::cases::notify_change(&mut *conn, &property_id, case_id).await?;
    }
    Ok(settled)
}

/// For a writer about to store a link to `guest`: takes the directory lock shared (to the
/// end of the transaction) and says whether the guest must be settled once the rows are
/// written (in the same transaction).
pub async fn must_settle(conn: &mut PgConnection, guest: Option<Uuid>) -> Result<bool> {
    let Some(guest) = guest else {
        return Ok(false);
    };
    Ok(!store::hits(conn, &[guest]).await?.is_empty())
}

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
//!   migrations/1006, and look-ups resolve the id they are given (stayed_before, the
//!   erased check of quotes); a directory lock (shared by writers, exclusive here) makes
//!   every writer either commit before this moves rows or see the merge;
//! - an erasure of any profile of the chain erases the survivor's words (guest-profile
//!   erases a survivor together with what was merged into it), whichever came first.

use crate::store::entities;
use crate::store::guests::{self as store, Moved};
use guestloop_db::guest_directory as directory;
use guestloop_errors::FieldViolations;
use guestloop_errors::parse::uuid;
use guestloop_proto::events::v1::GuestMerged;
use sqlx::PgConnection;

/// A parsed GuestMerged: both ids are UUIDs and differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merge {
    pub survivor: String,
    pub duplicate: String,
}

impl TryFrom<&GuestMerged> for Merge {
    type Error = FieldViolations;

    fn try_from(m: &GuestMerged) -> Result<Self, Self::Error> {
        let mut v = FieldViolations::new();
        let survivor = v.check("guest_merged.survivor_guest_id", uuid(&m.survivor_guest_id));
        let duplicate = v.check(
            "guest_merged.duplicate_guest_id",
            uuid(&m.duplicate_guest_id),
        );
        if let (Some(s), Some(d)) = (survivor, duplicate)
            && s == d
        {
            // A profile merged into itself would make a chain that never ends.
            v.add("guest_merged.duplicate_guest_id", "is the survivor itself");
        }
        // Stored as guest-profile writes them everywhere else in this schema: hyphenated,
        // lower case (what Uuid's Display gives).
        v.into_result(|| Self {
            survivor: survivor.expect("checked").to_string(),
            duplicate: duplicate.expect("checked").to_string(),
        })
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0195a3c0-5f1e-7b62-9a4e-6f1b2c3d4e5f";
    const B: &str = "0195a3c0-0000-7b62-9a4e-6f1b2c3d4e5f";

    #[test]
    fn merges_parse_with_two_different_ids() {
        // (survivor, duplicate, the fields a rejection names; empty: accepted)
        let cases: [(&str, &str, &[&str]); 5] = [
            (A, B, &[]),
            ("", B, &["guest_merged.survivor_guest_id"]),
            (A, "nope", &["guest_merged.duplicate_guest_id"]),
            (A, A, &["guest_merged.duplicate_guest_id"]),
            (
                "x",
                "",
                &[
                    "guest_merged.survivor_guest_id",
                    "guest_merged.duplicate_guest_id",
                ],
            ),
        ];
        for (s, d, fields) in cases {
            let got = Merge::try_from(&GuestMerged {
                survivor_guest_id: s.into(),
                duplicate_guest_id: d.into(),
            });
            match got {
                Ok(m) => {
                    assert!(fields.is_empty(), "{s:?} {d:?} accepted");
                    assert_eq!((m.survivor.as_str(), m.duplicate.as_str()), (s, d));
                }
                Err(v) => {
                    let got: Vec<String> = v.0.into_iter().map(|f| f.field).collect();
                    assert_eq!(got, fields, "{s:?} {d:?}");
                }
            }
        }
    }
}

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
//!   written, by the triggers of migrations/1003; a directory lock (shared by writers,
//!   exclusive here) makes every writer either commit before this re-points or see the
//!   merge;
//! - timer keys and idempotency keys are not rewritten: they name a row and the effects it
//!   already had (`timer:<id>:<generation>`), not its guest. Birthday keys do carry a guest
//!   id, so the survivor could end up with two greetings for one year: all but one are
//!   cancelled ('merged') here and after every check-out.

use crate::store::guests::{self as store, Moved};
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

/// Records the merge and moves the duplicate's rows to where its chain now ends. The
/// caller holds the directory lock exclusively (store::lock_exclusive, first thing in the
/// transaction) and has marked the event applied.
pub async fn apply(conn: &mut PgConnection, m: &Merge) -> Result<Moved, sqlx::Error> {
    store::record_merge(&mut *conn, &m.survivor, &m.duplicate).await?;
    // The survivor may itself have been merged away already (t -> ... arrived first).
    let last = store::survivor(&mut *conn, &m.duplicate).await?;
    let moved = store::move_guest(&mut *conn, &m.duplicate, &last).await?;
    store::dedupe_birthdays(&mut *conn, &last).await?;
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

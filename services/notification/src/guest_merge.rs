//! guest-profile's GuestMerged (issue 11): the duplicate's messages and its WeChat
//! interactions (the 48-hour free-form window) belong to the survivor from now on.
//!
//! Any order, applied once:
//! - the merge is applied in one transaction with its inbox row (api/events.rs; a
//!   redelivery finds the row and changes nothing), remembered in `guest_merges` and
//!   followed through chains (d -> s, s -> t in either order: everything ends on t);
//! - rows naming the duplicate written AFTER the merge (a message asked for it, its WeChat
//!   interaction delivered late, a previous-release pod) are re-pointed as they are written
//!   by the triggers of migrations/1003, and the window is read through the chain
//!   (store/interactions.rs::last), so a send naming the duplicate sees the survivor's
//!   window; a directory lock (shared by writers, exclusive here) makes every writer either
//!   commit before this moves rows or see the merge;
//! - the survivor's window is the later of the two interactions; messages keep their ids
//!   and idempotency keys (a retried send still finds its message), only their guest
//!   changes.

use crate::store::{interactions, messages};
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

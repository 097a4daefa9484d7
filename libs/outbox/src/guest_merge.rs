//! guest-profile's GuestMerged parsed once for every consumer (feedback-intake keeps its
//! own, with erasures, in `domain/directory.rs`): both ids are UUIDs and differ, since a
//! profile merged into itself would make a chain of merges that never ends.

use guestloop_errors::FieldViolations;
use guestloop_errors::parse::uuid;
use guestloop_proto::events::v1::GuestMerged;

/// A parsed GuestMerged: both ids are UUIDs and differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestMerge {
    pub survivor: String,
    pub duplicate: String,
}

impl TryFrom<&GuestMerged> for GuestMerge {
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
            let got = GuestMerge::try_from(&GuestMerged {
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

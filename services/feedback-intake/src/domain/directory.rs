//! What guest-profile tells feedback-intake about its guests (issue 11): a guest was erased,
//! or a duplicate profile was merged into a survivor. Parsed from the events with every id
//! checked, so the consumer (ingest.rs) only ever sees well-formed changes.

use guestloop_errors::FieldViolations;
use guestloop_errors::parse::uuid;
use guestloop_proto::events::v1::{
    EventEnvelope, GuestErased, GuestMerged, event_envelope::Payload,
};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectoryChange {
    /// Every trace of the guest's words and contact data goes; statistics stay.
    Erased { guest_id: Uuid },
    /// The duplicate's feedback and cases belong to the survivor from now on.
    Merged { survivor: Uuid, duplicate: Uuid },
}

impl DirectoryChange {
    /// The change `event` carries; `None` for the events feedback-intake does not consume
    /// (they are acknowledged and ignored).
    pub fn of(event: &EventEnvelope) -> Option<Result<Self, FieldViolations>> {
        match event.payload.as_ref()? {
            Payload::GuestErased(e) => Some(Self::try_from(e)),
            Payload::GuestMerged(m) => Some(Self::try_from(m)),
            _ => None,
        }
    }

    /// The guest whose rows the change settles: for a merge the duplicate, whose chain of
    /// merges leads to the survivor (and on, if the survivor was merged away since).
    pub fn guest(&self) -> Uuid {
        match self {
            Self::Erased { guest_id } => *guest_id,
            Self::Merged { duplicate, .. } => *duplicate,
        }
    }
}

impl TryFrom<&GuestErased> for DirectoryChange {
    type Error = FieldViolations;

    fn try_from(e: &GuestErased) -> Result<Self, Self::Error> {
        let guest_id =
            uuid(&e.guest_id).map_err(|d| FieldViolations::single("guest_erased.guest_id", d))?;
        Ok(Self::Erased { guest_id })
    }
}

impl TryFrom<&GuestMerged> for DirectoryChange {
    type Error = FieldViolations;

    fn try_from(m: &GuestMerged) -> Result<Self, Self::Error> {
        // The one parser every consumer shares; its ids are checked UUIDs.
        let m = guestloop_outbox::guest_merge::GuestMerge::try_from(m)?;
        let id = |s: &str| s.parse().expect("a checked UUID");
        Ok(Self::Merged {
            survivor: id(&m.survivor),
            duplicate: id(&m.duplicate),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0195a3c0-5f1e-7b62-9a4e-6f1b2c3d4e5f";
    const B: &str = "0195a3c0-0000-7b62-9a4e-6f1b2c3d4e5f";

    fn merged(survivor: &str, duplicate: &str) -> Result<DirectoryChange, Vec<String>> {
        DirectoryChange::try_from(&GuestMerged {
            survivor_guest_id: survivor.into(),
            duplicate_guest_id: duplicate.into(),
        })
        .map_err(|v| v.0.into_iter().map(|f| f.field).collect())
    }

    #[test]
    fn merges_parse_with_both_ids_and_never_into_themselves() {
        // (survivor, duplicate, the fields a rejection names; none: accepted)
        type Case<'a> = (&'a str, &'a str, Result<(), Vec<&'a str>>);
        let cases: [Case; 5] = [
            (A, B, Ok(())),
            ("", B, Err(vec!["guest_merged.survivor_guest_id"])),
            (A, "nope", Err(vec!["guest_merged.duplicate_guest_id"])),
            (A, A, Err(vec!["guest_merged.duplicate_guest_id"])),
            (
                "x",
                "",
                Err(vec![
                    "guest_merged.survivor_guest_id",
                    "guest_merged.duplicate_guest_id",
                ]),
            ),
        ];
        for (s, d, want) in cases {
            let got = merged(s, d);
            match want {
                Ok(()) => assert_eq!(
                    got,
                    Ok(DirectoryChange::Merged {
                        survivor: Uuid::parse_str(s).unwrap(),
                        duplicate: Uuid::parse_str(d).unwrap(),
                    })
                ),
                Err(fields) => assert_eq!(got.unwrap_err(), fields, "{s:?} {d:?}"),
            }
        }
    }

    #[test]
    fn only_guest_events_are_consumed() {
        let env = |payload| EventEnvelope {
            payload: Some(payload),
            ..Default::default()
        };
        let erased = env(Payload::GuestErased(GuestErased { guest_id: A.into() }));
        assert_eq!(
            DirectoryChange::of(&erased).unwrap().unwrap().guest(),
            Uuid::parse_str(A).unwrap()
        );
        let bad = env(Payload::GuestErased(GuestErased::default()));
        assert!(DirectoryChange::of(&bad).unwrap().is_err());
        let other = env(Payload::StayCancelled(Default::default()));
        assert!(DirectoryChange::of(&other).is_none());
        assert!(DirectoryChange::of(&EventEnvelope::default()).is_none());
    }
}

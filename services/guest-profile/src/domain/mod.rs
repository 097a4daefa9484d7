//! guest-profile's domain values, parsed from requests so that nothing downstream holds an
//! unchecked value.

mod consent;
mod profile;
mod stay;

pub use consent::ConsentInput;
pub use profile::{Preferences, Profile, SpecialNeed, apply_mask, parse_create};
pub use stay::{StayInput, StayStatus};

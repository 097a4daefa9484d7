//! feedback-intake's domain: submissions parsed from requests, the case lifecycle, the
//! rules that grade, time and route a case, and guest-profile's merges and erasures.

pub mod directory;
pub mod lifecycle;
pub mod rules;
pub mod submission;

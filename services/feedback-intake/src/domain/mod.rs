//! feedback-intake's domain: submissions parsed from requests, the case lifecycle, and the
//! rules that grade, time and route a case.

pub mod lifecycle;
pub mod rules;
pub mod submission;

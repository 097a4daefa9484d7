//! Conversions between protobuf `Timestamp` and chrono's `DateTime<Utc>`, the one place
//! services turn instants into messages and back.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;

pub fn to_timestamp(t: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// The instant of a timestamp; `None` for one out of range or with invalid nanos.
pub fn from_timestamp(t: &Timestamp) -> Option<DateTime<Utc>> {
    u32::try_from(t.nanos)
        .ok()
        .filter(|n| *n < 1_000_000_000)
        .and_then(|n| DateTime::from_timestamp(t.seconds, n))
}

/// An optional message field's instant.
pub fn instant(t: &Option<Timestamp>) -> Option<DateTime<Utc>> {
    t.as_ref().and_then(from_timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_round_trip_and_bad_ones_are_refused() {
        let t = DateTime::from_timestamp(1_795_465_558, 179_697_000).unwrap();
        assert_eq!(from_timestamp(&to_timestamp(t)), Some(t));
        let bad = Timestamp {
            seconds: 1,
            nanos: -1,
        };
        assert_eq!(from_timestamp(&bad), None);
        assert_eq!(instant(&None), None);
    }
}

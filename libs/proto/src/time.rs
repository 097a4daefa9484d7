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

/// The first and last second an instant may have: years 1 to 9999, what PostgreSQL and
/// every client hold (and protobuf's own Timestamp range). chrono reaches ±262,143 years,
/// but an instant near its ends panics the moment a service adds a day to it or puts it on
/// a property's local day (found by the parser fuzzing, R8: a StayCheckedOut event in the
/// year 262,143 panicked the scheduler's plan, an event time at chrono's end metrics'
/// rollups, and the relay would have delivered each again forever).
pub const FIRST_SECOND: i64 = -62_135_596_800; // 0001-01-01T00:00:00Z
pub const LAST_SECOND: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z

/// The instant of a timestamp; `None` for one outside years 1 to 9999 or with invalid nanos.
pub fn from_timestamp(t: &Timestamp) -> Option<DateTime<Utc>> {
    if !(FIRST_SECOND..=LAST_SECOND).contains(&t.seconds) {
        return None;
    }
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
        let at = |seconds| Timestamp { seconds, nanos: 0 };
        assert!(from_timestamp(&at(FIRST_SECOND)).is_some());
        assert!(from_timestamp(&at(LAST_SECOND)).is_some());
        assert_eq!(from_timestamp(&at(FIRST_SECOND - 1)), None);
        assert_eq!(from_timestamp(&at(LAST_SECOND + 1)), None);
    }
}

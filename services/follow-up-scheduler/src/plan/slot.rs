//! When, in a property's local time, a guest may be contacted: inside the plan's contact
//! hours and outside the property's quiet hours. Pure functions over chrono-tz, so the
//! hours are tested without a clock (DST gaps and overlaps included).

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use guestloop_config::LocalTimeRange;

/// May a guest be contacted at local time `t`?
pub fn allowed(t: NaiveTime, contact: &LocalTimeRange, quiet: &LocalTimeRange) -> bool {
    contact.contains(t) && !quiet.contains(t)
}

/// The first instant at or after `earliest` inside the contact hours and outside the quiet
/// hours of `tz`. Falls back to `earliest` when the two windows never overlap (a
/// configuration a person must fix; the message still goes, and notification holds it back
/// through the quiet hours).
pub fn next_contact_time(
    earliest: DateTime<Utc>,
    tz: Tz,
    contact: &LocalTimeRange,
    quiet: &LocalTimeRange,
) -> DateTime<Utc> {
    let local = earliest.with_timezone(&tz);
    if allowed(local.time(), contact, quiet) {
        return earliest;
    }
    // The next allowed instant starts at one of these boundaries on one of the next days.
    let day = local.date_naive();
    let mut candidates: Vec<DateTime<Utc>> = (0..3)
        .flat_map(|d| {
            let date = day + Duration::days(d);
            [contact.start, quiet.end].map(|b| at_local(tz, date, b))
        })
        .filter(|t| *t > earliest)
        .collect();
    candidates.sort();
    candidates
        .into_iter()
        .find(|t| allowed(t.with_timezone(&tz).time(), contact, quiet))
        .unwrap_or(earliest)
}

/// `time` on `date` in `tz` as an instant: the earlier of an ambiguous (DST overlap) time,
/// and an hour on for one that does not exist (DST gap).
pub fn at_local(tz: Tz, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let naive = date.and_time(time);
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, _) => a.with_timezone(&Utc),
        LocalResult::None => tz
            .from_local_datetime(&(naive + Duration::hours(1)))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| Utc.from_utc_datetime(&naive)),
    }
}

/// The next birthday greeting at or after `now`: `time` local on (month, day), 28 February
/// in years without a 29th. `None` for an impossible date.
pub fn next_birthday(
    now: DateTime<Utc>,
    tz: Tz,
    month: u32,
    day: u32,
    time: NaiveTime,
) -> Option<DateTime<Utc>> {
    let today = now.with_timezone(&tz).date_naive();
    NaiveDate::from_ymd_opt(2000, month, day)?;
    (today.year()..today.year() + 2)
        .filter_map(|y| {
            NaiveDate::from_ymd_opt(y, month, day)
                .or_else(|| (month == 2 && day == 29).then(|| NaiveDate::from_ymd_opt(y, 2, 28))?)
        })
        .map(|date| at_local(tz, date, time))
        .find(|t| *t >= now)
}

/// The next anniversary greeting at or after `now` of a date first celebrated on `date`:
/// `time` local on its month and day (28 February in years without a 29th), with how many
/// years it marks (at least 1: the date itself is no anniversary).
pub fn next_anniversary(
    now: DateTime<Utc>,
    tz: Tz,
    date: NaiveDate,
    time: NaiveTime,
) -> Option<(DateTime<Utc>, i32)> {
    let today = now.with_timezone(&tz).date_naive();
    let first = today.year().max(date.year().checked_add(1)?);
    (first..first + 2)
        .filter_map(|y| {
            let day = NaiveDate::from_ymd_opt(y, date.month(), date.day()).or_else(|| {
                (date.month() == 2 && date.day() == 29)
                    .then(|| NaiveDate::from_ymd_opt(y, 2, 28))?
            })?;
            Some((at_local(tz, day, time), y - date.year()))
        })
        .find(|(t, _)| *t >= now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(a: &str, b: &str) -> LocalTimeRange {
        LocalTimeRange {
            start: NaiveTime::parse_from_str(a, "%H:%M").unwrap(),
            end: NaiveTime::parse_from_str(b, "%H:%M").unwrap(),
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const SHANGHAI: Tz = chrono_tz::Asia::Shanghai;

    #[test]
    fn inside_the_hours_the_time_stays() {
        // 14:00 in Shanghai.
        let t = utc("2026-05-01T06:00:00Z");
        let got = next_contact_time(
            t,
            SHANGHAI,
            &range("10:00", "20:00"),
            &range("21:00", "08:00"),
        );
        assert_eq!(got, t);
    }

    #[test]
    fn after_the_hours_it_moves_to_the_next_morning() {
        // 23:30 in Shanghai -> 10:00 the next day.
        let t = utc("2026-05-01T15:30:00Z");
        let got = next_contact_time(
            t,
            SHANGHAI,
            &range("10:00", "20:00"),
            &range("21:00", "08:00"),
        );
        assert_eq!(got, utc("2026-05-02T02:00:00Z"));
    }

    #[test]
    fn quiet_hours_that_end_late_win_over_the_contact_hours() {
        // Contact from 07:00, but quiet until 09:30: 06:00 local -> 09:30.
        let t = utc("2026-05-01T22:00:00Z");
        let got = next_contact_time(
            t,
            SHANGHAI,
            &range("07:00", "20:00"),
            &range("21:00", "09:30"),
        );
        assert_eq!(got, utc("2026-05-02T01:30:00Z"));
    }

    #[test]
    fn a_dst_gap_moves_the_boundary_an_hour_on() {
        // New York, 8 March 2026: 02:00-03:00 does not exist; contact hours from 02:30.
        let ny: Tz = chrono_tz::America::New_York;
        let t = utc("2026-03-08T05:00:00Z"); // 00:00 EST
        let got = next_contact_time(t, ny, &range("02:30", "20:00"), &range("23:00", "01:00"));
        assert_eq!(got.with_timezone(&ny).format("%H:%M").to_string(), "03:30");
    }

    #[test]
    fn birthdays_fall_on_the_next_date_at_ten_local() {
        let ten = NaiveTime::from_hms_opt(10, 0, 0).unwrap();
        let now = utc("2026-11-23T12:00:00Z");
        let b = next_birthday(now, SHANGHAI, 11, 24, ten).unwrap();
        assert_eq!(b, utc("2026-11-24T02:00:00Z"));
        // Already past today's 10:00: next year.
        let b = next_birthday(now, SHANGHAI, 11, 23, ten).unwrap();
        assert_eq!(b, utc("2027-11-23T02:00:00Z"));
        // 29 February in 2027 is the 28th.
        let b = next_birthday(now, SHANGHAI, 2, 29, ten).unwrap();
        assert_eq!(b, utc("2027-02-28T02:00:00Z"));
        assert!(next_birthday(now, SHANGHAI, 2, 30, ten).is_none());
    }

    #[test]
    fn anniversaries_fall_at_ten_local_and_count_the_years() {
        let ten = NaiveTime::from_hms_opt(10, 0, 0).unwrap();
        let now = utc("2026-11-23T12:00:00Z"); // 20:00 in Shanghai
        let wedding = NaiveDate::from_ymd_opt(2016, 11, 24).unwrap();
        assert_eq!(
            next_anniversary(now, SHANGHAI, wedding, ten),
            Some((utc("2026-11-24T02:00:00Z"), 10))
        );
        // Today's 10:00 has passed: next year's, one year more.
        let today = NaiveDate::from_ymd_opt(2016, 11, 23).unwrap();
        assert_eq!(
            next_anniversary(now, SHANGHAI, today, ten),
            Some((utc("2027-11-23T02:00:00Z"), 11))
        );
        // A date of this year is first greeted a year on.
        let this_year = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        assert_eq!(
            next_anniversary(now, SHANGHAI, this_year, ten),
            Some((utc("2027-03-01T02:00:00Z"), 1))
        );
        // 29 February in 2027 is the 28th.
        let leap = NaiveDate::from_ymd_opt(2020, 2, 29).unwrap();
        assert_eq!(
            next_anniversary(now, SHANGHAI, leap, ten),
            Some((utc("2027-02-28T02:00:00Z"), 7))
        );
    }
}

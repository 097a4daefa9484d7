//! R8: metrics' request and event parsers under random input, shared by the property tests
//! below (`cargo test`) and the cargo-fuzz target `metrics` (fuzz/, the long run). The date
//! ranges and report dates of GetKpis, GetLeagueTable, the report and ListStaffMentions as
//! their handlers parse them, followed by the date steps the handlers then take; delivered
//! events' instants as the consumer reads them and puts them on a property's local day.
//! None may panic; a rejection must name real fields of the request.

use crate::api::kpis::periods;
use crate::api::scope;
use crate::error::MetricsError;
use crate::settings::Settings;
use chrono::{Days, NaiveDate};
use guestloop_db::page::{BoundOffset, binding_of};
use guestloop_proto::arbitrary::{Choices, assert_names_fields, request};
use guestloop_proto::common::v1::{Date, DateRange, PageRequest};
use guestloop_proto::events::v1::{EventEnvelope, event_envelope::Payload};
use guestloop_proto::metrics::v1::{self as pb, Granularity};
use std::sync::OnceLock;

/// The parse steps, by name; [`run`] picks one by index.
pub const SURFACES: [&str; 4] = ["GetKpis", "report date", "ListStaffMentions", "events"];

/// Runs surface `surface` (mod [`SURFACES`]) on input drawn from `data`.
pub fn run(surface: usize, data: &[u8]) {
    let c = &mut Choices::new(data);
    match surface % SURFACES.len() {
        0 => kpis(c),
        1 => report_date(c),
        2 => staff_mentions(c),
        _ => event(c),
    }
}

fn settings() -> &'static Settings {
    static SETTINGS: OnceLock<Settings> = OnceLock::new();
    SETTINGS.get_or_init(|| {
        let mut layers = crate::default_layers().to_vec();
        layers.push(guestloop_testkit::TEST_CHAIN_TOML);
        guestloop_config::load_offline(&layers).expect("the default settings load")
    })
}

fn rejected(request: &str, e: MetricsError) {
    match e {
        MetricsError::Invalid(v) => assert_names_fields(
            request,
            v.0.iter()
                .map(|f| (f.field.as_str(), f.description.as_str())),
        ),
        other => panic!("parsing a {request} answered {other:?}, not INVALID_ARGUMENT"),
    }
}

fn date(year: i32, month: i32, day: i32) -> Option<Date> {
    Some(Date { year, month, day })
}

fn valid_range() -> Option<DateRange> {
    Some(DateRange {
        start_date: date(2026, 11, 1),
        end_date: date(2026, 11, 30),
    })
}

/// GetKpis and GetLeagueTable: the range, then the periods of each granularity and the
/// league's range of the same length before.
fn kpis(c: &mut Choices<'_>) {
    const REQ: &str = "guestloop.metrics.v1.GetKpisRequest";
    let valid = pb::GetKpisRequest {
        scope: None,
        date_range: valid_range(),
        granularity: Granularity::Month as i32,
        kpis: vec![pb::Kpi::Csat as i32],
        include_breakdowns: true,
    };
    let Some(req) = request(REQ, &valid, c) else {
        return;
    };
    let (from, to) = match scope::range(req.date_range.as_ref(), "date_range", 5 * 366) {
        Ok(r) => r,
        Err(e) => return rejected(REQ, e),
    };
    assert!(from <= to && (to - from).num_days() < 5 * 366);
    for g in [Granularity::Day, Granularity::Week, Granularity::Month] {
        let p = periods(from, to, g);
        assert_eq!(p.first().map(|x| x.0), Some(from));
        assert_eq!(p.last().map(|x| x.1), Some(to));
    }
    // GetLeagueTable compares with the range of the same length just before.
    let days = (to - from).num_days() + 1;
    assert!(from.checked_sub_days(Days::new(days as u64)).is_some());
}

/// The report: its date, then the 30 days before it and the end of the day in each zone.
fn report_date(c: &mut Choices<'_>) {
    const REQ: &str = "guestloop.metrics.v1.GetVoiceOfCustomerReportRequest";
    let valid = pb::GetVoiceOfCustomerReportRequest {
        scope: None,
        report_date: date(2026, 11, 30),
        top_issue_limit: 5,
    };
    let Some(req) = request(REQ, &valid, c) else {
        return;
    };
    let Some(d) = req.report_date.as_ref() else {
        return;
    };
    let Some(day) = scope::date(d) else {
        return; // answered INVALID_ARGUMENT "report_date"
    };
    assert!(day.checked_sub_days(Days::new(31)).is_some());
    for p in &settings().common.chain.properties {
        let tz: chrono_tz::Tz = p.time_zone.parse().expect("a test chain zone");
        let _ = crate::report::end_of(day, tz);
    }
}

fn staff_mentions(c: &mut Choices<'_>) {
    const REQ: &str = "guestloop.metrics.v1.ListStaffMentionsRequest";
    let binding = binding_of(b"scope");
    let valid = pb::ListStaffMentionsRequest {
        scope: None,
        date_range: valid_range(),
        page: Some(PageRequest {
            page_size: 20,
            page_token: BoundOffset::next_token(20, 0, 20, binding),
        }),
    };
    let Some(req) = request(REQ, &valid, c) else {
        return;
    };
    if let Err(e) = scope::range(req.date_range.as_ref(), "date_range", 400) {
        return rejected(REQ, e);
    }
    let p = req.page.unwrap_or_default();
    match BoundOffset::parse(p.page_size, &p.page_token, binding) {
        Ok((size, offset)) => {
            assert!((1..=guestloop_db::page::MAX_PAGE_SIZE).contains(&size) && offset >= 0);
            let _ = BoundOffset::next_token(size, offset, size as usize, binding);
        }
        Err((field, e)) => assert_names_fields(REQ, [(field, e.as_str())]),
    }
}

fn case_instants(
    f: &Option<guestloop_proto::events::v1::CaseFacts>,
) -> Vec<(&str, Option<chrono::DateTime<chrono::Utc>>)> {
    let time = crate::ingest::time;
    f.as_ref()
        .map(|f| {
            [&f.open_time, &f.resolve_time, &f.close_time]
                .into_iter()
                .map(|t| (f.property_id.as_str(), time(t)))
                .collect()
        })
        .unwrap_or_default()
}

/// Every instant the consumer reads from an event, put on its property's local day.
fn event(c: &mut Choices<'_>) {
    const ENV: &str = "guestloop.events.v1.EventEnvelope";
    let valid = EventEnvelope {
        event_id: "0195a3c0-5f1e-7b62-9a4e-6f1b2c3d4e5f".into(),
        source: "feedback-intake".into(),
        occur_time: Some(prost_types::Timestamp {
            seconds: 1_800_000_000,
            nanos: 0,
        }),
        property_id: "hk-harbour".into(),
        payload: Some(Payload::FeedbackReceived(Default::default())),
        ..Default::default()
    };
    let Some(env) = request(ENV, &valid, c) else {
        return;
    };
    let time = crate::ingest::time;
    let mut instants = vec![(env.property_id.as_str(), time(&env.occur_time))];
    match &env.payload {
        Some(Payload::FeedbackReceived(f)) => {
            instants.push((&f.property_id, time(&f.receive_time)));
        }
        Some(Payload::SurveyAnswered(s)) => instants.push((&s.property_id, time(&s.answer_time))),
        Some(Payload::StayCheckedOut(s)) => {
            instants.push((&s.property_id, time(&s.checked_out_time)));
        }
        Some(Payload::SlaClockStopped(s)) => instants.push((&s.property_id, time(&s.start_time))),
        Some(Payload::FollowUpTaskCreated(t)) => instants.push((&t.property_id, time(&t.due_time))),
        Some(Payload::CaseOpened(e)) => instants.extend(case_instants(&e.case)),
        Some(Payload::CaseStatusChanged(e)) => instants.extend(case_instants(&e.case)),
        _ => {}
    }
    let chain = &settings().common.chain;
    for (property, t) in instants {
        if let Some(t) = t {
            let d: NaiveDate = crate::ingest::local_day(chain, property, t);
            // The rollups and the report step a month around an event's day.
            assert!(d.checked_add_days(Days::new(31)).is_some());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Found by this fuzzing: a date at chrono's ends passed the parse, and then GetKpis by
    /// day panicked stepping past 262142-12-31 ("`NaiveDate + TimeDelta` overflowed"), by
    /// month on its last month (`expect("valid")`), the league and the report stepping back
    /// from -262143-01-01. Dates are now years 1 to 9999.
    #[test]
    fn dates_at_the_ends_of_chrono_are_refused_by_the_parse() {
        const REQ: &str = "guestloop.metrics.v1.GetKpisRequest";
        for (y, m, d) in [
            (262_142, 12, 31),
            (262_142, 12, 1),
            (-262_143, 1, 1),
            (0, 1, 1),
        ] {
            assert_eq!(
                scope::date(&Date {
                    year: y,
                    month: m,
                    day: d
                }),
                None
            );
            let r = DateRange {
                start_date: date(y, m, d),
                end_date: date(y, m, d),
            };
            match scope::range(Some(&r), "date_range", 400) {
                Err(e) => rejected(REQ, e),
                Ok(r) => panic!("{r:?} was accepted"),
            }
        }
        let last = scope::date(&Date {
            year: 9999,
            month: 12,
            day: 31,
        })
        .unwrap();
        let _ = periods(last, last, Granularity::Day);
        let _ = periods(last, last, Granularity::Month);
    }

    /// Found by this fuzzing: an event instant at chrono's last second panicked putting it on
    /// Hong Kong's local day ("Local time out of range"), so the consumer would have failed on
    /// that event at every redelivery. Such instants are now ignored like missing ones.
    #[test]
    fn event_instants_at_the_ends_of_chrono_are_ignored() {
        for seconds in [8_210_266_876_799, -8_334_601_228_800, 253_402_300_800] {
            let t = Some(prost_types::Timestamp { seconds, nanos: 0 });
            assert_eq!(crate::ingest::time(&t), None, "{seconds}");
        }
        let last = Some(prost_types::Timestamp {
            seconds: 253_402_300_799,
            nanos: 0,
        });
        let t = crate::ingest::time(&last).unwrap();
        let _ = crate::ingest::local_day(&settings().common.chain, "hk-harbour", t);
    }

    proptest! {
        // About a second in a debug build; the long run is `scripts/fuzz.sh`.
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn no_parse_step_panics_and_every_rejection_names_its_fields(
            data in proptest::collection::vec(any::<u8>(), 0..1024)
        ) {
            for surface in 0..SURFACES.len() {
                run(surface, &data);
            }
        }
    }
}

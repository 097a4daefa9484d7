//! R8: follow-up-scheduler's request and event parsers under random input, shared by the
//! property tests below (`cargo test`) and the cargo-fuzz target `follow_up_scheduler`
//! (fuzz/, the long run). ScheduleTimer as its handler parses it; delivered events as the
//! consumer reads them (ingest.rs) and then plans them: the stay timers and the birthday
//! and anniversary greetings of a check-out, the pre-arrival care of a booking, the clock
//! facts of a case event. None may panic; a rejection
//! must name real fields of the request; what is accepted keeps its invariants.

use crate::clocks::Facts;
use crate::domain::{RESERVED_PREFIXES, parse_schedule};
use crate::settings::Settings;
use chrono::{DateTime, Utc};
use guestloop_proto::arbitrary::{Choices, assert_names_fields, request};
use guestloop_proto::common::v1::Date;
use guestloop_proto::events::v1::{self as ev, EventEnvelope, event_envelope::Payload};
use guestloop_proto::followup::v1 as pb;
use std::sync::OnceLock;
use std::time::Duration;

/// The parse steps, by name; [`run`] picks one by index.
pub const SURFACES: [&str; 4] = [
    "ScheduleTimer",
    "stay events",
    "case events",
    "stay bookings",
];

/// Runs surface `surface` (mod [`SURFACES`]) on input drawn from `data`.
pub fn run(surface: usize, data: &[u8]) {
    let c = &mut Choices::new(data);
    match surface % SURFACES.len() {
        0 => schedule_timer(c),
        1 => stay_event(c),
        2 => case_event(c),
        _ => stay_booking(c),
    }
}

/// The default settings over the test chain (four properties, three time zones).
fn settings() -> &'static Settings {
    static SETTINGS: OnceLock<Settings> = OnceLock::new();
    SETTINGS.get_or_init(|| {
        let mut layers = crate::default_layers().to_vec();
        layers.push(guestloop_testkit::TEST_CHAIN_TOML);
        guestloop_config::load_offline(&layers).expect("the default settings load")
    })
}

fn ts(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

fn schedule_timer(c: &mut Choices<'_>) {
    const REQ: &str = "guestloop.followup.v1.ScheduleTimerRequest";
    let valid = pb::ScheduleTimerRequest {
        timer: Some(pb::Timer {
            key: "pms/sh-bund/wake-up/1208".into(),
            purpose: pb::TimerPurpose::Custom as i32,
            property_id: "sh-bund".into(),
            guest_id: "0195a3c0-5f1e-7b62-9a4e-6f1b2c3d4e5f".into(),
            due_time: ts(1_800_000_000),
            late_policy: pb::LatePolicy::Skip as i32,
            late_threshold: Some(prost_types::Duration {
                seconds: 600,
                nanos: 0,
            }),
            action: Some(pb::TimerAction {
                action: Some(pb::timer_action::Action::EscalateCase(
                    pb::EscalateCaseAction {
                        case_id: "c-1".into(),
                        ..Default::default()
                    },
                )),
            }),
            ..Default::default()
        }),
    };
    let Some(req) = request(REQ, &valid, c) else {
        return;
    };
    let s = settings();
    match parse_schedule(req, &s.common.chain, Duration::from_secs(600)) {
        Ok(t) => {
            assert!(!t.key.is_empty() && !RESERVED_PREFIXES.iter().any(|p| t.key.starts_with(p)));
            assert!(s.common.chain.property(&t.property_id).is_some());
            assert!(t.late_threshold_ms > 0 && t.late_threshold_ms <= 366 * 86_400_000 + 999);
            assert_eq!(t.due_time, crate::domain::micros(t.due_time));
            assert_ne!(t.purpose, pb::TimerPurpose::Unspecified);
        }
        Err(v) => assert_names_fields(
            REQ,
            v.0.iter()
                .map(|f| (f.field.as_str(), f.description.as_str())),
        ),
    }
}

/// A check-out event every consumer accepts; the surface changes a few of its fields.
fn valid_checkout() -> EventEnvelope {
    EventEnvelope {
        event_id: "0195a3c0-5f1e-7b62-9a4e-6f1b2c3d4e5f".into(),
        source: "guest-profile".into(),
        aggregate_type: "stay".into(),
        aggregate_id: "0195a3c0-0000-7b62-9a4e-6f1b2c3d4e5f".into(),
        sequence: 2,
        occur_time: ts(1_800_000_000),
        property_id: "hk-harbour".into(),
        traceparent: String::new(),
        payload: Some(Payload::StayCheckedOut(ev::StayCheckedOut {
            stay_id: "0195a3c0-0000-7b62-9a4e-6f1b2c3d4e5f".into(),
            guest_id: "0195a3c0-5f1e-7b62-9a4e-6f1b2c3d4e5f".into(),
            property_id: "hk-harbour".into(),
            checked_out_time: ts(1_800_000_000),
            arrival_date: Some(Date {
                year: 2027,
                month: 1,
                day: 12,
            }),
            departure_date: Some(Date {
                year: 2027,
                month: 1,
                day: 15,
            }),
            ..Default::default()
        })),
    }
}

fn stay_event(c: &mut Choices<'_>) {
    const ENV: &str = "guestloop.events.v1.EventEnvelope";
    let Some(env) = request(ENV, &valid_checkout(), c) else {
        return;
    };
    plan_stay(&env, c);
}

/// What the consumer does with a stay event before its transaction: read the check-out,
/// plan its timers and the birthday greeting.
fn plan_stay(env: &EventEnvelope, c: &mut Choices<'_>) {
    let Some(checkout) = crate::ingest::checked_out(env) else {
        return;
    };
    let s = settings();
    let timers = crate::plan::stay_timers(&checkout, &s.common.chain, &s.common.standards, &s.plan);
    for t in &timers {
        assert!(t.key.starts_with("stay/"));
        assert!(t.late_threshold_ms >= 1000);
    }
    // The birthday greeting, for any (month, day) guest-profile could answer.
    let (month, day) = (u32::from(c.byte() % 14), u32::from(c.byte() % 33));
    // The consumer passes the wall clock: any instant of a century around now.
    let now = DateTime::<Utc>::from_timestamp(1_000_000_000 + i64::from(c.u32()) * 2, 0)
        .expect("an instant of this century");
    if let Some(t) =
        crate::plan::birthday_timer(&checkout, month, day, now, &s.common.chain, &s.plan)
    {
        let floor = crate::domain::micros(now)
            .checked_sub_signed(chrono::Duration::seconds(1))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        assert!(t.due_time >= floor);
    }
}

/// A booking as the consumer parses it (care/mod.rs), then its pre-arrival tasks: each due
/// before the arrival and not before now, with text within the API's bounds.
fn stay_booking(c: &mut Choices<'_>) {
    const EVENT: &str = "guestloop.events.v1.StayBooked";
    let valid = ev::StayBooked {
        stay_id: "0195a3c0-0000-7b62-9a4e-6f1b2c3d4e5f".into(),
        guest_id: "0195a3c0-5f1e-7b62-9a4e-6f1b2c3d4e5f".into(),
        property_id: "sh-bund".into(),
        arrival_date: Some(Date {
            year: 2027,
            month: 1,
            day: 12,
        }),
        tier: guestloop_proto::guestprofile::v1::Tier::VipGold as i32,
        previous_stays: 2,
        care: Some(ev::StayCare {
            pillow: "buckwheat".into(),
            allergies: vec!["peanuts".into()],
            ..Default::default()
        }),
        ..Default::default()
    };
    let Some(event) = request(EVENT, &valid, c) else {
        return;
    };
    let Ok(booking) = crate::care::Booking::try_from(&event) else {
        return;
    };
    let s = settings();
    let now = DateTime::<Utc>::from_timestamp(1_000_000_000 + i64::from(c.u32()) * 2, 0)
        .expect("an instant of this century");
    let Some(arrival) = crate::care::arrival_at(
        &s.common.chain,
        &booking.property_id,
        booking.arrival,
        s.care.arrival_time,
    ) else {
        assert!(crate::care::plan(&booking, &s.care, &s.common.chain, now).is_empty());
        return;
    };
    for p in crate::care::plan(&booking, &s.care, &s.common.chain, now) {
        assert!(
            p.due < arrival && p.due >= crate::domain::micros(now),
            "{p:?}"
        );
        assert!(!p.title.is_empty() && p.title.chars().count() <= 200);
        assert!(p.instructions.chars().count() <= 2000);
    }
}

fn case_event(c: &mut Choices<'_>) {
    const FACTS: &str = "guestloop.events.v1.CaseFacts";
    let valid = ev::CaseFacts {
        case_id: "FB-1".into(),
        property_id: "sh-bund".into(),
        status: guestloop_proto::feedback::v1::CaseStatus::Resolved as i32,
        open_time: ts(1_800_000_000),
        first_response_due_time: ts(1_800_003_600),
        resolution_due_time: ts(1_800_172_800),
        resolve_time: ts(1_800_100_000),
        version: 3,
        ..Default::default()
    };
    let Some(facts) = request(FACTS, &valid, c) else {
        return;
    };
    if let Some(f) = Facts::parse(&facts) {
        assert_eq!(
            f.done.is_some(),
            f.case.status >= 5 && f.case.status <= 6,
            "{f:?}"
        );
        // Arming a clock subtracts up to its whole length from the due time.
        for t in [f.open_time, f.first_response_due, f.resolution_due] {
            let _ = t - (f.resolution_due - f.open_time).abs() - chrono::Duration::days(366);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn check_outs_at_the_edges_of_time_plan_or_are_dropped() {
        let edges = [
            i64::MIN,
            -8_334_601_228_801,
            -8_334_601_228_800,
            -62_135_596_800,
            0,
            253_402_300_799,
            8_210_266_876_799 - 86_400 * 400,
            8_210_266_876_799,
            8_210_266_876_800,
            i64::MAX,
        ];
        for seconds in edges {
            for nanos in [0, 999_999_999, 1_000_000_000, -1] {
                let mut env = valid_checkout();
                if let Some(Payload::StayCheckedOut(s)) = &mut env.payload {
                    s.checked_out_time = Some(prost_types::Timestamp { seconds, nanos });
                }
                plan_stay(&env, &mut Choices::new(&[2, 29, 3]));
            }
        }
    }

    /// Found by cargo-fuzz with the bound taken out: a case event whose due time lies at
    /// chrono's end overflowed when the clock's warning was armed before it. Such facts are
    /// now dropped like incomplete ones.
    #[test]
    fn case_facts_at_the_edges_of_time_are_dropped() {
        for seconds in [8_210_266_876_799, -8_334_601_228_800, 253_402_300_800] {
            let facts = ev::CaseFacts {
                status: guestloop_proto::feedback::v1::CaseStatus::Received as i32,
                open_time: ts(1_800_000_000),
                first_response_due_time: ts(seconds),
                resolution_due_time: ts(1_800_172_800),
                ..Default::default()
            };
            assert!(Facts::parse(&facts).is_none(), "{seconds}");
        }
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
